/**
 * The client's extra mailboxes in its SQLite database (part of SqliteClientStore, in a file of its
 * own). Two tables, created on every open when missing, so that a database made before them
 * gets them without a new schema version:
 *
 * - `mailboxes (id BLOB PK, private_key NULL, created_at, registered, refused NULL, revoke_at
 *   NULL, replaced_by NULL, revoked_at NULL, revoke_confirmed)`: one row per extra mailbox;
 *   `private_key` is set to NULL (and, with `secure_delete = FAST`, zeroed in its page) when the
 *   mailbox is revoked.
 * - `inbox_mailboxes (seq INTEGER PK, mailbox)`: the extra mailbox an inbox message came to; no
 *   row for the main mailbox.
 *
 * Every method runs inside the caller's guard (SqliteClientStore's), and joins its transaction.
 */
import type Database from 'better-sqlite3';
import { BackchannelError } from '../errors.js';
import { abytes, aint } from '../util/bytes.js';
import type { ExtraMailbox, ExtraMailboxChange, MailboxRefusal } from './store.js';

const TABLES = `
CREATE TABLE IF NOT EXISTS mailboxes (
  id BLOB PRIMARY KEY,
  private_key BLOB,
  created_at INTEGER NOT NULL,
  registered INTEGER NOT NULL DEFAULT 0,
  refused TEXT,
  revoke_at INTEGER,
  replaced_by BLOB,
  revoked_at INTEGER,
  revoke_confirmed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox_mailboxes (
  seq INTEGER PRIMARY KEY,
  mailbox BLOB NOT NULL
);
`;

const REFUSALS: readonly MailboxRefusal[] = ['limit', 'taken', 'revoked', 'invalid'];

interface Row {
  id: Buffer;
  created_at: number;
  registered: number;
  refused: string | null;
  revoke_at: number | null;
  replaced_by: Buffer | null;
  revoked_at: number | null;
  revoke_confirmed: number;
}

function corrupt(): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', 'client: the store holds a malformed extra mailbox record');
}

function mailboxOf(r: Row): ExtraMailbox {
  const refused = r.refused === null ? null : (REFUSALS.find((x) => x === r.refused) ?? null);
  if (r.refused !== null && refused === null) throw corrupt();
  return {
    id: new Uint8Array(r.id),
    createdAt: r.created_at,
    registered: r.registered === 1,
    refused,
    revokeAt: r.revoke_at,
    replacedBy: r.replaced_by === null ? null : new Uint8Array(r.replaced_by),
    revokedAt: r.revoked_at,
    revokeConfirmed: r.revoke_confirmed === 1,
  };
}

const COLUMNS = 'id, created_at, registered, refused, revoke_at, replaced_by, revoked_at, revoke_confirmed';

/** The SQL side of the extra mailboxes; SqliteClientStore guards and exposes it. */
export class SqliteMailboxes {
  readonly #insert: Database.Statement<[Uint8Array, Uint8Array, number]>;
  readonly #select: Database.Statement<[Uint8Array], Row>;
  readonly #all: Database.Statement<[], Row>;
  readonly #key: Database.Statement<[Uint8Array], { private_key: Buffer | null }>;
  readonly #update: Database.Statement<[number, string | null, number | null, Uint8Array | null, number | null, number, Uint8Array]>;
  readonly #erase: Database.Statement<[Uint8Array]>;
  readonly #tag: Database.Statement<[number, Uint8Array]>;
  readonly #tagOf: Database.Statement<[number], { mailbox: Buffer }>;

