/**
 * The gateway's durable mailboxes: packets that arrive for a client are kept in SQLite
 * (better-sqlite3, WAL) until the client fetches and acknowledges them. Nothing is reported
 * stored before its transaction is committed with `synchronous = FULL`, so an entry that a
 * caller saw as stored survives a crash of the process (and, on a disk that honours fsync, a loss
 * of power).
 *
 * Each mailbox numbers its entries with a sequence number that only grows: the next number is
 * kept in the client's row, so a number is never handed out twice, even after the entry was
 * acknowledged and the store reopened. Entries are written in batches, one transaction (one
 * fsync) per batch; see group-commit.ts for the component that forms the batches.
 *
 * A client may also hold extra mailboxes ("aliases", one per contact): X25519 public keys it
 * made, registered over its link. Mail for an alias goes into its owner's queue, tagged with the
 * alias, so that one fetch stream serves all of a client's mailboxes. A revoked alias is kept as
 * a tombstone (mail for it is refused, and nobody can register it again) until its owner has more
 * than `maxRevokedPerClient` of them; the oldest are then forgotten.
 *
 * And each client has an own mailbox (src/pki/intake.ts, `ownMailbox`), derived from its id and
 * kept in its row (`clients.own`), where its SURB replies come (acknowledgements, rendezvous
 * answers, anonymous replies): mail for it goes into the owner's queue tagged with it, as an
 * alias's does, under its own intake bucket.
 */
import Database from 'better-sqlite3';
import { BackchannelError } from '../errors.js';
import type { Clock } from '../ops/clock.js';
import { systemClock } from '../ops/clock.js';
import { MAX_FORWARD_PAYLOAD_LENGTH, RECIPIENT_ID_LENGTH, SURB_ID_LENGTH } from '../sphinx/constants.js';
import { abytes, aint, equalBytes, toHex } from '../util/bytes.js';
import { openDurableDatabase } from '../util/sqlite.js';
import { MAX_EXTRA_MAILBOXES } from '../wire/commands.js';
import { nodeBackend } from '../crypto/node.js';
import { ownMailbox } from '../pki/intake.js';

/** The layout this build reads and writes, kept in SQLite's `user_version`. */
export const MAILBOX_SCHEMA_VERSION = 2;
/** Extra mailboxes one client may hold at once (one per contact); more are refused. The wire's number, which clients know too. */
export const MAX_MAILBOXES_PER_CLIENT = MAX_EXTRA_MAILBOXES;
/** Revoked extra mailboxes remembered per client (tombstones); the oldest revocations are forgotten beyond it. */
export const MAX_REVOKED_PER_CLIENT = 1_000;
/** Entries one mailbox may hold (the gateway's brief). At 2.6 kB a packet: about 26 MB a client. */
export const DEFAULT_MAX_PER_MAILBOX = 10_000;
/** Entries the whole store may hold. At 2.6 kB a packet: about 2.6 GB of disk. */
export const DEFAULT_MAX_TOTAL = 1_000_000;
/** How long a write waits for another connection's lock before failing with ERR_MAILBOX_STORE. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
/** Registered recipients remembered in memory (one gateway's clients, as RateLimiter's bound). */
const REGISTERED_CACHE_SIZE = 100_000;
/** The WAL file is truncated back to this size after a checkpoint, so that one burst does not keep disk forever. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** Sequence numbers start here; `peek(recipient, 0)` therefore sees every entry. */
const FIRST_SEQ = 1;

/** One packet to keep for a client. */
export interface MailboxEntry {
  /** The recipient's 32-byte id (the Sphinx recipient command). */
  recipient: Uint8Array;
  /** The 16-byte SURB id when the packet is a SURB reply, null otherwise. */
  surbId: Uint8Array | null;
  payload: Uint8Array;
  /**
   * When the packet came to one of the recipient's extra mailboxes: that mailbox's id (the
   * entry goes into its owner's queue, `recipient`). Null or absent: the main mailbox.
   */
  mailbox?: Uint8Array | null;
}

/** A change to one client's extra mailboxes, committed with a group. */
export interface AliasChange {
  readonly kind: 'register' | 'revoke';
  /** The client that owns it (its link public key, its main mailbox). */
  readonly owner: Uint8Array;
  /** The extra mailbox's id. */
  readonly mailbox: Uint8Array;
}

/**
 * Where mail for a recipient id goes: a client's main mailbox, one of a client's extra mailboxes
 * (its owner's queue; refused once revoked), or nowhere.
 */
export type MailboxRoute =
  | { readonly kind: 'client' }
  | { readonly kind: 'own'; readonly owner: Uint8Array }
  | { readonly kind: 'alias'; readonly owner: Uint8Array; readonly revoked: boolean }
  | { readonly kind: 'unknown' };

/** What became of one entry of a batch. Refusals are results, not exceptions: the rest of the batch is still stored. */
export type StoreResult = { ok: true; seq: number } | { ok: false; code: 'ERR_MAILBOX_FULL' | 'unknown_recipient' };

/** A deletion a client asked for: every entry below `seq` (`retrieve_message{seq}`), or the one entry `seq` (`ack{seq}`). */
export interface MailboxDeletion {
  readonly kind: 'below' | 'one';
  readonly recipient: Uint8Array;
  readonly seq: number;
}

