/**
 * The messages between the page (web/main.ts) and the worker that runs the client engine
 * (web/worker.ts). Byte strings cross as hex (a file's bytes as a Uint8Array); nothing secret crosses at all.
 */

/** What the page asks of the worker. */
export type ToWorker =
  /**
   * Starts the client: `network` is the network file's JSON (served as /network.json); `gateway` a
   * gateway's name for a new client, or null for one at random; `token` an invitation token (64 hex
   * digits) from a token-admission gateway's operator, kept and shown at the next handshake.
   */
  | { readonly type: 'start'; readonly network: unknown; readonly gateway: string | null; readonly token?: string | null }
  /** Stops the engine and closes the store once everything is on disk. */
  | { readonly type: 'stop' }
  /** Sends `text` (UTF-8) to an address: a one-off message through the engine, without the messaging layer. */
  | { readonly type: 'send'; readonly requestId: number; readonly to: string; readonly text: string }
  /** Opens an invite for a contact to be called `name`; its code comes in the `invites` list. */
  | { readonly type: 'invite'; readonly requestId: number; readonly name: string }
  /** Accepts a contact's code; the contact will be called `name`. */
  | { readonly type: 'accept'; readonly requestId: number; readonly code: string; readonly name: string }
  /** Sends `text` to the contact `contact` through the messaging layer (end-to-end encrypted session). */
  | { readonly type: 'say'; readonly requestId: number; readonly contact: string; readonly text: string }
  /** Offers two contacts an introduction to each other (src/messaging/messenger.ts, introduce). */
  | { readonly type: 'introduce'; readonly requestId: number; readonly name1: string; readonly name2: string }
  /** Answers an introduction offered to us: accept (the other becomes contact `name`, default the suggested one) or decline. */
  | { readonly type: 'answer-introduction'; readonly requestId: number; readonly id: number; readonly accept: boolean; readonly name?: string }
  /** Marks a contact's safety number as checked (or clears the mark). */
  | { readonly type: 'verify'; readonly requestId: number; readonly contact: string; readonly verified: boolean }
  /** Sets the name this profile goes by, kept in this browser only (never sent). */
  | { readonly type: 'set-name'; readonly requestId: number; readonly name: string }
  /** Asks for the profile's name (answered with `profile`). */
  | { readonly type: 'get-profile' }
  /** Renames a contact (the new name is ours alone; the contact is not told). */
  | { readonly type: 'rename'; readonly requestId: number; readonly contact: string; readonly name: string }
  /** Forgets a contact, its session and history; the mailbox it writes to is revoked at our gateway. */
  | { readonly type: 'remove'; readonly requestId: number; readonly contact: string }
  /** Blocks (their messages are dropped, we cannot write to them) or unblocks a contact. */
  | { readonly type: 'block'; readonly requestId: number; readonly contact: string; readonly blocked: boolean }
  /** Cancels an open invite by its id (its code stops working). */
  | { readonly type: 'cancel-invite'; readonly requestId: number; readonly id: string }
  /** The conversation with `contact` is on screen: its incoming messages count as read (kept in the store). */
  | { readonly type: 'mark-read'; readonly contact: string }
  /**
   * Sends a file (at most MAX_FILE_LENGTH bytes, src/messaging/content.ts) to a contact; `data` is
   * the file's bytes (the page transfers its buffer). Answered with `done`.
   */
  | { readonly type: 'send-file'; readonly requestId: number; readonly contact: string; readonly name: string; readonly data: Uint8Array }
  /** Asks for a received file's bytes (the history entry `id`); answered with `file`. */
  | { readonly type: 'get-file'; readonly id: number }
  /** Keeps an invitation token (64 hex digits) for a gateway that admits by token: carried from the engine's next link attempt. */
  | { readonly type: 'set-token'; readonly requestId: number; readonly token: string };

export interface ContactView {
  readonly name: string;
  readonly session: string;
  readonly verified: boolean;
  readonly safetyNumber: string;
  /** Blocked: their messages are dropped and nothing can be sent to them. */
  readonly blocked?: boolean;
  /** Incoming messages not yet shown on screen (kept in the store, so a reload keeps the count). */
  readonly unread?: number;
}

