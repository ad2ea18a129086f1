// The gateway's mailbox file says who receives what and when: it is the owner's only (0600), also
// when a file made by an older build was readable by others, and SQLite's WAL beside it too.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openMailboxStore } from '../../src/server/mailbox.js';

test('the mailbox store is made 0600 in a 0700 folder, and an older 0644 file is tightened', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-mailbox-mode-'));
  try {
    const path = join(dir, 'state', 'mailboxes.db');
    const store = openMailboxStore(path);
    store.register(new Uint8Array(32).fill(1));
    store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
    const older = join(dir, 'older.db');
    writeFileSync(older, '');
    chmodSync(older, 0o644);
    const again = openMailboxStore(older);
    again.register(new Uint8Array(32).fill(2));
    assert.equal(statSync(older).mode & 0o777, 0o600);
    assert.equal(statSync(`${older}-wal`).mode & 0o777, 0o600);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
