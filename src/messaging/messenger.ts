/**
 * The messenger: contacts by name over the client engine. It turns contact cards into sessions,
 * text and files into ratchet messages sent as client messages, and inbox messages back into
 * per-contact history, with delivery receipts. Portable: the host gives it a `MessengerPort` (the
 * client engine's send, outgoing, unconsumed and consume), a store, the crypto backend and a clock.
 *
 * - Contacts: `addContact(name, ourCard, theirCard)`. The side whose X25519 identity key sorts
 *   lower opens the session at once (its first messages carry the X3DH set-up) and sends a
 *   `hello`; the other side waits for it, queueing what its user writes meanwhile.
 * - Incoming: every inbox message is offered to `handleInbox`. A body of BODY_LENGTH bytes is
 *   tried against each contact's session (the header decryption fails fast for the wrong one),
 *   then, for a set-up, against our one-time prekeys; an attachment body is matched by its id.
 *   What belongs to no contact stays in the inbox for `client recv`. Everything a message causes
 *   (session state, history row, receipt sent, consume of the inbox entry) commits in one store
 *   transaction: a crash at any point neither loses the message nor shows it twice.
 * - States of an outgoing message: queued (until the contact's gateway acknowledged every
 *   fragment), sent (it did), delivered (the contact's client confirmed, inside the session, that
 *   it stored the message), failed (the client gave up).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { concatBytes, equalBytes, wipe } from '../util/bytes.js';
import { CARD_LENGTH, type MailAddress, decodeCard, encodeCard } from './card.js';
import { PREKEY_FIELDS_LENGTH, DH_LENGTH, MESSAGE_TYPE_PREKEY } from './constants.js';
import {
  ATTACHMENT_ID_LENGTH,
  ATTACHMENT_MAGIC,
  type Content,
  FILE_KEY_LENGTH,
  INTRO_CARD_PARTS,
  INTRO_CARD_PART_LENGTH,
  INTRO_ID_LENGTH,
  MAX_FILE_LENGTH,
  MAX_FILE_NAME,
  MAX_INLINE_TEXT,
  MAX_RECEIPT_IDS,
  MSG_ID_LENGTH,
  attachmentIdOf,
  decodeContent,
  encodeContent,
  padBody,
  unpadBody,
} from './content.js';
import {
  type Identity,
  type PrekeyStore,
  createBundle,
  createPrekeyStore,
  decodeIdentity,
  decodePrekeyStore,
  encodeIdentity,
  encodePrekeyStore,
  generateIdentity,
  takePrekey,
} from './identity.js';
import { type MessagingComponents, Session, parseFrame } from './ratchet.js';
import { compareBytes, safetyNumber } from './safety.js';
import type { ContactRecord, HistoryRecord, HistoryState, IntroductionRecord, IntroductionState, MessengerStore, NewHistory } from './store.js';
import { acceptSession, initiateSession } from './x3dh.js';

/** Set-up messages from strangers held at most (until their sender becomes a contact). */
export const MAX_HELD_SETUPS = 64;
/** Attachments held at most whose announcement has not come yet. */
export const MAX_ORPHAN_ATTACHMENTS = 16;
/** The longest contact name (UTF-16 units). */
export const MAX_CONTACT_NAME = 64;
/** How long an introduction waits for both answers (the introducer's clock) or for the user's (the invitee's). */
export const INTRODUCTION_TTL_MS = 7 * 24 * 3600_000;
/** How much longer an invitee who accepted waits for the other's card (delivery can lag the introducer's forward). */
export const INTRODUCTION_GRACE_MS = 24 * 3600_000;
/**
 * How long a finished introduction (done, declined, expired, failed) stays listed, counted from
 * the end of its answer window (INTRODUCTION_TTL_MS + INTRODUCTION_GRACE_MS after it was made or
 * offered, so that no answer or card for it can still be on its way); then it is deleted.
 */
export const INTRODUCTION_RETENTION_MS = 14 * 24 * 3600_000;
/** Incoming messages of several fragments whose progress is remembered at most (the oldest go). */
export const MAX_RECEIVING = 64;
/**
 * The fewest fragments an incoming message has for its progress to be shown: anything shorter
 * completes within a few fetches anyway.
 */
export const MIN_RECEIVING_FRAGMENTS = 8;
/** An incoming message whose fragments stopped coming for this long is no longer shown as coming. */
export const RECEIVING_STALE_MS = 10 * 60_000;
/** Offers from one contact not yet answered, held at most (more are dropped and counted). */
export const MAX_OPEN_OFFERS_PER_CONTACT = 16;
/** Inbox sequence numbers whose fate is remembered (so that a second look at one costs nothing). */
const SEEN_CACHE = 4096;
const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

/** An inbox message as the messenger sees it. `mailbox`: the per-contact mailbox it came to, when the host knows. */
export interface MessengerInboxMessage {
  readonly seq: number;
  readonly body: Uint8Array;
  readonly receivedAt: number;
  readonly mailbox?: Uint8Array;
}

export type ClientMessageState = 'pending' | 'delivered' | 'sent' | 'failed';

/** What the messenger needs of the client engine. `send` and `consume` join the store's open transaction. */
export interface MessengerPort {
  /** Whether `send` works now (the client has a network document); until then sends wait. */
  ready(): boolean;
  /** Queues a message to `to`, durable when it returns; the client message's id. */
  send(to: MailAddress, body: Uint8Array): Uint8Array;
  outgoing(id: Uint8Array): ClientMessageState | null;
  unconsumed(afterSeq: number, limit: number): MessengerInboxMessage[];
  consume(seq: number): void;
}

export interface MessengerOptions {
  readonly port: MessengerPort;
  readonly store: MessengerStore;
  readonly crypto: CryptoBackend;
  readonly now: () => number;
  /**
   * The address a new contact is to write to (the seam for per-contact mailboxes): today the
   * client's own address.
   */
  readonly ourAddressForNewContact: () => MailAddress;
  /**
   * Gives back an address that `ourAddressForNewContact` made for a card that will never be used
   * (an introduction accepted that expired or failed): in the client, the mailbox is revoked.
   */
  readonly releaseAddress?: (address: MailAddress) => void;
}

export type SessionStatus = 'starting' | 'waiting' | 'up';

export interface Contact {
  readonly name: string;
  /** The contact's X25519 identity key, hex (not secret; shown so that a user can tell two apart). */
  readonly identityKey: string;
  readonly verified: boolean;
  readonly blocked: boolean;
  readonly createdAt: number;
  /** starting: we opened the session, no reply yet; waiting: the contact opens it; up. */
  readonly session: SessionStatus;
}

export interface HistoryEntry {
  readonly id: number;
  readonly contact: string;
  readonly direction: 'in' | 'out';
  readonly kind: 'text' | 'file';
  readonly text: string | null;
  readonly fileName: string | null;
  readonly fileLength: number | null;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly state: HistoryState;
  readonly read: boolean;
}

/** An introduction as the user sees it. */
export interface Introduction {
  readonly id: number;
  /** made: we introduced two contacts; received: a contact offered us an introduction. */
  readonly role: 'made' | 'received';
  /** Received: the name of the contact who offered it; made: null. */
  readonly from: string | null;
  /** Made: the two contacts introduced; received: the name the other party is to get (suggested, or chosen at accept). */
  readonly names: readonly string[];
  /** Made: each one's answer so far. */
  readonly answers: ReadonlyArray<'pending' | 'accepted' | 'declined'>;
  readonly state: IntroductionState;
  readonly createdAt: number;
  /** Until when an answer is taken. */
  readonly expiresAt: number;
}

