/**
 * Opening a durable SQLite database (better-sqlite3) as every store here does: WAL journaling
 * (required, except for ':memory:'), `synchronous = FULL` so that a commit returns only once the
 * WAL is fsynced, a bounded journal, then the store's own schema step. On any failure the
 * database is closed and a typed error thrown.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { BackchannelError } from '../errors.js';

export interface DurableDatabaseOptions {
  readonly busyTimeoutMs: number;
  readonly journalSizeLimit: number;
  /** Mode of a folder this creates (default: the umask's). */
  readonly dirMode?: number;
  /** When set, a missing file is created with this mode before SQLite opens it; an existing one is left as it is. */
  readonly fileMode?: number;
  /** The store's typed error for `message`, with the cause attached when there is one. */
  readonly error: (message: string, cause?: unknown) => BackchannelError;
  /** The message of the error for a failure that is not already a BackchannelError. */
  readonly openFailure: string;
}

/**
 * Opens `path` and hands the database to `init` (schema checks and migration, the store's
 * construction); returns what `init` returns.
 * @throws {BackchannelError} what `init` throws, or `opts.error` for a database that cannot be
 *   opened or cannot use WAL.
 */
export function openDurableDatabase<T>(path: string, opts: DurableDatabaseOptions, init: (db: Database.Database) => T): T {
  const memory = path === ':memory:';
  let db: Database.Database | undefined;
  try {
    if (!memory) {
      mkdirSync(dirname(resolve(path)), { recursive: true, ...(opts.dirMode === undefined ? {} : { mode: opts.dirMode }) });
      if (opts.fileMode !== undefined) {
        closeSync(openSync(path, 'a', opts.fileMode));
        // A file made before (by a build that did not set the mode) is tightened too.
        chmodSync(path, opts.fileMode);
      }
    }
    db = new Database(path, { timeout: opts.busyTimeoutMs });
    if (!memory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw opts.error('the database cannot use WAL journaling');
    }
    // FULL: a commit returns only once the WAL is fsynced; NORMAL could lose the last commits on power loss.
    db.pragma('synchronous = FULL');
    db.pragma(`journal_size_limit = ${opts.journalSizeLimit}`);
    return init(db);
  } catch (err) {
    try {
      db?.close();
    } catch {
      // the open error is the one worth reporting
    }
    if (err instanceof BackchannelError) throw err;
    throw opts.error(opts.openFailure, err);
  }
}
