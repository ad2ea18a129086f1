/**
 * What the client keeps across restarts, as an interface: the SQLite store (sqlite-store.ts) is
 * the Node implementation; tests and the simulator may supply another. Portable: no `node:`
 * imports.
 *
 * Every method is synchronous and durable when it returns. `transaction(fn)` runs `fn` atomically;
 * calls made inside it join it (nested transactions become savepoints), so the engine can, for
 * example, record a fragment, an acknowledgement and the next mailbox sequence in one commit.
 *
 * Identifiers (message ids, SURB ids) are opaque byte strings; the store compares them by value.
 */

/** Where an outgoing message goes. */
export type Destination =
  /** A forward message to an address: the recipient's gateway (its identity key) and mailbox. */
  | { readonly kind: 'address'; readonly gateway: Uint8Array; readonly mailbox: Uint8Array }
  /** An anonymous reply through the SURBs that came with the inbox message `inReplyTo`. */
  | { readonly kind: 'reply'; readonly inReplyTo: Uint8Array };

export type OutgoingStatus = 'pending' | 'delivered' | 'sent' | 'failed';

export interface OutgoingMessage {
  readonly id: Uint8Array;
  readonly destination: Destination;
  /** Total length of the encoded message (SURBs included). */
  readonly length: number;
  readonly fragments: number;
  readonly createdAt: number;
  /**
   * pending: fragments wait or are unacknowledged; delivered: every fragment acknowledged;
   * sent: a reply whose fragments all left (replies have no acknowledgement); failed: retries ran out.
   */
  readonly status: OutgoingStatus;
  /** Fragments acknowledged (or, for a reply, sent) so far. */
  readonly done: number;
}

/** One fragment of an outgoing message, as the retransmission scheduler needs it. */
export interface OutgoingFragment {
  readonly messageId: Uint8Array;
  readonly index: number;
  /** The plaintext fragment frame (frames.ts), exactly the frame length of the geometry. */
  readonly frame: Uint8Array;
  readonly destination: Destination;
  /** For a reply fragment: the SURB reserved for it at enqueue time; otherwise null. */
  readonly replySurb: Uint8Array | null;
  /** Times it was put on the link. */
  readonly attempts: number;
  /** When it is next due (ms since the Unix epoch); queued fragments are due at once. */
  readonly dueAt: number;
  /** When the last attempt left, or null before the first. */
  readonly lastSentAt: number | null;
}

/** What a SURB id that comes back in our mailbox stands for. */
export type SurbRecord =
  /** The acknowledgement of one fragment (real message) attempt. */
  | { readonly purpose: 'ack'; readonly keys: Uint8Array; readonly messageId: Uint8Array; readonly index: number; readonly sentAt: number; readonly attempt: number }
  /** The acknowledgement of a loop cover packet; it carries nothing to update. */
  | { readonly purpose: 'loop'; readonly keys: Uint8Array; readonly sentAt: number }
  /** A SURB we handed to a correspondent with message `messageId`, for an anonymous reply. */
  | { readonly purpose: 'reply'; readonly keys: Uint8Array; readonly messageId: Uint8Array };

/** A message reassembled in the inbox. */
export interface InboxMessage {
  /** Increases with every message stored; `recv` walks the inbox in this order. */
  readonly seq: number;
  readonly id: Uint8Array;
  readonly body: Uint8Array;
  readonly receivedAt: number;
  /** SURBs that came with it and are not used yet (an anonymous sender allows that many reply fragments). */
  readonly replySurbs: number;
  /** Set when it arrived as a reply through one of our SURBs: the id of our message it answers. */
  readonly inReplyTo: Uint8Array | null;
  /** The sender's clock when it sent the message (ms, whole seconds); null or absent when the message did not say. */
  readonly sentAt?: number | null;
  /** The name of the file the body is, as the sender gave it (a plain name, frames.ts); null or absent for a plain message. */
  readonly fileName?: string | null;
  /** Whether the user had it (recv); absent where the store does not say. */
  readonly consumed?: boolean;
  /** The extra mailbox it came to (its id), or null for our main mailbox (and for replies). */
  readonly mailbox: Uint8Array | null;
}

/** What `putFragment`'s `assemble` makes of a whole message's bytes (frames.ts decodeMessage). */
export interface AssembledMessage {
  readonly body: Uint8Array;
  readonly replySurbs: readonly Uint8Array[];
  /** A version-2 message's send time (whole seconds) and file name; null or absent for version 1. */
  readonly meta?: { readonly sentAtS: number; readonly fileName: string | null } | null;
}

/** Why our gateway refused to register an extra mailbox (the wire's results that are not ok or pending). */
export type MailboxRefusal = 'limit' | 'taken' | 'revoked' | 'invalid';

/** One of our extra mailboxes at our gateway (its private key is not part of it: `mailboxKey`). */
export interface ExtraMailbox {
  /** Its id: the X25519 public key mail for it is sealed to, the Sphinx recipient of that mail. */
  readonly id: Uint8Array;
  readonly createdAt: number;
  /** Our gateway confirmed the registration (it is on the gateway's disk). */
  readonly registered: boolean;
  /** Our gateway refused the registration, and why; null otherwise. */
  readonly refused: MailboxRefusal | null;
  /** When a rotation revokes it (the end of its grace period), or null. */
  readonly revokeAt: number | null;
  /** The mailbox that replaces it (a rotation), or null. */
  readonly replacedBy: Uint8Array | null;
  /** When we revoked it: its key is erased from then on, and what comes to it is dropped. Null while in use. */
  readonly revokedAt: number | null;
  /** Our gateway confirmed the revocation (it refuses mail for it from then on). */
  readonly revokeConfirmed: boolean;
}

