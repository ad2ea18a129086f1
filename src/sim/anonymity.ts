/**
 * Anonymity measures for the mix-network simulator, as seen by a global passive observer who
 * watches every packet arrive at and depart from every mix. Time is in milliseconds; mixes are
 * numbered 0..M-1; packets and senders are non-negative integers (ground truth, known to the
 * simulator, never to the observer).
 *
 * Poisson mixes delay each packet independently and exponentially, so when a packet leaves an
 * honest mix holding k packets, each of the k is equally likely to be the one that left (Loopix,
 * Theorem 1). A corrupt mix tells the observer which packet left.
 *
 * - ExpWeightEntropy: the entropy of one output of one mix, from the input times alone.
 * - ChallengeTracker: Loopix §4.3 epsilon, by carrying two challenge senders' label mass forward.
 * - SenderEntropyTracer: the observer's distribution over the senders of one delivered packet,
 *   by a backward sweep through bounded per-mix event logs.
 *
 * Portable: no `node:` imports.
 */
import { aint } from '../util/bytes.js';

/** The most mixes a tracker accepts. */
export const MAX_MIXES = 1 << 20;

/** The largest per-mix log a SenderEntropyTracer accepts (events). */
export const MAX_LOG_CAPACITY = 1 << 24;

/** The most log events a SenderEntropyTracer holds over all its mixes (25 bytes each). */
export const MAX_LOG_EVENTS = 1 << 27;

/** A backward sweep stops at a mix once every packet there has less than this weight. */
const NEGLIGIBLE_WEIGHT = 1e-12;

const LN2 = Math.LN2;

function afinite(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected number, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`"${name}" expected a finite number, got ${value}`);
}

function apacket(value: unknown): asserts value is number {
  aint('packet', value, 0, Number.MAX_SAFE_INTEGER);
}

function acorrupt(corrupt: unknown): asserts corrupt is (mix: number) => boolean {
  if (typeof corrupt !== 'function') throw new TypeError(`"corrupt" expected function, got ${typeof corrupt}`);
}

/** -Σ p log2 p of the given non-negative weights after normalising them; NaN when they sum to 0. */
export function entropyOfWeights(weights: ReadonlyMap<number, number>): number {
  let sum = 0;
  for (const w of weights.values()) sum += w;
  if (!(sum > 0)) return NaN;
  let h = 0;
  for (const w of weights.values()) {
    if (w > 0) {
      const p = w / sum;
      h -= p * Math.log(p);
    }
  }
  return Math.max(0, h / LN2);
}

/**
 * The sender entropy of one output of one mix, for an observer who knows the delay distribution
 * (exponential, rate mu) and the input times: input i, arrived at t_i, is the output at time T with
 * probability proportional to exp(-mu·(T - t_i)). The entropy does not depend on T, and for
 * Poisson inputs at rate lambda its mean is about log2(e·lambda/mu).
 *
 * O(1) per call. With L the latest input, it keeps S0 = Σ e^{-mu(L - t_i)} (as S0 - 1, which holds
 * the precision when the latest input dominates) and D = Σ (L - t_i)·e^{-mu(L - t_i)}; then
 * H = ln S0 + mu·D/S0 nats. The reference L moves with every input, so every term is at most 1
 * (no overflow) and both sums are sums of non-negative terms (no cancellation).
 *
 * @example
 * const h = new ExpWeightEntropy(1 / meanDelayMs);
 * h.input(arrivedAt);
 * samples.push(h.entropyBits(departedAt));
 */
export class ExpWeightEntropy {
  readonly #mu: number;
  #inputs = 0;
  /** The latest input time. */
  #last = -Infinity;
  /** S0 - 1: the weights of every input but the latest, relative to the latest. */
  #rest = 0;
  /** D: Σ (L - t_i)·e^{-mu(L - t_i)}. */
  #spread = 0;

  /**
   * @param muPerMs the delay rate (1 / mean delay), per millisecond; finite, > 0
   * @throws {TypeError|RangeError} for anything else.
   */
  constructor(muPerMs: number) {
    afinite('muPerMs', muPerMs);
    if (!(muPerMs > 0)) throw new RangeError(`"muPerMs" expected a positive number, got ${muPerMs}`);
    this.#mu = muPerMs;
  }

  /** Inputs seen. */
  get inputs(): number {
    return this.#inputs;
  }

