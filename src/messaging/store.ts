/**
 * What the messenger keeps across restarts, as an interface (portable): our identity and
 * one-time prekeys, contacts with their session state, per-contact history, attachments that
 * arrived before their announcement, and set-up messages from someone not yet a contact.
 *
 * Every method is synchronous and durable when it returns. `transaction(fn)` runs `fn`
 * atomically, and the host joins its own state to it: in Node the messenger's tables live in the
 * client's SQLite file (src/client/messenger-store.ts), so that reading an inbox message, the
 * session update, the history row and the consume of the inbox entry commit together. The
 * in-memory implementation here serves the tests and a host without storage.
 */

/** Outgoing: queued (waiting for the session or the network), sent (the contact's gateway
 * acknowledged every fragment), delivered (the contact's client confirmed it inside the session),
 * failed. Incoming: receiving (a file announced, its data not yet here), received. */
export type HistoryState = 'queued' | 'sent' | 'delivered' | 'failed' | 'receiving' | 'received';

export interface ContactRecord {
  readonly id: number;
  name: string;
  /** The contact's X25519 identity key (what sessions and safety numbers are bound to). */
  readonly identityKey: Uint8Array;
  /** The contact's ML-KEM-768 encapsulation key (in the safety number too). */
  readonly kemKey: Uint8Array;
  /** Where we write to them. */
  gateway: Uint8Array;
  mailbox: Uint8Array;
  /** The mailbox id in the card we gave them (where they write to us). */
  ourMailbox: Uint8Array;
  /** The encoded Session, or null until the responder has read the first message. */
  session: Uint8Array | null;
  /** A hello is to be sent (the initiator's first message, the responder's answer to the set-up). */
  helloDue: boolean;
  /** Message ids (8 bytes each, concatenated) whose receipts are to be sent. */
  receiptsDue: Uint8Array;
  /** True when we open the session (our identity key sorts lower). */
  readonly initiator: boolean;
  verified: boolean;
  blocked: boolean;
  readonly createdAt: number;
}

export interface HistoryRecord {
  readonly id: number;
  readonly contactId: number;
  readonly direction: 'in' | 'out';
  readonly kind: 'text' | 'file';
  /** The sender's id of this message (8 bytes), what receipts name. */
  readonly msgId: Uint8Array;
  text: string | null;
  readonly fileName: string | null;
  readonly fileLength: number | null;
  /** Sent time as the sender stated it inside the session (ms). */
  readonly sentAt: number;
  /** Received time (incoming) or the time it was written (outgoing), ms, our clock. */
  readonly receivedAt: number;
  state: HistoryState;
  /** Outgoing: the client message that carries it (null while queued for the session). */
  clientId: Uint8Array | null;
  /** Outgoing file: the client message that carries the encrypted file. */
  fileClientId: Uint8Array | null;
  /** Outgoing and queued for the session: the content to encrypt once it is up. */
  pending: Uint8Array | null;
  /** Incoming file: the attachment id and key, until the file is here. Outgoing file: the sealed file, until sent. */
  attachmentId: Uint8Array | null;
  fileKey: Uint8Array | null;
  fileSha256: Uint8Array | null;
  /** The file's bytes once received and verified (or, outgoing, what was sent). */
  fileData: Uint8Array | null;
  /** Incoming: shown to the user (by recv or chat). */
  read: boolean;
}

/**
 * An introduction, made (we introduced two contacts) or received (a contact offered us one).
 * Made: offered until both answered, then done (both cards forwarded) or declined (by either);
 * expired when not both accepted in time. Received: offered (the user has not answered),
 * accepted (our card half went; waiting for the other's card), declined, done (the other is now
 * a contact), expired, failed (the card that came was unusable).
 */
export type IntroductionState = 'offered' | 'accepted' | 'declined' | 'done' | 'expired' | 'failed';

