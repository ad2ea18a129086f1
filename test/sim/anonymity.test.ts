// Anonymity measures: ExpWeightEntropy against a direct O(n) sum and the log2(e·lambda/mu) mean;
// SenderEntropyTracer against Theorem 1 by brute force at one mix; the tracer's backward weights
// against ChallengeTracker's forward label mass on layered networks (with and without corrupt
// mixes); corrupt mixes; log truncation; bad arguments.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChallengeTracker, ExpWeightEntropy, SenderEntropyTracer } from '../../src/sim/anonymity.js';

/** xorshift32: a small deterministic generator for the statistical tests. */
class Xorshift {
  #x: number;

  constructor(seed: number) {
    this.#x = seed >>> 0 || 1;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x >>> 0;
    return this.#x / 2 ** 32;
  }

  /** Exponential with the given rate. */
  exp(rate: number): number {
    return -Math.log(1 - this.next()) / rate;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** The entropy in bits of exp(-mu(T - t_i)) weights, summed directly (times sorted). */
function bruteExpBits(mu: number, times: readonly number[]): number {
  const m = times[times.length - 1]!;
  const w = times.map((t) => Math.exp(mu * (t - m)));
  let rest = 0;
  for (let i = 0; i < w.length - 1; i++) rest += w[i]!;
  const z = 1 + rest;
  const lnZ = Math.log1p(rest);
  let h = 0;
  // -ln p_i = ln Z - ln w_i = ln Z + mu (m - t_i)
  for (let i = 0; i < w.length; i++) h += (w[i]! / z) * (lnZ + mu * (m - times[i]!));
  return h / Math.LN2;
}

function closeRel(actual: number, expected: number, rel: number, abs: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected) + abs, `${what}: ${actual} vs ${expected}`);
}

function entropyBits(weights: Iterable<number>): number {
  const ws = [...weights];
  const sum = ws.reduce((a, b) => a + b, 0);
  let h = 0;
  for (const w of ws) if (w > 0) h -= (w / sum) * Math.log2(w / sum);
  return h;
}

describe('ExpWeightEntropy', () => {
  test('agrees with the direct sum for random inputs', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-3, max: 5, noNaN: true }),
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 0, maxLength: 200 }),
        (mu, start, gaps) => {
          const h = new ExpWeightEntropy(mu);
          const times = [start];
          for (const g of gaps) times.push(times[times.length - 1]! + g);
          for (let i = 0; i < times.length; i++) {
            h.input(times[i]!);
            const T = times[i]! + 1;
            closeRel(h.entropyBits(T), bruteExpBits(mu, times.slice(0, i + 1)), 1e-9, 1e-290, `input ${i}`);
          }
          assert.equal(h.inputs, times.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('agrees with the direct sum over long runs (mu·span far beyond any single exponent)', () => {
    const rng = new Xorshift(12345);
    for (const [mu, rate, start] of [
      [1, 10, 0],
      [0.02, 0.5, 1e9],
      [3, 0.5, -5e5],
    ] as const) {
      const h = new ExpWeightEntropy(mu);
      const times: number[] = [];
      let t = start;
      for (let i = 0; i < 20_000; i++) {
        t += rng.exp(rate);
        times.push(t);
        h.input(t);
        if (i % 997 === 0 || i === 19_999) closeRel(h.entropyBits(t), bruteExpBits(mu, times), 1e-9, 1e-290, `mu ${mu} input ${i}`);
      }
      assert.ok(mu * (t - start) > 600, 'the run spans many e-folds');
    }
  });

  test('a single input, equal times, NaN before inputs', () => {
    const h = new ExpWeightEntropy(0.1);
    assert.ok(Number.isNaN(h.entropyBits(0)));
    h.input(5);
    assert.equal(h.entropyBits(5), 0);
    h.input(5);
    h.input(5);
    h.input(5);
    closeRel(h.entropyBits(100), 2, 1e-12, 0, 'four equal inputs');
  });

  test('Poisson inputs at lambda/mu = 50: mean entropy within 3% of log2(e·50)', () => {
    const rng = new Xorshift(0x9e3779b9);
    const lambda = 1; // per ms
    const mu = lambda / 50;
    const h = new ExpWeightEntropy(mu);
    const warmup = 20 / mu;
    let nextIn = rng.exp(lambda);
    let nextOut = rng.exp(lambda); // departures of a steady M/M/inf pool are Poisson at lambda too
    let sum = 0;
    let n = 0;
    while (n < 100_000) {
      if (nextIn <= nextOut) {
        h.input(nextIn);
        nextIn += rng.exp(lambda);
      } else {
        if (nextOut > warmup && h.inputs > 0) {
          sum += h.entropyBits(nextOut);
          n++;
        }
        nextOut += rng.exp(lambda);
      }
    }
    const expected = Math.log2(Math.E * 50);
    const mean = sum / n;
    assert.ok(Math.abs(mean - expected) / expected < 0.03, `mean ${mean} vs ${expected}`);
  });

  test('bad arguments', () => {
    assert.throws(() => new ExpWeightEntropy(Number.NaN), RangeError);
    assert.throws(() => new ExpWeightEntropy(Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => new ExpWeightEntropy(0), RangeError);
    assert.throws(() => new ExpWeightEntropy(-1), RangeError);
    assert.throws(() => new ExpWeightEntropy('1' as unknown as number), TypeError);
    const h = new ExpWeightEntropy(1);
    assert.throws(() => h.input(Number.NaN), RangeError);
    h.input(10);
    assert.throws(() => h.input(9), RangeError);
    assert.throws(() => h.entropyBits(9), RangeError);
    assert.throws(() => h.entropyBits(Number.POSITIVE_INFINITY), RangeError);
  });
});

/** Theorem 1 at one mix: the sender weights of the output at event j, from the event list. */
function theorem1(events: readonly { arrival: boolean; sender: number; k: number }[], j: number): Map<number, number> {
  const out = new Map<number, number>();
  let factor = 1 / events[j]!.k;
  for (let i = j - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.arrival) out.set(e.sender, (out.get(e.sender) ?? 0) + factor);
    else factor *= 1 - 1 / e.k;
  }
  return out;
}