  /**
   * An input at time t.
   * @throws {TypeError|RangeError} when t is not finite or is before the previous input.
   */
  input(t: number): void {
    afinite('t', t);
    if (this.#inputs === 0) {
      this.#last = t;
      this.#inputs = 1;
      return;
    }
    const gap = t - this.#last;
    if (gap < 0) throw new RangeError(`"t" expected >= the previous input ${this.#last}, got ${t}`);
    const s0 = this.#rest + 1;
    const f = Math.exp(-this.#mu * gap);
    this.#rest = f * s0;
    this.#spread = f * (this.#spread + gap * s0);
    this.#last = t;
    this.#inputs++;
  }

  /**
   * The entropy in bits of an output at time T; NaN before any input.
   * @throws {TypeError|RangeError} when T is not finite or is before the latest input.
   */
  entropyBits(T: number): number {
    afinite('T', T);
    if (this.#inputs === 0) return NaN;
    if (T < this.#last) throw new RangeError(`"T" expected >= the latest input ${this.#last}, got ${T}`);
    const s0 = this.#rest + 1;
    const nats = Math.log1p(this.#rest) + (this.#mu * this.#spread) / s0;
    return nats / LN2;
  }
}

/** Epsilon over a set of messages (ChallengeTracker.epsilon). */
export interface EpsilonSample {
  /** The mean of `values`; NaN when `messages` is 0. */
  readonly mean: number;
  /** Messages with both probabilities > 0. */
  readonly messages: number;
  /** Messages with exactly one probability 0: the observer knows which challenge sender sent them. */
  readonly linked: number;
  /** |ln(p0/p1)| of each of the `messages`, all finite. */
  readonly values: number[];
}

type Mass = readonly [number, number];

const NO_MASS: Mass = Object.freeze([0, 0] as const);

/**
 * Loopix §4.3 epsilon: two challenge senders label their payload packets 0 and 1, and the observer
 * carries the label mass forward through the pool model. An honest mix holding k packets with label
 * sums (P0, P1) gives the packet that leaves (P0/k, P1/k) and keeps the rest; a corrupt mix lets
 * the packet keep what it came in with. A message's epsilon is |ln(p0/p1)|.
 *
 * Packets with no label mass take no per-packet entry (only their pool membership, which every
 * packet in a mix has: it keeps the pool counts right). Corruption is asked once per mix, in the
 * constructor.
 *
 * @example
 * const c = new ChallengeTracker(mixes, (m) => corrupt.has(m));
 * c.label(p, 0); c.arrive(0, p); c.depart(0, p); c.arrive(3, p);
 * const { mean, linked } = c.epsilon([3]);
 */
export class ChallengeTracker {
  readonly mixes: number;
  readonly #corrupt: Uint8Array;
  readonly #sum0: Float64Array;
  readonly #sum1: Float64Array;
  readonly #count: Float64Array;
  /** Per mix: the packets inside, each with the mass it carried when it arrived. */
  readonly #members: Map<number, Mass>[];
  /** The current mass of each packet that has some. */
  readonly #mass = new Map<number, Mass>();

  /** @throws {TypeError|RangeError} for a mix count outside [1, MAX_MIXES] or a missing `corrupt`. */
  constructor(mixes: number, corrupt: (mix: number) => boolean) {
    aint('mixes', mixes, 1, MAX_MIXES);
    acorrupt(corrupt);
    this.mixes = mixes;
    this.#corrupt = new Uint8Array(mixes);
    for (let m = 0; m < mixes; m++) this.#corrupt[m] = corrupt(m) ? 1 : 0;
    this.#sum0 = new Float64Array(mixes);
    this.#sum1 = new Float64Array(mixes);
    this.#count = new Float64Array(mixes);
    this.#members = Array.from({ length: mixes }, () => new Map<number, Mass>());
  }

  /**
   * A challenge payload packet enters the network (before its first arrival) with label `which`.
   * @throws {TypeError|RangeError} for a bad packet or a label other than 0 or 1.
   */
  label(packet: number, which: 0 | 1): void {
    apacket(packet);
    if (which !== 0 && which !== 1) throw new RangeError(`"which" expected 0 or 1, got ${String(which)}`);
    this.#mass.set(packet, which === 0 ? [1, 0] : [0, 1]);
  }

  /**
   * `packet` arrives at `mix`. A packet already in that mix is ignored.
   * @throws {TypeError|RangeError} for a mix out of range or a bad packet.
   */
  arrive(mix: number, packet: number): void {
    this.#amix(mix);
    apacket(packet);
    const members = this.#members[mix]!;
    if (members.has(packet)) return;
    const mass = this.#mass.get(packet) ?? NO_MASS;
    members.set(packet, mass);
    this.#sum0[mix]! += mass[0];
    this.#sum1[mix]! += mass[1];
    this.#count[mix]! += 1;
  }

  /**
   * `packet` leaves `mix`. A packet not in that mix is ignored.
   * @throws {TypeError|RangeError} for a mix out of range or a bad packet.
   */
  depart(mix: number, packet: number): void {
    this.#amix(mix);
    apacket(packet);
    const entry = this.#members[mix]!.get(packet);
    if (entry === undefined) return;
    if (this.#corrupt[mix] === 1) {
      this.#remove(mix, packet, entry);
      this.#setMass(packet, entry[0], entry[1]);
      return;
    }
    this.#members[mix]!.delete(packet);
    const k = this.#count[mix]!;
    const q0 = this.#sum0[mix]! / k;
    const q1 = this.#sum1[mix]! / k;
    if (k <= 1) {
      this.#sum0[mix] = 0;
      this.#sum1[mix] = 0;
      this.#count[mix] = 0;
    } else {
      this.#sum0[mix]! -= q0;
      this.#sum1[mix]! -= q1;
      this.#count[mix] = k - 1;
    }
    this.#setMass(packet, q0, q1);
  }

  /**
   * `packet` left the network or was dropped: its mass is dropped, and if it is in a mix it leaves
   * that pool taking the mass it came in with. Looks through every mix's pool: O(mixes).
   * @throws {TypeError|RangeError} for a bad packet.
   */
  forget(packet: number): void {
    apacket(packet);
    this.#mass.delete(packet);
    for (let m = 0; m < this.mixes; m++) {
      const entry = this.#members[m]!.get(packet);
      if (entry !== undefined) {
        this.#remove(m, packet, entry);
        return;
      }
    }
  }

  /**
   * Epsilon over the packets currently held in the given mixes, each with the (p0, p1) it carried
   * when it arrived there.
   * @throws {TypeError|RangeError} for a mix out of range.
   */
  epsilon(mixes: readonly number[]): EpsilonSample {
    for (const m of mixes) this.#amix(m);
    const values: number[] = [];
    let linked = 0;
    let sum = 0;
    for (const m of mixes) {
      for (const [p0, p1] of this.#members[m]!.values()) {
        if (p0 > 0 && p1 > 0) {
          // A difference of logs stays finite where p0/p1 would overflow.
          const e = Math.abs(Math.log(p0) - Math.log(p1));
          values.push(e);
          sum += e;
        } else if (p0 > 0 || p1 > 0) {
          linked++;
        }
      }
    }
    return { mean: values.length === 0 ? NaN : sum / values.length, messages: values.length, linked, values };
  }

  /** The current (p0, p1) of `packet`; (0, 0) when it has none. */
  probabilities(packet: number): readonly [number, number] {
    return this.#mass.get(packet) ?? NO_MASS;
  }

  /** Takes `packet` out of `mix` with the mass it came in with (sums clamped at 0). */
  #remove(mix: number, packet: number, entry: Mass): void {
    this.#members[mix]!.delete(packet);
    const k = this.#count[mix]! - 1;
    this.#count[mix] = k;
    this.#sum0[mix] = k === 0 ? 0 : Math.max(0, this.#sum0[mix]! - entry[0]);
    this.#sum1[mix] = k === 0 ? 0 : Math.max(0, this.#sum1[mix]! - entry[1]);
  }

  #setMass(packet: number, p0: number, p1: number): void {
    if (p0 > 0 || p1 > 0) this.#mass.set(packet, [p0, p1]);
    else this.#mass.delete(packet);
  }

  #amix(mix: number): void {
    aint('mix', mix, 0, this.mixes - 1);
  }
}

/** The observer's view of who sent one packet (SenderEntropyTracer.entropy). */
export interface SenderEntropy {
  /** -Σ p log2 p over the senders; NaN when no weight reached any sender. */
  readonly bits: number;
  /** Senders with weight > 0. */
  readonly senders: number;
  /**
   * Weight that reached no sender, in [0, 1]: it went past the oldest retained event of a log, or to
   * an arrival whose source was never told.
   */
  readonly truncated: number;
}

export interface SenderEntropyTracerOptions {
  readonly mixes: number;
  /** Asked once per mix, in the constructor. */
  readonly corrupt: (mix: number) => boolean;
  /** Events kept per mix (arrivals and departures); in [1, MAX_LOG_CAPACITY]. */
  readonly logCapacity: number;
}

/** The weights of one backward sweep: per sender, and what was lost. */
export interface SenderWeights {
  readonly senders: Map<number, number>;
  readonly lost: number;
}

const ARRIVAL = 0;
const DEPARTURE = 1;
/** An arrival's source: a sender. */
const FROM_SENDER = -1;
/** An arrival's source: not known (no `enter` and no earlier departure). */
const FROM_NOWHERE = -2;

/**
 * Per-message sender entropy, exact for the Theorem-1 observer. Each mix logs its arrivals and
 * departures in a ring of `logCapacity` events (typed arrays): a departure records k, the packets
 * held just before it (itself included); an arrival records its source, a sender or the previous
 * mix's departure of the same packet.
 *
 * For a packet that has just left a last-layer mix, a backward sweep spreads weight 1 from that
 * departure. At an honest mix, walking its log backwards with S = 0: a departure d (weight w_d, k_d)
 * gives S = S·(1 - 1/k_d) + w_d/k_d; an arrival gets weight S, which moves on to its source. At a
 * corrupt mix a departure's weight goes straight to the same packet's arrival. A mix's walk stops
 * when S < 1e-12 with no weighted departure left below it, or at its oldest retained event (the
 * packets held before it take S each: reported as `truncated`).
 *
 * Order: every event carries one global counter in call order, and the sweep processes events in
 * decreasing counter order across all mixes (a max-heap of the mixes being walked, each at its
 * latest weighted departure not yet walked). An arrival is always logged after the departure it
 * comes from, so every departure has all its weight before the walk reaches it, whatever the
 * topology and however late the arrival is reported. No layer map is needed.
 *
 * Each mix's events must be reported in time order (call `arrive` when the packet gets there, not
 * when it leaves the previous mix); a time earlier than the mix's previous event throws.
 *
 * Memory: the logs, plus one entry per packet in flight (entered, in a mix, or between mixes);
 * `forget` drops it. The cost of a sweep is the number of log events walked.
 *
 * @example
 * const tr = new SenderEntropyTracer({ mixes, corrupt: (m) => false, logCapacity: 1 << 16 });
 * tr.enter(p, client); tr.arrive(0, p, t0); tr.depart(0, p, t1); tr.arrive(4, p, t1); tr.depart(4, p, t2);
 * const { bits, truncated } = tr.entropy(4, p);
 * tr.forget(p);
 */
export class SenderEntropyTracer {
  readonly mixes: number;
  readonly logCapacity: number;
  readonly #corrupt: Uint8Array;
  // The logs: mix m's event with sequence number s sits at m * logCapacity + s % logCapacity.
  readonly #kind: Uint8Array;
  /** Packets in the mix just before the event (a departure counts itself). */
  readonly #held: Uint32Array;
  /** The global call order of the event. */
  readonly #order: Float64Array;
  /** An arrival's source mix, FROM_SENDER or FROM_NOWHERE. */
  readonly #refMix: Int32Array;
  /** An arrival's sender or source departure sequence; a departure's arrival sequence (used at corrupt mixes). */
  readonly #ref: Float64Array;
  /** Per mix: events logged (the next sequence number), packets held, latest event time. */
  readonly #logged: Float64Array;
  readonly #size: Uint32Array;
  readonly #lastTime: Float64Array;
  #clock = 0;
  /**
   * Per packet between mixes: where its next arrival comes from, as -1 - sender, or
   * seq * mixes + mix for its last departure.
   */
  readonly #source = new Map<number, number>();
  /** Per packet inside a mix: seq * mixes + mix of its arrival. */
  readonly #inside = new Map<number, number>();
  // Sweep state, per mix, reset after each sweep.
  readonly #active: Uint8Array;
  readonly #cursor: Float64Array;
  readonly #s: Float64Array;
  /** The lowest sequence number walked (Infinity when not walked). */
  readonly #low: Float64Array;
  readonly #pending: (Map<number, number> | undefined)[];
  /** A max-heap of the mixes to walk, on the call order of the event each is at; and where each sits in it. */
  readonly #heap: Int32Array;
  readonly #heapAt: Int32Array;
  #heapLength = 0;
  readonly #touched: number[] = [];
  #sweepSenders = new Map<number, number>();
  #sweepLost = 0;

