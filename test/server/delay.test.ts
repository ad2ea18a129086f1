// The delay queue: due order with FIFO ties under random pushes, batches of due items, one timer
// re-armed for earlier items, capacity, clear and stop; on a manual clock and on the system clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DelayQueue, MAX_DELAY_QUEUE_CAPACITY } from '../../src/server/delay.js';
import type { Clock } from '../../src/ops/clock.js';
import { systemClock } from '../../src/ops/clock.js';

/** A clock that moves only when told to, running its timers in time order (ties in set order). */
class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  /** Every delay passed to setTimer, for checking what the queue asked for. */
  readonly requested: number[] = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.requested.push(ms);
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the next timer fires, or undefined. */
  get nextTimerAt(): number | undefined {
    let best: number | undefined;
    for (const t of this.#timers.values()) if (best === undefined || t.at < best) best = t.at;
    return best;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, each at its own time. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= target && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = target;
  }
}

function collecting<T>(clock: Clock, capacity = 1000): { q: DelayQueue<T>; batches: T[][] } {
  const batches: T[][] = [];
  const q = new DelayQueue<T>({ clock, capacity, onDue: (items) => batches.push(items) });
  return { q, batches };
}

describe('DelayQueue', () => {
  test('items come out in due order, FIFO among equal due times, for any pushes', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 40 }), { maxLength: 200 }), (offsets) => {
        const clock = new ManualClock();
        const { q, batches } = collecting<number>(clock);
        offsets.forEach((off, i) => assert.equal(q.push(i, clock.now() + off), true));
        assert.equal(q.size, offsets.length);
        clock.advance(50);
        const expected = offsets.map((off, i) => ({ off, i })).sort((a, b) => a.off - b.off || a.i - b.i).map((e) => e.i);
        assert.deepEqual(batches.flat(), expected);
        assert.equal(q.size, 0);
        assert.equal(clock.pending, 0);
      }),
      { numRuns: 300 },
    );
  });

  test('pushes interleaved with time passing still come out in due order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 10 })), { maxLength: 100 }), (steps) => {
        const clock = new ManualClock();
        const out: { due: number; at: number; seq: number }[] = [];
        const q = new DelayQueue<{ due: number; seq: number }>({ clock, capacity: 1000, onDue: (items) => items.forEach((it) => out.push({ ...it, at: clock.now() })) });
        steps.forEach(([delay, wait], seq) => {
          q.push({ due: clock.now() + delay, seq }, clock.now() + delay);
          clock.advance(wait);
        });
        clock.advance(100);
        assert.equal(out.length, steps.length);
        for (const o of out) assert.equal(o.at, o.due, 'each item is delivered at its due time on a manual clock');
        for (let i = 1; i < out.length; i++) {
          const a = out[i - 1]!;
          const b = out[i]!;
          assert.ok(a.due < b.due || (a.due === b.due && a.seq < b.seq));
        }
      }),
      { numRuns: 200 },
    );
  });

  test('a due time now or in the past is delivered on the next timer turn, never inside push', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<string>(clock);
    q.push('now', clock.now());
    q.push('past', clock.now() - 1000);
    assert.deepEqual(batches, []);
    assert.deepEqual(clock.requested, [0]);
    clock.advance(0);
    assert.deepEqual(batches, [['past', 'now']]);
  });

  test('every item due at a timer turn comes in one batch', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<number>(clock);
    const t0 = clock.now();
    for (let i = 0; i < 5; i++) q.push(i, t0 + 10);
    q.push(5, t0 + 20);
    q.push(6, t0 + 20);
    q.push(7, t0 + 30);
    clock.advance(10);
    assert.deepEqual(batches, [[0, 1, 2, 3, 4]]);
    clock.advance(20);
    assert.deepEqual(batches, [[0, 1, 2, 3, 4], [5, 6], [7]]);
  });

  test('items that fall due while the timer is late come out together', () => {
    // A system timer can fire late; everything due by then goes out at once.
    let late: (() => void) | undefined;
    let now = 0;
    const clock: Clock = { now: () => now, setTimer: (fn) => (late = fn), clearTimer: () => {} };
    const { q, batches } = collecting<number>(clock);
    q.push(1, 5);
    q.push(2, 7);
    q.push(3, 100);
    now = 50;
    late!();
    assert.deepEqual(batches, [[1, 2]]);
  });

  test('one timer is armed, for the earliest item, and re-armed when an earlier one arrives', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<string>(clock);
    const t0 = clock.now();
    q.push('c', t0 + 100);
    assert.equal(clock.nextTimerAt, t0 + 100);
    q.push('d', t0 + 200);
    q.push('e', t0 + 100);
    assert.equal(clock.pending, 1);
    assert.equal(clock.nextTimerAt, t0 + 100);
    q.push('a', t0 + 50);
    assert.equal(clock.pending, 1);
    assert.equal(clock.nextTimerAt, t0 + 50);
    assert.equal(q.nextDue, t0 + 50);
    clock.advance(50);
    assert.deepEqual(batches, [['a']]);
    assert.equal(clock.pending, 1);
    assert.equal(clock.nextTimerAt, t0 + 100);
    clock.advance(200);
    assert.deepEqual(batches, [['a'], ['c', 'e'], ['d']]);
    assert.equal(clock.pending, 0);
    assert.equal(q.nextDue, undefined);
  });

  test('a burst of already-due pushes sets one timer, not one each', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<number>(clock);
    for (let i = 0; i < 100; i++) q.push(i, clock.now() - i);
    assert.equal(clock.requested.length, 1);
    clock.advance(0);
    assert.equal(batches.length, 1);
    assert.equal(batches[0]!.length, 100);
  });

  test('push returns false when the queue is full, and accepts again once items went out', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<number>(clock, 3);
    assert.equal(q.capacity, 3);
    assert.equal(q.push(1, clock.now() + 10), true);
    assert.equal(q.push(2, clock.now() + 20), true);
    assert.equal(q.push(3, clock.now() + 30), true);
    assert.equal(q.push(4, clock.now() + 1), false);
    assert.equal(q.size, 3);
    clock.advance(10);
    assert.deepEqual(batches, [[1]]);
    assert.equal(q.push(4, clock.now() + 1), true);
    clock.advance(100);
    assert.deepEqual(batches.flat(), [1, 4, 2, 3]);
  });

  test('an item pushed from inside onDue is held like any other, and comes in a later batch', () => {
    const clock = new ManualClock();
    const batches: string[][] = [];
    const q: DelayQueue<string> = new DelayQueue<string>({
      clock,
      capacity: 10,
      onDue: (items) => {
        batches.push(items);
        if (items.includes('first')) {
          q.push('now-again', clock.now());
          q.push('later', clock.now() + 5);
          assert.equal(batches.length, 1, 'not delivered inside push');
        }
      },
    });
    q.push('first', clock.now() + 10);
    q.push('last', clock.now() + 100);
    clock.advance(10);
    assert.deepEqual(batches, [['first'], ['now-again']]);
    clock.advance(200);
    assert.deepEqual(batches, [['first'], ['now-again'], ['later'], ['last']]);
  });

  test('clear returns what is left in due order and disarms the timer', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<number>(clock);
    q.push(3, clock.now() + 30);
    q.push(1, clock.now() + 10);
    q.push(2, clock.now() + 10);
    assert.deepEqual(q.clear(), [1, 2, 3]);
    assert.equal(q.size, 0);
    assert.equal(clock.pending, 0);
    clock.advance(100);
    assert.deepEqual(batches, []);
    assert.equal(q.push(4, clock.now()), true, 'a cleared queue keeps working');
    clock.advance(0);
    assert.deepEqual(batches, [[4]]);
  });

  test('stop delivers nothing more and refuses pushes; clear still hands back what was held', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<number>(clock);
    q.push(1, clock.now() + 10);
    q.stop();
    assert.equal(clock.pending, 0);
    assert.equal(q.push(2, clock.now()), false);
    clock.advance(100);
    assert.deepEqual(batches, []);
    assert.deepEqual(q.clear(), [1]);
  });

  test('a delay past the longest system timer waits in steps and still comes out on time', () => {
    const clock = new ManualClock();
    const { q, batches } = collecting<string>(clock);
    const due = clock.now() + 2 ** 32;
    q.push('far', due);
    assert.ok(clock.requested.every((ms) => ms <= 0x7fffffff));
    clock.advance(0x7fffffff);
    assert.deepEqual(batches, []);
    assert.equal(clock.pending, 1, 're-armed for the rest');
    q.push('near', clock.now() + 1);
    clock.advance(due - clock.now());
    assert.deepEqual(batches, [['near'], ['far']]);
    assert.ok(clock.requested.every((ms) => ms <= 0x7fffffff));
  });

  test('bad arguments throw TypeError or RangeError', () => {
    const clock = new ManualClock();
    const onDue = (): void => {};
    assert.throws(() => new DelayQueue({ clock, capacity: 0, onDue }), RangeError);
    assert.throws(() => new DelayQueue({ clock, capacity: MAX_DELAY_QUEUE_CAPACITY + 1, onDue }), RangeError);
    assert.throws(() => new DelayQueue({ clock, capacity: 1, onDue: null as unknown as () => void }), TypeError);
    const q = new DelayQueue({ clock, capacity: 1, onDue });
    assert.throws(() => q.push(1, Number.NaN), RangeError);
    assert.throws(() => q.push(1, Infinity), RangeError);
    assert.throws(() => q.push(1, '5' as unknown as number), TypeError);
  });

  test('on the system clock items come out in due order after their delays', async () => {
    const got: { item: string; at: number }[] = [];
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const q = new DelayQueue<string>({
      clock: systemClock,
      capacity: 10,
      onDue: (items) => {
        for (const item of items) got.push({ item, at: Date.now() });
        if (got.length === 4) finish();
      },
    });
    const t0 = Date.now();
    q.push('c', t0 + 40);
    q.push('a', t0);
    q.push('b', t0 + 15);
    q.push('b2', t0 + 15);
    // The system clock's timers are unref'd; a ref'd guard keeps the test alive and bounds it.
    const guard = setTimeout(() => finish(), 5000);
    await done;
    clearTimeout(guard);
    assert.deepEqual(
      got.map((g) => g.item),
      ['a', 'b', 'b2', 'c'],
    );
    assert.ok(got[1]!.at >= t0 + 15 && got[3]!.at >= t0 + 40, 'nothing comes out early');
    assert.equal(q.size, 0);
  });
});
