/**
 * The queue in which a mix holds each packet for the delay its sender chose (Loopix: exponential
 * per-hop delays). A min-heap on the due time (src/util/timed-heap.ts) with one timer, armed for
 * the earliest item: thousands of held packets cost one timer, not thousands. Items due together are handed over as
 * one batch, in due order, FIFO among equal due times (so that the output order depends only on
 * the due times, never on the heap's internals).
 *
 * Time comes from an injected Clock (src/ops/clock.ts), so tests and the simulator run it in
 * virtual time.
 */
import type { Clock } from '../ops/clock.js';
import { aint } from '../util/bytes.js';
import { TimedHeap } from '../util/timed-heap.js';

/** The largest capacity accepted (64 M items): a bound, not a target. */
export const MAX_DELAY_QUEUE_CAPACITY = 1 << 26;

/**
 * The longest single timer: Node's setTimeout takes a signed 32-bit millisecond count and fires at
 * once (after 1 ms) for anything larger. Longer waits re-arm when this one fires.
 */
const MAX_TIMER_MS = 0x7fffffff;

export interface DelayQueueOptions<T> {
  /** Due times are read from this clock, and the one timer is set on it. */
  readonly clock: Clock;
  /** The most items held; `push` refuses more. In [1, MAX_DELAY_QUEUE_CAPACITY]. */
  readonly capacity: number;
  /**
   * Receives every item that is due, in due order, in one call per timer turn. Called from the
   * timer, never from `push`; it must not throw (the timer for the next items is already armed).
   */
  readonly onDue: (items: T[]) => void;
}

/**
 * A bounded delay queue.
 *
 * @example
 * const q = new DelayQueue<Uint8Array>({ clock: systemClock, capacity: 100_000, onDue: (ps) => ps.forEach(send) });
 * if (!q.push(packet, clock.now() + delayMs)) metrics.drop('queue_full');
 */
export class DelayQueue<T> {
  readonly capacity: number;
  readonly #onDue: (items: T[]) => void;
  readonly #clock: Clock;
  readonly #heap = new TimedHeap<T>();
  #timer: unknown = undefined;
  #armed = false;
  /** When the armed timer fires (clock time), valid while #armed. */
  #armedAt = 0;
  #stopped = false;

  /** @throws {TypeError|RangeError} for a capacity outside [1, MAX_DELAY_QUEUE_CAPACITY], or a missing clock or callback. */
  constructor(options: DelayQueueOptions<T>) {
    aint('capacity', options.capacity, 1, MAX_DELAY_QUEUE_CAPACITY);
    if (typeof options.onDue !== 'function') throw new TypeError(`"onDue" expected function, got ${typeof options.onDue}`);
    if (typeof options.clock !== 'object' || options.clock === null) throw new TypeError(`"clock" expected object, got ${options.clock === null ? 'null' : typeof options.clock}`);
    this.capacity = options.capacity;
    this.#onDue = options.onDue;
    this.#clock = options.clock;
  }

  /** Items held. */
  get size(): number {
    return this.#heap.size;
  }

  /** The due time of the earliest item, or undefined when empty. */
  get nextDue(): number | undefined {
    return this.#heap.nextDue;
  }

  /**
   * Holds `item` until clock time `due` (milliseconds, as Clock.now). A due time now or in the
   * past is delivered on the next timer turn, never synchronously. Returns false, holding
   * nothing, when the queue is full or stopped.
   * @throws {TypeError|RangeError} when `due` is not a finite number.
   */
  push(item: T, due: number): boolean {
    if (typeof due !== 'number') throw new TypeError(`"due" expected number, got ${typeof due}`);
    if (!Number.isFinite(due)) throw new RangeError(`"due" expected a finite number, got ${due}`);
    if (this.#stopped || this.#heap.size >= this.capacity) return false;
    this.#heap.push(due, item);
    // Re-arm only for an earlier item, and not when the armed timer is already at or past due
    // (it fires on the next turn anyway): a burst of pushes costs no timer churn.
    if (!this.#armed || (due < this.#armedAt && this.#armedAt > this.#clock.now())) this.#arm(due);
    return true;
  }

  /** Removes and returns every item, in due order, and disarms the timer. */
  clear(): T[] {
    this.#disarm();
    const out: T[] = [];
    while (this.#heap.size > 0) out.push(this.#heap.pop());
    return out;
  }

  /** Disarms the timer for good: nothing more is delivered and `push` returns false. Items stay until `clear`. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  #arm(due: number): void {
    this.#disarm();
    const now = this.#clock.now();
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, due - now));
    this.#armedAt = now + wait;
    this.#armed = true;
    this.#timer = this.#clock.setTimer(this.#fire, wait);
  }

  #disarm(): void {
    if (this.#armed) this.#clock.clearTimer(this.#timer);
    this.#armed = false;
    this.#timer = undefined;
  }

  readonly #fire = (): void => {
    this.#armed = false;
    this.#timer = undefined;
    if (this.#stopped) return;
    const now = this.#clock.now();
    const batch: T[] = [];
    while (this.#heap.size > 0 && this.#heap.nextDue! <= now) batch.push(this.#heap.pop());
    // Arm for what is left before handing the batch over, so a throwing callback stalls nothing.
    const next = this.#heap.nextDue;
    if (next !== undefined) this.#arm(next);
    if (batch.length > 0) this.#onDue(batch);
  };
}
