/**
 * The gateway's rendezvous service (contacts by code; wire format in src/messaging/rendezvous.ts,
 * the flow in docs/messaging.md). In memory only, bounded:
 *
 * - at most `maxChannels` channels; a post that would open one more is answered `full` and
 *   counted (`rendezvous_full`);
 * - a channel lives from its first posting for the lifetime that posting asked, capped at
 *   `maxLifetimeMs`; later postings never extend it; expired channels are swept;
 * - at most one posting per side per channel (a new post by the side's owner replaces it), each
 *   at most MAX_POSTING_LENGTH bytes, so the memory is at most about maxChannels × 2 × 1.8 kB.
 *
 * A side belongs to the token of its first post. The service sees no address: the request names
 * a channel and a side, and the answer goes back through the request's SURB.
 *
 * A request is handled to its answer at once, on the thread that runs the final stage; the answer
 * then waits for an emission slot like an acknowledgement (emit.ts). Portable: no `node:` imports.
 */
import type { Clock } from '../ops/clock.js';
import { decodeRendezvousRequest } from '../messaging/rendezvous.js';
import type { RendezvousAnswer } from '../messaging/rendezvous.js';
import { equalBytes } from '../util/bytes.js';

/** Channels held at once: far more invites than a network of our size has open; about 15 MB at worst. */
export const MAX_RENDEZVOUS_CHANNELS = 4096;
/** The longest a channel lives, whatever a request asks: a day, the longest invite the CLI makes. */
export const MAX_RENDEZVOUS_LIFETIME_MS = 24 * 3_600_000;
/** Expired channels are swept at most this often (and whenever the table is full). */
const SWEEP_INTERVAL_MS = 10_000;

interface Posting {
  readonly token: Uint8Array;
  data: Uint8Array;
}

interface Channel {
  readonly expiresAt: number;
  readonly sides: [Posting | null, Posting | null];
}

/** What became of a request, for the gateway's counters. */
export type RendezvousOutcome = 'posted' | 'read' | 'taken' | 'full' | 'bad';

export interface RendezvousInit {
  readonly clock: Clock;
  readonly maxChannels?: number;
  readonly maxLifetimeMs?: number;
}

export class RendezvousService {
  readonly #clock: Clock;
  readonly #maxChannels: number;
  readonly #maxLifetimeMs: number;
  readonly #channels = new Map<number, Channel>();
  #nextSweep = 0;

  constructor(init: RendezvousInit) {
    this.#clock = init.clock;
    this.#maxChannels = init.maxChannels ?? MAX_RENDEZVOUS_CHANNELS;
    this.#maxLifetimeMs = init.maxLifetimeMs ?? MAX_RENDEZVOUS_LIFETIME_MS;
    if (!Number.isInteger(this.#maxChannels) || this.#maxChannels < 1) throw new RangeError('rendezvous: maxChannels must be a positive integer');
  }

  /** Channels held now (expired ones not yet swept included). */
  get channels(): number {
    return this.#channels.size;
  }

  /**
   * Handles one request (a forward payload's body) and returns the answer and what happened.
   * Never throws on bad input: a malformed request is answered `bad`.
   */
  handle(body: Uint8Array): { readonly answer: RendezvousAnswer; readonly outcome: RendezvousOutcome } {
    const now = this.#clock.now();
    this.#sweep(now, false);
    let req;
    try {
      req = decodeRendezvousRequest(body);
    } catch {
      return { answer: { status: 'bad', posting: new Uint8Array(0) }, outcome: 'bad' };
    }
    let ch = this.#live(req.channel, now);
    const other = 1 - req.side;
    if (req.op === 'read') return { answer: this.#answerFor(ch, other), outcome: 'read' };
    if (ch === undefined) {
      if (this.#channels.size >= this.#maxChannels) this.#sweep(now, true);
      if (this.#channels.size >= this.#maxChannels) return { answer: { status: 'full', posting: new Uint8Array(0) }, outcome: 'full' };
      const lifetime = Math.min(this.#maxLifetimeMs, req.lifetimeS * 1000);
      ch = { expiresAt: now + lifetime, sides: [null, null] };
      this.#channels.set(req.channel, ch);
    }
    const mine = ch.sides[req.side];
    if (mine === null) {
      ch.sides[req.side] = { token: req.token, data: req.posting };
    } else if (equalBytes(mine.token, req.token)) {
      mine.data = req.posting;
    } else {
      return { answer: { status: 'taken', posting: new Uint8Array(0) }, outcome: 'taken' };
    }
    return { answer: this.#answerFor(ch, other), outcome: 'posted' };
  }

  #answerFor(ch: Channel | undefined, side: number): RendezvousAnswer {
    const p = ch?.sides[side];
    return p === null || p === undefined ? { status: 'empty', posting: new Uint8Array(0) } : { status: 'posting', posting: p.data };
  }

  #live(channel: number, now: number): Channel | undefined {
    const ch = this.#channels.get(channel);
    if (ch !== undefined && now >= ch.expiresAt) {
      this.#channels.delete(channel);
      return undefined;
    }
    return ch;
  }

  #sweep(now: number, force: boolean): void {
    if (!force && now < this.#nextSweep) return;
    this.#nextSweep = now + SWEEP_INTERVAL_MS;
    for (const [k, ch] of this.#channels) if (now >= ch.expiresAt) this.#channels.delete(k);
  }
}
