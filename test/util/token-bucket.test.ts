/** The one token bucket that the connection gate and the gateway's rate limiters share. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkBucketRate, TokenBucket } from '../../src/util/token-bucket.js';

describe('util: token bucket', () => {
  test('a full bucket gives its burst at once, then one token per 1/perSecond', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) assert.equal(b.take(0), true);
    assert.equal(b.take(0), false);
    assert.equal(b.take(99), false, 'less than a token accrued');
    assert.equal(b.take(100), true);
    assert.equal(b.take(100), false);
  });

  test('it never holds more than its burst, and a clock that steps back refills nothing', () => {
    const b = new TokenBucket({ perSecond: 1, burst: 3 }, 0);
    b.take(0, 3);
    assert.equal(b.full(1_000_000), true);
    assert.equal(b.tokens, 3);
    b.take(1_000_000, 3);
    assert.equal(b.take(500_000), false);
    assert.equal(b.take(500_999), false);
    assert.equal(b.take(501_000), true, 'the bucket follows the clock back rather than stalling until it catches up');
  });

  test('a taker within the rate is never refused (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 200 }), (rate, gaps) => {
        // Takes spaced by at least 1000/rate ms each: never more than the rate.
        const b = new TokenBucket({ perSecond: rate, burst: 1 }, 0);
        let t = 0;
        for (const g of gaps) {
          t += Math.ceil(1000 / rate) + g;
          if (!b.take(t)) return false;
        }
        return true;
      }),
    );
  });

  test('rates out of range are refused by name', () => {
    assert.throws(() => checkBucketRate('r', { perSecond: 0, burst: 1 }), /"r.perSecond"/);
    assert.throws(() => checkBucketRate('r', { perSecond: 1, burst: 0.5 }), /"r.burst"/);
    assert.throws(() => checkBucketRate('r', { perSecond: Number.NaN, burst: 1 }), RangeError);
  });
});