/**
 * What one group commit writes, in this order and in one transaction: registrations, then alias
 * changes, then deletions (so that the caps see the room they make), then entries. Every part is
 * idempotent but the entries: registering twice, or deleting what is gone, changes nothing.
 *
 * Alias changes, in order: `register` adds the alias unless its id is a client's, is held
 * already (by anyone, revoked or not), or its owner holds `maxMailboxesPerClient` active ones (then
 * nothing changes: the gateway tells the client so when it asks again); `revoke` marks the
 * owner's alias revoked, records a tombstone for an id nobody holds, and leaves another client's
 * alias alone.
 */
export interface MailboxGroup {
  readonly registrations: readonly Uint8Array[];
  /** Clients seen now (their links are open): their `last_seen` is set to now, after the registrations (which are seen too). */
  readonly seen?: readonly Uint8Array[];
  /**
   * Then, up to `limit` clients last seen before `before` (ms) are forgotten: their record, their
   * entries and their extra mailboxes (the retention period: src/server/gateway.ts).
   */
  readonly expire?: { readonly before: number; readonly limit: number };
  readonly aliases?: readonly AliasChange[];
  readonly deletions: readonly MailboxDeletion[];
  readonly entries: readonly MailboxEntry[];
}

/** The oldest entry that `peek` found. */
export interface PeekedEntry {
  seq: number;
  surbId: Uint8Array | null;
  payload: Uint8Array;
  /** When the entry was stored, in the store's clock (milliseconds since the Unix epoch). */
  storedAt: number;
  /** Entries in the mailbox after this one (with a greater seq). */
  remaining: number;
  /** The extra mailbox the entry came to; absent for the main mailbox. */
  mailbox?: Uint8Array;
}

export interface MailboxStoreOptions {
  /** Entries one mailbox may hold; more are refused with ERR_MAILBOX_FULL. Default 10 000. */
  maxPerMailbox?: number;
  /** Entries the whole store may hold; more are refused with ERR_MAILBOX_FULL. Default 1 000 000. */
  maxTotal?: number;
  /** Milliseconds a write waits on another connection's lock. Default 5 000. */
  busyTimeoutMs?: number;
  /** Stamps `registered_at` and `stored_at`. Default: the system clock. */
  clock?: Clock;
  /** Active extra mailboxes per client at most. Default MAX_MAILBOXES_PER_CLIENT. */
  maxMailboxesPerClient?: number;
  /** Revoked extra mailboxes remembered per client. Default MAX_REVOKED_PER_CLIENT. */
  maxRevokedPerClient?: number;
}

/**
 * Mailboxes, one per registered client. Every method is synchronous and returns after commit.
 * Arguments are checked before anything changes: a wrong type is a TypeError, a wrong length or
 * value a RangeError. Implemented by openMailboxStore (SQLite, durable) and by the simulator's
 * MemoryMailboxStore; test/server/mailbox-compliance.ts is the behaviour both must show.
 */
export interface MailboxStore {
  /** Registers a recipient; registering again changes nothing. */
  register(recipient: Uint8Array): void;
  isRegistered(recipient: Uint8Array): boolean;
  /** Where mail for `recipient` goes; a client's main mailbox wins over an alias of the same id. */
  route(recipient: Uint8Array): MailboxRoute;
  /** Extra mailboxes `owner` holds and has not revoked. */
  aliasCount(owner: Uint8Array): number;
  /**
   * Stores a batch in one transaction; result i belongs to entry i. A malformed entry anywhere in
   * the batch throws and nothing is stored. The store keeps copies of the bytes: the caller may
   * reuse its buffers as soon as this returns.
   */
  storeBatch(entries: readonly MailboxEntry[]): StoreResult[];
  store(entry: MailboxEntry): StoreResult;
  /**
   * Commits a group (registrations, deletions, entries) in one transaction; result i belongs to
   * entry i. Everything is checked before anything changes: a malformed part throws and nothing
   * of the group is written.
   */
  commitGroup(group: MailboxGroup): StoreResult[];
  /**
   * The oldest entry, or the oldest with seq > afterSeq; null when there is none. Its arrays are
   * the caller's own: changing them changes nothing stored.
   */
  peek(recipient: Uint8Array, afterSeq?: number): PeekedEntry | null;
  /**
   * The oldest entry with seq > afterSeq that came to one address of `recipient`: its main mailbox
   * (`mailbox` null) or one of its extra mailboxes; null when there is none. For the gateway's fair
   * fetch (fetch.ts), which answers a client's addresses in turn. `remaining` counts every entry of
   * the client but this one.
   */
  peekAddress?(recipient: Uint8Array, mailbox: Uint8Array | null, afterSeq: number): PeekedEntry | null;
  /**
   * The first address of `recipient` that holds an entry, in the order main mailbox first, then
   * extra mailboxes by their bytes, strictly after `after` (undefined: from the start, the main
   * mailbox included; null: after the main mailbox); null when there is none.
   */
  nextAddress?(recipient: Uint8Array, after: Uint8Array | null | undefined): { readonly mailbox: Uint8Array | null } | null;
  /** Deletes one entry; false when it was not there. */
  ack(recipient: Uint8Array, seq: number): boolean;
  /** Deletes every entry with seq < `belowSeq` (what a client confirms it holds when it fetches from `belowSeq` on); returns how many. */
  ackBelow(recipient: Uint8Array, belowSeq: number): number;
  /** Entries held for one recipient (0 when it is not registered). */
  count(recipient: Uint8Array): number;
  /** Entries held for everyone. */
  total(): number;
  /** Clients registered (the gateway's cap on clients counts these). */
  clients(): number;
  /** Forgets which recipients this connection remembers as registered (another connection expired some). */
  forgetRegistered(): void;
  /** Checks the database file and every counter against the rows; throws when anything disagrees. Scans everything. */
  check(): void;
  /** Closes the database; idempotent. Every other method then throws ERR_MAILBOX_STORE. */
  close(): void;
}

