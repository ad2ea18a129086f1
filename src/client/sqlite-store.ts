/**
 * The client's durable state in one SQLite file (better-sqlite3, WAL, `synchronous = FULL`): the
 * Node implementation of ClientStore (store.ts, whose doc comments are the contract). Every method
 * returns after its transaction is committed; methods that write more than one row run in a
 * transaction of their own, which becomes a savepoint when the caller already holds one.
 *
 * The file is created with mode 0600 (SQLite gives its -wal and -shm files the same mode): it
 * holds the link private key and the keys of every SURB we made.
 *
 * Tables (layout version CLIENT_SCHEMA_VERSION in `user_version`, CLIENT_APPLICATION_ID in
 * `application_id` so that another project's database, the gateway's mailbox store for one, is
 * recognised as not ours):
 *
 * - `settings (key TEXT PK, value BLOB)`: small key/value pairs (link key, gateway, network).
 * - `position (id = 0, next_mailbox_seq)`: one row, the next mailbox sequence to fetch.
 * - `outgoing_messages (id BLOB PK, dest_kind 'address'|'reply', gateway, mailbox, in_reply_to,
 *   length, fragments, created_at, status 'pending'|'delivered'|'sent'|'failed', done)`: gateway
 *   and mailbox are set for an address, in_reply_to (an inbox message id) for a reply.
 * - `outgoing_fragments ((message_id, idx) PK, frame, reply_surb NULL, attempts, due_at,
 *   last_sent_at NULL, state 'pending'|'done')`: a message's `done` is always the number of its
 *   fragments in state 'done'.
 * - `surbs (id BLOB PK, purpose 'ack'|'loop'|'reply', keys, message_id NULL, idx NULL,
 *   sent_at NULL, attempt NULL, created_at)`: SURBs we made; which columns are set depends on the
 *   purpose (ack: all; loop: sent_at; reply: message_id).
 * - `incoming_messages (message_id BLOB UNIQUE, count, have, first_received_at)`: one row per
 *   incomplete message, so that the bound on incomplete messages and the completion test cost a
 *   lookup, not a scan of the fragments.
 * - `incoming_fragments ((message_id, idx) PK, data, received_at, in_reply_to NULL)`: fragments of
 *   incomplete messages; deleted when their message completes.
 * - `inbox (seq INTEGER PK AUTOINCREMENT, id BLOB UNIQUE, body, received_at, in_reply_to NULL,
 *   consumed)`: AUTOINCREMENT, so that a seq is never handed out twice.
 * - `reply_surbs ((inbox_id, idx) PK, surb, used)`: the SURBs that came with an inbox message.
 * - `inbox_meta (id BLOB PK, sent_at NULL, file_name NULL)`: what a version-2 message said about
 *   itself (frames.ts): the sender's clock (ms) and the file name. Made by INBOX_META_SCHEMA on
 *   every open (`IF NOT EXISTS`), so that a database made before it gets it without a new layout
 *   version; a message without a row here came without meta.
 * - `mailboxes`, `inbox_mailboxes`: extra mailboxes and what came to them (sqlite-mailboxes.ts).
 * - `invites (id TEXT PK, state BLOB, updated_at)`: open and recent invites of contacts by code
 *   (src/client/invites.ts); made by INVITES_SCHEMA on every open, so a database made before it
 *   gets it without a new schema version.
 *
 * Large blobs (frames, fragment data, bodies) live in rowid tables, whose leaves hold a 2 kB row
 * whole; WITHOUT ROWID is kept for the small tables.
 */
import Database from 'better-sqlite3';
import { BackchannelError } from '../errors.js';
import { abytes, aint } from '../util/bytes.js';
import { openDurableDatabase } from '../util/sqlite.js';
import { SqliteMailboxes } from './sqlite-mailboxes.js';
import type {
  AssembledMessage,
  ClientStore,
  Destination,
  ExtraMailbox,
  ExtraMailboxChange,
  FragmentResult,
  InboxMessage,
  OutgoingFragment,
  OutgoingMessage,
  OutgoingStatus,
  SurbRecord,
} from './store.js';