function assertWeights(got: ReadonlyMap<number, number>, expected: ReadonlyMap<number, number>, what: string): void {
  for (const key of new Set([...got.keys(), ...expected.keys()])) {
    const g = got.get(key) ?? 0;
    const e = expected.get(key) ?? 0;
    assert.ok(Math.abs(g - e) <= 1e-12 + 1e-9 * e, `${what}, sender ${key}: ${g} vs ${e}`);
  }
}

describe('SenderEntropyTracer, one honest mix', () => {
  test('arrival weights and entropy equal Theorem 1 by brute force', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.double({ min: 0, max: 3, noNaN: true })), { minLength: 1, maxLength: 120 }), (ops) => {
        const tr = new SenderEntropyTracer({ mixes: 1, corrupt: () => false, logCapacity: 1024 });
        const events: { arrival: boolean; sender: number; k: number }[] = [];
        const pool: number[] = [];
        let next = 0;
        let t = 0;
        for (const [arrive, pick, dt] of ops) {
          t += dt;
          if (arrive || pool.length === 0) {
            const p = next++;
            tr.enter(p, 1000 + 7 * p);
            tr.arrive(0, p, t);
            events.push({ arrival: true, sender: 1000 + 7 * p, k: pool.length });
            pool.push(p);
          } else {
            const i = pick % pool.length;
            const p = pool[i]!;
            events.push({ arrival: false, sender: -1, k: pool.length });
            pool.splice(i, 1);
            tr.depart(0, p, t);
            const expected = theorem1(events, events.length - 1);
            const total = [...expected.values()].reduce((a, b) => a + b, 0);
            closeRel(total, 1, 1e-12, 1e-12, 'Theorem 1 sums to 1');
            const got = tr.weights(0, p);
            assert.equal(got.lost, 0);
            assertWeights(got.senders, expected, `output ${p}`);
            const e = tr.entropy(0, p);
            closeRel(e.bits, entropyBits(expected.values()), 1e-9, 1e-9, 'entropy');
            assert.equal(e.truncated, 0);
            assert.equal(e.senders, [...expected.values()].filter((w) => w > 1e-12).length);
            tr.forget(p);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a small case by hand', () => {
    const tr = new SenderEntropyTracer({ mixes: 1, corrupt: () => false, logCapacity: 16 });
    for (const p of [1, 2, 3]) {
      tr.enter(p, p * 10);
      tr.arrive(0, p, p);
    }
    tr.depart(0, 2, 4); // k = 3
    const first = tr.entropy(0, 2);
    closeRel(first.bits, Math.log2(3), 1e-12, 0, 'uniform over 3');
    assert.equal(first.senders, 3);
    tr.forget(2);
    tr.depart(0, 1, 5); // k = 2
    const w = tr.weights(0, 1).senders;
    // The observer cannot tell which packet left first, so all three arrivals get (1 - 1/3)·(1/2).
    for (const s of [10, 20, 30]) closeRel(w.get(s)!, 1 / 3, 1e-12, 0, `sender ${s}`);
  });
});

