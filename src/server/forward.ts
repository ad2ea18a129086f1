/**
 * Outgoing links to the next hop: one Noise XK link per peer, made when the first packet for it
 * comes, remade after it closes, with a short bounded queue while it is being made and a backoff
 * after a failure (packets for a peer in backoff are dropped as 'link_down': a mix never waits).
 */
import type { MessageLink } from '../link/message-link.js';
import type { DocumentNode } from '../pki/types.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/log.js';
import type { DropReason } from '../ops/metrics.js';
import { idKey } from '../util/bytes.js';

export type Connect = (peer: DocumentNode) => Promise<MessageLink>;

/** Packets kept per peer while its link is being made. */
export const CONNECT_QUEUE_LENGTH = 1024;
/** First and longest wait after a failed connection before trying again. */
export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 10_000;

interface PeerState {
  /** Set once `retain` or `close` forgot this peer: a cached reference to it is stale. */
  gone: boolean;
  link: MessageLink | null;
  connecting: boolean;
  queue: Uint8Array[];
  retryAt: number;
  backoffMs: number;
}

export interface PeerLinksInit {
  connect: Connect;
  clock: Clock;
  log: Logger;
  /** Called once per dropped frame, with the reason. */
  drop(reason: DropReason): void;
  /** Called once per frame handed to a link. */
  sent(): void;
}

export class PeerLinks {
  readonly #init: PeerLinksInit;
  readonly #peers = new Map<string, PeerState>();
  /**
   * Each document entry's state, by the entry itself: one lookup by object rather than building
   * the id's key for every packet. Entries of old documents fall away with the documents.
   */
  #byEntry = new WeakMap<DocumentNode, PeerState>();
  #closed = false;

  constructor(init: PeerLinksInit) {
    this.#init = init;
  }

  /** Frames waiting for links being made. */
  get queued(): number {
    let n = 0;
    for (const p of this.#peers.values()) n += p.queue.length;
    return n;
  }

  /** Number of open links. */
  get open(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (p.link?.isOpen) n++;
    return n;
  }

  /** Sends one encoded wire command to `peer`, or drops it (and counts why). */
  send(peer: DocumentNode, frame: Uint8Array): void {
    if (this.#closed) {
      this.#init.drop('shutdown');
      return;
    }
    let st = this.#byEntry.get(peer);
    if (st === undefined || st.gone) {
      const key = idKey(peer.identityKey);
      st = this.#peers.get(key);
      if (st === undefined) {
        st = { gone: false, link: null, connecting: false, queue: [], retryAt: 0, backoffMs: BACKOFF_MIN_MS };
        this.#peers.set(key, st);
      }
      this.#byEntry.set(peer, st);
    }
    const link = st.link;
    if (link !== null && link.isOpen) {
      this.#write(link, frame);
      return;
    }
    st.link = null;
    if (!st.connecting && this.#init.clock.now() < st.retryAt) {
      this.#init.drop('link_down');
      return;
    }
    if (st.queue.length >= CONNECT_QUEUE_LENGTH) {
      this.#init.drop('queue_full');
      return;
    }
    st.queue.push(frame);
    if (!st.connecting) this.#connect(peer, st);
  }

  #write(link: MessageLink, frame: Uint8Array): void {
    try {
      if (link.trySend(frame)) {
        this.#init.sent();
        return;
      }
      // The socket is full: queue inside the link (bounded by its maxQueuedSends).
      link.send(frame).then(
        () => this.#init.sent(),
        () => this.#init.drop('queue_full'),
      );
    } catch {
      this.#init.drop('link_down');
    }
  }

  #connect(peer: DocumentNode, st: PeerState): void {
    st.connecting = true;
    this.#init.connect(peer).then(
      (link) => {
        st.connecting = false;
        // Closed, or the peer left the documents meanwhile (its queue was counted then): the link
        // has nothing to carry.
        if (this.#closed || st.gone) {
          link.close();
          return;
        }
        st.link = link;
        st.backoffMs = BACKOFF_MIN_MS;
        // A next hop has nothing to say to us; read and discard so that its keepalives flow.
        if (link.setHandler) link.setHandler(() => undefined);
        else {
          void (async () => {
            try {
              for await (const _ of link) void _;
            } catch {
              // closed with an error: the next send reconnects
            }
          })();
        }
        const queued = st.queue;
        st.queue = [];
        for (const f of queued) this.#write(link, f);
      },
      () => {
        st.connecting = false;
        st.retryAt = this.#init.clock.now() + st.backoffMs;
        st.backoffMs = Math.min(BACKOFF_MAX_MS, st.backoffMs * 2);
        this.#init.log.warn('link to next hop failed', { queued: st.queue.length });
        for (let i = 0; i < st.queue.length; i++) this.#init.drop('link_down');
        st.queue = [];
      },
    );
  }

  /** Forgets peers that are no longer in `keep` (identity keys as idKey strings), closing their links. */
  retain(keep: ReadonlySet<string>): void {
    for (const [k, st] of this.#peers) {
      if (keep.has(k)) continue;
      st.gone = true;
      st.link?.close();
      for (let i = 0; i < st.queue.length; i++) this.#init.drop('unknown_next_hop');
      st.queue = [];
      this.#peers.delete(k);
    }
  }

  close(): void {
    this.#closed = true;
    for (const st of this.#peers.values()) {
      st.gone = true;
      st.link?.close();
      for (let i = 0; i < st.queue.length; i++) this.#init.drop('shutdown');
      st.queue = [];
    }
    this.#peers.clear();
    this.#byEntry = new WeakMap();
  }
}