  /** Creates the tables when missing; call before anything prepares a statement on them. */
  constructor(db: Database.Database) {
    // Deleted and overwritten content (an erased key among it) is zeroed where the page is written
    // anyway: FAST costs no extra I/O (ON would also rewrite freed overflow pages of every deleted
    // fragment). An older copy of the page can stay in the WAL until the next checkpoint.
    db.pragma('secure_delete = FAST');
    db.exec(TABLES);
    this.#insert = db.prepare('INSERT INTO mailboxes (id, private_key, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING');
    this.#select = db.prepare(`SELECT ${COLUMNS} FROM mailboxes WHERE id = ?`);
    this.#all = db.prepare(`SELECT ${COLUMNS} FROM mailboxes ORDER BY created_at, id`);
    this.#key = db.prepare('SELECT private_key FROM mailboxes WHERE id = ? AND revoked_at IS NULL');
    this.#update = db.prepare(
      'UPDATE mailboxes SET registered = ?, refused = ?, revoke_at = ?, replaced_by = ?, revoked_at = ?, revoke_confirmed = ? WHERE id = ?',
    );
    this.#erase = db.prepare('UPDATE mailboxes SET private_key = NULL WHERE id = ?');
    this.#tag = db.prepare('INSERT OR REPLACE INTO inbox_mailboxes (seq, mailbox) VALUES (?, ?)');
    this.#tagOf = db.prepare('SELECT mailbox FROM inbox_mailboxes WHERE seq = ?');
  }

  put(id: Uint8Array, privateKey: Uint8Array, createdAt: number): void {
    abytes('id', id, 32);
    abytes('privateKey', privateKey, 32);
    aint('createdAt', createdAt, 0, Number.MAX_SAFE_INTEGER);
    this.#insert.run(id, privateKey, createdAt);
  }

  all(): ExtraMailbox[] {
    return this.#all.all().map(mailboxOf);
  }

  get(id: Uint8Array): ExtraMailbox | null {
    abytes('id', id, 32);
    const r = this.#select.get(id);
    return r === undefined ? null : mailboxOf(r);
  }

  key(id: Uint8Array): Uint8Array | null {
    abytes('id', id, 32);
    const k = this.#key.get(id)?.private_key ?? null;
    if (k === null) return null;
    const copy = new Uint8Array(k);
    k.fill(0);
    return copy;
  }

  /** Applies `change`; the caller runs it in a transaction. */
  update(id: Uint8Array, change: ExtraMailboxChange): ExtraMailbox | null {
    abytes('id', id, 32);
    const cur = this.get(id);
    if (cur === null) return null;
    if (change.refused !== undefined && change.refused !== null && !REFUSALS.includes(change.refused)) throw new RangeError('"refused" expected a refusal');
    if (change.revokeAt !== undefined && change.revokeAt !== null) aint('revokeAt', change.revokeAt, 0, Number.MAX_SAFE_INTEGER);
    if (change.revokedAt !== undefined) aint('revokedAt', change.revokedAt, 0, Number.MAX_SAFE_INTEGER);
    if (change.replacedBy !== undefined && change.replacedBy !== null) abytes('replacedBy', change.replacedBy, 32);
    const next: ExtraMailbox = {
      ...cur,
      ...(change.registered === undefined ? {} : { registered: change.registered }),
      ...(change.refused === undefined ? {} : { refused: change.refused }),
      ...(change.revokeAt === undefined ? {} : { revokeAt: change.revokeAt }),
      ...(change.replacedBy === undefined ? {} : { replacedBy: change.replacedBy }),
      // A revocation is for good: its first time stays.
      ...(change.revokedAt === undefined || cur.revokedAt !== null ? {} : { revokedAt: change.revokedAt }),
      ...(change.revokeConfirmed === undefined ? {} : { revokeConfirmed: change.revokeConfirmed }),
    };
    this.#update.run(next.registered ? 1 : 0, next.refused, next.revokeAt, next.replacedBy, next.revokedAt, next.revokeConfirmed ? 1 : 0, id);
    if (next.revokedAt !== null) this.#erase.run(id);
    return next;
  }

  /** Records that inbox message `seq` came to extra mailbox `mailbox`. */
  tag(seq: number, mailbox: Uint8Array): void {
    abytes('mailbox', mailbox, 32);
    this.#tag.run(seq, mailbox);
  }

  /** The extra mailbox inbox message `seq` came to, or null. */
  tagOf(seq: number): Uint8Array | null {
    const r = this.#tagOf.get(seq);
    return r === undefined ? null : new Uint8Array(r.mailbox);
  }
}