export interface IntroductionRecord {
  readonly id: number;
  /** The random id the three parties name it by (16 bytes). */
  readonly introId: Uint8Array;
  readonly role: 'made' | 'received';
  /** Made: the first of the two introduced; received: the introducer. */
  readonly contactId: number;
  /** Made: the second of the two introduced; received: null. */
  readonly otherContactId: number | null;
  /** Received: the name the introducer suggested, then the one the user chose; made: ''. */
  name: string;
  state: IntroductionState;
  /** Made: each party's answer (0 none yet, 1 accepted, 2 declined). */
  answer1: number;
  answer2: number;
  /** Made: each party's card, built from its answer, until forwarded. Received: card1 is our card for the other (from accept on). */
  card1: Uint8Array | null;
  card2: Uint8Array | null;
  /** Received: the other's card as its pieces arrive, and which pieces did (bit i: piece i). */
  parts: Uint8Array | null;
  partsMask: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  /**
   * What a viewer has shown of it (bit 1: the offer, bit 2: the outcome), so that `recv --follow`
   * and `chat` show each once, across their restarts. Rows older than this field count as shown.
   */
  shown: number;
}

export type NewIntroduction = Omit<IntroductionRecord, 'id'>;

export type NewContact = Omit<ContactRecord, 'id'>;
export type NewHistory = Omit<HistoryRecord, 'id'>;

export interface MessengerStore {
  transaction<T>(fn: () => T): T;

  /** identity, prekeys; exportedCard: the card `exportCard` made last (what `importContact` gives as ours). */
  getValue(key: 'identity' | 'prekeys' | 'exportedCard'): Uint8Array | null;
  setValue(key: 'identity' | 'prekeys' | 'exportedCard', value: Uint8Array): void;

  contacts(): ContactRecord[];
  contact(id: number): ContactRecord | null;
  /** @returns the new contact's id. The caller has checked that the name and identity key are free. */
  insertContact(c: NewContact): number;
  updateContact(c: ContactRecord): void;
  /** Deletes the contact and its history. */
  deleteContact(id: number): void;

  insertHistory(h: NewHistory): number;
  updateHistory(h: HistoryRecord): void;
  historyEntry(id: number): HistoryRecord | null;
  /** A contact's history, oldest first, the last `limit` rows. */
  history(contactId: number, limit: number): HistoryRecord[];
  /** The row with this msgId in this contact's history and direction. */
  historyByMsgId(contactId: number, direction: 'in' | 'out', msgId: Uint8Array): HistoryRecord | null;
  /** The outgoing row carried by client message `clientId` (as text, or as its file). */
  historyByClientId(clientId: Uint8Array): HistoryRecord | null;
  /** Outgoing rows waiting for the contact's session, oldest first. */
  queuedForSession(contactId: number): HistoryRecord[];
  /** Outgoing rows in state queued that have a client message (to reconcile with the client at start). */
  inFlight(): HistoryRecord[];
  /** An incoming file row waiting for the attachment with this id. */
  receivingAttachment(attachmentId: Uint8Array): HistoryRecord | null;
  /** Incoming rows not yet read, id > afterId, oldest first. */
  unread(afterId: number, limit: number): HistoryRecord[];

  /** Attachment data that arrived before its announcement; the oldest go past `max`. */
  putOrphanAttachment(attachmentId: Uint8Array, data: Uint8Array, receivedAt: number, max: number): void;
  takeOrphanAttachment(attachmentId: Uint8Array): Uint8Array | null;

  insertIntroduction(r: NewIntroduction): number;
  updateIntroduction(r: IntroductionRecord): void;
  introduction(id: number): IntroductionRecord | null;
  /** The introduction with this id that names contact `contactId` (as introducer, or as one of the two). */
  introductionById(introId: Uint8Array, contactId: number): IntroductionRecord | null;
  /** Every introduction, oldest first. */
  introductions(): IntroductionRecord[];
  deleteIntroduction(id: number): void;