  /** @throws {TypeError|RangeError} for mixes outside [1, MAX_MIXES], a log outside [1, MAX_LOG_CAPACITY], more than MAX_LOG_EVENTS events in all, or a missing `corrupt`. */
  constructor(options: SenderEntropyTracerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`"options" expected object, got ${options === null ? 'null' : typeof options}`);
    const { mixes, corrupt, logCapacity } = options;
    aint('mixes', mixes, 1, MAX_MIXES);
    aint('logCapacity', logCapacity, 1, MAX_LOG_CAPACITY);
    acorrupt(corrupt);
    if (mixes * logCapacity > MAX_LOG_EVENTS) {
      throw new RangeError(`mixes * logCapacity expected <= ${MAX_LOG_EVENTS}, got ${mixes * logCapacity}`);
    }
    this.mixes = mixes;
    this.logCapacity = logCapacity;
    this.#corrupt = new Uint8Array(mixes);
    for (let m = 0; m < mixes; m++) this.#corrupt[m] = corrupt(m) ? 1 : 0;
    const n = mixes * logCapacity;
    this.#kind = new Uint8Array(n);
    this.#held = new Uint32Array(n);
    this.#order = new Float64Array(n);
    this.#refMix = new Int32Array(n);
    this.#ref = new Float64Array(n);
    this.#logged = new Float64Array(mixes);
    this.#size = new Uint32Array(mixes);
    this.#lastTime = new Float64Array(mixes).fill(-Infinity);
    this.#active = new Uint8Array(mixes);
    this.#cursor = new Float64Array(mixes);
    this.#s = new Float64Array(mixes);
    this.#low = new Float64Array(mixes).fill(Infinity);
    this.#pending = new Array<Map<number, number> | undefined>(mixes).fill(undefined);
    this.#heap = new Int32Array(mixes);
    this.#heapAt = new Int32Array(mixes);
  }

