/**
 * What every link server shares, whatever its transport: run the responder's handshake on each
 * new connection, bound how many handshakes may be pending at once, keep the open links, and
 * count outcomes. Portable: no `node:` imports.
 */
import type { BackchannelError } from '../errors.js';
import { isBackchannelError } from '../errors.js';
import type { NoiseCrypto } from '../noise/crypto.js';
import type { ResponderOptions } from './link.js';
import { CloseReason, Link } from './link.js';
import type { ByteTransport } from './transport.js';

export interface LinkServerOptions extends ResponderOptions {
  /** Called with each link once its peer is authenticated and accepted. */
  onLink(link: Link): void;
  /** Called with each connection that failed before it became a link (bad handshake, timeout, refused). */
  onError?(error: BackchannelError): void;
  /** Connections still in their handshake at once; more are dropped at once. Default 128. */
  maxPendingHandshakes?: number;
}

export interface LinkServerStats {
  /** Links established. */
  accepted: number;
  /** Peers refused by the accept policy. */
  rejected: number;
  /** Connections that failed their handshake (garbage, wrong key, timeout, early close). */
  failed: number;
  /** Connections dropped because maxPendingHandshakes were already pending. */
  overloaded: number;
}

/** What a listener returns, whatever its transport. */
export interface LinkServer {
  readonly host: string;
  readonly port: number;
  readonly stats: LinkServerStats;
  /** Links open now. */
  readonly links: ReadonlySet<Link>;
  /** Stops listening, closes every link cleanly. */
  close(): Promise<void>;
}

export class LinkAcceptor {
  readonly #crypto: NoiseCrypto;
  readonly #opts: LinkServerOptions;
  readonly #maxPending: number;
  #pending = 0;
  /** Links open now. */
  readonly links = new Set<Link>();
  readonly #handshaking = new Set<ByteTransport>();
  readonly stats: LinkServerStats = { accepted: 0, rejected: 0, failed: 0, overloaded: 0 };

  constructor(crypto: NoiseCrypto, opts: LinkServerOptions) {
    if (typeof opts.onLink !== 'function') throw new TypeError('link: onLink must be a function');
    this.#crypto = crypto;
    this.#opts = opts;
    this.#maxPending = opts.maxPendingHandshakes ?? 128;
  }

  /** Takes a freshly connected transport. */
  take(transport: ByteTransport): void {
    if (this.#pending >= this.#maxPending) {
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
    this.#handshaking.add(transport);
    handshake.then(
      (link) => {
        this.#pending--;
        this.#handshaking.delete(transport);
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
        this.#pending--;
        this.#handshaking.delete(transport);
        if (isBackchannelError(e, 'ERR_LINK_REJECTED')) this.stats.rejected++;
        else this.stats.failed++;
        if (isBackchannelError(e)) this.#opts.onError?.(e);
      },
    );
  }

  /**
   * The handle a listener at `host:port` returns; its close stops the listener (which calls back
   * when it has stopped), drops pending handshakes and closes every link cleanly.
   */
  server(host: string, port: number, stopListening: (stopped: () => void) => void): LinkServer {
    return {
      host,
      port,
      stats: this.stats,
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
    for (const t of this.#handshaking) t.destroy();
    await Promise.all([...this.links].map((l) => l.close()));
  }
}
