/**
 * The client's invites: contacts by code (docs/messaging.md). Each open invite runs a loop that
 * asks the rendezvous (through the engine's `rendezvous()`, in send slots: never an extra frame)
 * what src/messaging/invite.ts says to ask, feeds it the answers, and stores the invite's state
 * after every change, so an invite survives a restart and goes on where it was. Reads are made
 * every INVITE_POLL_INTERVAL_MS while an invite waits on the other side; posts go again at once
 * when their answer does not come. Portable: no `node:` imports.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import {
  cancelInvite,
  decodeInviteState,
  encodeInviteState,
  expireInvite,
  inviteEnded,
  inviteRequest,
  newAccept,
  newInvite,
  onInviteAnswer,
} from '../messaging/invite.js';
import type { ContactExchange, InviteEvent, InviteState } from '../messaging/invite.js';
import { parseCode } from '../messaging/code.js';
import { decodeRendezvousAnswer, encodeRendezvousRequest } from '../messaging/rendezvous.js';
import type { RendezvousAnswer } from '../messaging/rendezvous.js';
import type { Clock } from '../ops/clock.js';
import type { Logger } from '../ops/logger.js';

/** How often an open invite reads the rendezvous while it waits: modest, inside the send clock (each read takes one send slot). */
export const INVITE_POLL_INTERVAL_MS = 2_000;
/**
 * How long a request waits for its answer before it is made again. A round trip is a few seconds
 * on an idle machine, but the answer queues in our mailbox behind whatever else waits there
 * (cover loops included), and a client starved of CPU fetches behind: 20 s was seen to be too
 * short on a loaded test machine. A request asked again is the same bytes, and the engine lets a
 * late answer to the first serve the second, so a short timeout costs a packet, not the answer.
 */
export const RENDEZVOUS_ANSWER_TIMEOUT_MS = 30_000;
/** Ended invites are kept this long for `invites` and then forgotten. */
export const KEEP_ENDED_INVITES_MS = 24 * 3_600_000;
/** Invites open at once (each polls; each holds a rendezvous channel). */
export const MAX_OPEN_INVITES = 16;

/** Where invites are kept: the SQLite store implements it (sqlite-store.ts). */
export interface InviteStore {
  invites(): { id: string; state: Uint8Array }[];
  putInvite(id: string, state: Uint8Array, updatedAt: number): void;
  deleteInvite(id: string): void;
  transaction<T>(fn: () => T): T;
}

/** What the manager needs of the engine. */
export interface RendezvousSender {
  rendezvous(channel: number, body: Uint8Array, timeoutMs: number): Promise<Uint8Array | null>;
}

export interface InviteManagerComponents {
  readonly clock: Clock;
  readonly crypto: CryptoBackend;
  readonly client: RendezvousSender;
  readonly store: InviteStore;
  readonly exchange: ContactExchange;
  readonly log: Logger;
}

/** An invite as `invites` lists it (no secrets, no code once it has ended). */
export interface InviteSummary {
  readonly id: string;
  readonly role: 'inviter' | 'acceptor';
  readonly name: string;
  readonly stage: string;
  /** The code while the inviter's invite is open; null otherwise. */
  readonly code: string | null;
  readonly expiresAt: number;
  readonly failure: { readonly code: string; readonly message: string } | null;
}

export type InviteListener = (id: string, event: InviteEvent) => void;

function stateError(message: string): BackchannelError {
  return new BackchannelError('ERR_INVITE_STATE', `invite: ${message}`);
}

export class InviteManager {
  readonly #c: InviteManagerComponents;
  readonly #log: Logger;
  readonly #invites = new Map<string, InviteState>();
  readonly #listeners = new Set<InviteListener>();
  readonly #timers = new Map<string, unknown>();
  #running = false;

  constructor(components: InviteManagerComponents) {
    this.#c = components;
    this.#log = components.log.child('invites');
  }