  /**
   * `packet` left `sender` (through its gateway, which adds no delay).
   * @throws {TypeError|RangeError} for a bad packet or sender.
   */
  enter(packet: number, sender: number): void {
    apacket(packet);
    aint('sender', sender, 0, Number.MAX_SAFE_INTEGER);
    this.#source.set(packet, -1 - sender);
  }

  /**
   * `packet` arrives at `mix` at time t, from its sender or from the mix it last departed. A packet
   * already in a mix is ignored.
   * @throws {TypeError|RangeError} for a mix out of range, a bad packet, or t not finite or before
   * the mix's previous event.
   */
  arrive(mix: number, packet: number, t: number): void {
    this.#acall(mix, packet, t);
    if (this.#inside.has(packet)) return;
    const source = this.#source.get(packet);
    let refMix = FROM_NOWHERE;
    let ref = 0;
    if (source !== undefined) {
      this.#source.delete(packet);
      if (source < 0) {
        refMix = FROM_SENDER;
        ref = -1 - source;
      } else {
        refMix = source % this.mixes;
        ref = (source - refMix) / this.mixes;
      }
    }
    const seq = this.#log(mix, ARRIVAL, refMix, ref);
    this.#size[mix]! += 1;
    this.#inside.set(packet, seq * this.mixes + mix);
    this.#lastTime[mix] = t;
  }

  /**
   * `packet` leaves `mix` at time t. A packet not in that mix is ignored.
   * @throws {TypeError|RangeError} for a mix out of range, a bad packet, or t not finite or before
   * the mix's previous event.
   */
  depart(mix: number, packet: number, t: number): void {
    this.#acall(mix, packet, t);
    const at = this.#inside.get(packet);
    if (at === undefined || at % this.mixes !== mix) return;
    this.#inside.delete(packet);
    const seq = this.#log(mix, DEPARTURE, 0, (at - mix) / this.mixes);
    this.#size[mix]! -= 1;
    this.#source.set(packet, seq * this.mixes + mix);
    this.#lastTime[mix] = t;
  }

  /**
   * Drops the bookkeeping of `packet` (it left the network or was dropped). A packet dropped inside
   * a mix is logged there as a departure that no sweep starts from, so the pool counts stay right.
   * @throws {TypeError|RangeError} for a bad packet.
   */
  forget(packet: number): void {
    apacket(packet);
    this.#source.delete(packet);
    const at = this.#inside.get(packet);
    if (at === undefined) return;
    this.#inside.delete(packet);
    const mix = at % this.mixes;
    this.#log(mix, DEPARTURE, 0, (at - mix) / this.mixes);
    this.#size[mix]! -= 1;
  }

  /**
   * The sender entropy of `packet`, which has just departed `mix` (call right after `depart`, before
   * the packet arrives anywhere else).
   * @throws {TypeError|RangeError} for a mix out of range, a bad packet, or a packet whose last
   * event was not a departure from `mix`.
   */
  entropy(mix: number, packet: number): SenderEntropy {
    const { senders, lost } = this.weights(mix, packet);
    let count = 0;
    for (const w of senders.values()) if (w > 0) count++;
    return { bits: entropyOfWeights(senders), senders: count, truncated: Math.min(1, Math.max(0, lost)) };
  }

  /**
   * The observer's weight on each sender for `packet`, which has just departed `mix`, before
   * normalising (they sum to 1 - lost), and the weight lost to the log bound or to unknown sources.
   * @throws {TypeError|RangeError} as `entropy`.
   */
  weights(mix: number, packet: number): SenderWeights {
    aint('mix', mix, 0, this.mixes - 1);
    apacket(packet);
    const source = this.#source.get(packet);
    if (source === undefined || source < 0 || source % this.mixes !== mix) {
      throw new RangeError(`packet ${packet} has not just departed mix ${mix}`);
    }
    this.#sweepSenders = new Map<number, number>();
    this.#sweepLost = 0;
    try {
      this.#toDeparture(mix, (source - mix) / this.mixes, 1);
      this.#walk();
    } finally {
      this.#resetSweep();
    }
    const senders = this.#sweepSenders;
    this.#sweepSenders = new Map<number, number>();
    return { senders, lost: this.#sweepLost };
  }

  #acall(mix: number, packet: number, t: number): void {
    aint('mix', mix, 0, this.mixes - 1);
    apacket(packet);
    afinite('t', t);
    if (t < this.#lastTime[mix]!) throw new RangeError(`"t" expected >= the previous event at mix ${mix} (${this.#lastTime[mix]}), got ${t}`);
  }

  /** Appends an event to `mix`'s log and returns its sequence number. */
  #log(mix: number, kind: number, refMix: number, ref: number): number {
    const seq = this.#logged[mix]!;
    const i = this.#slot(mix, seq);
    this.#kind[i] = kind;
    this.#held[i] = this.#size[mix]!;
    this.#order[i] = this.#clock++;
    this.#refMix[i] = refMix;
    this.#ref[i] = ref;
    this.#logged[mix] = seq + 1;
    return seq;
  }

  #slot(mix: number, seq: number): number {
    return mix * this.logCapacity + (seq % this.logCapacity);
  }

