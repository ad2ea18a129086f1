/**
 * The running client as its users see it: what the daemon's local socket (daemon.ts) exposes and
 * what a browser UI would call. The engine (client.ts) implements it. Portable: no `node:` imports.
 */
import type { InboxMessage, MailboxRefusal, OutgoingMessage } from './store.js';

export interface SendRequest {
  /** A recipient address (address.ts); exactly one of `to` and `inReplyTo`. */
  readonly to?: string;
  /** Answer the inbox message with this id anonymously, through the SURBs it carried. */
  readonly inReplyTo?: Uint8Array;
  readonly body: Uint8Array;
  /** SURBs to attach so that the recipient can reply without learning our address (0 by default). */
  readonly replySurbs?: number;
  /** The name of the file the body is (a plain name: frames.ts isSafeFileName); sent with it. */
  readonly fileName?: string;
  /**
   * Without the send time (and no file name): the version-1 message layout, 9 bytes shorter. The
   * messenger's contents carry their own time, and a padded ratchet message (BODY_LENGTH) then
   * fits one fragment; with the send time it took two.
   */
  readonly plain?: boolean;
}

/** At least this many hex digits of a message id name an inbox message (`findInbox`). */
export const MIN_ID_PREFIX_HEX = 8;

export interface SendReceipt {
  readonly id: Uint8Array;
  readonly fragments: number;
}

export type ClientEvent =
  /**
   * Fragment `index` (of `total`) of our message left this client, for the `attempt`-th time
   * (1 the first time; more is a retransmission because no acknowledgement came in time).
   */
  | { readonly type: 'attempt'; readonly id: Uint8Array; readonly index: number; readonly attempt: number; readonly total: number }
  /** `done` of `total` fragments acknowledged (a reply: sent). */
  | { readonly type: 'progress'; readonly id: Uint8Array; readonly done: number; readonly total: number }
  /** Every fragment acknowledged by the recipient's gateway. */
  | { readonly type: 'delivered'; readonly id: Uint8Array }
  /** A reply's fragments all left (replies through SURBs are not acknowledged). */
  | { readonly type: 'sent'; readonly id: Uint8Array }
  /** Retries ran out, or the message could not be sent at all. */
  | { readonly type: 'failed'; readonly id: Uint8Array; readonly reason: string }
  /** A message completed in the inbox. */
  | { readonly type: 'message'; readonly message: InboxMessage }
  /**
   * A fragment of an incoming message of several came, the message not complete yet: `have` of
   * `total` fragments are stored; `mailbox` is the extra mailbox it came to (null: the main one).
   * Local state only (what the gateway delivered), for showing progress.
   */
  | { readonly type: 'partial'; readonly id: Uint8Array; readonly have: number; readonly total: number; readonly mailbox: Uint8Array | null }
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected' }
  /**
   * An extra mailbox changed at the gateway: its registration was confirmed or refused (`reason`),
   * or its revocation was confirmed.
   */
  | { readonly type: 'mailbox'; readonly id: Uint8Array; readonly state: 'registered' | 'refused' | 'revoked'; readonly reason: MailboxRefusal | null };

/** One of our extra mailboxes, as `mailboxes()` lists it. */
export interface MailboxInfo {
  readonly id: Uint8Array;
  /** The address a contact writes to (our gateway and this mailbox). */
  readonly address: string;
  readonly createdAt: number;
  /** Our gateway confirmed the registration. */
  readonly registered: boolean;
  /** Our gateway refused the registration, and why (limit, taken, revoked, invalid); null otherwise. */
  readonly refused: MailboxRefusal | null;
  /** We revoked it: its key is erased and what comes to it is dropped. */
  readonly revoked: boolean;
  /** Our gateway confirmed the revocation (it refuses mail for it). */
  readonly revokeConfirmed: boolean;
  /** When a rotation revokes it, or null. */
  readonly revokeAt: number | null;
  /** The mailbox that replaces it (a rotation), or null. */
  readonly replacedBy: Uint8Array | null;
}

/** A new extra mailbox: durable when returned, registered at the gateway in the background. */
export interface NewMailbox {
  readonly id: Uint8Array;
  readonly address: string;
}

/**
 * The document the client works on: `current` (this epoch's), `previous` (last epoch's, still
 * usable), `expired` (no newer one came; real messages wait), `none` (none yet).
 */
export type DocumentState = 'current' | 'previous' | 'expired' | 'none';

import type { AdmissionState } from './admission.js';