/**
 * A change to an extra mailbox's record; fields left out stay as they are. Setting `revokedAt`
 * erases the private key in the same transaction.
 */
export interface ExtraMailboxChange {
  readonly registered?: boolean;
  readonly refused?: MailboxRefusal | null;
  readonly revokeAt?: number | null;
  readonly replacedBy?: Uint8Array | null;
  readonly revokedAt?: number;
  readonly revokeConfirmed?: boolean;
}

/** The result of storing one received fragment. */
export type FragmentResult =
  | { readonly kind: 'duplicate' } // this fragment (or its whole message) was had before
  | { readonly kind: 'partial'; readonly have: number; readonly count: number }
  | { readonly kind: 'complete'; readonly message: InboxMessage };

export interface ClientStore {
  /** Runs `fn` in one transaction (a savepoint when nested) and returns its result. */
  transaction<T>(fn: () => T): T;

  // ---- identity and settings (small key/value pairs) ----
  /** A setting, or null when unset. Settings hold the link private key, the gateway, the network. */
  getSetting(key: string): Uint8Array | null;
  setSetting(key: string, value: Uint8Array): void;

  // ---- mailbox position ----
  /** The next mailbox sequence to ask the gateway for (0 at first). */
  nextMailboxSeq(): number;
  setNextMailboxSeq(seq: number): void;

  // ---- outgoing ----
  /**
   * Stores a message and its fragment frames (all queued, due at `createdAt`) and returns the
   * fragments as pendingFragments() would list them. For a reply, takes one unused SURB of the
   * inbox message per fragment and marks them used.
   * @throws {BackchannelError} ERR_CLIENT_NO_SURBS when a reply needs more SURBs than remain;
   *   ERR_CLIENT_STATE when `inReplyTo` names no inbox message.
   */
  enqueue(message: { id: Uint8Array; destination: Destination; length: number; createdAt: number }, frames: readonly Uint8Array[]): OutgoingFragment[];
  /** Every fragment still waiting or unacknowledged, of pending messages, in no particular order. */
  pendingFragments(): OutgoingFragment[];
  /**
   * Records that fragment (messageId, index) leaves now: attempts + 1, lastSentAt = now, due again
   * at `dueAt` (for a reply fragment the engine passes null: it is done, never retransmitted).
   */
  recordAttempt(messageId: Uint8Array, index: number, now: number, dueAt: number | null): void;
  /**
   * Marks a fragment acknowledged (idempotent). Returns the message after the update, or null for
   * an unknown message. When every fragment is acknowledged the status becomes 'delivered'; when
   * every reply fragment has left, 'sent'.
   */
  fragmentDone(messageId: Uint8Array, index: number): OutgoingMessage | null;
  /** Marks a pending message failed; its fragments are no longer pending. */
  failMessage(messageId: Uint8Array): OutgoingMessage | null;
  outgoing(messageId: Uint8Array): OutgoingMessage | null;
  /** Deletes finished (delivered, sent, failed) messages created before `before`; returns how many. */
  pruneOutgoing(before: number): number;

  // ---- SURBs we made ----
  /** Stores the decryption keys of a SURB we made. */
  putSurb(id: Uint8Array, record: SurbRecord, createdAt: number): void;
  surb(id: Uint8Array): SurbRecord | null;
  deleteSurb(id: Uint8Array): void;
  /** Deletes SURBs made before `before` (they outlived their mix keys); returns how many. */
  pruneSurbs(before: number): number;

  // ---- incoming ----
  /**
   * Stores fragment `index` of `count` of message `messageId`; when it completes the message,
   * joins the fragments in index order and decodes nothing: `assemble` turns the joined bytes
   * into the body and the reply SURBs it carries (it may throw; then the message is dropped and
   * the error rethrown). A fragment of a message already in the inbox is a duplicate. The
   * message is recorded as come to `mailbox`, the extra mailbox of the fragment that completes it.
   */
  putFragment(
    fragment: { messageId: Uint8Array; index: number; count: number; data: Uint8Array; receivedAt: number; inReplyTo: Uint8Array | null; mailbox?: Uint8Array | null },
    assemble: (joined: Uint8Array) => AssembledMessage,
  ): FragmentResult;
  /** Deletes fragments of incomplete messages older than `before`; returns how many. */
  pruneFragments(before: number): number;
  /** Inbox messages not yet consumed, oldest first, at most `limit`, with seq > `afterSeq`. */
  unconsumed(afterSeq: number, limit: number): InboxMessage[];
  /** Marks an inbox message consumed (the user has it). Idempotent. */
  consume(seq: number): void;
  /** The inbox message with this id, or null. */
  inboxMessage(id: Uint8Array): InboxMessage | null;
  /** Every inbox message, consumed or not (with `consumed` set), oldest first, at most `limit`, with seq > `afterSeq`. */
  inboxPage(afterSeq: number, limit: number): InboxMessage[];
  /** Inbox messages whose id in hex starts with `prefixHex` (any case), oldest first, at most `limit`. */
  inboxByPrefix(prefixHex: string, limit: number): InboxMessage[];

  // ---- extra mailboxes (one per contact, at our gateway) ----
  /** Stores a new extra mailbox and its private key (not yet registered). */
  putMailbox(id: Uint8Array, privateKey: Uint8Array, createdAt: number): void;
  /** Every extra mailbox we hold or revoked, oldest first. */
  mailboxes(): ExtraMailbox[];
  /** A copy of an extra mailbox's private key (the caller wipes it), or null when unknown or revoked. */
  mailboxKey(id: Uint8Array): Uint8Array | null;
  /** Changes an extra mailbox's record; returns it after the change, or null when unknown. */
  updateMailbox(id: Uint8Array, change: ExtraMailboxChange): ExtraMailbox | null;

  close(): void;
}