  /** The oldest sequence number still in `mix`'s log. */
  #oldest(mix: number): number {
    return Math.max(0, this.#logged[mix]! - this.logCapacity);
  }

  /** Puts weight w on departure `seq` of `mix`. */
  #toDeparture(mix: number, seq: number, w: number): void {
    if (seq < this.#oldest(mix)) {
      this.#sweepLost += w;
      return;
    }
    if (this.#corrupt[mix] === 1) {
      // The corrupt mix says which arrival this was.
      this.#toArrival(mix, this.#ref[this.#slot(mix, seq)]!, w);
      return;
    }
    // Every event walked so far comes later (in call order) than this departure, so it lies below
    // all of them: below the lowest walked, `low`. Anything else is lost (it cannot happen when
    // arrivals are logged after their departures).
    if (seq >= this.#low[mix]!) {
      this.#sweepLost += w;
      return;
    }
    if (this.#active[mix] === 1) {
      this.#pending[mix]!.set(seq, (this.#pending[mix]!.get(seq) ?? 0) + w);
      if (seq > this.#cursor[mix]!) {
        // Not walked since it was activated further down: start the walk here (S is still 0).
        this.#cursor[mix] = seq;
        this.#siftUp(this.#heapAt[mix]!);
      }
      return;
    }
    let pending = this.#pending[mix];
    if (pending === undefined) {
      pending = new Map<number, number>();
      this.#pending[mix] = pending;
    }
    if (this.#low[mix] === Infinity) this.#touched.push(mix);
    pending.set(seq, w);
    this.#active[mix] = 1;
    this.#cursor[mix] = seq;
    this.#s[mix] = 0;
    this.#heapPush(mix);
  }

