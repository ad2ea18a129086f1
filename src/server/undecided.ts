/**
 * Links a gateway holds undecided: those that reach it before its first document (just started,
 * or restarted). Until then it cannot tell a layer-3 mix (named by its link key in the document)
 * from a client, so it neither admits such a link nor refuses it: it accepts the handshake, keeps
 * the handshake payload, sends nothing on the link and takes nothing from it but packets (what a
 * mix link carries), held within a bound. When the document comes, the node decides each one
 * (node.ts): a mix's link becomes a previous hop's, and its held packets go on as a mix's; any
 * other key goes through admission with the payload it gave, and is admitted (its held packets go
 * on as a client's) or closed with the refusal.
 *
 * Bounded, so that this is no new way to pin a gateway's resources: at most `maxLinks` links at
 * once (more are refused at the handshake and reconnect later), each for at most `timeoutMs`
 * (then closed), with at most `maxFramesPerLink` packets each and MAX_UNDECIDED_FRAMES in all;
 * every frame not kept is counted as a drop (`undecided`), every link by how it ended.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Clock } from '../ops/clock.js';
import { idKey } from '../util/bytes.js';

/**
 * Links held undecided at once, by default. A gateway's previous layer is a few mixes; the rest
 * are its clients relinking after a restart, which are refused past this bound and link again
 * after their backoff, by which time the document has usually come.
 */
export const MAX_UNDECIDED_LINKS = 1_024;
/** How long a link may stay undecided, by default (ms); then it is closed (reason `timeout`) and its peer links again. */
export const UNDECIDED_TIMEOUT_MS = 30_000;
/** Packets held per undecided link, by default; more are dropped (`undecided`). */
export const MAX_UNDECIDED_FRAMES_PER_LINK = 32;
/** Packets held over all undecided links at most (about 10 MB of commands at the default geometry). */
export const MAX_UNDECIDED_FRAMES = 4_096;
/** An accepted handshake's payload waits this long for its link to open (normally the same turn). */
const EARLY_ACCEPT_MS = 10_000;

export interface UndecidedLimits {
  readonly maxLinks?: number;
  readonly timeoutMs?: number;
  readonly maxFramesPerLink?: number;
}

/** How an undecided link ended: a mix's, an admitted or refused client's, timed out, closed by its peer, or refused for want of room. */
export type UndecidedOutcome = 'mix' | 'admitted' | 'refused' | 'timeout' | 'closed' | 'overflow';
const OUTCOMES: readonly UndecidedOutcome[] = ['mix', 'admitted', 'refused', 'timeout', 'closed', 'overflow'];

interface Held {
  readonly payload: Uint8Array;
  readonly frames: Uint8Array[];
  timer: unknown;
}

export interface UndecidedComponents<L> {
  readonly clock: Clock;
  readonly registry: Registry;
  /** Counts frames that are not kept. */
  readonly dropped: (n: number) => void;
  /** A held link ran out of time: close it. */
  readonly expired: (link: L) => void;
}

export class UndecidedLinks<L extends object> {
  readonly #c: UndecidedComponents<L>;
  readonly #maxLinks: number;
  readonly #timeoutMs: number;
  readonly #maxFramesPerLink: number;
  /** Payloads of handshakes accepted undecided whose links have not opened yet, by key. */
  readonly #early = new Map<string, { readonly payload: Uint8Array; readonly at: number }>();
  readonly #held = new Map<L, Held>();
  #frames = 0;
  readonly #outcomes: Counter<'outcome'>;
  readonly #gauge: Gauge;