interface Flight {
  readonly p: number;
  layer: number;
  mix: number;
  /** Departed its previous mix, not yet arrived at `mix`. */
  transit: boolean;
}

describe('SenderEntropyTracer and ChallengeTracker agree', () => {
  test('random paths through 2 layers x 2 mixes, some mixes corrupt, some hops in transit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 150 }),
        (corruptFlags, ops) => {
          const corrupt = (m: number): boolean => corruptFlags[m]!;
          const tr = new SenderEntropyTracer({ mixes: 4, corrupt, logCapacity: 4096 });
          const ch = new ChallengeTracker(4, corrupt);
          const flying: Flight[] = [];
          let next = 0;
          let t = 0;
          for (const [a, b, c] of ops) {
            t += 1;
            if (a % 3 === 0 || flying.length === 0) {
              const p = next++;
              const sender = b % 4;
              const mix = c % 2;
              tr.enter(p, sender);
              if (sender < 2) ch.label(p, sender as 0 | 1);
              tr.arrive(mix, p, t);
              ch.arrive(mix, p);
              flying.push({ p, layer: 0, mix, transit: false });
              continue;
            }
            const i = b % flying.length;
            const f = flying[i]!;
            if (f.transit) {
              // Arrives later, after other events: its departure is not the previous log entry.
              f.transit = false;
              tr.arrive(f.mix, f.p, t);
              ch.arrive(f.mix, f.p);
              continue;
            }
            tr.depart(f.mix, f.p, t);
            ch.depart(f.mix, f.p);
            if (f.layer === 0) {
              f.layer = 1;
              f.mix = 2 + (c % 2);
              if (a % 2 === 0) {
                tr.arrive(f.mix, f.p, t);
                ch.arrive(f.mix, f.p);
              } else {
                f.transit = true;
              }
              continue;
            }
            const [p0, p1] = ch.probabilities(f.p);
            const w = tr.weights(f.mix, f.p);
            assert.equal(w.lost, 0);
            closeRel(w.senders.get(0) ?? 0, p0, 1e-9, 1e-11, `p0 of ${f.p}`);
            closeRel(w.senders.get(1) ?? 0, p1, 1e-9, 1e-11, `p1 of ${f.p}`);
            closeRel([...w.senders.values()].reduce((x, y) => x + y, 0), 1, 1e-9, 1e-11, 'total weight');
            flying.splice(i, 1);
            tr.forget(f.p);
            ch.forget(f.p);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a continuous-time simulation, 3 layers x 3 mixes, one corrupt, exponential delays, link latency', () => {
    const rng = new Xorshift(777);
    const layers = 3;
    const width = 3;
    const mixes = layers * width;
    const corrupt = (m: number): boolean => m === 4;
    const tr = new SenderEntropyTracer({ mixes, corrupt, logCapacity: 1 << 14 });
    const ch = new ChallengeTracker(mixes, corrupt);
    const DEPART = 0;
    const ARRIVE = 1;
    // Events: [time, packet, mix, layer, what], sorted by time descending (popped from the end).
    type Event = [number, number, number, number, number];
    const queue: Event[] = [];
    const schedule = (e: Event): void => {
      let lo = 0;
      let hi = queue.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (queue[mid]![0] > e[0]) lo = mid + 1;
        else hi = mid;
      }
      queue.splice(lo, 0, e);
    };
    const lambda = 0.5; // packets per ms into the network
    const mu = 0.05; // per hop
    let injectAt = 0;
    let packet = 0;
    let delivered = 0;
    let bitsSum = 0;
    let epsilonSum = 0;
    let epsilonCount = 0;
    while (delivered < 3000) {
      const due = queue.length > 0 ? queue[queue.length - 1]![0] : Number.POSITIVE_INFINITY;
      if (injectAt < due) {
        const p = packet++;
        const sender = rng.int(20);
        tr.enter(p, sender);
        if (sender < 2) ch.label(p, sender as 0 | 1);
        const mix = rng.int(width);
        tr.arrive(mix, p, injectAt);
        ch.arrive(mix, p);
        schedule([injectAt + rng.exp(mu), p, mix, 0, DEPART]);
        injectAt += rng.exp(lambda);
        continue;
      }
      const [time, p, mix, layer, what] = queue.pop()!;
      if (what === ARRIVE) {
        tr.arrive(mix, p, time);
        ch.arrive(mix, p);
        schedule([time + rng.exp(mu), p, mix, layer, DEPART]);
        continue;
      }
      tr.depart(mix, p, time);
      ch.depart(mix, p);
      if (layer + 1 < layers) {
        schedule([time + 0.5 + rng.exp(1), p, (layer + 1) * width + rng.int(width), layer + 1, ARRIVE]);
        continue;
      }
      const [p0, p1] = ch.probabilities(p);
      const w = tr.weights(mix, p);
      assert.equal(w.lost, 0);
      closeRel(w.senders.get(0) ?? 0, p0, 1e-9, 1e-11, `p0 of ${p}`);
      closeRel(w.senders.get(1) ?? 0, p1, 1e-9, 1e-11, `p1 of ${p}`);
      if (p0 > 0 && p1 > 0) {
        epsilonSum += Math.abs(Math.log(p0 / p1));
        epsilonCount++;
      }
      const e = tr.entropy(mix, p);
      assert.equal(e.truncated, 0);
      if (delivered >= 500) bitsSum += e.bits;
      tr.forget(p);
      ch.forget(p);
      delivered++;
    }
    // 20 senders: the mean entropy is high but below log2(20).
    const mean = bitsSum / 2500;
    assert.ok(mean > 3 && mean <= Math.log2(20), `mean entropy ${mean}`);
    assert.ok(epsilonCount > 1000 && epsilonSum / epsilonCount < 2, `mean epsilon ${epsilonSum / epsilonCount}`);
  });
});

