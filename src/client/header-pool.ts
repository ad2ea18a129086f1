/**
 * Header keys made ahead of the send tick (docs/browser.md, "WebCrypto against @noble"): a small
 * pool of prepared Sphinx header keys, kept full between ticks with an AsyncX25519 (WebCrypto in
 * the browser's worker), so that a tick builds its packet with 2 X25519s on the synchronous
 * backend instead of 10.
 *
 * Two kinds of entry, one of each per packet:
 * - 'forward': our gateway and one mix per layer, the forward header's hops but the last (the
 *   destination's gateway, known only at the tick), and the envelope's ephemeral key pair;
 * - 'surb': one mix per layer, the acknowledgement SURB's hops but the last (our gateway, or for a
 *   drop cover the random gateway it goes to: left to the tick so that every kind of packet costs
 *   the same at the tick).
 * Each entry's mixes are drawn when it is made, with the client's RandomInt (the same CSPRNG and
 * distribution as chooseMixes at the tick), and its ephemeral secret from the backend's
 * randomBytes. An entry is for one document (the mix keys of its epoch): a new document, a change
 * of our gateway or stop() wipes every entry, and an entry finished for an older document is
 * wiped as it arrives. A taken entry is the taker's to wipe (Sphinx does, used or not).
 *
 * When the pool has no entry the tick builds the packet synchronously (the same bytes, more CPU):
 * the pool only moves CPU, never a frame (the clocks' LINK_LEAD_MS and TimedLink fix departures).
 * Portable: no `node:` imports.
 */