export type MessengerEvent =
  /** An incoming message completed (text, or a file with its data). */
  | { readonly type: 'message'; readonly entry: HistoryEntry }
  /** An outgoing message changed state. */
  | { readonly type: 'state'; readonly entry: HistoryEntry }
  /** Part of a large message (a file or a long text) from `contact` came: `have` of `total` fragments. */
  | { readonly type: 'receiving'; readonly receiving: Receiving }
  /** An introduction was offered to us, or one changed state (see `introductionNotices`). */
  | { readonly type: 'introduction'; readonly introduction: Introduction };

/** A large message from a contact on its way in (fragments stored so far of its total). */
export interface Receiving {
  readonly contact: string;
  readonly have: number;
  readonly total: number;
}

/**
 * What a viewer (`recv --follow`, `chat`) is to show of an introduction once: `offer`, one
 * offered to us and not answered; `outcome`, one that finished (the new contact is usable, or it
 * was declined, expired or failed). Marked shown with `markIntroductionShown`.
 */
export interface IntroductionNotice {
  readonly kind: 'offer' | 'outcome';
  readonly introduction: Introduction;
}

/** IntroductionRecord.shown's bits. */
const SHOWN_OFFER = 1;
const SHOWN_OUTCOME = 2;
const FINISHED: ReadonlySet<IntroductionState> = new Set(['done', 'declined', 'expired', 'failed']);

/** Drops counted by reason (no content, keys or ids in them). */
export interface MessengerDrops {
  duplicate: number;
  lost: number;
  malformed: number;
  unsupported: number;
  blocked: number;
  staleSetup: number;
  badAttachment: number;
  /** Introduction messages that name no introduction of the sender's, come twice or too late, or carry an unusable card. */
  introduction: number;
}

function introError(message: string): BackchannelError {
  return new BackchannelError('ERR_MSG_INTRODUCTION', `messenger: ${message}`);
}

function contactError(message: string): BackchannelError {
  return new BackchannelError('ERR_MSG_CONTACT', `messenger: ${message}`);
}

/**
 * Checks a contact name: 1 to MAX_CONTACT_NAME characters, no control characters, no leading or
 * trailing space, not starting with "-" (it would read as an option).
 * @throws {BackchannelError} ERR_MSG_CONTACT.
 */
