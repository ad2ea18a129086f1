/**
 * Admission of connections at a listening port, before any byte is read: per source (an IP
 * address; an IPv6 /64, which is what one host gets), at most `maxPerSource` open connections
 * and a token bucket of new connections, and at most `maxTotal` open connections in all. A
 * connection over a limit is destroyed at once and counted by reason. One host that opens
 * sockets as fast as they close can then hold `maxPerSource` of them and no more, and every
 * other source still gets in. Portable: sockets are anything with a remote address, a destroy
 * and a close event.
 *
 * Per-source state lives while the source has open connections or an unfilled bucket, and at
 * most `maxSources` sources are tracked: beyond that a new source is refused (`sources`), so a
 * flood from many addresses costs bounded memory.
 */
import { TokenBucket } from './token-bucket.js';

/** What the gate needs of a socket (node:net's Socket has it). */
export interface GatedSocket {
  readonly remoteAddress?: string | undefined;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface GateLimits {
  /** Open connections from one source. */
  readonly maxPerSource: number;
  /** Open connections in all. */
  readonly maxTotal: number;
  /** New connections per second from one source, and the burst allowed after a quiet spell. */
  readonly ratePerSource: { readonly perSecond: number; readonly burst: number };
  /** Sources tracked at once. Default 10 × maxTotal. */
  readonly maxSources?: number;
}

export type GateRefusal = 'source_open' | 'source_rate' | 'total' | 'sources';

export const GATE_REFUSALS: readonly GateRefusal[] = ['source_open', 'source_rate', 'total', 'sources'];

export interface GateStats {
  /** Connections open now. */
  open: number;
  admitted: number;
  readonly refused: Record<GateRefusal, number>;
}

interface Source {
  open: number;
  /** New connections (token-bucket.ts). */
  readonly bucket: TokenBucket;
}

/**
 * The source a remote address counts against: IPv4 as it is (IPv4-mapped IPv6 unwrapped), IPv6
 * by its /64. An unknown address (a socket already closed) is one source of its own.
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined || address === '') return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!address.includes(':')) return address;
  // Expand "::" so that the first four groups are the /64.
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (g === '' ? '0' : g.toLowerCase().replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`gate: "${name}" expected a positive number`);
  return v;
}

export class ConnectionGate {
  readonly #limits: Required<GateLimits>;
  readonly #now: () => number;
  readonly #sources = new Map<string, Source>();
  #open = 0;
  #sweptAt = -Infinity;
  readonly stats: GateStats = { open: 0, admitted: 0, refused: { source_open: 0, source_rate: 0, total: 0, sources: 0 } };
  /** Told of each refusal, e.g. for a metric or a health state. */
  onRefuse: ((reason: GateRefusal) => void) | null = null;

  /** @throws {RangeError} for a limit that is not a positive number. */
  constructor(limits: GateLimits, now: () => number) {
    positive('maxPerSource', limits.maxPerSource);
    positive('maxTotal', limits.maxTotal);
    positive('ratePerSource.perSecond', limits.ratePerSource.perSecond);
    if (!(limits.ratePerSource.burst >= 1)) throw new RangeError('gate: "ratePerSource.burst" expected at least 1');
    this.#limits = { ...limits, maxSources: positive('maxSources', limits.maxSources ?? 10 * limits.maxTotal) };
    this.#now = now;
  }

  /** Connections open now, admitted through this gate. */
  get open(): number {
    return this.#open;
  }

  /** Sources with state kept now. */
  get sources(): number {
    return this.#sources.size;
  }

  /**
   * Admits `socket` or destroys it. When admitted, it counts until its close event.
   * @returns whether it was admitted.
   */
  admit(socket: GatedSocket): boolean {
    const key = sourceOf(socket.remoteAddress);
    const reason = this.#check(key);
    if (reason !== null) {
      this.stats.refused[reason]++;
      socket.destroy();
      this.onRefuse?.(reason);
      return false;
    }
    const s = this.#sources.get(key)!;
    s.open++;
    this.#open++;
    this.stats.open++;
    this.stats.admitted++;
    socket.once('close', () => {
      s.open--;
      this.#open--;
      this.stats.open--;
      this.#forgetIfIdle(key, s);
    });
    return true;
  }

  /** The refusal for a new connection from `key`, or null; takes a token when it admits. */
  #check(key: string): GateRefusal | null {
    const now = this.#now();
    let s = this.#sources.get(key);
    if (s === undefined) {
      this.#sweep(now);
      if (this.#sources.size >= this.#limits.maxSources) return 'sources';
      s = { open: 0, bucket: new TokenBucket(this.#limits.ratePerSource, now) };
      this.#sources.set(key, s);
    }
    if (this.#open >= this.#limits.maxTotal) return 'total';
    if (s.open >= this.#limits.maxPerSource) return 'source_open';
    if (!s.bucket.take(now)) return 'source_rate';
    return null;
  }

  #forgetIfIdle(key: string, s: Source): void {
    if (s.open > 0) return;
    if (s.bucket.full(this.#now())) this.#sources.delete(key);
  }

  /**
   * When the table is full, forgets sources with nothing open and a bucket full again; at most
   * once a second, so that a flood from many addresses cannot make every connection a full scan.
   */
  #sweep(now: number): void {
    if (this.#sources.size < this.#limits.maxSources || now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    for (const [key, s] of this.#sources) {
      if (s.open > 0) continue;
      if (s.bucket.full(now)) this.#sources.delete(key);
    }
  }
}
