/**
 * One token bucket: `perSecond` tokens a second up to `burst`, time in milliseconds from the
 * caller's clock. The connection gate (gate.ts) keeps one per source, the gateway's rate limiter
 * (src/server/rate-limit.ts) one per client and kind; both use this one implementation. Portable.
 *
 * A clock that steps back refills nothing, and the bucket follows it, so that it does not stall
 * until the clock catches up.
 */

export interface BucketRate {
  /** Tokens added per second (may be fractional); > 0. */
  readonly perSecond: number;
  /** The most tokens held: what may be taken at once after a quiet spell; >= 1. */
  readonly burst: number;
}

/**
 * Checks a rate.
 * @throws {TypeError | RangeError} naming `name` when a field is not a finite number in range.
 */
export function checkBucketRate(name: string, rate: BucketRate): BucketRate {
  if (typeof rate !== 'object' || rate === null) throw new TypeError(`"${name}" expected { perSecond, burst }`);
  for (const [k, v] of [
    ['perSecond', rate.perSecond],
    ['burst', rate.burst],
  ] as const) {
    if (typeof v !== 'number') throw new TypeError(`"${name}.${k}" expected a number, got ${typeof v}`);
    if (!Number.isFinite(v)) throw new RangeError(`"${name}.${k}" expected a finite number, got ${v}`);
  }
  if (rate.perSecond <= 0) throw new RangeError(`"${name}.perSecond" expected a number > 0, got ${rate.perSecond}`);
  if (rate.burst < 1) throw new RangeError(`"${name}.burst" expected a number >= 1, got ${rate.burst}`);
  return rate;
}

/** A bucket's state; full when made. */
export class TokenBucket {
  tokens: number;
  /** Clock time of the last refill (ms). */
  at: number;

  readonly rate: BucketRate;

  constructor(rate: BucketRate, now: number) {
    this.rate = rate;
    this.tokens = rate.burst;
    this.at = now;
  }

  /** Adds what has accrued since the last refill. */
  refill(now: number): void {
    const elapsed = now - this.at;
    if (elapsed > 0) this.tokens = Math.min(this.rate.burst, this.tokens + (elapsed * this.rate.perSecond) / 1000);
    this.at = now;
  }

  /** Takes `n` tokens when they are there (true); takes nothing otherwise (false). */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Whether the bucket is full again at `now` (its state may then be forgotten). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate.burst;
  }
}