export function checkContactName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_CONTACT_NAME) throw contactError(`a contact name is 1 to ${MAX_CONTACT_NAME} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name) || name.trim() !== name || name.startsWith('-')) {
    throw contactError('a contact name has no control characters, no leading or trailing spaces, and does not start with "-"');
  }
  return name;
}

function sealAttachment(c: CryptoBackend, key: Uint8Array, id: Uint8Array, data: Uint8Array): Uint8Array {
  const header = concatBytes(ATTACHMENT_MAGIC, id);
  return concatBytes(header, c.chacha20Poly1305Seal(key, new Uint8Array(12), header, data));
}

function openAttachment(c: CryptoBackend, key: Uint8Array, body: Uint8Array): Uint8Array | null {
  const n = ATTACHMENT_MAGIC.length + ATTACHMENT_ID_LENGTH;
  return c.chacha20Poly1305Open(key, new Uint8Array(12), body.subarray(0, n), body.subarray(n));
}

export class Messenger {
  readonly #o: MessengerOptions;
  readonly #c: MessagingComponents;
  readonly #identity: Identity;
  readonly #listeners = new Set<(e: MessengerEvent) => void>();
  /** seq -> whether the messenger took the inbox message. */
  readonly #seen = new Map<number, boolean>();
  readonly drops: MessengerDrops = { duplicate: 0, lost: 0, malformed: 0, unsupported: 0, blocked: 0, staleSetup: 0, badAttachment: 0, introduction: 0 };
  /** Introductions inserted or changed since the last events went out (their ids). */
  readonly #introsChanged = new Set<number>();
  /** Large incoming messages on their way (key: the host's id for the client message), in memory only. */
  readonly #receiving = new Map<string, { contactId: number; have: number; total: number; at: number }>();

  constructor(opts: MessengerOptions) {
    this.#o = opts;
    this.#c = { crypto: opts.crypto, now: opts.now };
    this.#identity = opts.store.transaction(() => {
      const stored = opts.store.getValue('identity');
      if (stored !== null) return decodeIdentity(opts.crypto, stored);
      const id = generateIdentity(opts.crypto);
      const bytes = encodeIdentity(id);
      opts.store.setValue('identity', bytes);
      wipe(bytes);
      return id;
    });
  }

  /** Our X25519 identity key. */
  get identityKey(): Uint8Array {
    return this.#identity.dhPublic.slice();
  }

  subscribe(listener: (e: MessengerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(events: MessengerEvent[]): void {
    if (this.#introsChanged.size > 0) {
      const ids = [...this.#introsChanged];
      this.#introsChanged.clear();
      for (const id of ids) {
        const r = this.#o.store.introduction(id);
        if (r !== null) events.push({ type: 'introduction', introduction: this.#introView(r) });
      }
    }
    for (const e of events) {
      for (const l of [...this.#listeners]) {
        try {
          l(e);
        } catch {
          // a listener's failure is its own
        }
      }
    }
  }

  /**
   * Processes what the inbox holds (a restart's backlog) and brings outgoing states up to date
   * with the client's. Call once the port works.
   */
  start(): void {
    for (const h of this.#o.store.inFlight()) this.#refreshOutgoing(h);
    let after = 0;
    for (;;) {
      const page = this.#o.port.unconsumed(after, 64);
      for (const m of page) {
        after = m.seq;
        this.handleInbox(m);
      }
      if (page.length < 64) break;
    }
  }

  // ---- contacts ----

  /** Our card for one new contact: our identity, a fresh one-time prekey, the address to write to. */
  newCard(): Uint8Array {
    return this.#o.store.transaction(() => {
      const prekeys = this.#prekeys();
      const bundle = createBundle(this.#o.crypto, this.#identity, prekeys);
      this.#savePrekeys(prekeys);
      return encodeCard({ bundle, address: this.#o.ourAddressForNewContact() });
    });
  }

  /**
   * Our card to give by hand (`client contact export`): a new card, remembered as the one that
   * `importContact` names as ours.
   */
  exportCard(): Uint8Array {
    return this.#o.store.transaction(() => {
      const card = this.newCard();
      this.#o.store.setValue('exportedCard', card);
      return card;
    });
  }

  /** `addContact` with the card `exportCard` made last as ours (a new one if none was). */
  importContact(name: string, theirCard: Uint8Array): Contact {
    checkContactName(name);
    decodeCard(theirCard);
    const ours = this.#o.store.getValue('exportedCard') ?? this.newCard();
    return this.addContact(name, ours, theirCard);
  }

  /**
   * Makes `theirCard`'s holder a contact named `name`, `ourCard` being the card we gave them.
   * When our identity key sorts lower, opens the session and sends a hello at once.
   * @throws {BackchannelError} ERR_MSG_ENCODING for a malformed card; ERR_MSG_CONTACT for a bad or
   *   taken name, our own card given as theirs, a card not ours as ours, or an identity that is a
   *   contact already; ERR_MSG_KEY for invalid keys in their card.
   */
  addContact(name: string, ourCard: Uint8Array, theirCard: Uint8Array): Contact {
    checkContactName(name);
    const ours = decodeCard(ourCard);
    const theirs = decodeCard(theirCard);
    if (!equalBytes(ours.bundle.identityKey, this.#identity.dhPublic)) throw contactError('the card given as ours is not ours');
    if (equalBytes(theirs.bundle.identityKey, this.#identity.dhPublic)) throw contactError('that card is our own');
    const events: MessengerEvent[] = [];
    const contact = this.#o.store.transaction(() => {
      const all = this.#o.store.contacts();
      if (all.some((c) => c.name === name)) throw contactError('a contact of that name exists already');
      if (all.some((c) => equalBytes(c.identityKey, theirs.bundle.identityKey))) throw contactError('that identity is a contact already (under another name)');
      const initiator = compareBytes(this.#identity.dhPublic, theirs.bundle.identityKey) < 0;
      let session: Session | null = null;
      if (initiator) {
        session = initiateSession(this.#identity, theirs.bundle, this.#c);
        // Our card's prekey will not be used: the session is ours to open.
        const prekeys = this.#prekeys();
        if (prekeys.keys.has(ours.bundle.prekeyId)) {
          wipe(takePrekey(prekeys, ours.bundle.prekeyId));
          this.#savePrekeys(prekeys);
        }
      }
      const record: Omit<ContactRecord, 'id'> = {
        name,
        identityKey: theirs.bundle.identityKey,
        kemKey: theirs.bundle.kemPublicKey,
        gateway: theirs.address.gateway,
        mailbox: theirs.address.mailbox,
        ourMailbox: ours.address.mailbox,
        session: null,
        helloDue: initiator,
        receiptsDue: new Uint8Array(0),
        initiator,
        verified: false,
        blocked: false,
        createdAt: this.#o.now(),
      };
      const id = this.#o.store.insertContact(record);
      const c = this.#o.store.contact(id)!;
      if (session !== null) {
        this.#pump(c, session);
        this.#saveSession(c, session);
      } else {
        // Its set-up may have come before we knew them.
        for (const h of this.#o.store.held()) {
          const frame = parseFrame(h.data);
          if (frame.prekeyFields === null || !equalBytes(frame.prekeyFields.subarray(0, DH_LENGTH), c.identityKey)) continue;
          this.#o.store.deleteHeld(h.id);
          if (c.session !== null) {
            const got = this.#tryContact(c, h.data);
            if (got !== null && got !== 'replay') {
              this.#onContent(c, got.session, got.plaintext, this.#o.now(), events);
              got.session.destroy();
            }
          } else this.#accept(c, h.data, this.#o.now(), events);
        }
      }
      return this.#o.store.contact(id)!;
    });
    this.#emit(events);
    return this.#view(contact);
  }

  contacts(): Contact[] {
    return this.#o.store.contacts().map((c) => this.#view(c)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #byName(name: string): ContactRecord {
    const c = this.#o.store.contacts().find((x) => x.name === name);
    if (c === undefined) throw contactError('no contact of that name (see: client contacts)');
    return c;
  }

  contact(name: string): Contact {
    return this.#view(this.#byName(name));
  }

  rename(oldName: string, newName: string): Contact {
    checkContactName(newName);
    return this.#o.store.transaction(() => {
      const c = this.#byName(oldName);
      if (oldName !== newName && this.#o.store.contacts().some((x) => x.name === newName)) throw contactError('a contact of that name exists already');
      c.name = newName;
      this.#o.store.updateContact(c);
      return this.#view(c);
    });
  }

  /** Forgets a contact, its session and its history. */
  remove(name: string): void {
    this.#o.store.transaction(() => this.#o.store.deleteContact(this.#byName(name).id));
  }

  setVerified(name: string, verified: boolean): Contact {
    return this.#o.store.transaction(() => {
      const c = this.#byName(name);
      c.verified = verified;
      this.#o.store.updateContact(c);
      return this.#view(c);
    });
  }

  setBlocked(name: string, blocked: boolean): Contact {
    return this.#o.store.transaction(() => {
      const c = this.#byName(name);
      c.blocked = blocked;
      this.#o.store.updateContact(c);
      return this.#view(c);
    });
  }

  /** The mailbox id of ours that contact `name` writes to (from the card we gave it). */
  ourMailboxOf(name: string): Uint8Array {
    return this.#byName(name).ourMailbox.slice();
  }

  /** The 60-digit number both sides print for each other (safety.ts). */
  safetyNumber(name: string): string {
    const c = this.#byName(name);
    return safetyNumber({ dhKey: this.#identity.dhPublic, kemKey: this.#identity.kem.publicKey }, { dhKey: c.identityKey, kemKey: c.kemKey });
  }

  // ---- sending ----

  /**
   * Sends `text` to contact `name` (a text longer than one ratchet message goes as an attachment
   * flagged as text). Durable when it returns.
   * @throws {BackchannelError} ERR_MSG_CONTACT for an unknown or blocked contact; ERR_MSG_TOO_LONG
   *   for an empty or too long text.
   */
  sendText(name: string, text: string): HistoryEntry {
    const bytes = te.encode(text);
    if (bytes.length === 0) throw new BackchannelError('ERR_MSG_TOO_LONG', 'messenger: the message is empty');
    if (bytes.length > MAX_INLINE_TEXT) return this.#sendFile(name, '', bytes, true, text);
    return this.#send(name, (msgId, sentAt) => ({
      row: { kind: 'text', text, fileName: null, fileLength: null, attachmentId: null, fileKey: null, fileSha256: null, fileData: null },
      content: { kind: 'text', msgId, sentAt, text },
    }));
  }

  /**
   * Sends a file: its bytes sealed under a fresh key as a client message of their own, and the
   * key, length, SHA-256 and name inside the session.
   * @throws {BackchannelError} ERR_MSG_CONTACT; ERR_MSG_ATTACHMENT for an empty or too long file
   *   or name.
   */
  sendFile(name: string, fileName: string, data: Uint8Array): HistoryEntry {
    return this.#sendFile(name, fileName, data, false, null);
  }

  #sendFile(name: string, fileName: string, data: Uint8Array, longText: boolean, text: string | null): HistoryEntry {
    if (data.length === 0 || data.length > MAX_FILE_LENGTH) throw new BackchannelError('ERR_MSG_ATTACHMENT', `messenger: a file is 1 to ${MAX_FILE_LENGTH} bytes`);
    if (te.encode(fileName).length > MAX_FILE_NAME) throw new BackchannelError('ERR_MSG_ATTACHMENT', `messenger: a file name is at most ${MAX_FILE_NAME} bytes`);
    const c = this.#o.crypto;
    const attachmentId = c.randomBytes(ATTACHMENT_ID_LENGTH);
    const key = c.randomBytes(FILE_KEY_LENGTH);
    const digest = sha256(data);
    return this.#send(name, (msgId, sentAt) => ({
      row: { kind: longText ? 'text' : 'file', text, fileName: longText ? null : fileName, fileLength: data.length, attachmentId, fileKey: key, fileSha256: digest, fileData: longText ? null : data.slice() },
      content: { kind: 'file', msgId, sentAt, attachmentId, key, length: data.length, sha256: digest, longText, name: fileName },
      file: data,
    }));
  }

  #send(
    name: string,
    make: (msgId: Uint8Array, sentAt: number) => { row: Pick<NewHistory, 'kind' | 'text' | 'fileName' | 'fileLength' | 'attachmentId' | 'fileKey' | 'fileSha256' | 'fileData'>; content: Content },
  ): HistoryEntry {
    const events: MessengerEvent[] = [];
    const entry = this.#o.store.transaction(() => {
      const contact = this.#byName(name);
      if (contact.blocked) throw contactError('that contact is blocked');
      const msgId = this.#o.crypto.randomBytes(MSG_ID_LENGTH);
      const now = this.#o.now();
      const { row, content } = make(msgId, now);
      const id = this.#o.store.insertHistory({
        contactId: contact.id, direction: 'out', msgId, sentAt: now, receivedAt: now, state: 'queued',
        clientId: null, fileClientId: null, pending: encodeContent(content), read: true, ...row,
      });
      if (contact.session !== null) {
        const session = Session.decode(contact.session, this.#c);
        this.#pump(contact, session);
        this.#saveSession(contact, session);
        session.destroy();
      }
      const e = this.#entry(this.#o.store.historyEntry(id)!, contact);
      events.push({ type: 'state', entry: e });
      return e;
    });
    this.#emit(events);
    return entry;
  }

  /** Sends a history row's content (and its file first), recording the client message ids. */
  #transmit(contact: ContactRecord, session: Session, h: HistoryRecord): void {
    const content = decodeContent(h.pending!);
    if (content.kind === 'file') {
      const data = h.fileData ?? (h.text !== null ? te.encode(h.text) : null);
      if (data === null) throw new BackchannelError('ERR_MSG_ATTACHMENT', 'messenger: the file to send is no longer stored');
      h.fileClientId = this.#o.port.send({ gateway: contact.gateway, mailbox: contact.mailbox }, sealAttachment(this.#o.crypto, content.key, content.attachmentId, data));
      h.fileKey = null;
    }
    h.clientId = this.#sendContent(contact, session, content);
    h.pending = null;
    this.#o.store.updateHistory(h);
  }

  #sendContent(contact: ContactRecord, session: Session, content: Content): Uint8Array {
    const plaintext = encodeContent(content);
    try {
      return this.#o.port.send({ gateway: contact.gateway, mailbox: contact.mailbox }, padBody(session.encrypt(plaintext)));
    } finally {
      wipe(plaintext);
    }
  }

  /**
   * Sends what is due to a contact whose session is up, when the client can send: the hello,
   * receipts, then queued messages oldest first. The caller stores the contact and session.
   */
  #pump(contact: ContactRecord, session: Session): void {
    if (!this.#o.port.ready()) return;
    if (contact.helloDue) {
      this.#sendContent(contact, session, { kind: 'hello', sentAt: this.#o.now() });
      contact.helloDue = false;
    }
    while (contact.receiptsDue.length > 0) {
      const n = Math.min(contact.receiptsDue.length / MSG_ID_LENGTH, MAX_RECEIPT_IDS);
      const ids: Uint8Array[] = [];
      for (let i = 0; i < n; i++) ids.push(contact.receiptsDue.slice(i * MSG_ID_LENGTH, (i + 1) * MSG_ID_LENGTH));
      this.#sendContent(contact, session, { kind: 'receipt', msgIds: ids });
      contact.receiptsDue = contact.receiptsDue.slice(n * MSG_ID_LENGTH);
    }
    for (const q of this.#o.store.controlDue(contact.id)) {
      this.#sendContent(contact, session, decodeContent(q.content));
      wipe(q.content);
      this.#o.store.deleteControl(q.id);
    }
    for (const h of this.#o.store.queuedForSession(contact.id)) this.#transmit(contact, session, h);
  }

  /**
   * Sends whatever waited for the client to be able to send (call when it gets a network
   * document, and now and then). Returns how many contacts had something due.
   */
  tick(): number {
    this.#expireIntroductions();
    if (!this.#o.port.ready()) return 0;
    let n = 0;
    for (const c of this.#o.store.contacts()) {
      if (c.session === null || (!c.helloDue && c.receiptsDue.length === 0 && this.#o.store.queuedForSession(c.id).length === 0 && this.#o.store.controlDue(c.id).length === 0)) continue;
      n++;
      this.#o.store.transaction(() => {
        const fresh = this.#o.store.contact(c.id);
        if (fresh === null || fresh.session === null) return;
        const session = Session.decode(fresh.session, this.#c);
        this.#pump(fresh, session);
        this.#saveSession(fresh, session);
        session.destroy();
      });
    }
    return n;
  }

  // ---- the client's events ----

  /** The client reports a state of an outgoing client message. */
  onOutgoing(clientId: Uint8Array): void {
    const events: MessengerEvent[] = [];
    this.#o.store.transaction(() => {
      const h = this.#o.store.historyByClientId(clientId);
      if (h !== null && this.#refreshOutgoing(h)) events.push({ type: 'state', entry: this.#entry(h) });
    });
    this.#emit(events);
  }

  /** Updates a row from its client messages' states; true when it changed. */
  #refreshOutgoing(h: HistoryRecord): boolean {
    if (h.state !== 'queued' || h.clientId === null) return false;
    const states = [this.#o.port.outgoing(h.clientId), ...(h.fileClientId === null ? [] : [this.#o.port.outgoing(h.fileClientId)])];
    let next: HistoryState | null = null;
    if (states.some((s) => s === 'failed')) next = 'failed';
    else if (states.every((s) => s === 'delivered' || s === 'sent')) next = 'sent';
    if (next === null) return false;
    h.state = next;
    this.#o.store.updateHistory(h);
    return true;
  }

  /**
   * Offers an inbox message to the messenger: true when it belonged to a contact (or to a
   * set-up held for one) and has been consumed; false when it stays in the inbox. Idempotent.
   */
  handleInbox(m: MessengerInboxMessage): boolean {
    const known = this.#seen.get(m.seq);
    if (known !== undefined) return known;
    const events: MessengerEvent[] = [];
    let taken: boolean;
    try {
      taken = this.#o.store.transaction(() => {
        const t = this.#inbox(m, events);
        if (t) this.#o.port.consume(m.seq);
        return t;
      });
    } catch (e) {
      // A failure of the store or of stored state: nothing was committed; the message stays
      // in the inbox and is tried again at the next start.
      if (!isBackchannelError(e)) throw e;
      return false;
    }
    this.#seen.set(m.seq, taken);
    if (this.#seen.size > SEEN_CACHE) this.#seen.delete(this.#seen.keys().next().value as number);
    this.#emit(events);
    return taken;
  }

  #inbox(m: MessengerInboxMessage, events: MessengerEvent[]): boolean {
    const attachmentId = attachmentIdOf(m.body);
    if (attachmentId !== null) {
      const h = this.#o.store.receivingAttachment(attachmentId);
      if (h === null) this.#o.store.putOrphanAttachment(attachmentId, m.body, m.receivedAt, MAX_ORPHAN_ATTACHMENTS);
      else this.#completeAttachment(h, m.body, events);
      return true;
    }
    const ratchet = unpadBody(m.body);
    if (ratchet === null) return false;
    let frame;
    try {
      frame = parseFrame(ratchet);
    } catch {
      return false;
    }
    let contacts = this.#o.store.contacts().filter((c) => c.session !== null);
    if (m.mailbox !== undefined) {
      const box = m.mailbox;
      contacts = [...contacts.filter((c) => equalBytes(c.ourMailbox, box)), ...contacts.filter((c) => !equalBytes(c.ourMailbox, box))];
    }
    for (const c of contacts) {
      const got = this.#tryContact(c, ratchet);
      if (got === null) continue;
      if (got === 'replay') return true;
      this.#onContent(c, got.session, got.plaintext, m.receivedAt, events);
      got.session.destroy();
      return true;
    }
    if (frame.type !== MESSAGE_TYPE_PREKEY || frame.prekeyFields === null || frame.prekeyFields.length !== PREKEY_FIELDS_LENGTH) return false;
    const initiatorKey = frame.prekeyFields.subarray(0, DH_LENGTH);
    const contact = this.#o.store.contacts().find((c) => equalBytes(c.identityKey, initiatorKey));
    if (contact === undefined) {
      // Someone who has our card and whom we have not added yet: keep it until we do.
      const prekeyId = new DataView(frame.prekeyFields.buffer, frame.prekeyFields.byteOffset + 2 * DH_LENGTH, 4).getUint32(0);
      if (!this.#prekeys().keys.has(prekeyId)) return false;
      this.#o.store.putHeld(ratchet, m.receivedAt, MAX_HELD_SETUPS);
      return true;
    }
    if (contact.session !== null) {
      // A set-up that none of the session's keys reads: an old one, or a forgery.
      this.drops.staleSetup++;
      return true;
    }
    this.#accept(contact, ratchet, m.receivedAt, events);
    return true;
  }

  /** Tries one contact's session: the session advanced and the plaintext, 'replay' (counted), or null when it is not theirs. */
  #tryContact(c: ContactRecord, ratchet: Uint8Array): { session: Session; plaintext: Uint8Array } | 'replay' | null {
    const session = Session.decode(c.session!, this.#c);
    try {
      return { session, plaintext: session.decrypt(ratchet) };
    } catch (e) {
      session.destroy();
      if (isBackchannelError(e, 'ERR_MSG_REPLAY')) {
        this.drops.duplicate++;
        return 'replay';
      }
      if (isBackchannelError(e, 'ERR_MSG_SKIP_LIMIT')) {
        this.drops.lost++;
        return 'replay';
      }
      return null;
    }
  }

  /** The responder opens its side of the session from the contact's set-up message. */
  #accept(contact: ContactRecord, ratchet: Uint8Array, receivedAt: number, events: MessengerEvent[]): void {
    const prekeys = this.#prekeys();
    let accepted;
    try {
      accepted = acceptSession(this.#identity, prekeys, ratchet, this.#c);
    } catch (e) {
      if (!isBackchannelError(e)) throw e;
      this.drops.staleSetup++;
      return;
    }
    if (!equalBytes(accepted.remoteIdentityKey, contact.identityKey)) {
      accepted.session.destroy();
      this.drops.staleSetup++;
      return;
    }
    this.#savePrekeys(prekeys);
    // Answer (so that the initiator's messages stop carrying the set-up), then what waited.
    contact.helloDue = true;
    this.#onContent(contact, accepted.session, accepted.plaintext, receivedAt, events);
    accepted.session.destroy();
  }

  /** Acts on one decrypted content of `contact` and stores the session. */
  #onContent(contact: ContactRecord, session: Session, plaintext: Uint8Array, receivedAt: number, events: MessengerEvent[]): void {
    let content: Content | null = null;
    try {
      content = decodeContent(plaintext);
    } catch {
      this.drops.malformed++;
    } finally {
      wipe(plaintext);
    }
    if (content !== null && contact.blocked) {
      this.drops.blocked++;
      content = null;
    }
    if (content !== null) {
      switch (content.kind) {
        case 'hello':
          break;
        case 'unsupported':
          this.drops.unsupported++;
          break;
        case 'intro-offer':
          this.#onOffer(contact, content, receivedAt);
          break;
        case 'intro-accept':
        case 'intro-decline':
          this.#onAnswer(contact, content);
          break;
        case 'intro-card':
          this.#onCardPiece(contact, content);
          break;
        case 'rotation':
          // From now on we write to the new address; what we sent to the old one still arrives
          // there during the contact's grace period.
          contact.gateway = content.gateway;
          contact.mailbox = content.mailbox;
          break;
        case 'receipt':
          for (const msgId of content.msgIds) {
            const h = this.#o.store.historyByMsgId(contact.id, 'out', msgId);
            if (h === null || h.state === 'delivered') continue;
            h.state = 'delivered';
            this.#o.store.updateHistory(h);
            events.push({ type: 'state', entry: this.#entry(h, contact) });
          }
          break;
        case 'text': {
          if (this.#o.store.historyByMsgId(contact.id, 'in', content.msgId) !== null) {
            this.drops.duplicate++;
            break;
          }
          const id = this.#o.store.insertHistory({
            contactId: contact.id, direction: 'in', kind: 'text', msgId: content.msgId, text: content.text, fileName: null, fileLength: null,
            sentAt: content.sentAt, receivedAt, state: 'received', clientId: null, fileClientId: null, pending: null,
            attachmentId: null, fileKey: null, fileSha256: null, fileData: null, read: false,
          });
          contact.receiptsDue = concatBytes(contact.receiptsDue, content.msgId);
          events.push({ type: 'message', entry: this.#entry(this.#o.store.historyEntry(id)!, contact) });
          break;
        }
        case 'file': {
          if (this.#o.store.historyByMsgId(contact.id, 'in', content.msgId) !== null) {
            this.drops.duplicate++;
            break;
          }
          const id = this.#o.store.insertHistory({
            contactId: contact.id, direction: 'in', kind: content.longText ? 'text' : 'file', msgId: content.msgId, text: null,
            fileName: content.longText ? null : content.name, fileLength: content.length, sentAt: content.sentAt, receivedAt,
            state: 'receiving', clientId: null, fileClientId: null, pending: null, attachmentId: content.attachmentId,
            fileKey: content.key, fileSha256: content.sha256, fileData: null, read: false,
          });
          const orphan = this.#o.store.takeOrphanAttachment(content.attachmentId);
          if (orphan !== null) this.#completeAttachment(this.#o.store.historyEntry(id)!, orphan, events, { contact, session });
          break;
        }
      }
    }
    if (!contact.blocked) this.#pump(contact, session);
    this.#saveSession(contact, session);
  }

  /** Verifies an arrived attachment against its announcement, stores it, and confirms it. */
  #completeAttachment(h: HistoryRecord, body: Uint8Array, events: MessengerEvent[], live?: { contact: ContactRecord; session: Session }): void {
    const contact = live?.contact ?? this.#o.store.contact(h.contactId);
    if (contact === null || h.fileKey === null) return;
    const data = openAttachment(this.#o.crypto, h.fileKey, body);
    if (data === null || data.length !== h.fileLength || !equalBytes(sha256(data), h.fileSha256!)) {
      this.drops.badAttachment++;
      return; // the announcement waits: a forged body does not spoil the real one
    }
    wipe(h.fileKey);
    h.fileKey = null;
    h.attachmentId = null;
    h.state = 'received';
    if (h.kind === 'text') {
      try {
        h.text = td.decode(data);
      } catch {
        h.text = '\ufffd';
      }
    } else h.fileData = data;
    this.#o.store.updateHistory(h);
    contact.receiptsDue = concatBytes(contact.receiptsDue, h.msgId);
    if (live !== undefined) {
      // The caller pumps and stores the session.
    } else if (contact.session !== null && !contact.blocked) {
      const session = Session.decode(contact.session, this.#c);
      this.#pump(contact, session);
      this.#saveSession(contact, session);
      session.destroy();
    } else this.#o.store.updateContact(contact);
    events.push({ type: 'message', entry: this.#entry(h, contact) });
  }

  // ---- mailbox rotation ----

  /**
   * Our mailbox `oldMailbox` was replaced by `fresh` (the client engine's rotateMailbox, which
   * keeps the old one receiving for a grace period): the contacts that wrote to it are told the
   * new address inside their sessions (content 0x12), as soon as their sessions can carry it.
   * Returns the names of the contacts told (none when no contact wrote to it).
   */
  mailboxRotated(oldMailbox: Uint8Array, fresh: MailAddress): string[] {
    return this.#o.store.transaction(() => {
      const told: string[] = [];
      for (const c of this.#o.store.contacts()) {
        if (!equalBytes(c.ourMailbox, oldMailbox) || c.blocked) continue;
        c.ourMailbox = fresh.mailbox.slice();
        this.#o.store.updateContact(c);
        this.#queue(c.id, { kind: 'rotation', gateway: fresh.gateway, mailbox: fresh.mailbox }, true);
        told.push(c.name);
      }
      return told;
    });
  }

  // ---- introductions ----

  /**
   * Offers contacts `name1` and `name2` an introduction to each other: each is told (inside its
   * session) that we offer it, with the name we give the other. When both accept, each one's
   * fresh card goes to the other and they become contacts.
   * @throws {BackchannelError} ERR_MSG_CONTACT for an unknown name; ERR_MSG_INTRODUCTION for one
   *   contact named twice or a blocked contact.
   */
  introduce(name1: string, name2: string): Introduction {
    if (name1 === name2) throw introError('an introduction is between two different contacts');
    return this.#emitting(() => {
      const a = this.#byName(name1);
      const b = this.#byName(name2);
      if (a.blocked || b.blocked) throw introError('a blocked contact cannot be introduced');
      const introId = this.#o.crypto.randomBytes(INTRO_ID_LENGTH);
      const now = this.#o.now();
      const id = this.#o.store.insertIntroduction({
        introId, role: 'made', contactId: a.id, otherContactId: b.id, name: '', state: 'offered', answer1: 0, answer2: 0,
        card1: null, card2: null, parts: null, partsMask: 0, shown: 0, createdAt: now, expiresAt: now + INTRODUCTION_TTL_MS,
      });
      this.#queue(a.id, { kind: 'intro-offer', introId, sentAt: now, name: b.name }, true);
      this.#queue(b.id, { kind: 'intro-offer', introId, sentAt: now, name: a.name }, true);
      return this.#introView(this.#o.store.introduction(id)!);
    });
  }

  /** Introductions made and received, oldest first (expired ones marked so). */
  introductions(): Introduction[] {
    this.#expireIntroductions();
    return this.#o.store.introductions().map((r) => this.#introView(r));
  }

  #received(id: number): IntroductionRecord {
    const r = Number.isSafeInteger(id) ? this.#o.store.introduction(id) : null;
    if (r === null || r.role !== 'received') throw introError('no introduction offered to you has that id (see: client introductions)');
    this.#expire(r);
    if (r.state !== 'offered') throw introError(`that introduction was ${r.state === 'accepted' || r.state === 'done' ? 'accepted' : r.state} already`);
    return r;
  }

  /**
   * Accepts an introduction offered to us: a fresh card of ours (one-time prekey, fresh mailbox)
   * goes to the introducer, to forward to the other party once it accepts too. The other becomes
   * a contact named `name` (default: the name the introducer gave) when its card comes.
   * @throws {BackchannelError} ERR_MSG_INTRODUCTION for an unknown id, one answered or expired, or
   *   an introducer now blocked or removed; ERR_MSG_CONTACT for a bad or taken name.
   */
  acceptIntroduction(id: number, name?: string): Introduction {
    return this.#emitting(() => {
      const r = this.#received(id);
      const introducer = this.#o.store.contact(r.contactId);
      if (introducer === null || introducer.blocked) throw introError('the contact who offered that introduction is blocked or removed');
      const chosen = name ?? r.name;
      if (name === undefined && chosen === '') throw introError('the introducer suggested no usable name: give one with --name');
      checkContactName(chosen);
      if (this.#o.store.contacts().some((c) => c.name === chosen)) throw contactError('a contact of that name exists already: give another with --name');
      const card = this.newCard();
      const ours = decodeCard(card);
      r.card1 = card;
      r.name = chosen;
      r.state = 'accepted';
      this.#saveIntro(r);
      this.#queue(introducer.id, {
        kind: 'intro-accept', introId: r.introId, prekeyId: ours.bundle.prekeyId, prekey: ours.bundle.prekey, gateway: ours.address.gateway, mailbox: ours.address.mailbox,
      }, true);
      return this.#introView(r);
    });
  }

  /**
   * Declines an introduction offered to us: the introducer is told; the other party learns
   * nothing from us (its side expires).
   * @throws {BackchannelError} ERR_MSG_INTRODUCTION for an unknown id, or one answered or expired.
   */
  declineIntroduction(id: number): Introduction {
    return this.#emitting(() => {
      const r = this.#received(id);
      r.state = 'declined';
      this.#saveIntro(r);
      const introducer = this.#o.store.contact(r.contactId);
      if (introducer !== null && !introducer.blocked) this.#queue(introducer.id, { kind: 'intro-decline', introId: r.introId }, true);
      return this.#introView(r);
    });
  }

  /**
   * Queues a content for a contact's session; with `now`, sends it at once when the session can
   * (never for the contact whose message is being read: its session is in the caller's hands).
   */
  #queue(contactId: number, content: Content, now: boolean): void {
    const bytes = encodeContent(content);
    this.#o.store.queueControl(contactId, bytes);
    wipe(bytes);
    if (!now) return;
    const c = this.#o.store.contact(contactId);
    if (c === null || c.session === null || c.blocked) return;
    const session = Session.decode(c.session, this.#c);
    this.#pump(c, session);
    this.#saveSession(c, session);
    session.destroy();
  }

  #onOffer(contact: ContactRecord, content: Extract<Content, { kind: 'intro-offer' }>, receivedAt: number): void {
    if (this.#o.store.introductionById(content.introId, contact.id) !== null) {
      this.drops.introduction++;
      return;
    }
    const open = this.#o.store.introductions().filter((r) => r.role === 'received' && r.contactId === contact.id && r.state === 'offered').length;
    if (open >= MAX_OPEN_OFFERS_PER_CONTACT) {
      this.drops.introduction++;
      return;
    }
    let name = '';
    try {
      name = checkContactName(content.name);
    } catch {
      // the user gives one at accept
    }
    const id = this.#o.store.insertIntroduction({
      introId: content.introId, role: 'received', contactId: contact.id, otherContactId: null, name, state: 'offered', answer1: 0, answer2: 0,
      card1: null, card2: null, parts: null, partsMask: 0, shown: 0, createdAt: receivedAt, expiresAt: receivedAt + INTRODUCTION_TTL_MS,
    });
    this.#introsChanged.add(id);
  }

  #saveIntro(r: IntroductionRecord): void {
    this.#o.store.updateIntroduction(r);
    this.#introsChanged.add(r.id);
  }

  /** The introducer reads an answer; once both accepted, each one's card goes to the other. */
  #onAnswer(contact: ContactRecord, content: Extract<Content, { kind: 'intro-accept' | 'intro-decline' }>): void {
    const r = this.#o.store.introductionById(content.introId, contact.id);
    if (r === null || r.role !== 'made') {
      this.drops.introduction++;
      return;
    }
    this.#expire(r);
    const first = r.contactId === contact.id;
    if ((first ? r.answer1 : r.answer2) !== 0 || r.state !== 'offered') {
      this.drops.introduction++; // a second answer, or one after a decline or the expiry
      return;
    }
    if (content.kind === 'intro-decline') {
      if (first) r.answer1 = 2;
      else r.answer2 = 2;
      r.state = 'declined';
      this.#dropCards(r);
      this.#saveIntro(r);
      return;
    }
    // The card is built from the identity keys we know for this contact: an answer cannot name others.
    const card = encodeCard({
      bundle: { identityKey: contact.identityKey, kemPublicKey: contact.kemKey, prekeyId: content.prekeyId, prekey: content.prekey },
      address: { gateway: content.gateway, mailbox: content.mailbox },
    });
    if (first) {
      r.answer1 = 1;
      r.card1 = card;
    } else {
      r.answer2 = 1;
      r.card2 = card;
    }
    if (r.answer1 === 1 && r.answer2 === 1) {
      const c1 = this.#o.store.contact(r.contactId);
      const c2 = r.otherContactId === null ? null : this.#o.store.contact(r.otherContactId);
      if (c1 === null || c2 === null || c1.blocked || c2.blocked) r.state = 'failed';
      else {
        this.#forward(r.introId, c1.id, r.card2!, c1.id !== contact.id);
        this.#forward(r.introId, c2.id, r.card1!, c2.id !== contact.id);
        r.state = 'done';
      }
      this.#dropCards(r);
    }
    this.#saveIntro(r);
  }

  #forward(introId: Uint8Array, to: number, card: Uint8Array, now: boolean): void {
    for (let i = 0; i < INTRO_CARD_PARTS; i++) {
      const bytes = card.slice(i * INTRO_CARD_PART_LENGTH, Math.min(card.length, (i + 1) * INTRO_CARD_PART_LENGTH));
      this.#queue(to, { kind: 'intro-card', introId, part: i, parts: INTRO_CARD_PARTS, bytes }, now && i === INTRO_CARD_PARTS - 1);
    }
  }

  /** An invitee reads a piece of the other's card; with the last, the other becomes a contact. */
  #onCardPiece(contact: ContactRecord, content: Extract<Content, { kind: 'intro-card' }>): void {
    const r = this.#o.store.introductionById(content.introId, contact.id);
    if (r === null || r.role !== 'received' || r.contactId !== contact.id) {
      this.drops.introduction++;
      return;
    }
    this.#expire(r);
    const want = content.part < INTRO_CARD_PARTS - 1 ? INTRO_CARD_PART_LENGTH : CARD_LENGTH - (INTRO_CARD_PARTS - 1) * INTRO_CARD_PART_LENGTH;
    if (r.state !== 'accepted' || content.parts !== INTRO_CARD_PARTS || (r.partsMask & (1 << content.part)) !== 0 || content.bytes.length !== want) {
      this.drops.introduction++;
      return;
    }
    const parts = r.parts ?? new Uint8Array(CARD_LENGTH);
    parts.set(content.bytes, content.part * INTRO_CARD_PART_LENGTH);
    r.parts = parts;
    r.partsMask |= 1 << content.part;
    if (r.partsMask === (1 << INTRO_CARD_PARTS) - 1) {
      try {
        decodeCard(parts);
        const name = this.#freeName(r.name);
        this.addContact(name, r.card1!, parts);
        r.name = name;
        r.state = 'done';
        wipe(r.card1!);
        r.card1 = null;
      } catch (e) {
        if (!isBackchannelError(e)) throw e;
        // A card that does not decode, is ours, or is someone who is a contact already.
        this.drops.introduction++;
        r.state = 'failed';
        this.#release(r);
      }
      r.parts = null;
      r.partsMask = 0;
    }
    this.#saveIntro(r);
  }

  /** `base`, or `base (2)`, `base (3)`… when a contact took the name meanwhile. */
  #freeName(base: string): string {
    const taken = new Set(this.#o.store.contacts().map((c) => c.name));
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) {
      const tail = ` (${i})`;
      const name = `${base.slice(0, MAX_CONTACT_NAME - tail.length).trimEnd()}${tail}`;
      if (!taken.has(name)) return name;
    }
  }

  #dropCards(r: IntroductionRecord): void {
    if (r.card1 !== null) wipe(r.card1);
    if (r.card2 !== null) wipe(r.card2);
    r.card1 = null;
    r.card2 = null;
  }

  /** Gives back what our card for an introduction that will not complete holds: its one-time prekey and its mailbox. */
  #release(r: IntroductionRecord): void {
    if (r.card1 === null) return;
    const ours = decodeCard(r.card1);
    const prekeys = this.#prekeys();
    if (prekeys.keys.has(ours.bundle.prekeyId)) {
      wipe(takePrekey(prekeys, ours.bundle.prekeyId));
      this.#savePrekeys(prekeys);
    }
    try {
      this.#o.releaseAddress?.(ours.address);
    } catch {
      // the mailbox may be gone already
    }
    wipe(r.card1);
    r.card1 = null;
  }

  /** Marks `r` expired when its time is past (and stores it then). */
  #expire(r: IntroductionRecord): void {
    const now = this.#o.now();
    if (r.state === 'offered' && now > r.expiresAt) {
      r.state = 'expired';
      this.#dropCards(r);
    } else if (r.role === 'received' && r.state === 'accepted' && now > r.expiresAt + INTRODUCTION_GRACE_MS) {
      r.state = 'expired';
      this.#release(r);
      r.parts = null;
      r.partsMask = 0;
    } else return;
    this.#saveIntro(r);
  }

  /**
   * Marks introductions past their time expired, and deletes finished ones
   * INTRODUCTION_RETENTION_MS after their answer window closed (what they held was released when
   * they finished: cards wiped, and an unused card's prekey and mailbox given back).
   */
  #expireIntroductions(): void {
    this.#emitting(() => {
      const now = this.#o.now();
      for (const r of this.#o.store.introductions()) {
        this.#expire(r);
        if (FINISHED.has(r.state) && now > r.expiresAt + INTRODUCTION_GRACE_MS + INTRODUCTION_RETENTION_MS) {
          this.#o.store.deleteIntroduction(r.id);
          this.#introsChanged.delete(r.id);
        }
      }
    });
  }

  /** Runs `fn` in a transaction, then sends out the events of what it changed. */
  #emitting<T>(fn: () => T): T {
    let v: T;
    try {
      v = this.#o.store.transaction(fn);
    } catch (e) {
      this.#introsChanged.clear();
      throw e;
    }
    this.#emit([]);
    return v;
  }

  /**
   * What viewers are to show of introductions and have not (IntroductionNotice), oldest first:
   * offers not answered yet, and outcomes (done; declined by the other side, expired, failed).
   * Our own decline is not shown back to us.
   */
  introductionNotices(): IntroductionNotice[] {
    this.#expireIntroductions();
    const out: IntroductionNotice[] = [];
    for (const r of this.#o.store.introductions()) {
      if (r.role === 'received' && r.state === 'offered' && (r.shown & SHOWN_OFFER) === 0) out.push({ kind: 'offer', introduction: this.#introView(r) });
      else if (FINISHED.has(r.state) && (r.shown & SHOWN_OUTCOME) === 0 && !(r.role === 'received' && r.state === 'declined')) out.push({ kind: 'outcome', introduction: this.#introView(r) });
    }
    return out;
  }

  /** Records that a viewer showed `kind` of introduction `id` (an outcome covers the offer too). Idempotent. */
  markIntroductionShown(id: number, kind: 'offer' | 'outcome'): void {
    this.#o.store.transaction(() => {
      const r = this.#o.store.introduction(id);
      if (r === null) return;
      const bits = kind === 'offer' ? SHOWN_OFFER : SHOWN_OFFER | SHOWN_OUTCOME;
      if ((r.shown & bits) === bits) return;
      r.shown |= bits;
      this.#o.store.updateIntroduction(r);
    });
  }

  // ---- large incoming messages ----

  /**
   * The client stored `have` of `total` fragments of an incoming message (`key`: any string that
   * names it, e.g. its client id in hex) that came to our mailbox `mailbox`. When that mailbox
   * is a contact's, the contact's viewers are told (a 'receiving' event). Memory only.
   */
  noteIncomingPart(key: string, mailbox: Uint8Array | null, have: number, total: number): void {
    if (mailbox === null || total < MIN_RECEIVING_FRAGMENTS) return;
    const c = this.#o.store.contacts().find((x) => equalBytes(x.ourMailbox, mailbox));
    if (c === undefined || c.blocked) return;
    const now = this.#o.now();
    this.#receiving.delete(key);
    this.#receiving.set(key, { contactId: c.id, have, total, at: now });
    while (this.#receiving.size > MAX_RECEIVING) this.#receiving.delete(this.#receiving.keys().next().value as string);
    this.#emit([{ type: 'receiving', receiving: { contact: c.name, have, total } }]);
  }

  /** The incoming message `key` completed (or was dropped): no longer on its way. */
  incomingDone(key: string): void {
    this.#receiving.delete(key);
  }

  /** Large messages from contacts on their way in, as last heard (none quiet for RECEIVING_STALE_MS). */
  receiving(contact?: string): Receiving[] {
    const now = this.#o.now();
    const out: Receiving[] = [];
    for (const [k, r] of this.#receiving) {
      if (now - r.at > RECEIVING_STALE_MS) {
        this.#receiving.delete(k);
        continue;
      }
      const c = this.#o.store.contact(r.contactId);
      if (c === null || (contact !== undefined && c.name !== contact)) continue;
      out.push({ contact: c.name, have: r.have, total: r.total });
    }
    return out;
  }

  #introView(r: IntroductionRecord): Introduction {
    const nameOf = (id: number | null): string => (id === null ? '?' : (this.#o.store.contact(id)?.name ?? '?'));
    const answer = (a: number): 'pending' | 'accepted' | 'declined' => (a === 1 ? 'accepted' : a === 2 ? 'declined' : 'pending');
    return r.role === 'made'
      ? { id: r.id, role: 'made', from: null, names: [nameOf(r.contactId), nameOf(r.otherContactId)], answers: [answer(r.answer1), answer(r.answer2)], state: r.state, createdAt: r.createdAt, expiresAt: r.expiresAt }
      : { id: r.id, role: 'received', from: nameOf(r.contactId), names: [r.name], answers: [], state: r.state, createdAt: r.createdAt, expiresAt: r.state === 'accepted' ? r.expiresAt + INTRODUCTION_GRACE_MS : r.expiresAt };
  }

  // ---- reading ----

  /** A contact's history, oldest first (the last `limit` entries). */
  history(name: string, limit = 1000): HistoryEntry[] {
    const c = this.#byName(name);
    return this.#o.store.history(c.id, limit).map((h) => this.#entry(h, c));
  }

  /** A received file's bytes. */
  fileData(id: number): { name: string; data: Uint8Array } | null {
    const h = this.#o.store.historyEntry(id);
    if (h === null || h.kind !== 'file' || h.fileData === null) return null;
    return { name: h.fileName ?? '', data: h.fileData };
  }

  /** Incoming entries not yet shown, oldest first. */
  unread(afterId: number, limit: number, contact?: string): HistoryEntry[] {
    const id = contact === undefined ? null : this.#byName(contact).id;
    const out: HistoryEntry[] = [];
    let after = afterId;
    for (;;) {
      const page = this.#o.store.unread(after, limit);
      for (const h of page) {
        after = h.id;
        if (id === null || h.contactId === id) out.push(this.#entry(h));
        if (out.length >= limit) return out;
      }
      if (page.length < limit) return out;
    }
  }

  /**
   * The client messages that carry our outgoing entry `id` (for showing progress): the file's
   * (null for a short text, or before it went: the session is not up yet) and the content's
   * (null before it went). Null for an unknown or incoming entry.
   */
  carriers(id: number): { file: Uint8Array | null; content: Uint8Array | null } | null {
    const h = this.#o.store.historyEntry(id);
    if (h === null || h.direction !== 'out') return null;
    return { file: h.fileClientId === null ? null : h.fileClientId.slice(), content: h.clientId === null ? null : h.clientId.slice() };
  }

  markRead(id: number): void {
    this.#o.store.transaction(() => {
      const h = this.#o.store.historyEntry(id);
      if (h === null || h.read) return;
      h.read = true;
      this.#o.store.updateHistory(h);
    });
  }

  // ---- helpers ----

  #prekeys(): PrekeyStore {
    const b = this.#o.store.getValue('prekeys');
    return b === null ? createPrekeyStore() : decodePrekeyStore(b);
  }

  #savePrekeys(p: PrekeyStore): void {
    const b = encodePrekeyStore(p);
    this.#o.store.setValue('prekeys', b);
    wipe(b);
    for (const k of p.keys.values()) wipe(k);
  }

  /** Stores the contact as the caller holds it (due hello and receipts) with the session's state. */
  #saveSession(c: ContactRecord, s: Session): void {
    c.session = s.encode();
    this.#o.store.updateContact(c);
  }

  #view(c: ContactRecord): Contact {
    let session: SessionStatus = 'waiting';
    if (c.session !== null) {
      const s = Session.decode(c.session, this.#c);
      session = s.awaitingReply ? 'starting' : 'up';
      s.destroy();
    }
    let hex = '';
    for (const b of c.identityKey) hex += b.toString(16).padStart(2, '0');
    return { name: c.name, identityKey: hex, verified: c.verified, blocked: c.blocked, createdAt: c.createdAt, session };
  }

  #entry(h: HistoryRecord, contact?: ContactRecord): HistoryEntry {
    const c = contact ?? this.#o.store.contact(h.contactId);
    return {
      id: h.id, contact: c?.name ?? '?', direction: h.direction, kind: h.kind, text: h.text, fileName: h.fileName, fileLength: h.fileLength,
      sentAt: h.sentAt, receivedAt: h.receivedAt, state: h.state, read: h.read,
    };
  }
}
