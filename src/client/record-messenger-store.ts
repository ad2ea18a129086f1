/**
 * The messenger's store (src/messaging/store.ts) as records in the same Journal as the client's
 * record store (record-store.ts): in the browser both live in one IndexedDB database, and a
 * transaction of either commits the other's changes with it, as the two SQLite stores share one
 * file in Node. Portable: no `node:` imports.
 *
 *     mValues    'identity' | 'prekeys' | 'exportedCard' -> Uint8Array
 *     mContacts  id -> ContactRecord
 *     mHistory   id -> HistoryRecord
 *     mOrphans   id -> { attachmentId, data, at }   (attachments that came before their announcement)
 *     mHeld      id -> { data, at }                 (set-up messages from someone not yet a contact)
 *     mIntro     id -> IntroductionRecord           (introductions made and received)
 *     mControl   id -> { contactId, content }       (contents waiting for a contact's session)
 *     meta       'mNextId' -> number                (ids of all six, as in the memory store)
 */
import type { ContactRecord, HistoryRecord, IntroductionRecord, MessengerStore, NewContact, NewHistory, NewIntroduction } from '../messaging/store.js';
import type { Journal } from './journal.js';

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A deep copy: records go in and out as copies, so a caller's later change never reaches the store. */
const copy = <T>(v: T): T => structuredClone(v);

/** A record written before introductions had `shown` counts as shown (a viewer shows nothing old). */
function withShown(r: IntroductionRecord): IntroductionRecord {
  return typeof r.shown === 'number' ? r : { ...r, shown: 3 };
}

interface ControlRecord {
  readonly contactId: number;
  readonly content: Uint8Array;
}

interface Orphan {
  readonly attachmentId: Uint8Array;
  readonly data: Uint8Array;
  readonly at: number;
}

export class RecordMessengerStore implements MessengerStore {
  readonly #j: Journal;

  /** A store over `journal`, which must have RECORD_TABLES (RecordClientStore.journal makes one). */
  constructor(journal: Journal) {
    this.#j = journal;
  }

  transaction<T>(fn: () => T): T {
    return this.#j.transaction(fn);
  }

  getValue(key: 'identity' | 'prekeys' | 'exportedCard'): Uint8Array | null {
    const v = this.#j.get('mValues', key) as Uint8Array | undefined;
    return v === undefined ? null : v.slice();
  }

  setValue(key: 'identity' | 'prekeys' | 'exportedCard', value: Uint8Array): void {
    this.#j.put('mValues', key, value.slice());
  }

  contacts(): ContactRecord[] {
    return this.#sorted<ContactRecord>('mContacts').map(copy);
  }

  contact(id: number): ContactRecord | null {
    const c = this.#j.get('mContacts', String(id)) as ContactRecord | undefined;
    return c === undefined ? null : copy(c);
  }

  insertContact(c: NewContact): number {
    const id = this.#nextId();
    this.#j.put('mContacts', String(id), copy({ ...c, id }));
    return id;
  }

  updateContact(c: ContactRecord): void {
    if (!this.#j.has('mContacts', String(c.id))) return;
    this.#j.put('mContacts', String(c.id), copy(c));
  }

  deleteContact(id: number): void {
    this.#j.transaction(() => {
      this.#j.delete('mContacts', String(id));
      for (const h of this.#sorted<HistoryRecord>('mHistory')) if (h.contactId === id) this.#j.delete('mHistory', String(h.id));
      for (const [k, c] of this.#sortedEntries<ControlRecord>('mControl')) if (c.contactId === id) this.#j.delete('mControl', String(k));
    });
  }

  insertHistory(h: NewHistory): number {
    const id = this.#nextId();
    this.#j.put('mHistory', String(id), copy({ ...h, id }));
    return id;
  }

  updateHistory(h: HistoryRecord): void {
    if (!this.#j.has('mHistory', String(h.id))) return;
    this.#j.put('mHistory', String(h.id), copy(h));
  }

  historyEntry(id: number): HistoryRecord | null {
    const h = this.#j.get('mHistory', String(id)) as HistoryRecord | undefined;
    return h === undefined ? null : copy(h);
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
    this.#j.transaction(() => {
      const id = this.#nextId();
      this.#j.put('mOrphans', String(id), { attachmentId: attachmentId.slice(), data: data.slice(), at: receivedAt } satisfies Orphan);
      this.#trim('mOrphans', max);
    });
  }

