/**
 * What the bench page (bench/pages/web-bench.ts) hands back to `npm run bench -- web` (bench/web.ts).
 * Plain data: it crosses from Chromium by structured clone.
 */
export interface PrimitiveFigures {
  readonly name: string;
  readonly bytes: number;
  readonly nobleUs: number;
  /** WebCrypto, awaited one call at a time. */
  readonly webUs: number;
  /** WebCrypto, BATCH calls in flight. */
  readonly webBatchedUs: number;
}

export interface EngineFigures {
  /** Wall microseconds of the page's thread per packet built and put on the link. */
  readonly usPerPacket: number;
  readonly packets: number;
  /** Calls per packet of each backend method. */
  readonly callsPerPacket: Record<string, number>;
  /** Microseconds per packet spent inside each backend method (timed around every call). */
  readonly usPerPacketIn: Record<string, number>;
  /**
   * With the header-key pool (WebCrypto): `usPerPacket` is the sum of the two below. The wall
   * microseconds per packet of the ticks (building from the pool), and of refilling the pool
   * between ticks (awaited after each tick: its JavaScript on this thread plus the wait for
   * WebCrypto's threads, so an upper bound of this thread's share).
   */
  readonly tickUsPerPacket?: number;
  readonly refillUsPerPacket?: number;
  /** Sphinx headers built from the pool and at the tick (two a packet). */
  readonly pooled?: number;
  readonly synchronous?: number;
}

export interface FetchFigures {
  /** Opening a sealed frame taken from our mailbox (one X25519 and the AEAD). */
  readonly openUs: number;
  /** Decrypting an acknowledgement that came back through its SURB. */
  readonly surbReplyUs: number;
}

/** A header's hop keys (5 hops by default): @noble, and WebCrypto as the async precompute would run it. */
export interface HeaderFigures {
  readonly hops: number;
  readonly nobleUs: number;
  /** Wall time of one header's keys, awaited (the chain of hops in sequence). */
  readonly webUs: number;
  /** Per header with 8 headers in flight (what a pool refilled ahead of the clock would see). */
  readonly webParallelUs: number;
}

export interface WebBenchFigures {
  readonly userAgent: string;
  readonly primitives: PrimitiveFigures[];
  readonly cover: EngineFigures;
  readonly real: EngineFigures;
  /** The same two runs with WebCrypto's X25519 making header keys ahead in a pool (src/client/header-pool.ts); null without WebCrypto X25519. */
  readonly coverPool: EngineFigures | null;
  readonly realPool: EngineFigures | null;
  readonly fetch: FetchFigures;
  readonly header: HeaderFigures;
  readonly params: { hops: number; userPayloadLength: number; layers: number };
}