  /** Contents to send a contact inside its session once it can (introduction messages), oldest first. */
  queueControl(contactId: number, content: Uint8Array): void;
  controlDue(contactId: number): Array<{ id: number; content: Uint8Array }>;
  deleteControl(id: number): void;

  /** Set-up messages from someone not (yet) a contact; the oldest go past `max`. */
  putHeld(data: Uint8Array, receivedAt: number, max: number): void;
  held(): Array<{ id: number; data: Uint8Array }>;
  deleteHeld(id: number): void;
}

const copy = <T>(v: T): T => structuredClone(v);

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface MemoryState {
  values: Map<string, Uint8Array>;
  contacts: Map<number, ContactRecord>;
  history: Map<number, HistoryRecord>;
  orphans: Array<{ id: Uint8Array; data: Uint8Array; at: number }>;
  held: Array<{ id: number; data: Uint8Array; at: number }>;
  introductions: Map<number, IntroductionRecord>;
  control: Array<{ id: number; contactId: number; content: Uint8Array }>;
  nextId: number;
}

/** Something else whose state commits and rolls back with the memory store (a test's fake inbox). */
export interface TransactionParticipant {
  snapshot(): unknown;
  restore(snapshot: unknown): void;
}

/**
 * The messenger's state in memory. A transaction snapshots the whole state (and that of every
 * participant) and restores it when `fn` throws: what a SQLite transaction does, at a cost that
 * only tests pay.
 */
export class MemoryMessengerStore implements MessengerStore {
  #s: MemoryState = { values: new Map(), contacts: new Map(), history: new Map(), orphans: [], held: [], introductions: new Map(), control: [], nextId: 1 };
  #depth = 0;
  readonly participants: TransactionParticipant[] = [];

  transaction<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    const saved = copy(this.#s);
    const others = this.participants.map((p) => p.snapshot());
    this.#depth++;
    try {
      return fn();
    } catch (e) {
      this.#s = saved;
      this.participants.forEach((p, i) => p.restore(others[i]));
      throw e;
    } finally {
      this.#depth--;
    }
  }

  getValue(key: string): Uint8Array | null {
    const v = this.#s.values.get(key);
    return v === undefined ? null : v.slice();
  }

  setValue(key: string, value: Uint8Array): void {
    this.#s.values.set(key, value.slice());
  }