  takeOrphanAttachment(attachmentId: Uint8Array): Uint8Array | null {
    for (const [id, o] of this.#sortedEntries<Orphan>('mOrphans')) {
      if (!same(o.attachmentId, attachmentId)) continue;
      this.#j.delete('mOrphans', String(id));
      return o.data.slice();
    }
    return null;
  }

  insertIntroduction(r: NewIntroduction): number {
    const id = this.#nextId();
    this.#j.put('mIntro', String(id), copy({ ...r, id }));
    return id;
  }

  updateIntroduction(r: IntroductionRecord): void {
    if (!this.#j.has('mIntro', String(r.id))) return;
    this.#j.put('mIntro', String(r.id), copy(r));
  }

  introduction(id: number): IntroductionRecord | null {
    const r = this.#j.get('mIntro', String(id)) as IntroductionRecord | undefined;
    return r === undefined ? null : withShown(copy(r));
  }

  introductionById(introId: Uint8Array, contactId: number): IntroductionRecord | null {
    for (const r of this.#sorted<IntroductionRecord>('mIntro')) {
      if (same(r.introId, introId) && (r.contactId === contactId || r.otherContactId === contactId)) return withShown(copy(r));
    }
    return null;
  }

  introductions(): IntroductionRecord[] {
    return this.#sorted<IntroductionRecord>('mIntro').map((r) => withShown(copy(r)));
  }

  deleteIntroduction(id: number): void {
    this.#j.delete('mIntro', String(id));
  }

  queueControl(contactId: number, content: Uint8Array): void {
    this.#j.put('mControl', String(this.#nextId()), { contactId, content: content.slice() } satisfies ControlRecord);
  }

  controlDue(contactId: number): Array<{ id: number; content: Uint8Array }> {
    return this.#sortedEntries<ControlRecord>('mControl')
      .filter(([, c]) => c.contactId === contactId)
      .map(([id, c]) => ({ id, content: c.content.slice() }));
  }

  deleteControl(id: number): void {
    this.#j.delete('mControl', String(id));
  }

  putHeld(data: Uint8Array, receivedAt: number, max: number): void {
    this.#j.transaction(() => {
      const id = this.#nextId();
      this.#j.put('mHeld', String(id), { data: data.slice(), at: receivedAt });
      this.#trim('mHeld', max);
    });
  }

  held(): Array<{ id: number; data: Uint8Array }> {
    return this.#sortedEntries<{ data: Uint8Array }>('mHeld').map(([id, h]) => ({ id, data: h.data.slice() }));
  }

  deleteHeld(id: number): void {
    this.#j.delete('mHeld', String(id));
  }

  #nextId(): number {
    const id = ((this.#j.get('meta', 'mNextId') as number | undefined) ?? 0) + 1;
    this.#j.put('meta', 'mNextId', id);
    return id;
  }

  #sortedEntries<T>(table: string): Array<[number, T]> {
    return this.#j
      .entries(table)
      .map(([k, v]): [number, T] => [Number(k), v as T])
      .sort((a, b) => a[0] - b[0]);
  }

  #sorted<T>(table: string): T[] {
    return this.#sortedEntries<T>(table).map(([, v]) => v);
  }

  #rows(pred: (h: HistoryRecord) => boolean): HistoryRecord[] {
    return this.#sorted<HistoryRecord>('mHistory').filter(pred).map(copy);
  }

  /** Drops the oldest rows of `table` beyond `max`. */
  #trim(table: string, max: number): void {
    const rows = this.#sortedEntries<unknown>(table);
    for (let i = 0; i < rows.length - max; i++) this.#j.delete(table, String(rows[i]![0]));
  }
}