/** The file name of the client database inside the client's data folder. */
export const CLIENT_DB_FILE = 'client.db';
/** The layout this build reads and writes, kept in SQLite's `user_version`. */
export const CLIENT_SCHEMA_VERSION = 1;
/** SQLite's `application_id` of a client database: "BCcl". */
export const CLIENT_APPLICATION_ID = 0x4243636c;
/** The most fragments one received message may have (the frame's count field is 16 bits). */
export const MAX_FRAGMENT_COUNT = 65_535;
/** Incomplete received messages held at once; a new one beyond this evicts the oldest. */
export const MAX_INCOMPLETE_MESSAGES = 1024;
/** How long a write waits for another connection's lock before failing. */
const BUSY_TIMEOUT_MS = 5_000;
/** The WAL file is truncated back to this size after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

const SCHEMA = `
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE position (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  next_mailbox_seq INTEGER NOT NULL
);
INSERT INTO position (id, next_mailbox_seq) VALUES (0, 0);
CREATE TABLE outgoing_messages (
  id BLOB PRIMARY KEY,
  dest_kind TEXT NOT NULL CHECK (dest_kind IN ('address', 'reply')),
  gateway BLOB,
  mailbox BLOB,
  in_reply_to BLOB,
  length INTEGER NOT NULL,
  fragments INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'sent', 'failed')),
  done INTEGER NOT NULL,
  CHECK ((dest_kind = 'address' AND gateway IS NOT NULL AND mailbox IS NOT NULL AND in_reply_to IS NULL)
      OR (dest_kind = 'reply' AND gateway IS NULL AND mailbox IS NULL AND in_reply_to IS NOT NULL))
) WITHOUT ROWID;
CREATE INDEX outgoing_messages_status ON outgoing_messages (status, created_at);
CREATE TABLE outgoing_fragments (
  message_id BLOB NOT NULL,
  idx INTEGER NOT NULL,
  frame BLOB NOT NULL,
  reply_surb BLOB,
  attempts INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  last_sent_at INTEGER,
  state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  PRIMARY KEY (message_id, idx)
);
CREATE TABLE surbs (
  id BLOB PRIMARY KEY,
  purpose TEXT NOT NULL CHECK (purpose IN ('ack', 'loop', 'reply')),
  keys BLOB NOT NULL,
  message_id BLOB,
  idx INTEGER,
  sent_at INTEGER,
  attempt INTEGER,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX surbs_created_at ON surbs (created_at);
CREATE TABLE incoming_messages (
  id INTEGER PRIMARY KEY,
  message_id BLOB NOT NULL UNIQUE,
  count INTEGER NOT NULL,
  have INTEGER NOT NULL,
  first_received_at INTEGER NOT NULL
);
CREATE INDEX incoming_messages_age ON incoming_messages (first_received_at, id);
CREATE TABLE incoming_fragments (
  message_id BLOB NOT NULL,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  in_reply_to BLOB,
  PRIMARY KEY (message_id, idx)
);
CREATE TABLE inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id BLOB NOT NULL UNIQUE,
  body BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  in_reply_to BLOB,
  consumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbox_unconsumed ON inbox (consumed, seq);
CREATE TABLE reply_surbs (
  inbox_id BLOB NOT NULL,
  idx INTEGER NOT NULL,
  surb BLOB NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (inbox_id, idx)
) WITHOUT ROWID;
`;

/** Added after layout version 1; run on every open. */
const INBOX_META_SCHEMA = `
CREATE TABLE IF NOT EXISTS inbox_meta (
  id BLOB PRIMARY KEY,
  sent_at INTEGER,
  file_name TEXT
) WITHOUT ROWID;
`;

interface MessageRow {
  id: Buffer;
  dest_kind: string;
  gateway: Buffer | null;
  mailbox: Buffer | null;
  in_reply_to: Buffer | null;
  length: number;
  fragments: number;
  created_at: number;
  status: string;
  done: number;
}

interface FragmentRow {
  message_id: Buffer;
  idx: number;
  frame: Buffer;
  reply_surb: Buffer | null;
  attempts: number;
  due_at: number;
  last_sent_at: number | null;
  dest_kind: string;
  gateway: Buffer | null;
  mailbox: Buffer | null;
  in_reply_to: Buffer | null;
}

interface SurbRow {
  purpose: string;
  keys: Buffer;
  message_id: Buffer | null;
  idx: number | null;
  sent_at: number | null;
  attempt: number | null;
}

interface InboxRow {
  seq: number;
  id: Buffer;
  body: Buffer;
  received_at: number;
  in_reply_to: Buffer | null;
  reply_surbs: number;
  consumed: number;
  sent_at: number | null;
  file_name: string | null;
  mailbox: Buffer | null;
}

interface IncomingRow {
  count: number;
  have: number;
}

type Blob = Uint8Array;

/** A copy that is a plain Uint8Array: callers never alias memory that better-sqlite3 handed out. */
function own(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

function ownOrNull(b: Buffer | null): Uint8Array | null {
  return b === null ? null : own(b);
}

function stateError(message: string, cause?: unknown): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', `client state: ${message}`, cause === undefined ? undefined : { cause });
}

function corrupt(what: string): BackchannelError {
  return stateError(`the database holds a malformed ${what} row`);
}

const TIME_MAX = Number.MAX_SAFE_INTEGER;

function checkTime(name: string, value: unknown): asserts value is number {
  aint(name, value, 0, TIME_MAX);
}

function checkDestination(destination: unknown): asserts destination is Destination {
  if (typeof destination !== 'object' || destination === null) {
    throw new TypeError(`"destination" expected an object, got ${destination === null ? 'null' : typeof destination}`);
  }
  const d = destination as Record<string, unknown>;
  if (d['kind'] === 'address') {
    abytes('destination.gateway', d['gateway']);
    abytes('destination.mailbox', d['mailbox']);
  } else if (d['kind'] === 'reply') {
    abytes('destination.inReplyTo', d['inReplyTo']);
  } else {
    throw new TypeError('"destination.kind" expected "address" or "reply"');
  }
}

function destinationOf(row: { dest_kind: string; gateway: Buffer | null; mailbox: Buffer | null; in_reply_to: Buffer | null }): Destination {
  if (row.dest_kind === 'address' && row.gateway !== null && row.mailbox !== null) {
    return { kind: 'address', gateway: own(row.gateway), mailbox: own(row.mailbox) };
  }
  if (row.dest_kind === 'reply' && row.in_reply_to !== null) return { kind: 'reply', inReplyTo: own(row.in_reply_to) };
  throw corrupt('outgoing message');
}

function isStatus(s: string): s is OutgoingStatus {
  return s === 'pending' || s === 'delivered' || s === 'sent' || s === 'failed';
}

