/**
 * The ledger of invitation tokens used at a token-admission gateway (admission.ts): which key each
 * token admitted, in a small SQLite file of its own (`<dataDir>/admission.sqlite`, mode 0600), so
 * that a token admits one key only, across restarts. Written on the thread that accepts links, once
 * per new client admitted by token (never per packet or fetch).
 */
import { BackchannelError } from '../errors.js';
import { openDurableDatabase } from '../util/sqlite.js';
import type { TokenLedger } from './admission.js';

export const TOKEN_LEDGER_FILE = 'admission.sqlite';

/**
 * Opens (creating when missing) the ledger at `path`.
 * @throws {BackchannelError} ERR_MAILBOX_STORE when the file cannot be opened.
 */
export function openTokenLedger(path: string): TokenLedger & { close(): void } {
  return openDurableDatabase(
    path,
    {
      busyTimeoutMs: 5_000,
      journalSizeLimit: 1 << 20,
      dirMode: 0o700,
      fileMode: 0o600,
      error: (message, cause) => new BackchannelError('ERR_MAILBOX_STORE', `admission: ${message}`, cause === undefined ? undefined : { cause }),
      openFailure: 'cannot open the token ledger',
    },
    (db) => {
      db.exec('CREATE TABLE IF NOT EXISTS tokens (id BLOB PRIMARY KEY, client BLOB NOT NULL, used_at INTEGER NOT NULL) WITHOUT ROWID');
      const insert = db.prepare('INSERT INTO tokens (id, client, used_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING');
      const select = db.prepare<[Uint8Array], { client: Uint8Array }>('SELECT client FROM tokens WHERE id = ?');
      return {
        bind(id: Uint8Array, client: Uint8Array): boolean {
          insert.run(id, client, Date.now());
          const row = select.get(id);
          return row !== undefined && Buffer.compare(Buffer.from(row.client), Buffer.from(client)) === 0;
        },
        close() {
          db.close();
        },
      };
    },
  );
}