describe('corrupt mixes', () => {
  test('the tracer knows the sender of an output of a corrupt mix', () => {
    const tr = new SenderEntropyTracer({ mixes: 1, corrupt: () => true, logCapacity: 64 });
    for (let p = 0; p < 6; p++) {
      tr.enter(p, 100 + p);
      tr.arrive(0, p, p);
    }
    let t = 10;
    for (const p of [3, 0, 5, 1]) {
      tr.depart(0, p, t++);
      const e = tr.entropy(0, p);
      assert.equal(e.bits, 0);
      assert.equal(e.senders, 1);
      assert.equal(e.truncated, 0);
      assert.deepEqual([...tr.weights(0, p).senders], [[100 + p, 1]]);
      tr.forget(p);
    }
  });

  test('a corrupt first hop followed by an honest one', () => {
    const tr = new SenderEntropyTracer({ mixes: 2, corrupt: (m) => m === 0, logCapacity: 64 });
    for (let p = 0; p < 4; p++) {
      tr.enter(p, p);
      tr.arrive(0, p, p);
    }
    tr.depart(0, 2, 5);
    tr.arrive(1, 2, 5);
    tr.depart(0, 0, 6);
    tr.arrive(1, 0, 6);
    tr.depart(1, 0, 7); // the honest mix held two: senders 2 and 0, half each
    const w = tr.weights(1, 0).senders;
    assert.deepEqual(
      [...w].sort((x, y) => x[0] - y[0]),
      [
        [0, 0.5],
        [2, 0.5],
      ],
    );
  });

  test('ChallengeTracker: the output of a corrupt mix keeps its label and counts as linked', () => {
    const ch = new ChallengeTracker(2, (m) => m === 0);
    ch.label(1, 0);
    ch.label(2, 1);
    for (const p of [1, 2, 3]) ch.arrive(0, p);
    ch.depart(0, 2);
    assert.deepEqual(ch.probabilities(2), [0, 1]);
    ch.arrive(1, 2);
    ch.depart(0, 3);
    assert.deepEqual(ch.probabilities(3), [0, 0]);
    ch.arrive(1, 3);
    ch.depart(0, 1);
    assert.deepEqual(ch.probabilities(1), [1, 0]);
    ch.arrive(1, 1);
    const s = ch.epsilon([1]);
    assert.equal(s.linked, 2);
    assert.equal(s.messages, 0);
    assert.ok(Number.isNaN(s.mean));
    assert.deepEqual(s.values, []);
  });
});