function messageOf(row: MessageRow): OutgoingMessage {
  if (!isStatus(row.status)) throw corrupt('outgoing message');
  return {
    id: own(row.id),
    destination: destinationOf(row),
    length: row.length,
    fragments: row.fragments,
    createdAt: row.created_at,
    status: row.status,
    done: row.done,
  };
}

function fragmentOf(row: FragmentRow): OutgoingFragment {
  return {
    messageId: own(row.message_id),
    index: row.idx,
    frame: own(row.frame),
    destination: destinationOf(row),
    replySurb: ownOrNull(row.reply_surb),
    attempts: row.attempts,
    dueAt: row.due_at,
    lastSentAt: row.last_sent_at,
  };
}

function surbOf(row: SurbRow): SurbRecord {
  const keys = own(row.keys);
  switch (row.purpose) {
    case 'ack':
      if (row.message_id === null || row.idx === null || row.sent_at === null || row.attempt === null) throw corrupt('SURB');
      return { purpose: 'ack', keys, messageId: own(row.message_id), index: row.idx, sentAt: row.sent_at, attempt: row.attempt };
    case 'loop':
      if (row.sent_at === null) throw corrupt('SURB');
      return { purpose: 'loop', keys, sentAt: row.sent_at };
    case 'reply':
      if (row.message_id === null) throw corrupt('SURB');
      return { purpose: 'reply', keys, messageId: own(row.message_id) };
    default:
      throw corrupt('SURB');
  }
}

function inboxOf(row: InboxRow): InboxMessage {
  return {
    seq: row.seq,
    id: own(row.id),
    body: own(row.body),
    receivedAt: row.received_at,
    replySurbs: row.reply_surbs,
    inReplyTo: ownOrNull(row.in_reply_to),
    sentAt: row.sent_at,
    fileName: row.file_name,
    consumed: row.consumed !== 0,
    mailbox: ownOrNull(row.mailbox),
  };
}