// Why `messages` is a rowid table and not WITHOUT ROWID: a WITHOUT ROWID row lives in an index
// b-tree, where anything over about 1 kB (4 kB pages) spills into overflow pages; packets are
// 2.6 kB and fit whole in a rowid table's leaf. The (recipient, seq) index stays small.
// `clients.stored` and `totals.stored` are counters kept in the same transactions as the rows, so
// that the caps cost one lookup instead of a count.
const SCHEMA = `
CREATE TABLE clients (
  recipient BLOB PRIMARY KEY,
  registered_at INTEGER NOT NULL,
  next_seq INTEGER NOT NULL,
  stored INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  recipient BLOB NOT NULL,
  seq INTEGER NOT NULL,
  surb_id BLOB,
  payload BLOB NOT NULL,
  stored_at INTEGER NOT NULL,
  mailbox BLOB,
  UNIQUE (recipient, seq)
);
CREATE TABLE totals (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  stored INTEGER NOT NULL
);
INSERT INTO totals (id, stored) VALUES (0, 0);
`;

/** Version 2: extra mailboxes (aliases) and the mailbox an entry came to. A version-1 store is migrated in place. */
const ALIASES = `
CREATE TABLE aliases (
  mailbox BLOB PRIMARY KEY,
  owner BLOB NOT NULL,
  registered_at INTEGER NOT NULL,
  revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX aliases_owner ON aliases (owner, revoked_at);
`;

interface ClientRow {
  next_seq: number;
  stored: number;
}

interface MessageRow {
  seq: number;
  surb_id: Buffer | null;
  payload: Buffer;
  stored_at: number;
  mailbox: Buffer | null;
}

interface AliasRow {
  owner: Buffer;
  revoked_at: number | null;
}

/**
 * Opens (creating when needed) the mailbox store at `path`; `':memory:'` gives a store that lives
 * only in this process, for tests and the simulator.
 * @throws {BackchannelError} ERR_MAILBOX_STORE when the file cannot be opened, is not a mailbox
 *   store, has a schema version this build does not know, or cannot use WAL.
 * @throws {TypeError | RangeError} for bad options.
 * @example
 *   const store = openMailboxStore('data/mailboxes.sqlite');
 *   store.register(recipientId);
 *   const [r] = store.storeBatch([{ recipient: recipientId, surbId: null, payload }]);
 */
export function openMailboxStore(path: string, options: MailboxStoreOptions = {}): MailboxStore {
  if (typeof path !== 'string' || path === '') throw new TypeError('"path" expected a non-empty string');
  const maxPerMailbox = options.maxPerMailbox ?? DEFAULT_MAX_PER_MAILBOX;
  const maxTotal = options.maxTotal ?? DEFAULT_MAX_TOTAL;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const maxAliases = options.maxMailboxesPerClient ?? MAX_MAILBOXES_PER_CLIENT;
  const maxRevoked = options.maxRevokedPerClient ?? MAX_REVOKED_PER_CLIENT;
  aint('maxMailboxesPerClient', maxAliases, 0, Number.MAX_SAFE_INTEGER);
  aint('maxRevokedPerClient', maxRevoked, 0, Number.MAX_SAFE_INTEGER);
  aint('maxPerMailbox', maxPerMailbox, 1, Number.MAX_SAFE_INTEGER);
  aint('maxTotal', maxTotal, 1, Number.MAX_SAFE_INTEGER);
  aint('busyTimeoutMs', busyTimeoutMs, 0, 2 ** 31 - 1);
  const clock = options.clock ?? systemClock;
  const durable = {
    busyTimeoutMs,
    journalSizeLimit: JOURNAL_SIZE_LIMIT,
    // Mailboxes hold who receives what and when: the owner's only (SQLite gives its WAL and
    // shared-memory files the same mode).
    dirMode: 0o700,
    fileMode: 0o600,
    error: (message: string, cause?: unknown) => new BackchannelError('ERR_MAILBOX_STORE', `mailbox: ${message}`, cause === undefined ? undefined : { cause }),
    openFailure: 'cannot open the store',
  };
  return openDurableDatabase(path, durable, (db) => {
    migrate(db);
    addLastSeen(db);
    addOwn(db);
    addAddressIndex(db);
    return new SqliteMailboxStore(db, clock, maxPerMailbox, maxTotal, maxAliases, maxRevoked);
  });
}

/**
 * `clients.last_seen` (ms; NULL before it existed: `registered_at` stands in), added on every open
 * when missing, without a schema version of its own: a column older builds ignore.
 */
function addLastSeen(db: Database.Database): void {
  db.transaction(() => {
    const cols = db.prepare<[], { name: string }>('PRAGMA table_info(clients)').all();
    if (!cols.some((c) => c.name === 'last_seen')) db.exec('ALTER TABLE clients ADD COLUMN last_seen INTEGER');
  }).immediate();
}

/**
 * `clients.own`, each client's own mailbox id (src/pki/intake.ts), with a unique index to route
 * by it: added on every open when missing and filled in for the rows without it (those of an
 * older build, which ignores the column and leaves it NULL for the clients it registers).
 */
