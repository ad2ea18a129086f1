/**
 * What every link server shares, whatever its transport: run the responder's handshake on each
 * new connection, bound how many handshakes may be pending at once, in all and per source, keep
 * the open links, and count outcomes. Portable: no `node:` imports.
 *
 * Fairness: a source (the remote address, as the listener names it) may hold at most
 * `maxPendingPerSource` handshakes. When `maxPendingHandshakes` are pending in all, a connection
 * from a source holding fewer than the busiest source takes the place of that source's oldest
 * handshake; so sources that keep sockets open without completing a handshake share the slots
 * among themselves and cannot keep anyone else out.
 */
import type { BackchannelError } from '../errors.js';
import { isBackchannelError } from '../errors.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import type { ResponderOptions } from './link.js';
import { CloseReason, Link } from './link.js';
import type { ByteTransport } from './transport.js';
import type { GateLimits, GateRefusal, GateStats } from '../util/gate.js';

export interface LinkServerOptions extends ResponderOptions {
  /** Called with each link once its peer is authenticated and accepted. */
  onLink(link: Link): void;
  /** Called with each connection that failed before it became a link (bad handshake, timeout, refused). */
  onError?(error: BackchannelError): void;
  /** Connections still in their handshake at once; more are dropped at once (see fairness above). Default 128. */
  maxPendingHandshakes?: number;
  /** Connections from one source still in their handshake at once. Default 16. */
  maxPendingPerSource?: number;
  /**
   * Admission of connections before the handshake (per-source and total open connections, a
   * per-source connection rate: src/util/gate.ts). DEFAULT_LINK_GATE unless given.
   */
  gate?: GateLimits;
  /** Told of each connection the gate refuses (for metrics). */
  onGateRefusal?(reason: GateRefusal): void;
}

/**
 * A link listener's gate: 1,024 open connections per source (hosts behind one NAT share an
 * address), 8,192 in all, 50 new connections a second per source with bursts of 200.
 */
export const DEFAULT_LINK_GATE: GateLimits = { maxPerSource: 1024, maxTotal: 8192, ratePerSource: { perSecond: 50, burst: 200 } };

export const DEFAULT_MAX_PENDING_HANDSHAKES = 128;
export const DEFAULT_MAX_PENDING_PER_SOURCE = 16;

export interface LinkServerStats {
  /** Links established. */
  accepted: number;
  /** Peers refused by the accept policy. */
  rejected: number;
  /** Connections that failed their handshake (garbage, wrong key, timeout, early close). */
  failed: number;
  /** Connections dropped because maxPendingHandshakes were already pending (none could be evicted). */
  overloaded: number;
  /** Connections dropped because their source had maxPendingPerSource handshakes pending. */
  sourceOverloaded: number;
  /** Pending handshakes dropped to make room for a source that held fewer. */
  evicted: number;
}

/** What a listener returns, whatever its transport. */
export interface LinkServer {
  readonly host: string;
  readonly port: number;
  readonly stats: LinkServerStats;
  /** Connections refused before their handshake, by reason, and connections admitted. */
  readonly gate: GateStats | null;
  /** Handshakes pending now. */
  readonly pending: number;
  /** Links open now. */
  readonly links: ReadonlySet<Link>;
  /** Stops listening, closes every link cleanly. */
  close(): Promise<void>;
}

export class LinkAcceptor {
  readonly #crypto: NoiseCrypto;
  readonly #opts: LinkServerOptions;
  readonly #maxPending: number;
  readonly #maxPerSource: number;
  #pending = 0;
  /** Links open now. */
  readonly links = new Set<Link>();
  /** Transports in their handshake, oldest first, with their source. */
  readonly #handshaking = new Map<ByteTransport, string>();
  /** Pending handshakes per source, oldest first. */
  readonly #bySource = new Map<string, ByteTransport[]>();
  readonly stats: LinkServerStats = { accepted: 0, rejected: 0, failed: 0, overloaded: 0, sourceOverloaded: 0, evicted: 0 };