  /** Puts weight w on arrival `seq` of `mix`, and so on its source. */
  #toArrival(mix: number, seq: number, w: number): void {
    if (seq < this.#oldest(mix)) {
      this.#sweepLost += w;
      return;
    }
    const i = this.#slot(mix, seq);
    const refMix = this.#refMix[i]!;
    const ref = this.#ref[i]!;
    if (refMix === FROM_SENDER) this.#sweepSenders.set(ref, (this.#sweepSenders.get(ref) ?? 0) + w);
    else if (refMix === FROM_NOWHERE) this.#sweepLost += w;
    else this.#toDeparture(refMix, ref, w);
  }

  /** Walks the honest mixes in the heap backwards, latest event first across all of them. */
  #walk(): void {
    while (this.#heapLength > 0) {
      const mix = this.#heapPop();
      const pending = this.#pending[mix]!;
      const oldest = this.#oldest(mix);
      let seq = this.#cursor[mix]!;
      let s = this.#s[mix]!;
      for (;;) {
        const i = this.#slot(mix, seq);
        this.#low[mix] = seq;
        if (this.#kind[i] === DEPARTURE) {
          const k = this.#held[i]!;
          const w = pending.get(seq);
          if (w !== undefined) pending.delete(seq);
          s = s * (1 - 1 / k) + (w ?? 0) / k;
        } else if (s > 0) {
          this.#cursor[mix] = seq;
          this.#toArrival(mix, seq, s);
        }
        if (seq === oldest) {
          // Every packet held before the oldest retained event takes weight s, lost with the log.
          if (oldest > 0) this.#sweepLost += s * this.#held[i]!;
          this.#active[mix] = 0;
          pending.clear();
          break;
        }
        seq--;
        if (s < NEGLIGIBLE_WEIGHT && pending.size === 0) {
          this.#active[mix] = 0;
          break;
        }
        this.#cursor[mix] = seq;
        this.#s[mix] = s;
        if (this.#heapLength > 0 && this.#key(this.#heap[0]!) > this.#order[this.#slot(mix, seq)]!) {
          this.#heapPush(mix);
          break;
        }
      }
    }
  }

  #resetSweep(): void {
    for (const m of this.#touched) {
      this.#active[m] = 0;
      this.#low[m] = Infinity;
      this.#pending[m]?.clear();
    }
    this.#touched.length = 0;
    this.#heapLength = 0;
  }

  /** The global order of the event a walking mix is at. */
  #key(mix: number): number {
    return this.#order[this.#slot(mix, this.#cursor[mix]!)]!;
  }

  #heapPush(mix: number): void {
    const i = this.#heapLength++;
    this.#heap[i] = mix;
    this.#heapAt[mix] = i;
    this.#siftUp(i);
  }

  #heapPop(): number {
    const heap = this.#heap;
    const top = heap[0]!;
    const n = --this.#heapLength;
    if (n > 0) {
      heap[0] = heap[n]!;
      this.#heapAt[heap[0]!] = 0;
      this.#siftDown(0);
    }
    return top;
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    const mix = heap[i]!;
    const key = this.#key(mix);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (this.#key(p) >= key) break;
      heap[i] = p;
      this.#heapAt[p] = i;
      i = parent;
    }
    heap[i] = mix;
    this.#heapAt[mix] = i;
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = this.#heapLength;
    const mix = heap[i]!;
    const key = this.#key(mix);
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#key(heap[r]!) > this.#key(heap[l]!) ? r : l;
      const child = heap[c]!;
      if (this.#key(child) <= key) break;
      heap[i] = child;
      this.#heapAt[child] = i;
      i = c;
    }
    heap[i] = mix;
    this.#heapAt[mix] = i;
  }
}