function addOwn(db: Database.Database): void {
  db.transaction(() => {
    const cols = db.prepare<[], { name: string }>('PRAGMA table_info(clients)').all();
    if (!cols.some((c) => c.name === 'own')) db.exec('ALTER TABLE clients ADD COLUMN own BLOB');
    db.exec('CREATE UNIQUE INDEX IF NOT EXISTS clients_own ON clients (own)');
    const fill = db.prepare<[Uint8Array, Buffer]>('UPDATE clients SET own = ? WHERE recipient = ?');
    for (const row of db.prepare<[], { recipient: Buffer }>('SELECT recipient FROM clients WHERE own IS NULL').all()) fill.run(ownMailbox(nodeBackend, row.recipient), row.recipient);
  }).immediate();
}

/**
 * An index by address (`messages_address`), for the fair fetch's reads per address
 * (peekAddress, nextAddress), created on every open when missing, without a schema version of its
 * own: older builds ignore it (and keep it up to date, as SQLite does every index).
 */
function addAddressIndex(db: Database.Database): void {
  db.exec('CREATE INDEX IF NOT EXISTS messages_address ON messages (recipient, mailbox, seq)');
}

/** Creates the schema in an empty database; accepts only a database at MAILBOX_SCHEMA_VERSION otherwise. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true });
    if (version === MAILBOX_SCHEMA_VERSION) return;
    if (version === 1) {
      db.exec(`ALTER TABLE messages ADD COLUMN mailbox BLOB;${ALIASES}`);
      db.pragma(`user_version = ${MAILBOX_SCHEMA_VERSION}`);
      return;
    }
    if (version !== 0) {
      throw new BackchannelError(
        'ERR_MAILBOX_STORE',
        `mailbox: unknown schema version ${String(version)} (this build reads version ${MAILBOX_SCHEMA_VERSION})`,
      );
    }
    const objects = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM sqlite_schema').get();
    if (objects !== undefined && objects.n > 0) {
      throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the database holds other tables and is not a mailbox store');
    }
    db.exec(SCHEMA + ALIASES);
    db.pragma(`user_version = ${MAILBOX_SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Checks a recipient id, as every MailboxStore method that takes one does first.
 * @throws {TypeError | RangeError} naming "recipient".
 */
export function checkRecipient(recipient: unknown): asserts recipient is Uint8Array {
  abytes('recipient', recipient, RECIPIENT_ID_LENGTH);
}

/**
 * Checks one entry's fields, as storeBatch does before it writes anything.
 * @throws {TypeError | RangeError} naming the field.
 */
export function checkMailboxEntry(entry: unknown): asserts entry is MailboxEntry {
  if (typeof entry !== 'object' || entry === null) throw new TypeError(`"entry" expected an object, got ${entry === null ? 'null' : typeof entry}`);
  const e = entry as Record<string, unknown>;
  checkRecipient(e['recipient']);
  if (e['surbId'] !== null) abytes('surbId', e['surbId'], SURB_ID_LENGTH);
  if (e['mailbox'] !== undefined && e['mailbox'] !== null) abytes('mailbox', e['mailbox'], RECIPIENT_ID_LENGTH);
  abytes('payload', e['payload']);
  if (e['payload'].length > MAX_FORWARD_PAYLOAD_LENGTH) {
    throw new RangeError(`"payload" expected at most ${MAX_FORWARD_PAYLOAD_LENGTH} bytes, got length=${e['payload'].length}`);
  }
}

/**
 * Checks a whole batch, as storeBatch does before it stores any of it.
 * @throws {TypeError | RangeError} naming "entries" or the field of the first bad entry.
 */
export function checkMailboxBatch(entries: unknown): asserts entries is readonly MailboxEntry[] {
  if (!Array.isArray(entries)) throw new TypeError(`"entries" expected an array, got ${typeof entries}`);
  for (const e of entries) checkMailboxEntry(e);
}

/**
 * Checks a whole group, as commitGroup does before it writes any of it.
 * @throws {TypeError | RangeError} naming the field of the first bad part.
 */
export function checkMailboxGroup(group: unknown): asserts group is MailboxGroup {
  if (typeof group !== 'object' || group === null) throw new TypeError(`"group" expected an object, got ${group === null ? 'null' : typeof group}`);
  const g = group as Record<string, unknown>;
  const registrations = g['registrations'];
  const deletions = g['deletions'];
  const aliases = g['aliases'];
  if (!Array.isArray(registrations)) throw new TypeError(`"registrations" expected an array, got ${typeof registrations}`);
  if (!Array.isArray(deletions)) throw new TypeError(`"deletions" expected an array, got ${typeof deletions}`);
  if (aliases !== undefined && !Array.isArray(aliases)) throw new TypeError(`"aliases" expected an array, got ${typeof aliases}`);
  for (const r of registrations) checkRecipient(r);
  const seen = g['seen'];
  if (seen !== undefined) {
    if (!Array.isArray(seen)) throw new TypeError(`"seen" expected an array, got ${typeof seen}`);
    for (const r of seen as unknown[]) checkRecipient(r);
  }
  const expire = g['expire'];
  if (expire !== undefined) {
    if (typeof expire !== 'object' || expire === null) throw new TypeError('"expire" expected an object');
    const x = expire as Record<string, unknown>;
    aint('expire.before', x['before'], 0, Number.MAX_SAFE_INTEGER);
    aint('expire.limit', x['limit'], 1, Number.MAX_SAFE_INTEGER);
  }
  for (const a of (aliases ?? []) as unknown[]) {
    if (typeof a !== 'object' || a === null) throw new TypeError('"alias" expected an object');
    const x = a as Record<string, unknown>;
    if (x['kind'] !== 'register' && x['kind'] !== 'revoke') throw new RangeError('"alias.kind" expected register or revoke');
    checkRecipient(x['owner']);
    abytes('mailbox', x['mailbox'], RECIPIENT_ID_LENGTH);
  }
  for (const d of deletions as unknown[]) {
    if (typeof d !== 'object' || d === null) throw new TypeError('"deletion" expected an object');
    const x = d as Record<string, unknown>;
    if (x['kind'] !== 'below' && x['kind'] !== 'one') throw new RangeError('"deletion.kind" expected below or one');
    checkRecipient(x['recipient']);
    aint('seq', x['seq'], 0, Number.MAX_SAFE_INTEGER);
  }
  checkMailboxBatch(g['entries']);
}

