/**
 * The messenger's state (src/messaging/store.ts) in the client's own SQLite file, beside the
 * engine's tables, so that one transaction covers both: reading an inbox message, the session
 * update, the history row, the receipt queued through the engine and the consume of the inbox
 * entry commit together or not at all.
 *
 * The tables are made with CREATE TABLE IF NOT EXISTS every time the store opens, so that a
 * client database made before the messenger gets them (the schema version is not changed):
 *
 * - `msg_values (key PK, value)`: our identity and our one-time prekeys (encoded by
 *   src/messaging/identity.ts, with their check sums).
 * - `msg_contacts (id PK, name UNIQUE, identity_key UNIQUE, kem_key, gateway, mailbox,
 *   our_mailbox, session NULL, hello_due, receipts_due, initiator, verified, blocked, created_at)`.
 * - `msg_history (id PK AUTOINCREMENT, contact_id, direction 'in'|'out', kind 'text'|'file',
 *   msg_id, text, file_name, file_length, sent_at, received_at, state, client_id, file_client_id,
 *   pending, attachment_id, file_key, file_sha256, file_data, read)`; deleted with its contact.
 * - `msg_orphans (attachment_id PK, data, received_at)`: attachments ahead of their announcement.
 * - `msg_held (id PK AUTOINCREMENT, data, received_at)`: set-ups from people not yet contacts.
 * - `msg_introductions (id PK AUTOINCREMENT, intro_id, role 'made'|'received', contact_id,
 *   other_contact_id NULL, name, state, answer1, answer2, card1, card2, parts, parts_mask,
 *   created_at, expires_at, shown)`: introductions we made or were offered (`shown`: what a viewer
 *   showed of it, added by a guarded ALTER TABLE on open; rows from before count as shown).
 * - `msg_control (id PK AUTOINCREMENT, contact_id, content)`: contents due to a contact inside its
 *   session (introduction messages); deleted with its contact.
 */
import type Database from 'better-sqlite3';
import { BackchannelError } from '../errors.js';
import type {
  ContactRecord,
  HistoryRecord,
  HistoryState,
  IntroductionRecord,
  IntroductionState,
  MessengerStore,
  NewContact,
  NewHistory,
  NewIntroduction,
} from '../messaging/store.js';
import type { SqliteClientStore } from './sqlite-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS msg_values (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS msg_contacts (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  identity_key BLOB NOT NULL UNIQUE,
  kem_key BLOB NOT NULL,
  gateway BLOB NOT NULL,
  mailbox BLOB NOT NULL,
  our_mailbox BLOB NOT NULL,
  session BLOB,
  hello_due INTEGER NOT NULL,
  receipts_due BLOB NOT NULL,
  initiator INTEGER NOT NULL,
  verified INTEGER NOT NULL,
  blocked INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS msg_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  contact_id INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  kind TEXT NOT NULL CHECK (kind IN ('text', 'file')),
  msg_id BLOB NOT NULL,
  text TEXT,
  file_name TEXT,
  file_length INTEGER,
  sent_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'failed', 'receiving', 'received')),
  client_id BLOB,
  file_client_id BLOB,
  pending BLOB,
  attachment_id BLOB,
  file_key BLOB,
  file_sha256 BLOB,
  file_data BLOB,
  read INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS msg_history_contact ON msg_history (contact_id, id);
CREATE INDEX IF NOT EXISTS msg_history_msg_id ON msg_history (contact_id, direction, msg_id);
CREATE INDEX IF NOT EXISTS msg_history_client_id ON msg_history (client_id);
CREATE INDEX IF NOT EXISTS msg_history_file_client_id ON msg_history (file_client_id);
CREATE INDEX IF NOT EXISTS msg_history_attachment ON msg_history (attachment_id);
CREATE INDEX IF NOT EXISTS msg_history_unread ON msg_history (read, direction, id);
CREATE TABLE IF NOT EXISTS msg_orphans (
  attachment_id BLOB PRIMARY KEY,
  data BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS msg_held (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  data BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS msg_introductions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  intro_id BLOB NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('made', 'received')),
  contact_id INTEGER NOT NULL,
  other_contact_id INTEGER,
  name TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('offered', 'accepted', 'declined', 'done', 'expired', 'failed')),
  answer1 INTEGER NOT NULL,
  answer2 INTEGER NOT NULL,
  card1 BLOB,
  card2 BLOB,
  parts BLOB,
  parts_mask INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  shown INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS msg_introductions_intro_id ON msg_introductions (intro_id);
