/**
 * The client's side of its extra mailboxes at its gateway (docs/client.md, "Extra mailboxes"):
 * which registration or revocation to ask for on a fetch tick, and what an answer means.
 *
 * An extra mailbox is an X25519 key pair the client makes; its public key is the mailbox id, a
 * Sphinx recipient at our gateway, and envelopes for it are sealed to it. The gateway learns of
 * it through a `mailbox_request` sent in place of one `retrieve_message` on the fetch clock (as a
 * `get_document` is), one request in flight at a time, each answered by one `mailbox_reply`. So
 * the link carries the same frames at the same times whether the client registers mailboxes or
 * not. A request is asked again until the gateway answers `ok` (the change is on its disk) or
 * refuses it; both requests are idempotent at the gateway, so a repeat after a lost answer or a
 * restart of either side is harmless.
 *
 * Portable: no `node:` imports.
 */
import { toHex } from '../util/bytes.js';
import type { MailboxActionName, WireCommand } from '../wire/commands.js';
import type { ExtraMailbox, MailboxRefusal } from './store.js';

/** How long a request may go unanswered before it is asked again (the gateway answers at once). */
export const MAILBOX_ANSWER_TIMEOUT_MS = 5_000;
/** After a `pending` answer, the same mailbox is asked for again no sooner than this (the gateway commits within ~100 ms). */
export const MAILBOX_RETRY_MS = 250;
/** The grace period of a rotation by default: the old mailbox keeps working this long, for mail already on its way and a contact that is slow to switch. */
export const DEFAULT_ROTATION_GRACE_MS = 7 * 24 * 3_600_000;

/** What one `mailbox_reply` did. */
export type MailboxAnswer =
  /** Not the answer to the request in flight (a late one): ignored. */
  | { readonly kind: 'ignored' }
  /** The gateway has it but not yet on disk: asked again later. */
  | { readonly kind: 'pending' }
  /** The registration is durable at the gateway. */
  | { readonly kind: 'registered'; readonly id: Uint8Array }
  /** The gateway refused the registration. */
  | { readonly kind: 'refused'; readonly id: Uint8Array; readonly reason: MailboxRefusal }
  /** The revocation is durable at the gateway (or there was nothing of ours to revoke: `unexpected`). */
  | { readonly kind: 'revoked'; readonly id: Uint8Array; readonly unexpected: MailboxRefusal | null };

/** The request an extra mailbox needs now, or null: a revocation first, then a registration. */
export function neededAction(m: ExtraMailbox): MailboxActionName | null {
  if (m.revokedAt !== null) return m.revokeConfirmed ? null : 'revoke';
  if (!m.registered && m.refused === null) return 'register';
  return null;
}

/**
 * Decides the mailbox requests of one client link.
 * @example
 *   const reg = new MailboxRegistrar();
 *   const ask = reg.request(now, mailboxes); // on a fetch tick: send mailbox_request instead of a fetch
 *   const r = reg.answer(cmd, now);          // for each mailbox_reply received
 */
export class MailboxRegistrar {
  #asked: { readonly action: MailboxActionName; readonly key: string; readonly at: number } | null = null;
  /** Mailboxes not to ask for again before the time given (they were pending). */
  readonly #retryAt = new Map<string, number>();
  /** The mailbox asked for last: the next request starts after it, so that none waits behind another. */
  #last: string | null = null;

  /** The request to send on this fetch tick in place of a `retrieve_message`, or null. At most one is in flight. */
  request(now: number, mailboxes: Iterable<ExtraMailbox>): { readonly action: MailboxActionName; readonly mailbox: Uint8Array } | null {
    if (this.#asked !== null) {
      if (now - this.#asked.at < MAILBOX_ANSWER_TIMEOUT_MS) return null;
      this.#asked = null;
    }
    // Round robin over the mailboxes that need a request and may be asked for now.
    const ready: { readonly m: ExtraMailbox; readonly action: MailboxActionName; readonly key: string }[] = [];
    let after = 0;
    for (const m of mailboxes) {
      const action = neededAction(m);
      if (action === null) continue;
      const key = toHex(m.id);
      const at = this.#retryAt.get(key);
      if (at !== undefined && at > now) continue;
      ready.push({ m, action, key });
      if (key === this.#last) after = ready.length;
    }
    const pick = ready[after] ?? ready[0];
    if (pick === undefined) return null;
    this.#retryAt.delete(pick.key);
    this.#last = pick.key;
    this.#asked = { action: pick.action, key: pick.key, at: now };
    return { action: pick.action, mailbox: pick.m.id };
  }

  /** The link went down: the request in flight is lost; it is asked again on the next link. */
  linkLost(): void {
    this.#asked = null;
  }

  /** Takes one `mailbox_reply`. Never throws for what the gateway sent. */
  answer(cmd: Extract<WireCommand, { kind: 'mailbox_reply' }>, now: number): MailboxAnswer {
    const asked = this.#asked;
    if (asked === null || asked.action !== cmd.action || asked.key !== toHex(cmd.mailbox)) return { kind: 'ignored' };
    this.#asked = null;
    const id = cmd.mailbox.slice();
    const result = cmd.result;
    if (result === 'pending') {
      this.#retryAt.set(asked.key, now + MAILBOX_RETRY_MS);
      return { kind: 'pending' };
    }
    if (cmd.action === 'register') return result === 'ok' ? { kind: 'registered', id } : { kind: 'refused', id, reason: result };
    return { kind: 'revoked', id, unexpected: result === 'ok' ? null : result };
  }
}
