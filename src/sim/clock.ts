/**
 * Virtual time for the simulator: a Clock (src/ops/clock.ts) whose timers sit in one binary heap
 * and run when the simulation reaches them, as fast as the CPU allows. The nodes and clients of a
 * simulation take this clock as they take the system clock in a server.
 *
 * Events at the same time run in the order they were scheduled. Components that answer through
 * promises (a client's link reads, a mailbox commit) settle between events: whoever resolves such
 * a promise calls `settleAfter()`, and the run loop lets the microtasks and immediates run before
 * the next event.
 */
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';

interface Entry {
  fn: (arg: unknown) => void;
  arg: unknown;
  cancelled: boolean;
}

/** Events between two looks at the progress callback (and turns given to the real event loop). */
const PROGRESS_EVERY = 1 << 16;

export class SimClock implements Clock {
  #now: number;
  // The heap as parallel arrays: due time, scheduling sequence (the tie-break), entry.
  readonly #due: number[] = [];
  readonly #seq: number[] = [];
  readonly #entries: Entry[] = [];
  #nextSeq = 0;
  #settle = false;
  #running = false;
  /** Events run so far. */
  events = 0;

  constructor(start = 0) {
    if (!Number.isFinite(start)) throw new RangeError('"start" expected a finite number');
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Events waiting (cancelled ones included until they come up). */
  get pending(): number {
    return this.#due.length;
  }

  setTimer(fn: () => void, ms: number): unknown {
    return this.at(this.#now + (ms > 0 ? ms : 0), fn as (arg: unknown) => void, undefined);
  }

  clearTimer(handle: unknown): void {
    if (typeof handle === 'object' && handle !== null && 'cancelled' in handle) (handle as Entry).cancelled = true;
  }

  /** Runs `fn(arg)` at virtual time `time` (now, if earlier); returns a handle for clearTimer. */
  at<T>(time: number, fn: (arg: T) => void, arg: T): unknown {
    const e: Entry = { fn: fn as (arg: unknown) => void, arg, cancelled: false };
    const due = time > this.#now ? time : this.#now;
    const d = this.#due;
    const s = this.#seq;
    const es = this.#entries;
    let i = d.length;
    d.push(due);
    s.push(this.#nextSeq++);
    es.push(e);
    // sift up
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (d[p]! < due || (d[p] === due && s[p]! < s[i]!)) break;
      this.#swap(i, p);
      i = p;
    }
    return e;
  }

  /** Asks the run loop to let promises settle after the current event. */
  settleAfter(): void {
    this.#settle = true;
  }

  /**
   * Runs every event due up to `until` (inclusive), then sets the time to `until`. `onProgress`
   * is called every few tens of thousands of events with the current time.
   * @throws {BackchannelError} ERR_SIM_STATE when called while a run is going on.
   */
  async run(until: number, onProgress?: (now: number) => void): Promise<void> {
    if (this.#running) throw new BackchannelError('ERR_SIM_STATE', 'sim: the clock is already running');
    this.#running = true;
    try {
      let sinceYield = 0;
      if (this.#settle) {
        this.#settle = false;
        await settle();
      }
      while (this.#due.length > 0 && this.#due[0]! <= until) {
        const due = this.#due[0]!;
        const e = this.#pop();
        if (e.cancelled) continue;
        this.#now = due;
        this.events++;
        e.fn(e.arg);
        if (this.#settle) {
          this.#settle = false;
          await settle();
        }
        if (++sinceYield >= PROGRESS_EVERY) {
          sinceYield = 0;
          onProgress?.(this.#now);
          await settle(); // lets signals and output through on long runs
        }
      }
      if (until > this.#now) this.#now = until;
    } finally {
      this.#running = false;
    }
  }

  #swap(i: number, j: number): void {
    const d = this.#due;
    const s = this.#seq;
    const es = this.#entries;
    const td = d[i]!;
    d[i] = d[j]!;
    d[j] = td;
    const ts = s[i]!;
    s[i] = s[j]!;
    s[j] = ts;
    const te = es[i]!;
    es[i] = es[j]!;
    es[j] = te;
  }

  #pop(): Entry {
    const d = this.#due;
    const s = this.#seq;
    const es = this.#entries;
    const top = es[0]!;
    const last = d.length - 1;
    if (last > 0) {
      d[0] = d[last]!;
      s[0] = s[last]!;
      es[0] = es[last]!;
    }
    d.pop();
    s.pop();
    es.pop();
    const n = d.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (d[r]! < d[l]! || (d[r] === d[l] && s[r]! < s[l]!)) ? r : l;
      if (d[i]! < d[c]! || (d[i] === d[c] && s[i]! < s[c]!)) break;
      this.#swap(i, c);
      i = c;
    }
    return top;
  }
}

/** Lets every pending microtask, and anything scheduled with setImmediate before, run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
