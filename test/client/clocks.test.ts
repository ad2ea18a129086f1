// The traffic clocks on a virtual clock whose timers fire late, as real ones do: every timer
// waits at least 1 ms (Node's floor), fires a seeded random time after its due time, and every
// tick costs callback time. The clocks schedule on ideal times, so the event count over a long
// run is the configured rate's, gaps under the timer's resolution occur as often as the
// exponential says, and a long stall is followed by a bounded burst, not a catch-up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { CATCH_UP_MS, PeriodicClock, PoissonClock, burstCap, exponentialMs, uniform01 } from '../../src/client/poisson.js';
import type { Clock } from '../../src/ops/clock.js';
import { seededBackend } from '../helpers/seeded.js';

const te = new TextEncoder();
const u01For = (label: string): (() => number) => uniform01(seededBackend(nodeBackend, te.encode(label)).randomBytes);

/**
 * Virtual time with late timers. `real` is the time that passes; `now()` is `real + offset`
 * (a wall clock that can be stepped). Timers fire at real time due + max(1 ms floor) + lateness.
 */
interface Timer {
  at: number;
  id: number;
  fn: () => void;
}

class LateClock implements Clock {
  real = 0;
  offset = 0;
  /** Which timer callback is running (ticks in the same callback form a burst). */
  callback = 0;
  #timers: Timer[] = [];
  #id = 0;
  readonly #late: () => number;
  constructor(late: () => number) {
    this.#late = late;
  }
  now(): number {
    return this.real + this.offset;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.push({ at: this.real + Math.max(1, ms) + this.#late(), id, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }
  /** Runs every timer due up to real time `until`. */
  run(until: number): void {
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.at <= until && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.real = Math.max(this.real, next.at);
      this.callback++;
      next.fn();
    }
    this.real = until;
  }
}

/** Timers late by an exponential amount (mean 2 ms unless told), from a seeded stream. */
function lateTimers(seed: string, meanLateMs = 2): LateClock {
  const u = u01For(`late ${seed}`);
  return new LateClock(() => exponentialMs(u, meanLateMs));
}

interface Record {
  times: number[];
  callbacks: number[];
}

/** An onTick that records when it ran and in which callback, and costs 0.2 ms of callback time. */
function recorder(clock: LateClock): { rec: Record; onTick: () => void } {
  const rec: Record = { times: [], callbacks: [] };
  return {
    rec,
    onTick: () => {
      rec.times.push(clock.real);
      rec.callbacks.push(clock.callback);
      clock.real += 0.2;
    },
  };
}

function largestBurst(callbacks: number[]): number {
  const per = new Map<number, number>();
  for (const c of callbacks) per.set(c, (per.get(c) ?? 0) + 1);
  return Math.max(0, ...per.values());
}

const HOUR = 3_600_000;

describe('traffic clocks with late timers', () => {
  for (const meanLateMs of [0.5, 5]) {
    it(`a Poisson clock at 25/s emits 25/s over an hour of timers late by ${meanLateMs} ms on average`, () => {
      const clock = lateTimers('rate', meanLateMs);
      const { rec, onTick } = recorder(clock);
      const pc = new PoissonClock(clock, () => 25, u01For('rate'), onTick);
      pc.start();
      clock.run(HOUR);
      pc.stop();
      const expected = 25 * 3600;
      // A Poisson count has standard deviation sqrt(90 000) = 300; the seed makes this exact.
      assert.ok(Math.abs(rec.times.length - expected) <= 4 * 300, `${rec.times.length} events against ${expected}`);
      assert.equal(pc.restarts, 0, 'ordinary lateness drops nothing');
    });
  }

  it("gaps under the timers' 1 ms floor occur at least as often as the exponential says", () => {
    const clock = lateTimers('short gaps', 1);
    const { rec, onTick } = recorder(clock);
    const pc = new PoissonClock(clock, () => 25, u01For('rate'), onTick);
    pc.start();
    clock.run(HOUR);
    pc.stop();
    // Exp(25/s) puts 1 - e^(-0.025) = 2.47 % of its gaps under 1 ms. Here two events leave in one
    // callback when the second's ideal time came before the first's timer fired: with timers late
    // by 1 ms on average (what `npm run bench -- clocks` measures on Node) that is about as often.
    // A clock that waits for a timer per event has no gap under the 1 ms floor at all.
    const gaps = rec.times.slice(1).map((t, i) => t - rec.times[i]!);
    const share = gaps.filter((g) => g < 1).length / gaps.length;
    assert.ok(share > 0.02 && share < 0.04, `share of gaps under 1 ms: ${(share * 100).toFixed(2)} %`);
    // And several events due at once leave in one callback, in order.
    assert.ok(largestBurst(rec.callbacks) >= 2);
    assert.ok(rec.times.every((t, i) => i === 0 || t >= rec.times[i - 1]!));
  });

  it('a periodic clock at 30/s emits exactly 30/s over an hour of late timers', () => {
    const clock = lateTimers('periodic');
    const { rec, onTick } = recorder(clock);
    const fc = new PeriodicClock(clock, () => 30, onTick);
    fc.start();
    clock.run(HOUR);
    fc.stop();
    // Every ideal time k/30 s up to the end, less the last few whose timers are still late.
    assert.ok(Math.abs(rec.times.length - 30 * 3600) <= 2, `${rec.times.length} fetches`);
    assert.equal(fc.restarts, 0);
  });

  it('after a stall of an hour a Poisson clock emits at most its burst bound, then runs at its rate', () => {
    const clock = lateTimers('stall');
    const { rec, onTick } = recorder(clock);
    const pc = new PoissonClock(clock, () => 25, u01For('stall'), onTick);
    pc.start();
    clock.run(60_000);
    const before = rec.times.length;
    // The event loop is blocked (or the laptop sleeps) for an hour: the pending timer fires that late.
    clock.real += HOUR;
    clock.run(clock.real + 600_000);
    pc.stop();
    const stallCallback = rec.callbacks[before]!;
    const burst = rec.callbacks.filter((c) => c === stallCallback).length;
    assert.ok(burst <= burstCap(25), `${burst} events at once after the stall, bound ${burstCap(25)}`);
    assert.ok(pc.restarts >= 1, 'the stall restarted the schedule');
    // Nothing like the 90 000 missed events: the rate after the stall is the configured one.
    const after = rec.times.length - before;
    assert.ok(Math.abs(after - 25 * 600) <= 4 * Math.sqrt(25 * 600), `${after} events in the 10 minutes after`);
  });

  it('after a stall a periodic clock emits at most its burst bound of fetches', () => {
    const clock = lateTimers('stall periodic');
    const { rec, onTick } = recorder(clock);
    const fc = new PeriodicClock(clock, () => 30, onTick);
    fc.start();
    clock.run(10_000);
    const before = rec.times.length;
    clock.real += HOUR;
    clock.run(clock.real + 1);
    fc.stop();
    const burst = rec.times.length - before;
    assert.ok(burst >= 1 && burst <= burstCap(30), `${burst} fetches at once after the stall`);
    assert.equal(fc.restarts, 1);
  });

  it('the burst bound is 8 at the default rates and grows with the rate beyond 40/s', () => {
    assert.equal(burstCap(25), 8);
    assert.equal(burstCap(30), 8);
    assert.equal(burstCap(1000), 200);
  });

  it('a stall shorter than the catch-up window loses no event when the burst fits', () => {
    const clock = lateTimers('short stall');
    const { rec, onTick } = recorder(clock);
    const fc = new PeriodicClock(clock, () => 30, onTick);
    fc.start();
    clock.run(10_000);
    // The event loop is blocked for 150 ms: 4 or 5 fetches fall due meanwhile, and all go.
    clock.real += 150;
    clock.run(20_000);
    fc.stop();
    assert.equal(fc.restarts, 0);
    assert.ok(Math.abs(rec.times.length - 600) <= 1, `${rec.times.length} fetches`);
    assert.ok(CATCH_UP_MS >= 150);
  });

  it('with a lead, a stall counts only the events already overdue against the burst bound', () => {
    const clock = lateTimers('stall with lead');
    const { rec, onTick } = recorder(clock);
    const fc = new PeriodicClock(clock, () => 30, onTick, () => 250);
    fc.start();
    clock.run(10_000);
    // Blocked for 400 ms: 12 fetches fall due within the lead's reach (more than the bound of 8),
    // but only the ~5 whose ideal time has passed would leave late; the others leave on time.
    clock.real += 400;
    clock.run(20_000);
    fc.stop();
    assert.equal(fc.restarts, 0, 'nothing dropped');
    assert.ok(Math.abs(rec.times.length - (600 + 8)) <= 1, `${rec.times.length} fetches (20 s, and 250 ms ahead)`);
  });

  it('a wall clock set back an hour does not stop the clock for an hour', () => {
    const clock = lateTimers('step back');
    const { rec, onTick } = recorder(clock);
    const pc = new PoissonClock(clock, () => 25, u01For('step back'), onTick);
    pc.start();
    clock.run(60_000);
    const before = rec.times.length;
    clock.offset -= HOUR;
    clock.run(clock.real + 60_000);
    pc.stop();
    const after = rec.times.length - before;
    assert.ok(Math.abs(after - 1500) <= 4 * Math.sqrt(1500), `${after} events in the minute after the step`);
  });

  it('a wall clock set forward an hour is a stall: a bounded burst, no catch-up', () => {
    const clock = lateTimers('step forward');
    const { rec, onTick } = recorder(clock);
    const pc = new PoissonClock(clock, () => 25, u01For('step forward'), onTick);
    pc.start();
    clock.run(60_000);
    const before = rec.times.length;
    clock.offset += HOUR;
    clock.run(clock.real + 60_000);
    pc.stop();
    assert.ok(largestBurst(rec.callbacks.slice(before)) <= burstCap(25));
    const after = rec.times.length - before;
    assert.ok(Math.abs(after - 1500) <= 4 * Math.sqrt(1500), `${after} events in the minute after the step`);
  });

  it('with a lead, ticks come that long before their ideal times, which are the same as without it', () => {
    const ideal = (lead: number): { idealAt: number[]; firedAt: number[] } => {
      const clock = lateTimers(`lead ${lead}`, 0);
      const idealAt: number[] = [];
      const firedAt: number[] = [];
      const pc = new PoissonClock(clock, () => 20, u01For('lead'), (at) => {
        idealAt.push(at);
        firedAt.push(clock.now());
      }, () => lead);
      pc.start();
      clock.run(30_000);
      pc.stop();
      return { idealAt, firedAt };
    };
    const plain = ideal(0);
    const led = ideal(250);
    // The same draws give the same ideal times; with the lead, the run holds 250 ms more of them.
    assert.ok(plain.idealAt.length > 500);
    assert.deepEqual(led.idealAt.slice(0, plain.idealAt.length), plain.idealAt);
    for (let i = 0; i < led.idealAt.length; i++) {
      const early = led.idealAt[i]! - led.firedAt[i]!;
      // Never more than the lead early; a timer (at least 1 ms) fires a little late. Events due
      // in the first 250 ms come at the start, as soon as the clock can.
      const floor = Math.min(led.idealAt[i]!, 250) - 2;
      assert.ok(early <= 250 + 1e-6 && early >= floor - 1e-6, `tick ${i} came ${early} ms before its ideal time`);
    }
  });
});