describe('ChallengeTracker', () => {
  test('the pool model by hand, and mass is conserved', () => {
    const ch = new ChallengeTracker(2, () => false);
    ch.label(1, 0);
    ch.label(2, 1);
    ch.label(3, 0);
    for (const p of [1, 2, 3]) ch.arrive(0, p);
    ch.depart(0, 3);
    const [a0, a1] = ch.probabilities(3);
    closeRel(a0, 2 / 3, 1e-15, 0, 'p0');
    closeRel(a1, 1 / 3, 1e-15, 0, 'p1');
    ch.arrive(1, 3);
    let s = ch.epsilon([1]);
    assert.equal(s.messages, 1);
    closeRel(s.values[0]!, Math.LN2, 1e-12, 0, 'epsilon ln 2');
    closeRel(s.mean, Math.LN2, 1e-12, 0, 'mean');
    ch.depart(0, 1);
    ch.arrive(1, 1);
    ch.depart(0, 2);
    ch.arrive(1, 2);
    let sum0 = 0;
    let sum1 = 0;
    for (const p of [1, 2, 3]) {
      sum0 += ch.probabilities(p)[0];
      sum1 += ch.probabilities(p)[1];
    }
    closeRel(sum0, 2, 1e-12, 0, 'label 0 mass');
    closeRel(sum1, 1, 1e-12, 0, 'label 1 mass');
    s = ch.epsilon([0, 1]);
    assert.equal(s.messages, 3);
    assert.equal(s.linked, 0);
  });

  test('unlabelled packets dilute, forget removes, unknown departures are ignored', () => {
    const ch = new ChallengeTracker(2, () => false);
    ch.label(1, 0);
    ch.label(2, 1);
    for (const p of [1, 2, 3, 4]) ch.arrive(0, p);
    ch.depart(0, 999); // not there: nothing changes
    ch.depart(1, 1); // not in mix 1
    ch.forget(2); // dropped inside mix 0, taking its label 1 with it
    assert.deepEqual(ch.probabilities(2), [0, 0]);
    ch.depart(0, 4); // k = 3, P = (1, 0)
    const [p0, p1] = ch.probabilities(4);
    closeRel(p0, 1 / 3, 1e-15, 0, 'p0');
    assert.equal(p1, 0);
    ch.arrive(1, 4);
    const s = ch.epsilon([1]);
    assert.equal(s.linked, 1);
    assert.equal(s.messages, 0);
    ch.forget(4);
    assert.equal(ch.epsilon([1]).linked, 0);
    // Pool of mix 0 now holds 1 and 3 with P0 = 2/3: the next output takes 1/3.
    ch.depart(0, 3);
    closeRel(ch.probabilities(3)[0], 1 / 3, 1e-15, 0, 'after forget');
  });

  test('bad arguments', () => {
    assert.throws(() => new ChallengeTracker(0, () => false), RangeError);
    assert.throws(() => new ChallengeTracker(1.5, () => false), TypeError);
    assert.throws(() => new ChallengeTracker(2, undefined as unknown as (m: number) => boolean), TypeError);
    const ch = new ChallengeTracker(2, () => false);
    assert.throws(() => ch.arrive(2, 1), RangeError);
    assert.throws(() => ch.arrive(-1, 1), RangeError);
    assert.throws(() => ch.depart(0.5, 1), TypeError);
    assert.throws(() => ch.arrive(0, -1), RangeError);
    assert.throws(() => ch.label(1, 2 as 0 | 1), RangeError);
    assert.throws(() => ch.epsilon([0, 5]), RangeError);
  });
});

