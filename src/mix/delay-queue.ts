/**
 * The queue in which a mix holds each packet for the delay its sender chose (Loopix: exponential
 * per-hop delays). A binary min-heap on the due time with one timer, armed for the earliest item:
 * thousands of held packets cost one timer, not thousands. Items due together are handed over as
 * one batch, in due order, FIFO among equal due times (so that the output order depends only on
 * the due times, never on the heap's internals).
 *
 * Time comes from an injected Clock (src/ops/clock.ts), so tests and the simulator run it in
 * virtual time.
 */
import type { Clock } from '../ops/clock.js';
import { aint } from '../util/bytes.js';

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
  // The heap as parallel arrays: due time, arrival sequence (the tie-break), item.
  readonly #due: number[] = [];
  readonly #seq: number[] = [];
  readonly #items: T[] = [];
  #nextSeq = 0;
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
    return this.#due.length;
  }

  /** The due time of the earliest item, or undefined when empty. */
  get nextDue(): number | undefined {
    return this.#due[0];
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
    if (this.#stopped || this.#due.length >= this.capacity) return false;
    this.#due.push(due);
    this.#seq.push(this.#nextSeq++);
    this.#items.push(item);
    this.#siftUp(this.#due.length - 1);
    // Re-arm only for an earlier item, and not when the armed timer is already at or past due
    // (it fires on the next turn anyway): a burst of pushes costs no timer churn.
    if (!this.#armed || (due < this.#armedAt && this.#armedAt > this.#clock.now())) this.#arm(due);
    return true;
  }

  /** Removes and returns every item, in due order, and disarms the timer. */
  clear(): T[] {
    this.#disarm();
    const out: T[] = [];
    while (this.#due.length > 0) out.push(this.#pop());
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
    while (this.#due.length > 0 && this.#due[0]! <= now) batch.push(this.#pop());
    // Arm for what is left before handing the batch over, so a throwing callback stalls nothing.
    if (this.#due.length > 0) this.#arm(this.#due[0]!);
    if (batch.length > 0) this.#onDue(batch);
  };

  /** True when heap entry i comes before entry j. */
  #before(i: number, j: number): boolean {
    const a = this.#due[i]!;
    const b = this.#due[j]!;
    return a < b || (a === b && this.#seq[i]! < this.#seq[j]!);
  }

  #swap(i: number, j: number): void {
    const d = this.#due;
    const s = this.#seq;
    const it = this.#items;
    const td = d[i]!;
    d[i] = d[j]!;
    d[j] = td;
    const ts = s[i]!;
    s[i] = s[j]!;
    s[j] = ts;
    const ti = it[i]!;
    it[i] = it[j]!;
    it[j] = ti;
  }

  #siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const n = this.#due.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const c = r < n && this.#before(r, l) ? r : l;
      if (!this.#before(c, i)) return;
      this.#swap(i, c);
      i = c;
    }
  }

  /** Removes the earliest item; the heap must not be empty. */
  #pop(): T {
    const top = this.#items[0]!;
    const last = this.#due.length - 1;
    if (last > 0) this.#swap(0, last);
    this.#due.pop();
    this.#seq.pop();
    this.#items.pop();
    if (last > 0) this.#siftDown(0);
    return top;
  }
}
