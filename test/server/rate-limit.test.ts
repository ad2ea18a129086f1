/**
 * RateLimiter in virtual time: a fake clock the test moves by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RateLimiter } from '../../src/server/rate-limit.js';
import type { Clock } from '../../src/ops/clock.js';

/** A clock that moves only when the test says so. */
class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  setTimer(): unknown {
    throw new Error('the rate limiter sets no timers');
  }
  clearTimer(): void {}
}

function takeAll(limiter: RateLimiter, key: string | Uint8Array): number {
  let n = 0;
  while (limiter.take(key)) n++;
  return n;
}

describe('rate limiter', () => {
  test('a new client may take a whole burst, then nothing', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 10, burst: 5, clock });
    assert.equal(takeAll(limiter, 'a'), 5);
    assert.equal(limiter.take('a'), false);
  });

  test('tokens come back at perSecond, never beyond burst', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 10, burst: 5, clock });
    takeAll(limiter, 'a');
    clock.advance(99);
    assert.equal(limiter.take('a'), false, '0.99 of a token is not a token');
    clock.advance(1);
    assert.equal(limiter.take('a'), true);
    assert.equal(limiter.take('a'), false);
    clock.advance(350);
    assert.equal(takeAll(limiter, 'a'), 3, '3.5 tokens after 350 ms');
    clock.advance(50);
    assert.equal(limiter.take('a'), true, 'the half token left was kept');
    clock.advance(3_600_000);
    assert.equal(takeAll(limiter, 'a'), 5, 'an hour idle refills to burst only');
  });

  test('a refused take takes nothing; n tokens at once; more than burst never', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 4, clock });
    assert.equal(limiter.take('a', 3), true);
    assert.equal(limiter.take('a', 2), false);
    assert.equal(limiter.take('a', 1), true, 'the refused take of 2 left the last token');
    assert.equal(limiter.take('b', 5), false);
    assert.equal(limiter.take('b', 4), true);
  });

  test('fractional rates work', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 0.5, burst: 1, clock });
    assert.equal(limiter.take('a'), true);
    clock.advance(1999);
    assert.equal(limiter.take('a'), false);
    clock.advance(1);
    assert.equal(limiter.take('a'), true);
  });

  test('clients have separate buckets; equal bytes are one client, a string spelling them another', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 2, clock });
    const key = Uint8Array.of(0xab, 0xcd);
    assert.equal(takeAll(limiter, key), 2);
    assert.equal(limiter.take(Uint8Array.of(0xab, 0xcd)), false, 'another array with the same bytes');
    assert.equal(takeAll(limiter, 'abcd'), 2, 'the hex spelled as a string is not the same client');
    assert.equal(takeAll(limiter, 'other'), 2);
    assert.equal(limiter.size, 3);
  });

  test('memory is bounded: the least recently used bucket goes first, and comes back full', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 2, maxClients: 3, clock });
    for (const k of ['a', 'b', 'c']) takeAll(limiter, k);
    assert.equal(limiter.take('a'), false, 'touching a makes b the least recently used');
    takeAll(limiter, 'd'); // evicts b
    assert.equal(limiter.size, 3);
    assert.equal(limiter.take('a'), false, 'a was kept, still empty');
    assert.equal(limiter.take('c'), false, 'c was kept, still empty');
    assert.equal(takeAll(limiter, 'b'), 2, 'b was evicted and starts with a full bucket');
    for (let i = 0; i < 1000; i++) limiter.take(`k${i}`);
    assert.equal(limiter.size, 3);
  });

  test('a clock that steps back refills nothing and does not stall the bucket', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 10, burst: 1, clock });
    assert.equal(limiter.take('a'), true);
    clock.advance(-60_000);
    assert.equal(limiter.take('a'), false);
    clock.advance(100);
    assert.equal(limiter.take('a'), true, 'refill resumes from the stepped-back time');
  });

  test('bad arguments are TypeError or RangeError', () => {
    const clock = new FakeClock();
    assert.throws(() => new RateLimiter({ perSecond: 0, burst: 1, clock }), RangeError);
    assert.throws(() => new RateLimiter({ perSecond: Number.POSITIVE_INFINITY, burst: 1, clock }), RangeError);
    assert.throws(() => new RateLimiter({ perSecond: 1, burst: 0.5, clock }), RangeError);
    assert.throws(() => new RateLimiter({ perSecond: '1' as unknown as number, burst: 1, clock }), TypeError);
    assert.throws(() => new RateLimiter({ perSecond: 1, burst: 1, maxClients: 0, clock }), RangeError);
    assert.throws(() => new RateLimiter({ perSecond: 1, burst: 1, clock: {} as Clock }), TypeError);
    const limiter = new RateLimiter({ perSecond: 1, burst: 1, clock });
    assert.throws(() => limiter.take(42 as unknown as string), TypeError);
    assert.throws(() => limiter.take('a', 0), RangeError);
    assert.throws(() => limiter.take('a', 1.5), TypeError);
  });

  test('over any run, a client gets at most burst + perSecond × elapsed tokens', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 500 }), n: fc.integer({ min: 1, max: 5 }) }), { maxLength: 200 }),
        (perSecond, burst, steps) => {
          const clock = new FakeClock();
          const limiter = new RateLimiter({ perSecond, burst, clock });
          const start = clock.t;
          let granted = 0;
          for (const { dt, n } of steps) {
            clock.advance(dt);
            if (limiter.take('a', n)) granted += n;
            assert.ok(granted <= burst + (perSecond * (clock.t - start)) / 1000 + 1e-9);
          }
          // Greedy one-token takes after the run drain exactly what is left, never more than burst.
          assert.ok(takeAll(limiter, 'a') <= burst);
        },
      ),
      { numRuns: 200 },
    );
  });
});