export interface ClientStatus {
  readonly address: string;
  /** The gateway's name in the current document, or null before the first document. */
  readonly gateway: string | null;
  readonly connected: boolean;
  readonly epoch: number | null;
  readonly document: DocumentState;
  /** Documents got from the gateway and what went wrong, since start; null when documents are fed another way. */
  readonly directory: { readonly documents: number; readonly unavailable: number; readonly invalid: number; readonly timeouts: number } | null;
  /** Outgoing messages not yet delivered, sent or failed. */
  readonly pendingMessages: number;
  /** Packets put on the link since start, by kind. */
  readonly packetsSent: { readonly real: number; readonly drop: number; readonly loop: number };
  /** Mailbox entries fetched since start, by what they were. */
  readonly entriesReceived: { readonly fragment: number; readonly ack: number; readonly loop: number; readonly reply: number; readonly invalid: number };
  /** Timer callbacks of each traffic clock that dropped overdue events after a stall (docs/client.md, "Stalls"); the link thread's clocks when it runs them. */
  readonly clockRestarts: { readonly send: number; readonly loop: number; readonly fetch: number };
  /**
   * With a link that runs the clocks on its own thread (link-clocks.ts): send and loop ticks since
   * start that sent a reserve cover packet because the engine had fallen behind, and ticks that
   * found nothing to send at all. Absent otherwise.
   */
  readonly linkTicks?: { readonly reserve: number; readonly missed: number };
  /** Our admission at the gateway (src/client/admission.ts): none asked, proof of work in progress, ready, or refused with the reason. */
  readonly admission?: AdmissionState;
}

export interface ClientApi {
  readonly address: string;
  status(): ClientStatus;
  /**
   * Accepts a message: when this returns, it is durable and will be delivered or reported failed.
   * @throws {BackchannelError} ERR_CLIENT_ADDRESS for a bad address; ERR_CLIENT_MESSAGE for an
   *   empty or too long body or a bad request; ERR_CLIENT_NO_SURBS for a reply that needs more
   *   SURBs than remain; ERR_CLIENT_STATE when the client has no document yet for a SURB request.
   */
  send(request: SendRequest): SendReceipt;
  /** Calls `listener` for every event until the returned function is called. */
  subscribe(listener: (event: ClientEvent) => void): () => void;
  /** Inbox messages the user has not consumed, oldest first. */
  unconsumed(afterSeq: number, limit: number): InboxMessage[];
  /** Marks an inbox message as had by the user. */
  consume(seq: number): void;
  /** Every inbox message, read or not (`consumed` set), oldest first, at most `limit`, with seq > `afterSeq`. */
  inboxPage(afterSeq: number, limit: number): InboxMessage[];
  /**
   * The inbox messages whose id starts with `prefixHex` (at least MIN_ID_PREFIX_HEX hex digits),
   * at most 2: one is a match, two say the prefix is ambiguous.
   * @throws {BackchannelError} ERR_CLIENT_MESSAGE for a prefix that is not hex or too short.
   */
  findInbox(prefixHex: string): InboxMessage[];
  outgoing(id: Uint8Array): OutgoingMessage | null;
  /**
   * Makes an extra mailbox (a new X25519 key pair) for one contact. Durable when this returns;
   * the registration at our gateway follows on the fetch clock, until the gateway confirms or
   * refuses it (a `mailbox` event says which; so does `mailboxes()`).
   * @throws {BackchannelError} ERR_CLIENT_MAILBOX_LIMIT when we hold MAX_EXTRA_MAILBOXES in use already.
   */
  createMailbox(): NewMailbox;
  /**
   * Revokes an extra mailbox at once: its key is erased (what still comes to it, even mail already
   * queued at the gateway, is dropped) and the gateway is told to refuse its mail. Idempotent.
   * @throws {BackchannelError} ERR_CLIENT_MAILBOX for an id that is not one of our mailboxes.
   */
  revokeMailbox(id: Uint8Array): void;
  /**
   * Replaces an extra mailbox: makes a new one, and revokes the old one after `graceMs` (default
   * DEFAULT_ROTATION_GRACE_MS), during which both receive. Telling the contact the new address is
   * the caller's part (inside the session).
   * @throws {BackchannelError} ERR_CLIENT_MAILBOX for an id that is not one of our mailboxes in
   *   use; ERR_CLIENT_MAILBOX_LIMIT as createMailbox.
   */
  rotateMailbox(id: Uint8Array, graceMs?: number): NewMailbox;
  /** Our extra mailboxes, revoked ones too, oldest first. */
  mailboxes(): MailboxInfo[];
}