  contacts(): ContactRecord[] {
    return [...this.#s.contacts.values()].map(copy);
  }

  contact(id: number): ContactRecord | null {
    const c = this.#s.contacts.get(id);
    return c === undefined ? null : copy(c);
  }

  insertContact(c: NewContact): number {
    const id = this.#s.nextId++;
    this.#s.contacts.set(id, copy({ ...c, id }));
    return id;
  }

  updateContact(c: ContactRecord): void {
    if (!this.#s.contacts.has(c.id)) return;
    this.#s.contacts.set(c.id, copy(c));
  }

  deleteContact(id: number): void {
    this.#s.contacts.delete(id);
    for (const [k, h] of this.#s.history) if (h.contactId === id) this.#s.history.delete(k);
    this.#s.control = this.#s.control.filter((x) => x.contactId !== id);
  }

  insertHistory(h: NewHistory): number {
    const id = this.#s.nextId++;
    this.#s.history.set(id, copy({ ...h, id }));
    return id;
  }

  updateHistory(h: HistoryRecord): void {
    if (!this.#s.history.has(h.id)) return;
    this.#s.history.set(h.id, copy(h));
  }

  historyEntry(id: number): HistoryRecord | null {
    const h = this.#s.history.get(id);
    return h === undefined ? null : copy(h);
  }

  #rows(pred: (h: HistoryRecord) => boolean): HistoryRecord[] {
    return [...this.#s.history.values()].filter(pred).sort((a, b) => a.id - b.id).map(copy);
  }

  history(contactId: number, limit: number): HistoryRecord[] {
    const rows = this.#rows((h) => h.contactId === contactId);
    return rows.slice(Math.max(0, rows.length - limit));
  }

  historyByMsgId(contactId: number, direction: 'in' | 'out', msgId: Uint8Array): HistoryRecord | null {
    return this.#rows((h) => h.contactId === contactId && h.direction === direction && same(h.msgId, msgId))[0] ?? null;
  }

  historyByClientId(clientId: Uint8Array): HistoryRecord | null {
    return this.#rows((h) => (h.clientId !== null && same(h.clientId, clientId)) || (h.fileClientId !== null && same(h.fileClientId, clientId)))[0] ?? null;
  }

  queuedForSession(contactId: number): HistoryRecord[] {
    return this.#rows((h) => h.contactId === contactId && h.direction === 'out' && h.state === 'queued' && h.pending !== null);
  }

  inFlight(): HistoryRecord[] {
    return this.#rows((h) => h.direction === 'out' && (h.state === 'queued' || h.state === 'sent') && h.clientId !== null);
  }

  receivingAttachment(attachmentId: Uint8Array): HistoryRecord | null {
    return this.#rows((h) => h.direction === 'in' && h.state === 'receiving' && h.attachmentId !== null && same(h.attachmentId, attachmentId))[0] ?? null;
  }

  unread(afterId: number, limit: number): HistoryRecord[] {
    return this.#rows((h) => h.direction === 'in' && !h.read && h.state === 'received' && h.id > afterId).slice(0, limit);
  }

  putOrphanAttachment(attachmentId: Uint8Array, data: Uint8Array, receivedAt: number, max: number): void {
    this.#s.orphans.push({ id: attachmentId.slice(), data: data.slice(), at: receivedAt });
    while (this.#s.orphans.length > max) this.#s.orphans.shift();
  }

  takeOrphanAttachment(attachmentId: Uint8Array): Uint8Array | null {
    const i = this.#s.orphans.findIndex((o) => same(o.id, attachmentId));
    if (i < 0) return null;
    const [o] = this.#s.orphans.splice(i, 1);
    return o!.data;
  }

  insertIntroduction(r: NewIntroduction): number {
    const id = this.#s.nextId++;
    this.#s.introductions.set(id, copy({ ...r, id }));
    return id;
  }

  updateIntroduction(r: IntroductionRecord): void {
    if (!this.#s.introductions.has(r.id)) return;
    this.#s.introductions.set(r.id, copy(r));
  }

  introduction(id: number): IntroductionRecord | null {
    const r = this.#s.introductions.get(id);
    return r === undefined ? null : copy(r);
  }

  introductionById(introId: Uint8Array, contactId: number): IntroductionRecord | null {
    for (const r of this.#s.introductions.values()) {
      if (same(r.introId, introId) && (r.contactId === contactId || r.otherContactId === contactId)) return copy(r);
    }
    return null;
  }

  introductions(): IntroductionRecord[] {
    return [...this.#s.introductions.values()].sort((a, b) => a.id - b.id).map(copy);
  }

  deleteIntroduction(id: number): void {
    this.#s.introductions.delete(id);
  }

  queueControl(contactId: number, content: Uint8Array): void {
    this.#s.control.push({ id: this.#s.nextId++, contactId, content: content.slice() });
  }

  controlDue(contactId: number): Array<{ id: number; content: Uint8Array }> {
    return this.#s.control.filter((x) => x.contactId === contactId).map((x) => ({ id: x.id, content: x.content.slice() }));
  }

  deleteControl(id: number): void {
    this.#s.control = this.#s.control.filter((x) => x.id !== id);
  }

  putHeld(data: Uint8Array, receivedAt: number, max: number): void {
    this.#s.held.push({ id: this.#s.nextId++, data: data.slice(), at: receivedAt });
    while (this.#s.held.length > max) this.#s.held.shift();
  }

  held(): Array<{ id: number; data: Uint8Array }> {
    return this.#s.held.map((h) => ({ id: h.id, data: h.data.slice() }));
  }

  deleteHeld(id: number): void {
    this.#s.held = this.#s.held.filter((h) => h.id !== id);
  }
}