/** The invites table (contacts by code), created when missing on every open. */
const INVITES_SCHEMA = `
CREATE TABLE IF NOT EXISTS invites (
  id TEXT PRIMARY KEY,
  state BLOB NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * Creates the schema in a new database; accepts only a client database at CLIENT_SCHEMA_VERSION
 * otherwise.
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true });
    const application = db.pragma('application_id', { simple: true });
    if (application === CLIENT_APPLICATION_ID) {
      if (version === CLIENT_SCHEMA_VERSION) return;
      throw stateError(`unknown schema version ${String(version)} (this build reads version ${CLIENT_SCHEMA_VERSION})`);
    }
    const objects = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM sqlite_schema').get()?.n ?? 0;
    if (application !== 0 || version !== 0 || objects > 0) throw stateError('the database is not a client database');
    db.exec(SCHEMA);
    db.pragma(`application_id = ${CLIENT_APPLICATION_ID}`);
    db.pragma(`user_version = ${CLIENT_SCHEMA_VERSION}`);
  }).immediate();
}

/** The client's state in SQLite. Open with `SqliteClientStore.open(path)`. */
export class SqliteClientStore implements ClientStore {
  readonly #db: Database.Database;
  readonly #mailboxes: SqliteMailboxes;
  #closed = false;

  readonly #getSetting: Database.Statement<[string], { value: Buffer }>;
  readonly #setSetting: Database.Statement<[string, Blob]>;
  readonly #getPosition: Database.Statement<[], { next_mailbox_seq: number }>;
  readonly #setPosition: Database.Statement<[number]>;

  readonly #selectMessage: Database.Statement<[Blob], MessageRow>;
  readonly #insertMessage: Database.Statement<[Blob, string, Blob | null, Blob | null, Blob | null, number, number, number]>;
  readonly #insertFragment: Database.Statement<[Blob, number, Blob, Blob | null, number]>;
  readonly #pendingFragments: Database.Statement<[], FragmentRow>;
  readonly #recordAttempt: Database.Statement<[number, number | null, Blob, number]>;
  readonly #markFragmentDone: Database.Statement<[Blob, number]>;
  readonly #countDone: Database.Statement<[Blob], { n: number }>;
  readonly #setDone: Database.Statement<[number, string | null, Blob]>;
  readonly #failMessage: Database.Statement<[Blob]>;
  readonly #pruneOutgoingFragments: Database.Statement<[number]>;
  readonly #pruneOutgoingMessages: Database.Statement<[number]>;

  readonly #inboxExists: Database.Statement<[Blob], { seq: number }>;
  readonly #unusedReplySurbs: Database.Statement<[Blob, number], { idx: number; surb: Buffer }>;
  readonly #useReplySurb: Database.Statement<[Blob, number]>;

  readonly #insertSurb: Database.Statement<[Blob, string, Blob, Blob | null, number | null, number | null, number | null, number]>;
  readonly #selectSurb: Database.Statement<[Blob], SurbRow>;
  readonly #deleteSurb: Database.Statement<[Blob]>;
  readonly #pruneSurbs: Database.Statement<[number]>;

  readonly #selectIncoming: Database.Statement<[Blob], IncomingRow>;
  readonly #countIncoming: Database.Statement<[], { n: number }>;
  readonly #oldestIncoming: Database.Statement<[], { message_id: Buffer }>;
  readonly #insertIncoming: Database.Statement<[Blob, number, number]>;
  readonly #bumpIncoming: Database.Statement<[Blob]>;
  readonly #deleteIncoming: Database.Statement<[Blob]>;
  readonly #fragmentExists: Database.Statement<[Blob, number], { idx: number }>;
  readonly #insertIncomingFragment: Database.Statement<[Blob, number, Blob, number, Blob | null]>;
  readonly #incomingFragments: Database.Statement<[Blob], { data: Buffer; in_reply_to: Buffer | null }>;
  readonly #deleteIncomingFragments: Database.Statement<[Blob]>;
  readonly #pruneIncomingFragments: Database.Statement<[number]>;
  readonly #pruneIncomingMessages: Database.Statement<[number]>;

  readonly #insertInbox: Database.Statement<[Blob, Blob, number, Blob | null]>;
  readonly #insertReplySurb: Database.Statement<[Blob, number, Blob]>;
  readonly #selectInboxById: Database.Statement<[Blob], InboxRow>;
  readonly #selectUnconsumed: Database.Statement<[number, number], InboxRow>;
  readonly #selectInbox: Database.Statement<[number, number], InboxRow>;
  readonly #selectInboxByPrefix: Database.Statement<[string, number], InboxRow>;
  readonly #insertInboxMeta: Database.Statement<[Blob, number, string | null]>;
  readonly #consume: Database.Statement<[number]>;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#mailboxes = new SqliteMailboxes(db);
    this.#getSetting = db.prepare('SELECT value FROM settings WHERE key = ?');
    this.#setSetting = db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.#getPosition = db.prepare('SELECT next_mailbox_seq FROM position WHERE id = 0');
    this.#setPosition = db.prepare('UPDATE position SET next_mailbox_seq = ? WHERE id = 0');

    const messageColumns = 'id, dest_kind, gateway, mailbox, in_reply_to, length, fragments, created_at, status, done';
    this.#selectMessage = db.prepare(`SELECT ${messageColumns} FROM outgoing_messages WHERE id = ?`);
    this.#insertMessage = db.prepare(
      `INSERT INTO outgoing_messages (id, dest_kind, gateway, mailbox, in_reply_to, length, fragments, created_at, status, done)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)`,
    );
    this.#insertFragment = db.prepare(
      `INSERT INTO outgoing_fragments (message_id, idx, frame, reply_surb, attempts, due_at, last_sent_at, state)
       VALUES (?, ?, ?, ?, 0, ?, NULL, 'pending')`,
    );
    this.#pendingFragments = db.prepare(
      `SELECT f.message_id, f.idx, f.frame, f.reply_surb, f.attempts, f.due_at, f.last_sent_at,
              m.dest_kind, m.gateway, m.mailbox, m.in_reply_to
       FROM outgoing_messages m JOIN outgoing_fragments f ON f.message_id = m.id
       WHERE m.status = 'pending' AND f.state = 'pending'`,
    );
    // A null due_at keeps the old one: the fragment is then marked done by the same transaction.
    this.#recordAttempt = db.prepare(
      `UPDATE outgoing_fragments SET attempts = attempts + 1, last_sent_at = ?, due_at = COALESCE(?, due_at)
       WHERE message_id = ? AND idx = ?`,
    );
    this.#markFragmentDone = db.prepare(
      `UPDATE outgoing_fragments SET state = 'done' WHERE message_id = ? AND idx = ? AND state = 'pending'`,
    );
    this.#countDone = db.prepare(`SELECT COUNT(*) AS n FROM outgoing_fragments WHERE message_id = ? AND state = 'done'`);
    this.#setDone = db.prepare('UPDATE outgoing_messages SET done = ?, status = COALESCE(?, status) WHERE id = ?');
    this.#failMessage = db.prepare(`UPDATE outgoing_messages SET status = 'failed' WHERE id = ? AND status = 'pending'`);
    this.#pruneOutgoingFragments = db.prepare(
      `DELETE FROM outgoing_fragments WHERE message_id IN
         (SELECT id FROM outgoing_messages WHERE status <> 'pending' AND created_at < ?)`,
    );
    this.#pruneOutgoingMessages = db.prepare(`DELETE FROM outgoing_messages WHERE status <> 'pending' AND created_at < ?`);

    this.#inboxExists = db.prepare('SELECT seq FROM inbox WHERE id = ?');
    this.#unusedReplySurbs = db.prepare('SELECT idx, surb FROM reply_surbs WHERE inbox_id = ? AND used = 0 ORDER BY idx LIMIT ?');
    this.#useReplySurb = db.prepare('UPDATE reply_surbs SET used = 1 WHERE inbox_id = ? AND idx = ?');

    this.#insertSurb = db.prepare(
      'INSERT INTO surbs (id, purpose, keys, message_id, idx, sent_at, attempt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#selectSurb = db.prepare('SELECT purpose, keys, message_id, idx, sent_at, attempt FROM surbs WHERE id = ?');
    this.#deleteSurb = db.prepare('DELETE FROM surbs WHERE id = ?');
    this.#pruneSurbs = db.prepare('DELETE FROM surbs WHERE created_at < ?');

    this.#selectIncoming = db.prepare('SELECT count, have FROM incoming_messages WHERE message_id = ?');
    this.#countIncoming = db.prepare('SELECT COUNT(*) AS n FROM incoming_messages');
    this.#oldestIncoming = db.prepare('SELECT message_id FROM incoming_messages ORDER BY first_received_at, id LIMIT 1');
    this.#insertIncoming = db.prepare('INSERT INTO incoming_messages (message_id, count, have, first_received_at) VALUES (?, ?, 0, ?)');
    this.#bumpIncoming = db.prepare('UPDATE incoming_messages SET have = have + 1 WHERE message_id = ?');
    this.#deleteIncoming = db.prepare('DELETE FROM incoming_messages WHERE message_id = ?');
    this.#fragmentExists = db.prepare('SELECT idx FROM incoming_fragments WHERE message_id = ? AND idx = ?');
    this.#insertIncomingFragment = db.prepare(
      'INSERT INTO incoming_fragments (message_id, idx, data, received_at, in_reply_to) VALUES (?, ?, ?, ?, ?)',
    );
    this.#incomingFragments = db.prepare('SELECT data, in_reply_to FROM incoming_fragments WHERE message_id = ? ORDER BY idx');
    this.#deleteIncomingFragments = db.prepare('DELETE FROM incoming_fragments WHERE message_id = ?');
    this.#pruneIncomingFragments = db.prepare(
      'DELETE FROM incoming_fragments WHERE message_id IN (SELECT message_id FROM incoming_messages WHERE first_received_at < ?)',
    );
    this.#pruneIncomingMessages = db.prepare('DELETE FROM incoming_messages WHERE first_received_at < ?');

    this.#insertInbox = db.prepare('INSERT INTO inbox (id, body, received_at, in_reply_to, consumed) VALUES (?, ?, ?, ?, 0)');
    this.#insertReplySurb = db.prepare('INSERT INTO reply_surbs (inbox_id, idx, surb, used) VALUES (?, ?, ?, 0)');
    const inboxColumns = `seq, inbox.id AS id, body, received_at, in_reply_to, consumed, m.sent_at AS sent_at, m.file_name AS file_name,
      (SELECT COUNT(*) FROM reply_surbs r WHERE r.inbox_id = inbox.id AND r.used = 0) AS reply_surbs,
      (SELECT x.mailbox FROM inbox_mailboxes x WHERE x.seq = inbox.seq) AS mailbox`;
    const inboxFrom = 'inbox LEFT JOIN inbox_meta m ON m.id = inbox.id';
    this.#selectInboxById = db.prepare(`SELECT ${inboxColumns} FROM ${inboxFrom} WHERE inbox.id = ?`);
    this.#selectUnconsumed = db.prepare(`SELECT ${inboxColumns} FROM ${inboxFrom} WHERE consumed = 0 AND seq > ? ORDER BY seq LIMIT ?`);
    this.#selectInbox = db.prepare(`SELECT ${inboxColumns} FROM ${inboxFrom} WHERE seq > ? ORDER BY seq LIMIT ?`);
    // hex() is upper case; the prefix is checked to be hex digits, so LIKE sees no wildcard.
    this.#selectInboxByPrefix = db.prepare(`SELECT ${inboxColumns} FROM ${inboxFrom} WHERE hex(inbox.id) LIKE ? ORDER BY seq LIMIT ?`);
    this.#insertInboxMeta = db.prepare('INSERT OR REPLACE INTO inbox_meta (id, sent_at, file_name) VALUES (?, ?, ?)');
    this.#consume = db.prepare('UPDATE inbox SET consumed = 1 WHERE seq = ?');
  }

  /**
   * Opens the client database at `path`, creating the file (mode 0600, its folder 0700) and the
   * schema when missing. `':memory:'` gives a store that lives only in this process.
   * @throws {BackchannelError} ERR_CLIENT_STATE when the file cannot be opened, is not a client
   *   database, has a schema version this build does not know, or cannot use WAL.
   * @example
   *   const store = SqliteClientStore.open(join(dataDir, CLIENT_DB_FILE));
   */
  static open(path: string): SqliteClientStore {
    if (typeof path !== 'string' || path === '') throw new TypeError('"path" expected a non-empty string');
    const durable = { busyTimeoutMs: BUSY_TIMEOUT_MS, journalSizeLimit: JOURNAL_SIZE_LIMIT, dirMode: DIR_MODE, fileMode: FILE_MODE, error: stateError, openFailure: 'cannot open the client database' };
    return openDurableDatabase(path, durable, (db) => {
      migrate(db);
      db.exec(INBOX_META_SCHEMA);
      db.exec(INVITES_SCHEMA);
      return new SqliteClientStore(db);
    });
  }

  transaction<T>(fn: () => T): T {
    return this.#run('transaction', () => this.#tx(fn));
  }

  /**
   * The open database, for state that lives in the same file and must commit in the same
   * transactions (the messenger's tables, src/client/messenger-store.ts).
   * @throws {BackchannelError} ERR_CLIENT_STATE when the store is closed.
   */
  get database(): Database.Database {
    if (this.#closed) throw stateError('database on a closed store');
    return this.#db;
  }

  // ---- identity and settings ----

  getSetting(key: string): Uint8Array | null {
    if (typeof key !== 'string') throw new TypeError(`"key" expected a string, got ${typeof key}`);
    return this.#run('getSetting', () => {
      const row = this.#getSetting.get(key);
      return row === undefined ? null : own(row.value);
    });
  }

  setSetting(key: string, value: Uint8Array): void {
    if (typeof key !== 'string') throw new TypeError(`"key" expected a string, got ${typeof key}`);
    abytes('value', value);
    this.#run('setSetting', () => {
      this.#setSetting.run(key, value);
    });
  }

  // ---- mailbox position ----

  nextMailboxSeq(): number {
    return this.#run('nextMailboxSeq', () => {
      const row = this.#getPosition.get();
      if (row === undefined) throw corrupt('position');
      return row.next_mailbox_seq;
    });
  }

  setNextMailboxSeq(seq: number): void {
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#run('setNextMailboxSeq', () => {
      if (this.#setPosition.run(seq).changes !== 1) throw corrupt('position');
    });
  }

  // ---- outgoing ----

  enqueue(message: { id: Uint8Array; destination: Destination; length: number; createdAt: number }, frames: readonly Uint8Array[]): OutgoingFragment[] {
    if (typeof message !== 'object' || message === null) throw new TypeError('"message" expected an object');
    abytes('message.id', message.id);
    checkDestination(message.destination);
    aint('message.length', message.length, 0, Number.MAX_SAFE_INTEGER);
    checkTime('message.createdAt', message.createdAt);
    if (!Array.isArray(frames)) throw new TypeError(`"frames" expected an array, got ${typeof frames}`);
    if (frames.length === 0) throw new RangeError('"frames" expected at least one frame');
    frames.forEach((f, i) => abytes(`frames[${i}]`, f));
    const { id, destination: d, length, createdAt } = message;

    return this.#run('enqueue', () =>
      this.#tx((): OutgoingFragment[] => {
        if (this.#selectMessage.get(id) !== undefined) throw stateError('an outgoing message with this id is already stored');
        let surbs: Uint8Array[] | null = null;
        if (d.kind === 'reply') {
          if (this.#inboxExists.get(d.inReplyTo) === undefined) throw stateError('no such inbox message');
          const unused = this.#unusedReplySurbs.all(d.inReplyTo, frames.length);
          if (unused.length < frames.length) {
            throw new BackchannelError(
              'ERR_CLIENT_NO_SURBS',
              `client: the reply needs ${frames.length} SURBs, the message has ${unused.length} left`,
            );
          }
          surbs = [];
          for (const u of unused) {
            this.#useReplySurb.run(d.inReplyTo, u.idx);
            surbs.push(own(u.surb));
          }
        }
        if (d.kind === 'address') {
          this.#insertMessage.run(id, 'address', d.gateway, d.mailbox, null, length, frames.length, createdAt);
        } else {
          this.#insertMessage.run(id, 'reply', null, null, d.inReplyTo, length, frames.length, createdAt);
        }
        return frames.map((frame, i): OutgoingFragment => {
          const replySurb = surbs === null ? null : (surbs[i] ?? null);
          this.#insertFragment.run(id, i, frame, replySurb, createdAt);
          return { messageId: id.slice(), index: i, frame: frame.slice(), destination: d, replySurb, attempts: 0, dueAt: createdAt, lastSentAt: null };
        });
      }),
    );
  }

  pendingFragments(): OutgoingFragment[] {
    return this.#run('pendingFragments', () => this.#pendingFragments.all().map(fragmentOf));
  }

  /** An unknown fragment (its message was pruned, say) is ignored: there is nothing to record. */
  recordAttempt(messageId: Uint8Array, index: number, now: number, dueAt: number | null): void {
    abytes('messageId', messageId);
    aint('index', index, 0, Number.MAX_SAFE_INTEGER);
    checkTime('now', now);
    if (dueAt !== null) checkTime('dueAt', dueAt);
    this.#run('recordAttempt', () =>
      this.#tx(() => {
        if (this.#recordAttempt.run(now, dueAt, messageId, index).changes === 0) return;
        if (dueAt === null) this.#fragmentDone(messageId, index);
      }),
    );
  }

  fragmentDone(messageId: Uint8Array, index: number): OutgoingMessage | null {
    abytes('messageId', messageId);
    aint('index', index, 0, Number.MAX_SAFE_INTEGER);
    return this.#run('fragmentDone', () => this.#tx(() => this.#fragmentDone(messageId, index)));
  }

  failMessage(messageId: Uint8Array): OutgoingMessage | null {
    abytes('messageId', messageId);
    return this.#run('failMessage', () =>
      this.#tx(() => {
        this.#failMessage.run(messageId);
        return this.#outgoing(messageId);
      }),
    );
  }

  outgoing(messageId: Uint8Array): OutgoingMessage | null {
    abytes('messageId', messageId);
    return this.#run('outgoing', () => this.#outgoing(messageId));
  }

  pruneOutgoing(before: number): number {
    checkTime('before', before);
    return this.#run('pruneOutgoing', () =>
      this.#tx(() => {
        this.#pruneOutgoingFragments.run(before);
        return this.#pruneOutgoingMessages.run(before).changes;
      }),
    );
  }

  // ---- SURBs we made ----

  putSurb(id: Uint8Array, record: SurbRecord, createdAt: number): void {
    abytes('id', id);
    if (typeof record !== 'object' || record === null) throw new TypeError('"record" expected an object');
    abytes('record.keys', record.keys);
    checkTime('createdAt', createdAt);
    let args: [Blob | null, number | null, number | null, number | null];
    switch (record.purpose) {
      case 'ack':
        abytes('record.messageId', record.messageId);
        aint('record.index', record.index, 0, Number.MAX_SAFE_INTEGER);
        checkTime('record.sentAt', record.sentAt);
        aint('record.attempt', record.attempt, 0, Number.MAX_SAFE_INTEGER);
        args = [record.messageId, record.index, record.sentAt, record.attempt];
        break;
      case 'loop':
        checkTime('record.sentAt', record.sentAt);
        args = [null, null, record.sentAt, null];
        break;
      case 'reply':
        abytes('record.messageId', record.messageId);
        args = [record.messageId, null, null, null];
        break;
      default:
        throw new TypeError('"record.purpose" expected "ack", "loop" or "reply"');
    }
    this.#run('putSurb', () =>
      this.#tx(() => {
        if (this.#selectSurb.get(id) !== undefined) throw stateError('a SURB with this id is already stored');
        this.#insertSurb.run(id, record.purpose, record.keys, ...args, createdAt);
      }),
    );
  }

  surb(id: Uint8Array): SurbRecord | null {
    abytes('id', id);
    return this.#run('surb', () => {
      const row = this.#selectSurb.get(id);
      return row === undefined ? null : surbOf(row);
    });
  }

  deleteSurb(id: Uint8Array): void {
    abytes('id', id);
    this.#run('deleteSurb', () => {
      this.#deleteSurb.run(id);
    });
  }

  pruneSurbs(before: number): number {
    checkTime('before', before);
    return this.#run('pruneSurbs', () => this.#pruneSurbs.run(before).changes);
  }

  // ---- incoming ----

  /**
   * Also: a fragment whose `count` differs from that of the fragments already held for its
   * message, an index not below `count`, or a count outside [1, MAX_FRAGMENT_COUNT] throws
   * ERR_CLIENT_FRAME and stores nothing. The message's `inReplyTo` is the first non-null one of its
   * fragments in index order. At most MAX_INCOMPLETE_MESSAGES incomplete messages are held: the
   * first fragment of another one evicts the one whose first fragment arrived earliest.
   */
  putFragment(
    fragment: { messageId: Uint8Array; index: number; count: number; data: Uint8Array; receivedAt: number; inReplyTo: Uint8Array | null; mailbox?: Uint8Array | null },
    assemble: (joined: Uint8Array) => AssembledMessage,
  ): FragmentResult {
    if (typeof fragment !== 'object' || fragment === null) throw new TypeError('"fragment" expected an object');
    if (typeof assemble !== 'function') throw new TypeError('"assemble" expected a function');
    const { messageId, index, count, data, receivedAt, inReplyTo } = fragment;
    abytes('fragment.messageId', messageId);
    abytes('fragment.data', data);
    checkTime('fragment.receivedAt', receivedAt);
    if (inReplyTo !== null) abytes('fragment.inReplyTo', inReplyTo);
    const tag = fragment.mailbox ?? null;
    if (tag !== null) abytes('fragment.mailbox', tag, 32);
    if (!Number.isInteger(count) || count < 1 || count > MAX_FRAGMENT_COUNT) {
      throw new BackchannelError('ERR_CLIENT_FRAME', `client: a fragment count must be in [1, ${MAX_FRAGMENT_COUNT}]`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new BackchannelError('ERR_CLIENT_FRAME', 'client: a fragment index must be below the fragment count');
    }

    // When `assemble` throws, the message's fragments are deleted and that deletion committed
    // before the error is rethrown: the transaction returns the error instead of throwing it.
    type Outcome = { ok: true; result: FragmentResult } | { ok: false; error: unknown };
    const outcome = this.#run('putFragment', () =>
      this.#tx((): Outcome => {
        if (this.#inboxExists.get(messageId) !== undefined) return { ok: true, result: { kind: 'duplicate' } };
        if (this.#fragmentExists.get(messageId, index) !== undefined) return { ok: true, result: { kind: 'duplicate' } };
        const held = this.#selectIncoming.get(messageId);
        if (held === undefined) {
          if ((this.#countIncoming.get()?.n ?? 0) >= MAX_INCOMPLETE_MESSAGES) {
            const oldest = this.#oldestIncoming.get();
            if (oldest !== undefined) this.#dropIncoming(oldest.message_id);
          }
          this.#insertIncoming.run(messageId, count, receivedAt);
        } else if (held.count !== count) {
          throw new BackchannelError('ERR_CLIENT_FRAME', 'client: the fragment count differs from that of the fragments already held');
        }
        this.#insertIncomingFragment.run(messageId, index, data, receivedAt, inReplyTo);
        this.#bumpIncoming.run(messageId);
        const have = (held?.have ?? 0) + 1;
        if (have < count) return { ok: true, result: { kind: 'partial', have, count } };

        const rows = this.#incomingFragments.all(messageId);
        if (rows.length !== count) throw corrupt('incoming message');
        let total = 0;
        for (const r of rows) total += r.data.length;
        const joined = new Uint8Array(total);
        let offset = 0;
        let replyTo: Uint8Array | null = null;
        for (const r of rows) {
          joined.set(r.data, offset);
          offset += r.data.length;
          if (replyTo === null && r.in_reply_to !== null) replyTo = own(r.in_reply_to);
        }
        this.#dropIncoming(messageId);
        let assembled: AssembledMessage;
        try {
          assembled = assemble(joined);
          abytes('body', assembled.body);
          if (!Array.isArray(assembled.replySurbs)) throw new TypeError('"replySurbs" expected an array');
          assembled.replySurbs.forEach((s, i) => abytes(`replySurbs[${i}]`, s));
          const m = assembled.meta ?? null;
          if (m !== null) {
            aint('meta.sentAtS', m.sentAtS, 0, Math.floor(TIME_MAX / 1000));
            if (m.fileName !== null && typeof m.fileName !== 'string') throw new TypeError('"meta.fileName" expected a string or null');
          }
        } catch (error) {
          return { ok: false, error };
        }
        const seq = Number(this.#insertInbox.run(messageId, assembled.body, receivedAt, replyTo).lastInsertRowid);
        assembled.replySurbs.forEach((s, i) => this.#insertReplySurb.run(messageId, i, s));
        const meta = assembled.meta ?? null;
        const sentAt = meta === null ? null : meta.sentAtS * 1000;
        const fileName = meta === null ? null : meta.fileName;
        if (meta !== null) this.#insertInboxMeta.run(messageId, sentAt!, fileName);
        if (tag !== null) this.#mailboxes.tag(seq, tag);
        const message: InboxMessage = {
          seq,
          id: new Uint8Array(messageId),
          body: new Uint8Array(assembled.body),
          receivedAt,
          replySurbs: assembled.replySurbs.length,
          inReplyTo: replyTo,
          sentAt,
          fileName,
          consumed: false,
          mailbox: tag === null ? null : new Uint8Array(tag),
        };
        return { ok: true, result: { kind: 'complete', message } };
      }),
    );
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  /** Counts fragments; a message goes whole once its first fragment arrived before `before`. */
  pruneFragments(before: number): number {
    checkTime('before', before);
    return this.#run('pruneFragments', () =>
      this.#tx(() => {
        const deleted = this.#pruneIncomingFragments.run(before).changes;
        this.#pruneIncomingMessages.run(before);
        return deleted;
      }),
    );
  }

  unconsumed(afterSeq: number, limit: number): InboxMessage[] {
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    return this.#run('unconsumed', () => this.#selectUnconsumed.all(afterSeq, limit).map(inboxOf));
  }

  consume(seq: number): void {
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    this.#run('consume', () => {
      this.#consume.run(seq);
    });
  }

  inboxPage(afterSeq: number, limit: number): InboxMessage[] {
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    return this.#run('inboxPage', () => this.#selectInbox.all(afterSeq, limit).map(inboxOf));
  }

  inboxByPrefix(prefixHex: string, limit: number): InboxMessage[] {
    if (typeof prefixHex !== 'string' || !/^[0-9a-fA-F]+$/.test(prefixHex)) throw new TypeError('"prefixHex" expected hex digits');
    aint('limit', limit, 0, Number.MAX_SAFE_INTEGER);
    return this.#run('inboxByPrefix', () => this.#selectInboxByPrefix.all(`${prefixHex.toUpperCase()}%`, limit).map(inboxOf));
  }

  inboxMessage(id: Uint8Array): InboxMessage | null {
    abytes('id', id);
    return this.#run('inboxMessage', () => {
      const row = this.#selectInboxById.get(id);
      return row === undefined ? null : inboxOf(row);
    });
  }

  // ---- invites (contacts by code; src/client/invites.ts owns the state's format) ----

  /** Every stored invite, oldest change first. */
  invites(): { id: string; state: Uint8Array }[] {
    return this.#run('invites', () =>
      this.#db
        .prepare<[], { id: string; state: Buffer }>('SELECT id, state FROM invites ORDER BY updated_at, id')
        .all()
        .map((r) => ({ id: r.id, state: own(r.state) })),
    );
  }

  putInvite(id: string, state: Uint8Array, updatedAt: number): void {
    this.#run('putInvite', () => {
      this.#db.prepare('INSERT INTO invites (id, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at').run(id, state, updatedAt);
    });
  }

  deleteInvite(id: string): void {
    this.#run('deleteInvite', () => {
      this.#db.prepare('DELETE FROM invites WHERE id = ?').run(id);
    });
  }

  /** Closes the database; idempotent. Every other method then throws ERR_CLIENT_STATE. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db.close();
    } catch (err) {
      throw stateError('close failed', err);
    }
  }

  // ---- inside transactions ----

  #outgoing(messageId: Uint8Array): OutgoingMessage | null {
    const row = this.#selectMessage.get(messageId);
    return row === undefined ? null : messageOf(row);
  }

  #fragmentDone(messageId: Uint8Array, index: number): OutgoingMessage | null {
    const row = this.#selectMessage.get(messageId);
    if (row === undefined) return null;
    if (this.#markFragmentDone.run(messageId, index).changes === 0) return messageOf(row);
    const done = this.#countDone.get(messageId)?.n ?? 0;
    let status: string | null = null;
    if (row.status === 'pending' && done >= row.fragments) status = row.dest_kind === 'reply' ? 'sent' : 'delivered';
    this.#setDone.run(done, status, messageId);
    return this.#outgoing(messageId);
  }

  #dropIncoming(messageId: Uint8Array): void {
    this.#deleteIncomingFragments.run(messageId);
    this.#deleteIncoming.run(messageId);
  }

  /** One transaction, or a savepoint inside the caller's. IMMEDIATE: it takes the write lock at once, so it cannot fail half-way on an upgrade. */
  putMailbox(id: Uint8Array, privateKey: Uint8Array, createdAt: number): void {
    this.#run('putMailbox', () => this.#mailboxes.put(id, privateKey, createdAt));
  }

  mailboxes(): ExtraMailbox[] {
    return this.#run('mailboxes', () => this.#mailboxes.all());
  }

  mailboxKey(id: Uint8Array): Uint8Array | null {
    return this.#run('mailboxKey', () => this.#mailboxes.key(id));
  }

  updateMailbox(id: Uint8Array, change: ExtraMailboxChange): ExtraMailbox | null {
    return this.#run('updateMailbox', () => this.#tx(() => this.#mailboxes.update(id, change)));
  }

  #tx<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /** Runs `fn` on the open database; a failure of SQLite becomes ERR_CLIENT_STATE with the cause attached. */
  #run<T>(what: string, fn: () => T): T {
    if (this.#closed) throw stateError(`${what} on a closed store`);
    try {
      return fn();
    } catch (err) {
      if (err instanceof Database.SqliteError) throw stateError(`${what} failed`, err);
      throw err;
    }
  }
}