  constructor(limits: UndecidedLimits, components: UndecidedComponents<L>) {
    this.#c = components;
    this.#maxLinks = positive('maxLinks', limits.maxLinks ?? MAX_UNDECIDED_LINKS);
    this.#timeoutMs = positive('timeoutMs', limits.timeoutMs ?? UNDECIDED_TIMEOUT_MS);
    this.#maxFramesPerLink = positive('maxFramesPerLink', limits.maxFramesPerLink ?? MAX_UNDECIDED_FRAMES_PER_LINK);
    this.#outcomes = new Counter({
      name: 'backchannel_undecided_links_total',
      help: 'Links a gateway held undecided (before its first document), by how each ended: mix, admitted, refused, timeout, closed (by its peer), overflow (refused at the handshake: too many held)',
      labelNames: ['outcome'] as const,
      registers: [components.registry],
    });
    for (const o of OUTCOMES) this.#outcomes.inc({ outcome: o }, 0);
    this.#gauge = new Gauge({ name: 'backchannel_undecided_links', help: 'Links held undecided now (a gateway before its first document)', registers: [components.registry] });
  }

  /** Links held now (and handshakes accepted whose links are about to open). */
  get size(): number {
    return this.#held.size + this.#early.size;
  }

  /** The handshake of `key` ends before the first document: accept it undecided (true, its payload kept) unless the bound is reached. */
  accept(key: Uint8Array, payload: Uint8Array): boolean {
    const now = this.#c.clock.now();
    for (const [k, e] of this.#early) if (now - e.at > EARLY_ACCEPT_MS) this.#early.delete(k);
    if (this.size >= this.#maxLinks) {
      this.#outcomes.inc({ outcome: 'overflow' });
      return false;
    }
    this.#early.set(idKey(key), { payload: payload.slice(), at: now });
    return true;
  }

  /** The handshake payload kept for a link that opened after an undecided accept, or null: a link decided at its handshake. */
  opened(key: Uint8Array): Uint8Array | null {
    const k = idKey(key);
    const e = this.#early.get(k);
    if (e === undefined) return null;
    this.#early.delete(k);
    return e.payload;
  }

  /** Holds `link` until `decide`, `closed` or its timeout. */
  hold(link: L, payload: Uint8Array): void {
    const h: Held = { payload, frames: [], timer: null };
    h.timer = this.#c.clock.setTimer(() => {
      if (this.#held.get(link) !== h) return;
      this.#release(link, h, 'timeout');
      this.#c.expired(link);
    }, this.#timeoutMs);
    this.#held.set(link, h);
    this.#gauge.set(this.#held.size);
  }

  /** A packet from a held link: kept within the bounds, else dropped and counted. */
  frame(link: L, message: Uint8Array): void {
    const h = this.#held.get(link);
    if (h === undefined || h.frames.length >= this.#maxFramesPerLink || this.#frames >= MAX_UNDECIDED_FRAMES) {
      this.#c.dropped(1);
      return;
    }
    h.frames.push(message);
    this.#frames++;
  }

  /** Whether `link` is held now. */
  holds(link: L): boolean {
    return this.#held.has(link);
  }

  /** The handshake payload a held link gave, or null when it is not held. */
  payload(link: L): Uint8Array | null {
    return this.#held.get(link)?.payload ?? null;
  }

  /** The links held now. */
  links(): L[] {
    return [...this.#held.keys()];
  }

  /**
   * Ends `link`'s hold with `outcome`; returns its payload and the packets it held (to go on as a
   * mix's or a client's), or null when it was not held. For `refused` the packets are dropped.
   */
  decide(link: L, outcome: 'mix' | 'admitted' | 'refused'): { readonly payload: Uint8Array; readonly frames: Uint8Array[] } | null {
    const h = this.#held.get(link);
    if (h === undefined) return null;
    this.#release(link, h, outcome);
    return { payload: h.payload, frames: outcome === 'refused' ? [] : h.frames };
  }

  /** A held link closed (its peer left, or the node stops). */
  closed(link: L): void {
    const h = this.#held.get(link);
    if (h !== undefined) this.#release(link, h, 'closed');
  }

  #release(link: L, h: Held, outcome: UndecidedOutcome): void {
    this.#c.clock.clearTimer(h.timer);
    this.#held.delete(link);
    this.#frames -= h.frames.length;
    if (outcome !== 'mix' && outcome !== 'admitted' && h.frames.length > 0) this.#c.dropped(h.frames.length);
    this.#outcomes.inc({ outcome });
    this.#gauge.set(this.#held.size);
  }

  /** Stops every timer; the links themselves close with the listener. */
  stop(): void {
    for (const [link, h] of [...this.#held]) this.#release(link, h, 'closed');
    this.#early.clear();
  }
}

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`undecided: "${name}" expected a positive integer`);
  return v;
}