  /** Loads the stored invites and resumes the open ones. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = this.#c.clock.now();
    for (const row of this.#c.store.invites()) {
      let s: InviteState;
      try {
        s = decodeInviteState(row.state);
      } catch {
        this.#log.warn('a stored invite is corrupt; it is dropped');
        this.#c.store.deleteInvite(row.id);
        continue;
      }
      if (inviteEnded(s) && now - s.expiresAt > KEEP_ENDED_INVITES_MS) {
        this.#c.store.deleteInvite(s.id);
        continue;
      }
      this.#invites.set(s.id, s);
      if (!inviteEnded(s)) void this.#run(s);
    }
  }

  stop(): void {
    this.#running = false;
    for (const t of this.#timers.values()) this.#c.clock.clearTimer(t);
    this.#timers.clear();
  }

  subscribe(listener: InviteListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Opens an invite. Its code comes in a `code` event once a channel is claimed.
   * @throws {BackchannelError} ERR_INVITE_STATE when too many invites are open.
   */
  invite(opts: { name?: string; lifetimeMs?: number }): InviteSummary {
    this.#checkRoom();
    const now = this.#c.clock.now();
    const s = newInvite(this.#c.crypto, { name: opts.name ?? '', now, ...(opts.lifetimeMs === undefined ? {} : { lifetimeMs: opts.lifetimeMs }) });
    if (opts.name === undefined) s.name = `contact-${s.id.slice(0, 6)}`;
    this.#add(s);
    return summary(s);
  }

  /**
   * Accepts a code.
   * @throws {BackchannelError} ERR_INVITE_CODE for a malformed code; ERR_INVITE_STATE when this
   *   code was accepted here before, or too many invites are open.
   */
  accept(opts: { code: string; name: string; lifetimeMs?: number }): InviteSummary {
    const code = parseCode(opts.code);
    for (const s of this.#invites.values()) {
      if (s.code === code.text) throw stateError(inviteEnded(s) ? 'this code was used already; ask for a new one' : 'this code is being accepted already');
    }
    this.#checkRoom();
    const s = newAccept(this.#c.crypto, { code: code.text, name: opts.name, now: this.#c.clock.now(), ...(opts.lifetimeMs === undefined ? {} : { lifetimeMs: opts.lifetimeMs }) });
    this.#add(s);
    return summary(s);
  }

  /** Cancels an open invite (its code is burned). @throws {BackchannelError} ERR_INVITE_STATE for an unknown id. */
  cancel(id: string): void {
    const s = this.#invites.get(id);
    if (s === undefined) throw stateError('no such invite');
    const e = cancelInvite(s);
    if (e !== null) this.#commit(s, [e]);
  }

  list(): InviteSummary[] {
    return [...this.#invites.values()].map(summary);
  }

  get(id: string): InviteSummary | null {
    const s = this.#invites.get(id);
    return s === undefined ? null : summary(s);
  }

  #checkRoom(): void {
    let open = 0;
    for (const s of this.#invites.values()) if (!inviteEnded(s)) open++;
    if (open >= MAX_OPEN_INVITES) throw stateError(`${MAX_OPEN_INVITES} invites are open already; wait for one to end or cancel one`);
  }

  #add(s: InviteState): void {
    this.#invites.set(s.id, s);
    this.#c.store.putInvite(s.id, encodeInviteState(s), this.#c.clock.now());
    void this.#run(s);
  }

  /** Stores the state (with whatever the step did to the messenger, in one transaction) and tells the listeners. */
  #commit(s: InviteState, events: InviteEvent[]): void {
    this.#c.store.putInvite(s.id, encodeInviteState(s), this.#c.clock.now());
    for (const e of events) {
      if (e.type === 'failed') this.#log.info('invite failed', { code: e.code });
      else if (e.type === 'done') this.#log.info('contact made by code');
      for (const l of this.#listeners) {
        try {
          l(s.id, e);
        } catch (err) {
          this.#log.warn('invite listener failed', { error: err instanceof Error ? err.name : 'unknown' });
        }
      }
    }
  }

  /** One invite's loop: ask, apply the answer, store, and wait a little when only reading. */
  async #run(s: InviteState): Promise<void> {
    while (this.#running && !inviteEnded(s) && this.#invites.get(s.id) === s) {
      const now = this.#c.clock.now();
      if (now >= s.expiresAt) {
        const e = expireInvite(s);
        if (e !== null) this.#commit(s, [e]);
        return;
      }
      const req = inviteRequest(s, now);
      if (req === null) return;
      const bytes = await this.#c.client.rendezvous(s.channel, encodeRendezvousRequest(req), RENDEZVOUS_ANSWER_TIMEOUT_MS);
      if (!this.#running || inviteEnded(s)) return;
      let answer: RendezvousAnswer | null = null;
      if (bytes !== null) {
        try {
          answer = decodeRendezvousAnswer(bytes);
        } catch {
          this.#log.warn('a malformed rendezvous answer');
        }
      }
      const before = s.stage;
      let events: InviteEvent[];
      try {
        events = this.#c.store.transaction(() => {
          const ev = onInviteAnswer(s, answer, this.#c.crypto, this.#c.exchange);
          this.#c.store.putInvite(s.id, encodeInviteState(s), this.#c.clock.now());
          return ev;
        });
      } catch (err) {
        // The messenger refused the contact (or the store failed): the invite ends here.
        const code = isBackchannelError(err) ? err.code : 'ERR_INVITE_STATE';
        const message = isBackchannelError(err) ? err.message : 'the contact could not be added';
        s.stage = 'failed';
        s.failure = { code, message };
        s.y = s.posting = s.ourCard = null;
        this.#commit(s, [{ type: 'failed', code, message }]);
        return;
      }
      this.#commit(s, events);
      // A read that changed nothing waits before the next; a post (or a step forward) goes on at once.
      if (answer !== null && req.op === 'read' && s.stage === before) await this.#sleep(s.id, INVITE_POLL_INTERVAL_MS);
    }
  }

  #sleep(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#timers.set(
        id,
        this.#c.clock.setTimer(() => {
          this.#timers.delete(id);
          resolve();
        }, ms),
      );
    });
  }
}

function summary(s: InviteState): InviteSummary {
  const open = s.role === 'inviter' && !inviteEnded(s) && s.stage !== 'claiming';
  return { id: s.id, role: s.role, name: s.name, stage: s.stage, code: open ? s.code : null, expiresAt: s.expiresAt, failure: s.failure };
}