CREATE TABLE IF NOT EXISTS msg_control (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  contact_id INTEGER NOT NULL,
  content BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS msg_control_contact ON msg_control (contact_id, id);
`;

interface ContactRow {
  id: number;
  name: string;
  identity_key: Buffer;
  kem_key: Buffer;
  gateway: Buffer;
  mailbox: Buffer;
  our_mailbox: Buffer;
  session: Buffer | null;
  hello_due: number;
  receipts_due: Buffer;
  initiator: number;
  verified: number;
  blocked: number;
  created_at: number;
}

interface HistoryRow {
  id: number;
  contact_id: number;
  direction: string;
  kind: string;
  msg_id: Buffer;
  text: string | null;
  file_name: string | null;
  file_length: number | null;
  sent_at: number;
  received_at: number;
  state: string;
  client_id: Buffer | null;
  file_client_id: Buffer | null;
  pending: Buffer | null;
  attachment_id: Buffer | null;
  file_key: Buffer | null;
  file_sha256: Buffer | null;
  file_data: Buffer | null;
  read: number;
}

interface IntroductionRow {
  id: number;
  intro_id: Buffer;
  role: string;
  contact_id: number;
  other_contact_id: number | null;
  name: string;
  state: string;
  answer1: number;
  answer2: number;
  card1: Buffer | null;
  card2: Buffer | null;
  parts: Buffer | null;
  parts_mask: number;
  created_at: number;
  expires_at: number;
  shown: number;
}

const INTRO_STATES: readonly string[] = ['offered', 'accepted', 'declined', 'done', 'expired', 'failed'];

const own = (b: Buffer): Uint8Array => new Uint8Array(b);
const ownOrNull = (b: Buffer | null): Uint8Array | null => (b === null ? null : own(b));
const STATES: readonly string[] = ['queued', 'sent', 'delivered', 'failed', 'receiving', 'received'];

function corrupt(): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', 'client state: the database holds a malformed messenger row');
}

function contactOf(r: ContactRow): ContactRecord {
  return {
    id: r.id, name: r.name, identityKey: own(r.identity_key), kemKey: own(r.kem_key), gateway: own(r.gateway), mailbox: own(r.mailbox),
    ourMailbox: own(r.our_mailbox), session: ownOrNull(r.session), helloDue: r.hello_due === 1, receiptsDue: own(r.receipts_due),
    initiator: r.initiator === 1, verified: r.verified === 1, blocked: r.blocked === 1, createdAt: r.created_at,
  };
}

function historyOf(r: HistoryRow): HistoryRecord {
  if ((r.direction !== 'in' && r.direction !== 'out') || (r.kind !== 'text' && r.kind !== 'file') || !STATES.includes(r.state)) throw corrupt();
  return {
    id: r.id, contactId: r.contact_id, direction: r.direction, kind: r.kind, msgId: own(r.msg_id), text: r.text, fileName: r.file_name,
    fileLength: r.file_length, sentAt: r.sent_at, receivedAt: r.received_at, state: r.state as HistoryState, clientId: ownOrNull(r.client_id),
    fileClientId: ownOrNull(r.file_client_id), pending: ownOrNull(r.pending), attachmentId: ownOrNull(r.attachment_id), fileKey: ownOrNull(r.file_key),
    fileSha256: ownOrNull(r.file_sha256), fileData: ownOrNull(r.file_data), read: r.read === 1,
  };
}

function introductionOf(r: IntroductionRow): IntroductionRecord {
  if ((r.role !== 'made' && r.role !== 'received') || !INTRO_STATES.includes(r.state)) throw corrupt();
  return {
    id: r.id, introId: own(r.intro_id), role: r.role, contactId: r.contact_id, otherContactId: r.other_contact_id, name: r.name,
    state: r.state as IntroductionState, answer1: r.answer1, answer2: r.answer2, card1: ownOrNull(r.card1), card2: ownOrNull(r.card2),
    parts: ownOrNull(r.parts), partsMask: r.parts_mask, createdAt: r.created_at, expiresAt: r.expires_at, shown: r.shown,
  };
}

const HISTORY_COLUMNS = `contact_id, direction, kind, msg_id, text, file_name, file_length, sent_at, received_at, state, client_id,
  file_client_id, pending, attachment_id, file_key, file_sha256, file_data, read`;

function historyParams(h: NewHistory): unknown[] {
  return [
    h.contactId, h.direction, h.kind, h.msgId, h.text, h.fileName, h.fileLength, h.sentAt, h.receivedAt, h.state, h.clientId,
    h.fileClientId, h.pending, h.attachmentId, h.fileKey, h.fileSha256, h.fileData, h.read ? 1 : 0,
  ];
}

/** The messenger's tables in the client database of `client`; transactions are the client store's. */
export class SqliteMessengerStore implements MessengerStore {
  readonly #client: SqliteClientStore;
  readonly #db: Database.Database;

  constructor(client: SqliteClientStore) {
    this.#client = client;
    this.#db = client.database;
    this.#client.transaction(() => {
      this.#db.exec(SCHEMA);
      // A database made before introductions had "shown": its rows count as shown (3), so that a
      // viewer does not show old introductions; rows inserted later say 0 themselves.
      const columns = this.#db.prepare('PRAGMA table_info(msg_introductions)').all() as Array<{ name: string }>;
      if (!columns.some((c) => c.name === 'shown')) this.#db.exec('ALTER TABLE msg_introductions ADD COLUMN shown INTEGER NOT NULL DEFAULT 3');
    });
  }

  transaction<T>(fn: () => T): T {
    return this.#client.transaction(fn);
  }

  readonly #statements = new Map<string, Database.Statement>();

  /** A prepared statement, cached; a failure of SQLite becomes ERR_CLIENT_STATE. */
  #do<T>(sql: string, fn: (s: Database.Statement) => T): T {
    try {
      let st = this.#statements.get(sql);
      if (st === undefined) {
        st = this.#db.prepare(sql);
        this.#statements.set(sql, st);
      }
      return fn(st);
    } catch (e) {
      if (e instanceof BackchannelError) throw e;
      throw new BackchannelError('ERR_CLIENT_STATE', 'client state: a messenger query failed', { cause: e });
    }
  }

  #get<R>(sql: string, ...params: unknown[]): R | undefined {
    return this.#do(sql, (s) => s.get(...params) as R | undefined);
  }

  #all<R>(sql: string, ...params: unknown[]): R[] {
    return this.#do(sql, (s) => s.all(...params) as R[]);
  }

  #run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.#do(sql, (s) => s.run(...params));
  }

  getValue(key: string): Uint8Array | null {
    const r = this.#get<{ value: Buffer }>('SELECT value FROM msg_values WHERE key = ?', key);
    return r === undefined ? null : own(r.value);
  }

  setValue(key: string, value: Uint8Array): void {
    this.#run('INSERT INTO msg_values (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
  }

  contacts(): ContactRecord[] {
    return this.#all<ContactRow>('SELECT * FROM msg_contacts ORDER BY id').map(contactOf);
  }

  contact(id: number): ContactRecord | null {
    const r = this.#get<ContactRow>('SELECT * FROM msg_contacts WHERE id = ?', id);
    return r === undefined ? null : contactOf(r);
  }

  insertContact(c: NewContact): number {
    const r = this.#run(
      `INSERT INTO msg_contacts (name, identity_key, kem_key, gateway, mailbox, our_mailbox, session, hello_due, receipts_due, initiator, verified, blocked, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      c.name, c.identityKey, c.kemKey, c.gateway, c.mailbox, c.ourMailbox, c.session, c.helloDue ? 1 : 0, c.receiptsDue, c.initiator ? 1 : 0,
      c.verified ? 1 : 0, c.blocked ? 1 : 0, c.createdAt,
    );
    return Number(r.lastInsertRowid);
  }

  updateContact(c: ContactRecord): void {
    this.#run(
      `UPDATE msg_contacts SET name = ?, gateway = ?, mailbox = ?, our_mailbox = ?, session = ?, hello_due = ?, receipts_due = ?, verified = ?, blocked = ?
       WHERE id = ?`,
      c.name, c.gateway, c.mailbox, c.ourMailbox, c.session, c.helloDue ? 1 : 0, c.receiptsDue, c.verified ? 1 : 0, c.blocked ? 1 : 0, c.id,
    );
  }

  deleteContact(id: number): void {
    this.#run('DELETE FROM msg_history WHERE contact_id = ?', id);
    this.#run('DELETE FROM msg_control WHERE contact_id = ?', id);
    this.#run('DELETE FROM msg_contacts WHERE id = ?', id);
  }

  insertHistory(h: NewHistory): number {
    const r = this.#run(`INSERT INTO msg_history (${HISTORY_COLUMNS}) VALUES (${HISTORY_COLUMNS.split(',').map(() => '?').join(', ')})`, ...historyParams(h));
    return Number(r.lastInsertRowid);
  }

  updateHistory(h: HistoryRecord): void {
    const sets = HISTORY_COLUMNS.split(',').map((c) => `${c.trim()} = ?`).join(', ');
    this.#run(`UPDATE msg_history SET ${sets} WHERE id = ?`, ...historyParams(h), h.id);
  }

  historyEntry(id: number): HistoryRecord | null {
    const r = this.#get<HistoryRow>('SELECT * FROM msg_history WHERE id = ?', id);
    return r === undefined ? null : historyOf(r);
  }

  history(contactId: number, limit: number): HistoryRecord[] {
    return this.#all<HistoryRow>('SELECT * FROM (SELECT * FROM msg_history WHERE contact_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id', contactId, limit).map(historyOf);
  }

  historyByMsgId(contactId: number, direction: 'in' | 'out', msgId: Uint8Array): HistoryRecord | null {
    const r = this.#get<HistoryRow>('SELECT * FROM msg_history WHERE contact_id = ? AND direction = ? AND msg_id = ? ORDER BY id LIMIT 1', contactId, direction, msgId);
    return r === undefined ? null : historyOf(r);
  }

  historyByClientId(clientId: Uint8Array): HistoryRecord | null {
    const r =
      this.#get<HistoryRow>('SELECT * FROM msg_history WHERE client_id = ? LIMIT 1', clientId) ??
      this.#get<HistoryRow>('SELECT * FROM msg_history WHERE file_client_id = ? LIMIT 1', clientId);
    return r === undefined ? null : historyOf(r);
  }

  queuedForSession(contactId: number): HistoryRecord[] {
    return this.#all<HistoryRow>(`SELECT * FROM msg_history WHERE contact_id = ? AND direction = 'out' AND state = 'queued' AND pending IS NOT NULL ORDER BY id`, contactId).map(historyOf);
  }

  inFlight(): HistoryRecord[] {
    return this.#all<HistoryRow>(`SELECT * FROM msg_history WHERE direction = 'out' AND state IN ('queued', 'sent') AND client_id IS NOT NULL ORDER BY id`).map(historyOf);
  }

  receivingAttachment(attachmentId: Uint8Array): HistoryRecord | null {
    const r = this.#get<HistoryRow>(`SELECT * FROM msg_history WHERE attachment_id = ? AND direction = 'in' AND state = 'receiving' LIMIT 1`, attachmentId);
    return r === undefined ? null : historyOf(r);
  }

  unread(afterId: number, limit: number): HistoryRecord[] {
    return this.#all<HistoryRow>(`SELECT * FROM msg_history WHERE read = 0 AND direction = 'in' AND state = 'received' AND id > ? ORDER BY id LIMIT ?`, afterId, limit).map(historyOf);
  }

  putOrphanAttachment(attachmentId: Uint8Array, data: Uint8Array, receivedAt: number, max: number): void {
    this.#run('INSERT OR REPLACE INTO msg_orphans (attachment_id, data, received_at) VALUES (?, ?, ?)', attachmentId, data, receivedAt);
    this.#run('DELETE FROM msg_orphans WHERE attachment_id NOT IN (SELECT attachment_id FROM msg_orphans ORDER BY received_at DESC LIMIT ?)', max);
  }

  takeOrphanAttachment(attachmentId: Uint8Array): Uint8Array | null {
    const r = this.#get<{ data: Buffer }>('SELECT data FROM msg_orphans WHERE attachment_id = ?', attachmentId);
    if (r === undefined) return null;
    this.#run('DELETE FROM msg_orphans WHERE attachment_id = ?', attachmentId);
    return own(r.data);
  }

  insertIntroduction(r: NewIntroduction): number {
    const res = this.#run(
      `INSERT INTO msg_introductions (intro_id, role, contact_id, other_contact_id, name, state, answer1, answer2, card1, card2, parts, parts_mask, created_at, expires_at, shown)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.introId, r.role, r.contactId, r.otherContactId, r.name, r.state, r.answer1, r.answer2, r.card1, r.card2, r.parts, r.partsMask, r.createdAt, r.expiresAt, r.shown,
    );
    return Number(res.lastInsertRowid);
  }

  updateIntroduction(r: IntroductionRecord): void {
    this.#run(
      'UPDATE msg_introductions SET name = ?, state = ?, answer1 = ?, answer2 = ?, card1 = ?, card2 = ?, parts = ?, parts_mask = ?, shown = ? WHERE id = ?',
      r.name, r.state, r.answer1, r.answer2, r.card1, r.card2, r.parts, r.partsMask, r.shown, r.id,
    );
  }

  deleteIntroduction(id: number): void {
    this.#run('DELETE FROM msg_introductions WHERE id = ?', id);
  }

  introduction(id: number): IntroductionRecord | null {
    const r = this.#get<IntroductionRow>('SELECT * FROM msg_introductions WHERE id = ?', id);
    return r === undefined ? null : introductionOf(r);
  }

  introductionById(introId: Uint8Array, contactId: number): IntroductionRecord | null {
    const r = this.#get<IntroductionRow>('SELECT * FROM msg_introductions WHERE intro_id = ? AND (contact_id = ? OR other_contact_id = ?) ORDER BY id LIMIT 1', introId, contactId, contactId);
    return r === undefined ? null : introductionOf(r);
  }

  introductions(): IntroductionRecord[] {
    return this.#all<IntroductionRow>('SELECT * FROM msg_introductions ORDER BY id').map(introductionOf);
  }

  queueControl(contactId: number, content: Uint8Array): void {
    this.#run('INSERT INTO msg_control (contact_id, content) VALUES (?, ?)', contactId, content);
  }

  controlDue(contactId: number): Array<{ id: number; content: Uint8Array }> {
    return this.#all<{ id: number; content: Buffer }>('SELECT id, content FROM msg_control WHERE contact_id = ? ORDER BY id', contactId).map((r) => ({ id: r.id, content: own(r.content) }));
  }

  deleteControl(id: number): void {
    this.#run('DELETE FROM msg_control WHERE id = ?', id);
  }

  putHeld(data: Uint8Array, receivedAt: number, max: number): void {
    this.#run('INSERT INTO msg_held (data, received_at) VALUES (?, ?)', data, receivedAt);
    this.#run('DELETE FROM msg_held WHERE id NOT IN (SELECT id FROM msg_held ORDER BY id DESC LIMIT ?)', max);
  }

  held(): Array<{ id: number; data: Uint8Array }> {
    return this.#all<{ id: number; data: Buffer }>('SELECT id, data FROM msg_held ORDER BY id').map((r) => ({ id: r.id, data: own(r.data) }));
  }

  deleteHeld(id: number): void {
    this.#run('DELETE FROM msg_held WHERE id = ?', id);
  }
}