import type { AsyncX25519 } from '../crypto/async-x25519.js';
import type { CryptoBackend } from '../crypto/types.js';
import { isBackchannelError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { chooseMixes, mixPublicKey } from '../pki/route.js';
import type { RandomInt } from '../pki/route.js';
import type { DocumentNode, SignedDocument } from '../pki/types.js';
import { onCurveCache, prepareHeaderKeys } from '../sphinx/header-keys.js';
import type { PreparedHeader } from '../sphinx/header-keys.js';
import { wipe } from '../util/bytes.js';
import type { EnvelopeKey } from './envelope.js';

export type PoolKind = 'forward' | 'surb';

/** A prepared header and the route it was made for (all its hops but the last). */
export interface PooledRoute {
  readonly doc: SignedDocument;
  readonly nodes: readonly DocumentNode[];
  readonly header: PreparedHeader;
  /** For a forward entry, the envelope's ephemeral key pair (src/client/envelope.ts); null for a SURB's. */
  readonly envelope: EnvelopeKey | null;
  /** Wipes the header's keys and the envelope's key pair (again, when they were used). */
  wipe(): void;
}

/** Entries per kind kept ready: at the default 25 packets a second, a third of a second of packets. */
export const DEFAULT_POOL_SIZE = 8;

export interface HeaderPoolStatus {
  /** The AsyncX25519's name ('webcrypto', 'sync'). */
  readonly x25519: string;
  /** Headers built from the pool since start, and built synchronously because it had none ready. */
  readonly pooled: number;
  readonly synchronous: number;
  /** Entries ready now (both kinds). */
  readonly ready: number;
  /** Entries wiped unused (a new document, stop). */
  readonly discarded: number;
}

interface Target {
  readonly doc: SignedDocument;
  readonly ours: DocumentNode;
  readonly rand: RandomInt;
}

export class HeaderKeyPool {
  readonly #crypto: CryptoBackend;
  readonly #x25519: AsyncX25519;
  readonly #size: number;
  readonly #log: Logger | null;
  readonly #onCurve = onCurveCache(4096);
  readonly #ready: Record<PoolKind, PooledRoute[]> = { forward: [], surb: [] };
  #target: Target | null = null;
  /** Bumped by every clear: an entry finished for an older generation is wiped. */
  #generation = 0;
  #filling: Promise<void> | null = null;
  /** Set when making an entry failed for the current target (an empty layer, a node without a key): no retry until the next target. */
  #broken = false;
  #pooled = 0;
  #synchronous = 0;
  #discarded = 0;

  constructor(options: { readonly crypto: CryptoBackend; readonly x25519: AsyncX25519; readonly size?: number; readonly log?: Logger }) {
    this.#crypto = options.crypto;
    this.#x25519 = options.x25519;
    this.#size = options.size ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(this.#size) || this.#size < 1 || this.#size > 64) throw new RangeError('header pool: size must be 1 to 64');
    this.#log = options.log ?? null;
  }

  /**
   * What entries are made for: a document, our gateway in it and the client's RandomInt; null
   * stops making them. A different document or gateway wipes every entry.
   */
  setTarget(target: Target | null): void {
    const t = this.#target;
    if (target === null || t === null || t.doc !== target.doc || t.ours !== target.ours) {
      this.clear();
      this.#broken = false;
    }
    this.#target = target;
    this.#kick();
  }

  /**
   * A ready entry of `kind` for `doc`, or null (counted: the caller builds synchronously). The
   * caller owns it: Sphinx wipes its header when it uses it. Refilling starts in the background.
   */
  take(kind: PoolKind, doc: SignedDocument): PooledRoute | null {
    // Every ready entry is for the target's document (setTarget wipes them when it changes).
    const entry = this.#target !== null && this.#target.doc === doc ? (this.#ready[kind].shift() ?? null) : null;
    if (entry === null) this.#synchronous++;
    else this.#pooled++;
    this.#kick();
    return entry;
  }

  /** Wipes every ready entry; entries being made are wiped when they finish. */
  clear(): void {
    this.#generation++;
    for (const kind of ['forward', 'surb'] as const) {
      for (const e of this.#ready[kind].splice(0)) {
        e.wipe();
        this.#discarded++;
      }
    }
  }

  /** Stops making entries and wipes them all. */
  stop(): void {
    this.#target = null;
    this.clear();
  }

  status(): HeaderPoolStatus {
    return { x25519: this.#x25519.name, pooled: this.#pooled, synchronous: this.#synchronous, ready: this.#ready.forward.length + this.#ready.surb.length, discarded: this.#discarded };
  }

  /** Resolves when the pool is full for its target (or cannot be filled): for tests and benchmarks. */
  async filled(): Promise<void> {
    while (this.#filling !== null) await this.#filling;
  }

  #wanted(): PoolKind | null {
    if (this.#target === null || this.#broken) return null;
    if (this.#ready.forward.length < this.#size) return 'forward';
    if (this.#ready.surb.length < this.#size) return 'surb';
    return null;
  }

  #kick(): void {
    if (this.#filling !== null || this.#wanted() === null) return;
    this.#filling = this.#fill().finally(() => {
      this.#filling = null;
      // A take or a new target while the last entry was being made.
      if (this.#wanted() !== null) this.#kick();
    });
  }

  /** Makes entries one at a time (each hop's two X25519s at once) until the pool is full. */
  async #fill(): Promise<void> {
    for (let kind = this.#wanted(); kind !== null; kind = this.#wanted()) {
      const target = this.#target!;
      const generation = this.#generation;
      let entry: PooledRoute;
      try {
        entry = await this.#make(kind, target);
      } catch (err) {
        if (generation === this.#generation) {
          this.#broken = true;
          this.#log?.warn('cannot prepare header keys; packets are built at the tick', { code: isBackchannelError(err) ? err.code : 'unknown' });
        }
        return;
      }
      if (generation !== this.#generation || this.#target === null) {
        entry.wipe();
        this.#discarded++;
        continue;
      }
      this.#ready[kind].push(entry);
    }
  }

  async #make(kind: PoolKind, target: Target): Promise<PooledRoute> {
    const doc = target.doc;
    const mixes = chooseMixes(doc.document, target.rand);
    const nodes = kind === 'forward' ? [target.ours, ...mixes] : mixes;
    const keys = nodes.map((n) => mixPublicKey(n, doc.document.epoch));
    const x = this.#crypto.randomBytes(32);
    const e = kind === 'forward' ? this.#crypto.randomBytes(32) : null;
    // Both awaited to the end whatever happens, so that nothing secret is left behind unwiped.
    const [header, ephemeral] = await Promise.allSettled([
      prepareHeaderKeys(this.#crypto, this.#x25519, x, keys, this.#onCurve),
      e === null ? Promise.resolve(null) : this.#x25519.x25519Base(e),
    ]);
    wipe(x);
    if (header.status === 'rejected' || ephemeral.status === 'rejected') {
      if (header.status === 'fulfilled') header.value.wipe();
      wipe(e ?? undefined);
      throw header.status === 'rejected' ? header.reason : (ephemeral as PromiseRejectedResult).reason;
    }
    const h = header.value;
    const envelope = e === null || ephemeral.value === null ? null : { secret: e, publicKey: ephemeral.value };
    return {
      doc,
      nodes,
      header: h,
      envelope,
      wipe: () => {
        h.wipe();
        wipe(envelope?.secret, envelope?.publicKey);
      },
    };
  }
}