describe('SenderEntropyTracer, bounded logs', () => {
  test('a tiny log loses the older packets and says so', () => {
    const tr = new SenderEntropyTracer({ mixes: 1, corrupt: () => false, logCapacity: 4 });
    for (let p = 0; p < 10; p++) {
      tr.enter(p, p);
      tr.arrive(0, p, p);
    }
    tr.depart(0, 0, 10); // k = 10; the log keeps arrivals 7, 8, 9 and this departure
    const e = tr.entropy(0, 0);
    closeRel(e.truncated, 0.7, 1e-12, 0, 'truncated');
    closeRel(e.bits, Math.log2(3), 1e-12, 0, 'bits over what is left');
    assert.equal(e.senders, 3);
  });

  test('random layered traffic with logs of 1 to 6 events: no crash, weight accounted for', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 100 }),
        (logCapacity, corruptFlags, ops) => {
          const tr = new SenderEntropyTracer({ mixes: 4, corrupt: (m) => corruptFlags[m]!, logCapacity });
          const flying: Flight[] = [];
          let next = 0;
          let t = 0;
          let truncatedSeen = 0;
          for (const [a, b, c] of ops) {
            t += 0.5;
            if (a % 3 === 0 || flying.length === 0) {
              const p = next++;
              tr.enter(p, b % 5);
              const mix = c % 2;
              tr.arrive(mix, p, t);
              flying.push({ p, layer: 0, mix, transit: false });
              continue;
            }
            const i = b % flying.length;
            const f = flying[i]!;
            tr.depart(f.mix, f.p, t);
            if (f.layer === 0) {
              f.layer = 1;
              f.mix = 2 + (c % 2);
              tr.arrive(f.mix, f.p, t);
              continue;
            }
            const w = tr.weights(f.mix, f.p);
            const e = tr.entropy(f.mix, f.p);
            assert.ok(e.truncated >= 0 && e.truncated <= 1);
            if (e.truncated > 0) truncatedSeen++;
            const total = [...w.senders.values()].reduce((x, y) => x + y, 0) + w.lost;
            closeRel(total, 1, 1e-9, 1e-9, 'weight plus lost');
            assert.ok(Number.isNaN(e.bits) || (e.bits >= 0 && e.bits <= Math.log2(5) + 1e-9));
            flying.splice(i, 1);
            tr.forget(f.p);
          }
          return truncatedSeen >= 0;
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a packet dropped inside a mix keeps the pool counts right', () => {
    const tr = new SenderEntropyTracer({ mixes: 1, corrupt: () => false, logCapacity: 64 });
    for (let p = 0; p < 3; p++) {
      tr.enter(p, p);
      tr.arrive(0, p, p);
    }
    tr.forget(1); // dropped: an anonymous departure from a pool of 3
    tr.depart(0, 2, 5); // k = 2
    const w = tr.weights(0, 2);
    assert.equal(w.lost, 0);
    for (const s of [0, 1, 2]) closeRel(w.senders.get(s)!, 1 / 3, 1e-12, 0, `sender ${s}`);
  });
});

describe('SenderEntropyTracer arguments', () => {
  test('bad arguments throw', () => {
    const ok = { mixes: 2, corrupt: () => false, logCapacity: 8 };
    assert.throws(() => new SenderEntropyTracer({ ...ok, mixes: 0 }), RangeError);
    assert.throws(() => new SenderEntropyTracer({ ...ok, logCapacity: 0 }), RangeError);
    assert.throws(() => new SenderEntropyTracer({ ...ok, logCapacity: 2.5 }), TypeError);
    assert.throws(() => new SenderEntropyTracer({ ...ok, mixes: 1 << 20, logCapacity: 1 << 20 }), RangeError);
    assert.throws(() => new SenderEntropyTracer({ ...ok, corrupt: 1 as unknown as () => boolean }), TypeError);
    const tr = new SenderEntropyTracer(ok);
    assert.throws(() => tr.arrive(2, 0, 0), RangeError);
    assert.throws(() => tr.arrive(0, 0, Number.NaN), RangeError);
    assert.throws(() => tr.arrive(0, 1.5, 0), TypeError);
    assert.throws(() => tr.enter(0, -1), RangeError);
    tr.enter(0, 0);
    tr.arrive(0, 0, 10);
    assert.throws(() => tr.depart(0, 0, 9), RangeError, 'time goes back at mix 0');
    assert.throws(() => tr.entropy(0, 0), RangeError, 'not departed yet');
    tr.depart(0, 0, 11);
    assert.throws(() => tr.entropy(1, 0), RangeError, 'departed another mix');
    assert.equal(tr.entropy(0, 0).bits, 0);
    tr.depart(1, 0, 12); // not there: ignored
    assert.equal(tr.entropy(0, 0).bits, 0);
  });
});