/** A copy that is a plain Uint8Array (better-sqlite3 returns Buffers, which may share a pool). */
function own(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

class SqliteMailboxStore implements MailboxStore {
  readonly #db: Database.Database;
  readonly #clock: Clock;
  readonly #maxPerMailbox: number;
  readonly #maxTotal: number;
  readonly #maxAliases: number;
  readonly #maxRevoked: number;
  /** Recipients known to be registered, most recently used last. No unregister exists, so a hit never goes stale. */
  readonly #registered = new Map<string, true>();
  #closed = false;

  readonly #insertClient: Database.Statement<[Uint8Array, number, number, Uint8Array]>;
  readonly #selectClient: Database.Statement<[Uint8Array], ClientRow>;
  readonly #selectOwner: Database.Statement<[Uint8Array], { recipient: Buffer }>;
  readonly #bumpClient: Database.Statement<[Uint8Array]>;
  readonly #dropClient: Database.Statement<[Uint8Array]>;
  readonly #insertMessage: Database.Statement<[Uint8Array, number, Uint8Array | null, Uint8Array, number, Uint8Array | null]>;
  readonly #selectAfter: Database.Statement<[Uint8Array, number], MessageRow>;
  readonly #countUpTo: Database.Statement<[Uint8Array, number], { n: number }>;
  readonly #selectMainAfter: Database.Statement<[Uint8Array, number], MessageRow>;
  readonly #selectAliasAfter: Database.Statement<[Uint8Array, Uint8Array, number], MessageRow>;
  readonly #firstAddress: Database.Statement<[Uint8Array], { mailbox: Buffer | null }>;
  readonly #firstAlias: Database.Statement<[Uint8Array], { mailbox: Buffer | null }>;
  readonly #aliasAfter: Database.Statement<[Uint8Array, Uint8Array], { mailbox: Buffer | null }>;
  readonly #deleteMessage: Database.Statement<[Uint8Array, number]>;
  readonly #deleteBelow: Database.Statement<[Uint8Array, number]>;
  readonly #dropClientBy: Database.Statement<[number, Uint8Array]>;
  readonly #selectTotal: Database.Statement<[], { stored: number }>;
  readonly #addTotal: Database.Statement<[number]>;
  readonly #storeTx: Database.Transaction<(entries: readonly MailboxEntry[]) => StoreResult[]>;
  readonly #ackTx: Database.Transaction<(recipient: Uint8Array, seq: number) => boolean>;
  readonly #ackBelowTx: Database.Transaction<(recipient: Uint8Array, belowSeq: number) => number>;
  readonly #groupTx: Database.Transaction<(group: MailboxGroup) => StoreResult[]>;
  readonly #touchClient: Database.Statement<[number, Uint8Array]>;
  readonly #selectExpired: Database.Statement<[number, number], { recipient: Buffer; stored: number }>;
  readonly #deleteMessagesOf: Database.Statement<[Buffer]>;
  readonly #deleteAliasesOf: Database.Statement<[Buffer]>;
  readonly #deleteClient: Database.Statement<[Buffer]>;
  readonly #peekTx: Database.Transaction<(recipient: Uint8Array, afterSeq: number | undefined) => PeekedEntry | null>;
  readonly #selectAlias: Database.Statement<[Uint8Array], AliasRow>;
  readonly #countAliases: Database.Statement<[Uint8Array], { n: number }>;
  readonly #insertAlias: Database.Statement<[Uint8Array, Uint8Array, number, number | null]>;
  readonly #revokeAlias: Database.Statement<[number, Uint8Array]>;
  readonly #pruneRevoked: Database.Statement<[Uint8Array, number]>;

  constructor(db: Database.Database, clock: Clock, maxPerMailbox: number, maxTotal: number, maxAliases: number, maxRevoked: number) {
    this.#db = db;
    this.#clock = clock;
    this.#maxPerMailbox = maxPerMailbox;
    this.#maxTotal = maxTotal;
    this.#maxAliases = maxAliases;
    this.#maxRevoked = maxRevoked;
    this.#selectAlias = db.prepare('SELECT owner, revoked_at FROM aliases WHERE mailbox = ?');
    this.#countAliases = db.prepare('SELECT COUNT(*) AS n FROM aliases WHERE owner = ? AND revoked_at IS NULL');
    this.#insertAlias = db.prepare('INSERT INTO aliases (mailbox, owner, registered_at, revoked_at) VALUES (?, ?, ?, ?)');
    this.#revokeAlias = db.prepare('UPDATE aliases SET revoked_at = ? WHERE mailbox = ? AND revoked_at IS NULL');
    this.#pruneRevoked = db.prepare(
      'DELETE FROM aliases WHERE mailbox IN (SELECT mailbox FROM aliases WHERE owner = ? AND revoked_at IS NOT NULL ORDER BY revoked_at DESC, mailbox LIMIT -1 OFFSET ?)',
    );
    this.#insertClient = db.prepare(
      'INSERT INTO clients (recipient, registered_at, next_seq, stored, own) VALUES (?, ?, ?, 0, ?) ON CONFLICT (recipient) DO NOTHING',
    );
    this.#selectOwner = db.prepare('SELECT recipient FROM clients WHERE own = ?');
    this.#selectClient = db.prepare('SELECT next_seq, stored FROM clients WHERE recipient = ?');
    this.#bumpClient = db.prepare('UPDATE clients SET next_seq = next_seq + 1, stored = stored + 1 WHERE recipient = ?');
    this.#dropClient = db.prepare('UPDATE clients SET stored = stored - 1 WHERE recipient = ?');
    this.#dropClientBy = db.prepare('UPDATE clients SET stored = stored - ? WHERE recipient = ?');
    this.#insertMessage = db.prepare(
      'INSERT INTO messages (recipient, seq, surb_id, payload, stored_at, mailbox) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.#selectAfter = db.prepare(
      'SELECT seq, surb_id, payload, stored_at, mailbox FROM messages WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT 1',
    );
    this.#countUpTo = db.prepare('SELECT COUNT(*) AS n FROM messages WHERE recipient = ? AND seq <= ?');
    this.#selectMainAfter = db.prepare(
      'SELECT seq, surb_id, payload, stored_at, mailbox FROM messages WHERE recipient = ? AND mailbox IS NULL AND seq > ? ORDER BY seq LIMIT 1',
    );
    this.#selectAliasAfter = db.prepare(
      'SELECT seq, surb_id, payload, stored_at, mailbox FROM messages WHERE recipient = ? AND mailbox = ? AND seq > ? ORDER BY seq LIMIT 1',
    );
    // NULL (the main mailbox) sorts first in SQLite.
    this.#firstAddress = db.prepare('SELECT mailbox FROM messages WHERE recipient = ? ORDER BY mailbox LIMIT 1');
    this.#firstAlias = db.prepare('SELECT mailbox FROM messages WHERE recipient = ? AND mailbox IS NOT NULL ORDER BY mailbox LIMIT 1');
    this.#aliasAfter = db.prepare('SELECT mailbox FROM messages WHERE recipient = ? AND mailbox > ? ORDER BY mailbox LIMIT 1');
    this.#deleteMessage = db.prepare('DELETE FROM messages WHERE recipient = ? AND seq = ?');
    this.#deleteBelow = db.prepare('DELETE FROM messages WHERE recipient = ? AND seq < ?');
    this.#selectTotal = db.prepare('SELECT stored FROM totals WHERE id = 0');
    this.#addTotal = db.prepare('UPDATE totals SET stored = stored + ? WHERE id = 0');
    this.#touchClient = db.prepare('UPDATE clients SET last_seen = ? WHERE recipient = ?');
    this.#selectExpired = db.prepare('SELECT recipient, stored FROM clients WHERE COALESCE(last_seen, registered_at) < ? LIMIT ?');
    this.#deleteMessagesOf = db.prepare('DELETE FROM messages WHERE recipient = ?');
    this.#deleteAliasesOf = db.prepare('DELETE FROM aliases WHERE owner = ?');
    this.#deleteClient = db.prepare('DELETE FROM clients WHERE recipient = ?');

    this.#storeTx = db.transaction((entries: readonly MailboxEntry[]): StoreResult[] => {
      const now = this.#clock.now();
      const before = this.#readTotal();
      let total = before;
      const results: StoreResult[] = [];
      for (const e of entries) {
        const client = this.#selectClient.get(e.recipient);
        if (client === undefined) {
          results.push({ ok: false, code: 'unknown_recipient' });
        } else if (client.stored >= this.#maxPerMailbox || total >= this.#maxTotal) {
          results.push({ ok: false, code: 'ERR_MAILBOX_FULL' });
        } else {
          this.#insertMessage.run(e.recipient, client.next_seq, e.surbId, e.payload, now, e.mailbox ?? null);
          this.#bumpClient.run(e.recipient);
          total++;
          results.push({ ok: true, seq: client.next_seq });
        }
      }
      if (total !== before) this.#addTotal.run(total - before);
      return results;
    });

    this.#ackTx = db.transaction((recipient: Uint8Array, seq: number): boolean => {
      if (this.#deleteMessage.run(recipient, seq).changes === 0) return false;
      this.#dropClient.run(recipient);
      this.#addTotal.run(-1);
      return true;
    });

    this.#ackBelowTx = db.transaction((recipient: Uint8Array, belowSeq: number): number => {
      const deleted = this.#deleteBelow.run(recipient, belowSeq).changes;
      if (deleted > 0) {
        this.#dropClientBy.run(deleted, recipient);
        this.#addTotal.run(-deleted);
      }
      return deleted;
    });

    // better-sqlite3 nests a transaction inside another as a savepoint: the group is one commit.
    this.#groupTx = db.transaction((group: MailboxGroup): StoreResult[] => {
      const now = this.#clock.now();
      for (const r of group.registrations) this.#insertClient.run(r, now, FIRST_SEQ, ownMailbox(nodeBackend, r));
      for (const r of group.registrations) this.#touchClient.run(now, r);
      for (const r of group.seen ?? []) this.#touchClient.run(now, r);
      if (group.expire !== undefined) {
        for (const row of this.#selectExpired.all(group.expire.before, group.expire.limit)) {
          this.#deleteMessagesOf.run(row.recipient);
          this.#deleteAliasesOf.run(row.recipient);
          this.#deleteClient.run(row.recipient);
          if (row.stored > 0) this.#addTotal.run(-row.stored);
        }
      }
      for (const a of group.aliases ?? []) this.#applyAlias(a, now);
      for (const d of group.deletions) {
        if (d.kind === 'below') this.#ackBelowTx(d.recipient, d.seq);
        else this.#ackTx(d.recipient, d.seq);
      }
      return group.entries.length === 0 ? [] : this.#storeTx(group.entries);
    });

    this.#peekTx = db.transaction((recipient: Uint8Array, afterSeq: number | undefined): PeekedEntry | null => {
      const after = afterSeq ?? FIRST_SEQ - 1;
      const row = this.#selectAfter.get(recipient, after);
      if (row === undefined) return null;
      const stored = this.#selectClient.get(recipient)?.stored ?? 0;
      // Counting what lies at or below `after` (usually nothing: clients fetch from their oldest
      // unacknowledged entry) costs less than counting everything after `row`.
      const below = after < FIRST_SEQ ? 0 : (this.#countUpTo.get(recipient, after)?.n ?? 0);
      const remaining = stored - below - 1;
      const peeked: PeekedEntry = {
        seq: row.seq,
        surbId: row.surb_id === null ? null : own(row.surb_id),
        payload: own(row.payload),
        storedAt: row.stored_at,
        remaining,
      };
      if (row.mailbox !== null) peeked.mailbox = own(row.mailbox);
      return peeked;
    });
  }

  register(recipient: Uint8Array): void {
    checkRecipient(recipient);
    this.#guard('register', () => {
      this.#insertClient.run(recipient, this.#clock.now(), FIRST_SEQ, ownMailbox(nodeBackend, recipient));
    });
    this.#remember(toHex(recipient));
  }

  isRegistered(recipient: Uint8Array): boolean {
    checkRecipient(recipient);
    const key = toHex(recipient);
    if (this.#registered.has(key)) {
      this.#remember(key);
      return true;
    }
    const found = this.#guard('lookup', () => this.#selectClient.get(recipient) !== undefined);
    if (found) this.#remember(key);
    return found;
  }

  route(recipient: Uint8Array): MailboxRoute {
    if (this.isRegistered(recipient)) return { kind: 'client' };
    // An own mailbox before an alias: nobody's alias can stand for someone's own mailbox.
    const owner = this.#guard('lookup', () => this.#selectOwner.get(recipient));
    if (owner !== undefined) return { kind: 'own', owner: own(owner.recipient) };
    const row = this.#guard('lookup', () => this.#selectAlias.get(recipient));
    if (row === undefined) return { kind: 'unknown' };
    return { kind: 'alias', owner: own(row.owner), revoked: row.revoked_at !== null };
  }

  aliasCount(owner: Uint8Array): number {
    checkRecipient(owner);
    return this.#guard('count', () => this.#countAliases.get(owner)?.n ?? 0);
  }

  /** One alias change, inside the group's transaction (the rules are MailboxGroup's). */
  #applyAlias(a: AliasChange, now: number): void {
    if (this.#selectClient.get(a.mailbox) !== undefined || this.#selectOwner.get(a.mailbox) !== undefined) return; // a client's id or own mailbox is never an alias
    const row = this.#selectAlias.get(a.mailbox);
    if (a.kind === 'register') {
      if (row !== undefined || this.#selectClient.get(a.owner) === undefined) return;
      if ((this.#countAliases.get(a.owner)?.n ?? 0) >= this.#maxAliases) return;
      this.#insertAlias.run(a.mailbox, a.owner, now, null);
      return;
    }
    if (row === undefined) {
      if (this.#selectClient.get(a.owner) === undefined) return;
      this.#insertAlias.run(a.mailbox, a.owner, now, now);
    }
    else if (equalBytes(row.owner, a.owner)) this.#revokeAlias.run(now, a.mailbox);
    else return;
    this.#pruneRevoked.run(a.owner, this.#maxRevoked);
  }

  storeBatch(entries: readonly MailboxEntry[]): StoreResult[] {
    // Every argument is checked before the transaction starts: a bad entry stores nothing.
    checkMailboxBatch(entries);
    if (entries.length === 0) return this.#guard('store', () => []);
    return this.#guard('store', () => this.#storeTx.immediate(entries));
  }

  store(entry: MailboxEntry): StoreResult {
    const [result] = this.storeBatch([entry]);
    if (result === undefined) throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: store returned no result');
    return result;
  }

  commitGroup(group: MailboxGroup): StoreResult[] {
    checkMailboxGroup(group);
    const results = this.#guard('store', () => this.#groupTx.immediate(group));
    for (const r of group.registrations) this.#remember(toHex(r));
    return results;
  }

  peek(recipient: Uint8Array, afterSeq?: number): PeekedEntry | null {
    checkRecipient(recipient);
    if (afterSeq !== undefined) aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    return this.#guard('peek', () => this.#peekTx.deferred(recipient, afterSeq));
  }

  peekAddress(recipient: Uint8Array, mailbox: Uint8Array | null, afterSeq: number): PeekedEntry | null {
    checkRecipient(recipient);
    if (mailbox !== null) abytes('mailbox', mailbox, RECIPIENT_ID_LENGTH);
    aint('afterSeq', afterSeq, 0, Number.MAX_SAFE_INTEGER);
    return this.#guard('peek', () =>
      this.#db.transaction((): PeekedEntry | null => {
        const row = mailbox === null ? this.#selectMainAfter.get(recipient, afterSeq) : this.#selectAliasAfter.get(recipient, mailbox, afterSeq);
        if (row === undefined) return null;
        const stored = this.#selectClient.get(recipient)?.stored ?? 1;
        const peeked: PeekedEntry = { seq: row.seq, surbId: row.surb_id === null ? null : own(row.surb_id), payload: own(row.payload), storedAt: row.stored_at, remaining: Math.max(0, stored - 1) };
        if (row.mailbox !== null) peeked.mailbox = own(row.mailbox);
        return peeked;
      }).deferred(),
    );
  }

  nextAddress(recipient: Uint8Array, after: Uint8Array | null | undefined): { readonly mailbox: Uint8Array | null } | null {
    checkRecipient(recipient);
    if (after !== undefined && after !== null) abytes('after', after, RECIPIENT_ID_LENGTH);
    return this.#guard('peek', () => {
      const row = after === undefined ? this.#firstAddress.get(recipient) : after === null ? this.#firstAlias.get(recipient) : this.#aliasAfter.get(recipient, after);
      if (row === undefined) return null;
      return { mailbox: row.mailbox === null ? null : own(row.mailbox) };
    });
  }

  ack(recipient: Uint8Array, seq: number): boolean {
    checkRecipient(recipient);
    aint('seq', seq, 0, Number.MAX_SAFE_INTEGER);
    return this.#guard('ack', () => this.#ackTx.immediate(recipient, seq));
  }

  ackBelow(recipient: Uint8Array, belowSeq: number): number {
    checkRecipient(recipient);
    aint('belowSeq', belowSeq, 0, Number.MAX_SAFE_INTEGER);
    return this.#guard('ack', () => this.#ackBelowTx.immediate(recipient, belowSeq));
  }

  count(recipient: Uint8Array): number {
    checkRecipient(recipient);
    return this.#guard('count', () => this.#selectClient.get(recipient)?.stored ?? 0);
  }

  total(): number {
    return this.#guard('count', () => this.#readTotal());
  }

  forgetRegistered(): void {
    this.#registered.clear();
  }

  clients(): number {
    // A count over the primary key: for the admission of a new client only, never per packet.
    return this.#guard('count', () => (this.#db.prepare('SELECT COUNT(*) AS n FROM clients').get() as { n: number }).n);
  }

  check(): void {
    const problem = this.#guard('check', () =>
      this.#db.transaction((): string | null => {
        const integrity = this.#db.pragma('integrity_check', { simple: true });
        if (integrity !== 'ok') return 'integrity_check failed';
        const bad = (sql: string): boolean => this.#db.prepare<[], { n: number }>(sql).get()?.n !== 0;
        if (bad('SELECT COUNT(*) AS n FROM messages WHERE recipient NOT IN (SELECT recipient FROM clients)')) {
          return 'entries without a registered recipient';
        }
        if (
          bad(`SELECT COUNT(*) AS n FROM clients c WHERE c.stored <> (SELECT COUNT(*) FROM messages m WHERE m.recipient = c.recipient)`)
        ) {
          return 'a mailbox counter disagrees with its entries';
        }
        if (bad(`SELECT COUNT(*) AS n FROM clients c WHERE c.next_seq <= (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.recipient = c.recipient)`)) {
          return 'a next sequence number is not above the entries';
        }
        if (bad(`SELECT COUNT(*) AS n FROM messages WHERE seq < ${FIRST_SEQ} OR (surb_id IS NOT NULL AND length(surb_id) <> ${SURB_ID_LENGTH}) OR (mailbox IS NOT NULL AND length(mailbox) <> ${RECIPIENT_ID_LENGTH})`)) {
          return 'an entry has a malformed field';
        }
        if (bad('SELECT COUNT(*) AS n FROM clients WHERE own IS NULL OR length(own) <> 32')) {
          return 'a client without its own mailbox';
        }
        if (bad('SELECT COUNT(*) AS n FROM aliases WHERE owner NOT IN (SELECT recipient FROM clients)')) {
          return 'an extra mailbox without a registered owner';
        }
        const sum = this.#db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM messages').get()?.n ?? 0;
        if (sum !== this.#readTotal()) return 'the total counter disagrees with the entries';
        return null;
      }).deferred(),
    );
    if (problem !== null) throw new BackchannelError('ERR_MAILBOX_STORE', `mailbox: store is inconsistent: ${problem}`);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#registered.clear();
    try {
      this.#db.close();
    } catch (err) {
      throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: close failed', { cause: err });
    }
  }

  #readTotal(): number {
    const row = this.#selectTotal.get();
    if (row === undefined) throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: the totals row is missing');
    return row.stored;
  }

  #remember(key: string): void {
    // Map keeps insertion order: delete and re-insert makes `key` the most recently used.
    this.#registered.delete(key);
    this.#registered.set(key, true);
    if (this.#registered.size > REGISTERED_CACHE_SIZE) {
      const oldest = this.#registered.keys().next();
      if (oldest.done !== true) this.#registered.delete(oldest.value);
    }
  }

  /** Runs `fn` on the open database; any failure of SQLite becomes ERR_MAILBOX_STORE with the cause attached. */
  #guard<T>(what: string, fn: () => T): T {
    if (this.#closed) throw new BackchannelError('ERR_MAILBOX_STORE', `mailbox: ${what} on a closed store`);
    try {
      return fn();
    } catch (err) {
      if (err instanceof BackchannelError) throw err;
      throw new BackchannelError('ERR_MAILBOX_STORE', `mailbox: ${what} failed`, { cause: err });
    }
  }
}
