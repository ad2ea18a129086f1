/**
 * The send, loop and fetch clocks run by the link's own thread (node-link-worker.ts), so that how
 * many frames leave and when does not depend on what the engine's thread is doing.
 *
 * Before, the engine drew each tick and made its frame a lead (LINK_LEAD_MS) ahead of the tick's
 * ideal time; the link's thread sent it at that time. A stall of the engine's thread longer than
 * the lead still showed: the events overdue past the burst bound were dropped. On a saturated
 * machine an active client's engine (commits, a large message cut and sealed) stalls more than an
 * idle one's, and its link carried measurably fewer frames in its active seconds
 * (docs/anonymity.md, run K). Here the link's thread draws the ticks itself and, at each one, sends
 * a frame it already holds:
 *
 * - each of the send and loop clocks has a queue of frames the engine prepared for its next ticks
 *   (real fragments or drop cover for the send clock, loops for the loop clock); after each tick
 *   the engine is told, and prepares the next one, so the queue stays at its depth;
 * - when a clock's queue is empty at a tick (the engine fell behind), a frame from the *reserve*
 *   goes instead: drop cover packets the engine made ahead, refreshed with each epoch's document;
 * - the fetch clock sends a `retrieve_message` made when it leaves, or in its place a frame the
 *   engine queued (a document or mailbox request).
 *
 * So a stall of the engine's thread as long as the queues and the reserve last moves no frame and
 * drops none; only a tick that finds nothing at all is *missed* (counted). What leaves at a tick
 * never depends on what the engine does: a real fragment takes the place of a drop cover in a
 * queue that is the same length either way. Drop cover, loops and real packets are the same size,
 * and the first hop cannot tell them apart.
 * Portable: no `node:` imports.
 */
import type { Clock } from '../ops/clock.js';
import { PeriodicClock, PoissonClock } from './poisson.js';

/** The clocks' rates, per second, from the network document. */
export interface ClockRates {
  readonly sendPerS: number;
  readonly loopPerS: number;
  readonly fetchPerS: number;
}

export type TickKind = 'send' | 'loop';

/** What a send or loop tick sent: a frame the engine prepared for it, one from the reserve, or nothing. */
export type TickSource = 'prepared' | 'reserve' | 'missed';

/**
 * Drop cover packets held in reserve: at the default rates (send 20/s, loop 5/s) with the queues
 * at their depths (5 and 2), the engine's thread can stall for (5 + 2 + 32) / 25 ≈ 1.5 s before a
 * tick finds nothing. Making them costs 32 packets' CPU per epoch.
 */
export const COVER_RESERVE = 32;
/** Frames prepared for one clock, or queued for the fetch clock, at most: the engine keeps a few; past this it misbehaves, and the oldest goes. */
export const MAX_QUEUED = 256;

/**
 * How many frames the engine keeps prepared for a clock at `ratePerS`: those of `leadMs` (the
 * latency a real fragment gains, as with the lead before), at least 2.
 */
export function preparedDepth(ratePerS: number, leadMs: number): number {
  return Math.max(2, Math.ceil((ratePerS * leadMs) / 1000));
}

export interface LinkClocksOptions {
  readonly clock: Clock;
  /** Uniform draws in (0, 1] from a CSPRNG, for the Poisson gaps. */
  readonly u01: () => number;
  /** Puts a frame on the link now. */
  readonly send: (frame: Uint8Array) => void;
  /** Puts a `retrieve_message` with the current sequence on the link now. */
  readonly fetch: () => void;
  /** After each send or loop tick: what it sent. */
  readonly onTick: (kind: TickKind, source: TickSource) => void;
}

export class LinkClocks {
  readonly #o: LinkClocksOptions;
  #rates: ClockRates = { sendPerS: 0, loopPerS: 0, fetchPerS: 0 };
  readonly #prepared: Record<TickKind, Uint8Array[]> = { send: [], loop: [] };
  #reserve: Uint8Array[] = [];
  readonly #fetchFrames: Uint8Array[] = [];
  readonly #send: PoissonClock;
  readonly #loop: PoissonClock;
  readonly #fetchClock: PeriodicClock;
  #started = false;
  /** Ticks by what they sent. */
  readonly counts = { prepared: 0, reserve: 0, missed: 0, fetches: 0, fetchesReplaced: 0 };

  constructor(opts: LinkClocksOptions) {
    this.#o = opts;
    this.#send = new PoissonClock(opts.clock, () => this.#rates.sendPerS, opts.u01, () => this.#tick('send'));
    this.#loop = new PoissonClock(opts.clock, () => this.#rates.loopPerS, opts.u01, () => this.#tick('loop'));
    this.#fetchClock = new PeriodicClock(opts.clock, () => this.#rates.fetchPerS, () => this.#onFetch());
  }

  /** Sets the rates (read again at every gap) and starts the clocks on the first call. */
  setRates(rates: ClockRates): void {
    this.#rates = { ...rates };
    if (this.#started) return;
    this.#started = true;
    this.#send.start();
    this.#loop.start();
    this.#fetchClock.start();
  }

  /** Restarts of the three clocks (a stall of this thread past the burst bound). */
  get restarts(): { send: number; loop: number; fetch: number } {
    return { send: this.#send.restarts, loop: this.#loop.restarts, fetch: this.#fetchClock.restarts };
  }

  /** Frames prepared for `kind` and not sent yet. */
  queued(kind: TickKind): number {
    return this.#prepared[kind].length;
  }

  get reserved(): number {
    return this.#reserve.length;
  }

  /** A frame for the next free tick of `kind`. */
  prepare(kind: TickKind, frame: Uint8Array): void {
    const q = this.#prepared[kind];
    if (q.length >= MAX_QUEUED) q.shift();
    q.push(frame);
  }

  /** Adds a drop cover frame to the reserve, or with `replace` first drops the reserve (a new epoch's keys). */
  reserve(frames: readonly Uint8Array[], replace: boolean): void {
    if (replace) this.#reserve = [];
    for (const f of frames) if (this.#reserve.length < COVER_RESERVE) this.#reserve.push(f);
  }

  /** A frame to send in place of the next fetch. */
  replaceFetch(frame: Uint8Array): void {
    if (this.#fetchFrames.length >= MAX_QUEUED) this.#fetchFrames.shift();
    this.#fetchFrames.push(frame);
  }

  stop(): void {
    this.#send.stop();
    this.#loop.stop();
    this.#fetchClock.stop();
    this.#prepared.send.length = 0;
    this.#prepared.loop.length = 0;
    this.#reserve = [];
    this.#fetchFrames.length = 0;
  }

  #tick(kind: TickKind): void {
    let frame = this.#prepared[kind].shift();
    let source: TickSource = 'prepared';
    if (frame === undefined) {
      frame = this.#reserve.shift();
      source = frame === undefined ? 'missed' : 'reserve';
    }
    this.counts[source]++;
    if (frame !== undefined) this.#o.send(frame);
    this.#o.onTick(kind, source);
  }

  #onFetch(): void {
    const frame = this.#fetchFrames.shift();
    if (frame !== undefined) {
      this.counts.fetchesReplaced++;
      this.#o.send(frame);
    } else {
      this.counts.fetches++;
      this.#o.fetch();
    }
  }
}
