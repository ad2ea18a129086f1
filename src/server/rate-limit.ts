/**
 * Per-client rate limiting at the gateway: one token bucket per client, refilled at `perSecond`
 * up to `burst`. Time comes only from the injected clock, so tests and the simulator drive it.
 *
 * Memory is bounded: at most `maxClients` buckets are kept, and the least recently used one is
 * forgotten when a new client would exceed that. A forgotten client starts again with a full
 * bucket, so a client that was idle long enough to be evicted gets at most one extra burst;
 * whoever can make more than `maxClients` clients active between two of its own requests could
 * also use those identities directly, so eviction gives no new way around the limit.
 */
import type { Clock } from '../ops/clock.js';
import { aint } from '../util/bytes.js';
import { IdMap } from '../util/id-map.js';
import { checkBucketRate, TokenBucket } from '../util/token-bucket.js';
import type { BucketRate } from '../util/token-bucket.js';

/**
 * A client's fetch bucket refills at this many times the network's fetch rate: its fetch clock runs
 * at exactly the rate (client.ts), so an honest client never meets the bound; a Poisson clock at the
 * rate would meet it with a probability below e^-25 even at the smallest burst.
 */
export const FETCH_RATE_MARGIN = 2;
/** ... and holds this many seconds of fetches, for a clock that catches up after a stall. */
export const FETCH_BURST_S = 10;
/** The least fetch burst, whatever the rate. */
export const MIN_FETCH_BURST = 20;

/** The per-client bucket on fetches for a network's fetch rate (requests per second). */
export function fetchBucketRate(fetchRatePerS: number): { perSecond: number; burst: number } {
  return { perSecond: Math.max(1, FETCH_RATE_MARGIN * fetchRatePerS), burst: Math.max(MIN_FETCH_BURST, Math.ceil(FETCH_BURST_S * fetchRatePerS)) };
}

/** The per-mailbox intake limits are a rule of the network that clients pace by: src/pki/intake.ts. */
export { INTAKE_ALIAS_BURST_S, INTAKE_ALIAS_SHARE, INTAKE_MAILBOX_BURST_S, INTAKE_MAILBOX_SHARE, intakeRates } from '../pki/intake.js';

/** Buckets kept at most: one gateway's clients, about 100 bytes each. */
export const DEFAULT_MAX_CLIENTS = 100_000;

export interface RateLimiterOptions {
  /** Tokens added per second (may be fractional); > 0. */
  perSecond: number;
  /** Bucket size: the most a client may take at once after being idle; >= 1. */
  burst: number;
  /** Buckets kept at most; the least recently used is evicted beyond. Default 100 000. */
  maxClients?: number;
  clock: Clock;
}

interface Bucket {
  /** The tokens (src/util/token-bucket.ts, the one bucket the connection gate uses too). */
  readonly bucket: TokenBucket;
  /** Its key (for eviction): a string, or bytes (the IdMap's own copy). */
  readonly key: string | Uint8Array;
  /** Neighbours in recency order (a doubly linked list: least recent first). */
  older: Bucket | null;
  newer: Bucket | null;
}

/** Token buckets keyed by client. */
export class RateLimiter {
  readonly #rate: BucketRate;
  readonly #burst: number;
  readonly #maxClients: number;
  readonly #clock: Clock;
  /**
   * Buckets by key, strings and bytes apart so that their key spaces stay separate (bytes in an
   * IdMap: a client's packets are looked up without building a string per packet).
   * Recency is a linked list through the buckets: a used bucket moves to the newest end in
   * constant time, and the oldest is evicted. (Deleting and re-inserting into a Map on every
   * packet, as before, made the Map rehash its deleted entries over and over.)
   */
  readonly #strings = new Map<string, Bucket>();
  readonly #bytes = new IdMap<Bucket>();
  #oldest: Bucket | null = null;
  #newest: Bucket | null = null;

  /**
   * @throws {TypeError | RangeError} for bad options.
   * @example
   *   const limiter = new RateLimiter({ perSecond: 20, burst: 40, clock: systemClock });
   *   if (!limiter.take(clientKey)) dropped.inc({ reason: 'rate_limited' });
   */
  constructor(options: RateLimiterOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('"options" expected an object');
    const { perSecond, burst, clock } = options;
    const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    finite('perSecond', perSecond);
    finite('burst', burst);
    if (perSecond <= 0) throw new RangeError(`"perSecond" expected a number > 0, got ${perSecond}`);
    if (burst < 1) throw new RangeError(`"burst" expected a number >= 1, got ${burst}`);
    aint('maxClients', maxClients, 1, Number.MAX_SAFE_INTEGER);
    if (typeof clock?.now !== 'function') throw new TypeError('"clock" expected a Clock');
    this.#rate = checkBucketRate('options', { perSecond, burst });
    this.#burst = burst;
    this.#maxClients = maxClients;
    this.#clock = clock;
  }

  /** Buckets held now (at most maxClients). */
  get size(): number {
    return this.#strings.size + this.#bytes.size;
  }

  /**
   * Takes `n` tokens from the client's bucket: true when they were there (and are now taken),
   * false when not (and nothing is taken). A request larger than `burst` never succeeds.
   * @throws {TypeError | RangeError} when `key` is neither a string nor bytes, or `n` is not a positive integer.
   */
  take(key: string | Uint8Array, n = 1): boolean {
    // Strings and bytes live in separate key spaces, so a string that spells some bytes' hex is a different client.
    let bucket: Bucket | undefined;
    if (typeof key === 'string') bucket = this.#strings.get(key);
    else if (key instanceof Uint8Array) bucket = this.#bytes.get(key);
    else throw new TypeError(`"key" expected string or Uint8Array, got ${key === null ? 'null' : typeof key}`);
    if (n !== 1) aint('n', n, 1, Number.MAX_SAFE_INTEGER);
    const now = this.#clock.now();
    if (bucket === undefined) {
      if (this.size >= this.#maxClients && this.#oldest !== null) this.#evict(this.#oldest);
      const k = typeof key === 'string' ? key : key.slice();
      bucket = { bucket: new TokenBucket(this.#rate, now), key: k, older: null, newer: null };
      if (typeof k === 'string') this.#strings.set(k, bucket);
      else this.#bytes.set(k, bucket);
      this.#append(bucket);
    } else {
      if (bucket !== this.#newest) {
        this.#unlink(bucket);
        this.#append(bucket);
      }
    }
    return n <= this.#burst && bucket.bucket.take(now, n);
  }

  #append(b: Bucket): void {
    b.older = this.#newest;
    b.newer = null;
    if (this.#newest !== null) this.#newest.newer = b;
    else this.#oldest = b;
    this.#newest = b;
  }

  #unlink(b: Bucket): void {
    if (b.older !== null) b.older.newer = b.newer;
    else this.#oldest = b.newer;
    if (b.newer !== null) b.newer.older = b.older;
    else this.#newest = b.older;
    b.older = null;
    b.newer = null;
  }

  #evict(b: Bucket): void {
    this.#unlink(b);
    if (typeof b.key === 'string') this.#strings.delete(b.key);
    else this.#bytes.delete(b.key);
  }
}

function finite(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" expected a number, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`"${name}" expected a finite number, got ${value}`);
}