export interface HistoryView {
  readonly id: number;
  readonly direction: 'in' | 'out';
  readonly text: string;
  readonly state: string;
  /** A file (text: its name) or a text. */
  readonly kind?: 'text' | 'file';
  readonly fileName?: string | null;
  readonly fileLength?: number | null;
  /** An outgoing file on its way: fragments acknowledged by the contact's gateway of all (null before the first left). */
  readonly progress?: { readonly done: number; readonly total: number } | null;
}

/** A large incoming message (a file or a long text) part-way in. */
export interface ReceivingView {
  readonly contact: string;
  readonly have: number;
  readonly total: number;
}

export interface InviteView {
  readonly id: string;
  readonly role: 'inviter' | 'acceptor';
  readonly name: string;
  readonly stage: string;
  readonly code: string | null;
  readonly failure: string | null;
}

/** An introduction as the page shows it (see Messenger.introductions). */
export interface IntroductionView {
  readonly id: number;
  readonly role: 'made' | 'received';
  readonly from: string | null;
  readonly names: readonly string[];
  readonly answers: readonly string[];
  readonly state: string;
  readonly expiresAt: number;
}

export interface StatusView {
  readonly connected: boolean;
  readonly gateway: string | null;
  readonly epoch: number | null;
  readonly document: string;
  readonly pendingMessages: number;
  readonly packetsSent: { readonly real: number; readonly drop: number; readonly loop: number };
  /** The engine's clocks' restarts (src/client/poisson.ts): a clock that fell more than a second behind, as a throttled timer would. */
  readonly clockRestarts?: { readonly send: number; readonly loop: number; readonly fetch: number };
  /**
   * Whose X25519 makes the packets' header keys: 'WebCrypto' (made ahead of the ticks, in a pool)
   * or '@noble' (at the tick); with WebCrypto, the Sphinx headers built from the pool and at the
   * tick (it was empty) since start.
   */
  readonly crypto?: { readonly x25519: 'WebCrypto' | '@noble'; readonly pooled: number; readonly synchronous: number };
}

/** What the worker tells the page. */
export type FromWorker =
  /** The client's state: `fresh` when this start made its keys. */
  | { readonly type: 'identity'; readonly address: string; readonly gateway: string; readonly fresh: boolean }
  | { readonly type: 'state'; readonly state: 'starting' | 'connecting' | 'connected' | 'disconnected' | 'stopped' }
  /** Something the user must know: another tab holds this profile, the store cannot write, a bad network file. */
  | { readonly type: 'error'; readonly code: string; readonly message: string }
  /** The problem last posted as an error with this code is over (the gateway is reached again, storage writes again, a valid directory came). */
  | { readonly type: 'resolved'; readonly code: string }
  | { readonly type: 'status'; readonly status: StatusView }
  /** The answer to a send: its id (hex) once the message is on disk (queued for good), or why it was refused. */
  | { readonly type: 'queued'; readonly requestId: number; readonly id: string | null; readonly error: string | null }
  /** A one-off message is delivered (acknowledged by the recipient's gateway) or failed. */
  | { readonly type: 'outgoing'; readonly id: string; readonly state: 'delivered' | 'sent' | 'failed' }
  /** A message in the inbox (each is posted once per start; the page keeps them by id). */
  | { readonly type: 'message'; readonly id: string; readonly text: string; readonly receivedAt: number }
  /** The answer to invite, accept or say: null when done (durably), else why not. */
  | { readonly type: 'done'; readonly requestId: number; readonly error: string | null }
  /** The messenger's state: contacts, each one's conversation (the last 200), the invites. */
  | { readonly type: 'messenger'; readonly contacts: readonly ContactView[]; readonly history: Readonly<Record<string, readonly HistoryView[]>>; readonly invites: readonly InviteView[]; readonly introductions?: readonly IntroductionView[]; readonly receiving?: readonly ReceivingView[] }
  /** A received file's bytes (or why not), the answer to `get-file`. */
  | { readonly type: 'file'; readonly id: number; readonly name: string; readonly data: Uint8Array | null; readonly error: string | null }
  /** The profile's own name (null: none picked yet). */
  | { readonly type: 'profile'; readonly name: string | null };
