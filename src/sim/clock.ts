/**
 * Virtual time for the simulator: a Clock (src/ops/clock.ts) whose timers sit in one heap
 * (src/util/timed-heap.ts) and run when the simulation reaches them, as fast as the CPU allows.
 * The nodes and clients of a simulation take this clock as they take the system clock in a server.
 *
 * Events at the same time run in the order they were scheduled. An event scheduled for the current
 * time (a link with no latency, a timer of 0 ms: most of a simulation's events) skips the heap: it
 * goes to a first-in first-out list that runs after whatever the heap holds for the current time,
 * which was scheduled earlier, and before anything later. The order is the heap's order exactly;
 * only the cost of a push and a pop in a heap of thousands of timers is saved. Components that answer through
 * promises (a client's link reads, a mailbox commit) settle between events: whoever resolves such
 * a promise calls `settleAfter()`, and the run loop lets the microtasks and immediates run before
 * the next event.
 */
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import { TimedHeap } from '../util/timed-heap.js';

interface Entry {
  fn: (arg: unknown) => void;
  arg: unknown;
  cancelled: boolean;
}

/** Events between two looks at the progress callback (and turns given to the real event loop). */
const PROGRESS_EVERY = 1 << 16;

export class SimClock implements Clock {
  #now: number;
  readonly #heap = new TimedHeap<Entry>();
  /** Events for the current time, scheduled while the clock was at it, in order: #now0[#nowHead..#nowLength). */
  #now0: Entry[] = [];
  #nowHead = 0;
  #nowLength = 0;
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
    return this.#heap.size + this.#nowLength - this.#nowHead;
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
    if (time > this.#now) this.#heap.push(time, e);
    else this.#now0[this.#nowLength++] = e;
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
      while (this.#now <= until) {
        let e: Entry;
        const due = this.#heap.nextDue;
        if (due !== undefined && due <= this.#now) {
          // Scheduled for now before the clock got here: ahead of the list.
          e = this.#heap.pop();
        } else if (this.#nowHead < this.#nowLength) {
          e = this.#now0[this.#nowHead]!;
          this.#now0[this.#nowHead++] = DONE;
          // Drained: start again from the front (the array keeps its size, holding only DONE).
          if (this.#nowHead === this.#nowLength) this.#nowHead = this.#nowLength = 0;
          else if (this.#nowHead >= 1024 && this.#nowHead * 2 >= this.#nowLength) {
            this.#now0.copyWithin(0, this.#nowHead, this.#nowLength);
            this.#now0.fill(DONE, this.#nowLength - this.#nowHead, this.#nowLength);
            this.#nowLength -= this.#nowHead;
            this.#nowHead = 0;
          }
        } else if (due !== undefined && due <= until) {
          this.#now = due;
          continue;
        } else {
          break;
        }
        if (e.cancelled) continue;
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
}

/** Stands in for an event that has run, so that the list does not hold on to it. */
const DONE: Entry = { fn: () => undefined, arg: undefined, cancelled: true };

/** Lets every pending microtask, and anything scheduled with setImmediate before, run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