  constructor(crypto: NoiseCrypto, opts: LinkServerOptions) {
    if (typeof opts.onLink !== 'function') throw new TypeError('link: onLink must be a function');
    this.#crypto = crypto;
    this.#opts = opts;
    this.#maxPending = opts.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    this.#maxPerSource = opts.maxPendingPerSource ?? DEFAULT_MAX_PENDING_PER_SOURCE;
  }

  /** Handshakes pending now. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Takes a freshly connected transport from `source` (its remote address as the listener names
   * it; one unnamed source when not given).
   */
  take(transport: ByteTransport, source = ''): void {
    const mine = this.#bySource.get(source)?.length ?? 0;
    if (mine >= this.#maxPerSource) {
      this.stats.sourceOverloaded++;
      transport.destroy();
      return;
    }
    if (this.#pending >= this.#maxPending && !this.#evictFor(mine)) {
      this.stats.overloaded++;
      transport.destroy();
      return;
    }
    let handshake: Promise<Link>;
    try {
      handshake = Link.respond(transport, this.#crypto, this.#opts);
    } catch {
      // bad options: refuse the connection rather than throw into the server's event handler
      this.stats.failed++;
      transport.destroy();
      return;
    }
    this.#pending++;
    this.#handshaking.set(transport, source);
    const queue = this.#bySource.get(source);
    if (queue === undefined) this.#bySource.set(source, [transport]);
    else queue.push(transport);
    handshake.then(
      (link) => {
        this.#settled(transport);
        this.stats.accepted++;
        this.links.add(link);
        void link.closed.then(() => this.links.delete(link));
        try {
          this.#opts.onLink(link);
        } catch {
          // the application's handler failed; the link must not outlive it
          void link.close(CloseReason.protocol);
        }
      },
      (e: unknown) => {
        this.#settled(transport);
        if (isBackchannelError(e, 'ERR_LINK_REJECTED')) this.stats.rejected++;
        else this.stats.failed++;
        if (isBackchannelError(e)) this.#opts.onError?.(e);
      },
    );
  }

  /** A handshake ended (a link, a failure, or its transport destroyed): its slot is free. */
  #settled(transport: ByteTransport): void {
    const source = this.#handshaking.get(transport);
    if (source === undefined) return;
    this.#handshaking.delete(transport);
    this.#pending--;
    const queue = this.#bySource.get(source)!;
    queue.splice(queue.indexOf(transport), 1);
    if (queue.length === 0) this.#bySource.delete(source);
  }

  /**
   * Makes room for a connection from a source holding `mine` pending handshakes: drops the oldest
   * handshake of the source holding the most, when that is more than `mine` + 1 (so that two
   * sources never trade one slot back and forth). Returns whether a slot was freed.
   */
  #evictFor(mine: number): boolean {
    let busiest: ByteTransport[] | null = null;
    for (const q of this.#bySource.values()) if (busiest === null || q.length > busiest.length) busiest = q;
    if (busiest === null || busiest.length <= mine + 1) return false;
    const victim = busiest[0]!;
    this.#settled(victim);
    this.stats.evicted++;
    victim.destroy();
    return true;
  }

  /**
   * The handle a listener at `host:port` returns; its close stops the listener (which calls back
   * when it has stopped), drops pending handshakes and closes every link cleanly.
   */
  server(host: string, port: number, stopListening: (stopped: () => void) => void, gate: GateStats | null = null): LinkServer {
    const pending = (): number => this.#pending;
    return {
      host,
      port,
      stats: this.stats,
      gate,
      get pending() {
        return pending();
      },
      links: this.links,
      close: async () => {
        const stopped = new Promise<void>((resolve) => stopListening(resolve));
        await this.closeAll();
        await stopped;
      },
    };
  }

  /** Closes every open link cleanly and drops connections still in their handshake. */
  async closeAll(): Promise<void> {
    for (const t of [...this.#handshaking.keys()]) t.destroy();
    await Promise.all([...this.links].map((l) => l.close()));
  }
}
