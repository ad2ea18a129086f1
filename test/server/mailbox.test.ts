/**
 * The SQLite mailbox store: the MailboxStore compliance suite over a file in a temporary folder
 * (closed and reopened between operations too) and over ':memory:', then what only a store on
 * disk shows: entries, numbers and totals that outlive reopening, WAL and the schema version,
 * transactions that fail half way, locks, and files that are not mailbox stores.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isBackchannelError } from '../../src/errors.js';
import type { MailboxStore, MailboxStoreOptions, StoreResult } from '../../src/server/mailbox.js';
import { MAILBOX_SCHEMA_VERSION, openMailboxStore } from '../../src/server/mailbox.js';
import { entry, mailboxStoreCompliance, payload, recipient, surb } from './mailbox-compliance.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-mailbox-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh database path in a folder that does not exist yet (the store must create it). */
function freshPath(): string {
  return join(root, `case-${n++}`, 'sub', 'mailboxes.sqlite');
}

function open(path: string, options: MailboxStoreOptions = {}): MailboxStore {
  return openMailboxStore(path, options);
}

function seqOf(result: StoreResult): number {
  assert.ok(result.ok, 'expected the entry to be stored');
  return result.seq;
}

/** Where each store of the file case lives, so that the suite can reopen it. */
const opened = new WeakMap<MailboxStore, { path: string; options: MailboxStoreOptions }>();

mailboxStoreCompliance(
  'SQLite file',
  (options) => {
    const path = freshPath();
    const store = open(path, options);
    opened.set(store, { path, options });
    return store;
  },
  {
    reopen(store) {
      const at = opened.get(store);
      assert.ok(at !== undefined, 'reopen is given a store the suite opened');
      store.close();
      const again = open(at.path, at.options);
      opened.set(again, at);
      return again;
    },
    // Every write waits for fsync; the in-memory case below tries many more sequences.
    runs: 20,
  },
);

mailboxStoreCompliance('SQLite in memory', (options) => open(':memory:', options));

describe('SQLite mailbox store', () => {
  test('entries survive closing and reopening, and so does registration', () => {
    const path = freshPath();
    const s1 = open(path);
    s1.register(recipient(0));
    const big = { recipient: recipient(0), surbId: surb(1), payload: payload(9, 2600) };
    assert.equal(seqOf(s1.store(big)), 1);
    s1.close();
    const s2 = open(path);
    try {
      assert.equal(s2.isRegistered(recipient(0)), true);
      assert.deepEqual(s2.peek(recipient(0))?.payload, big.payload);
      assert.equal(s2.total(), 1);
      s2.check();
    } finally {
      s2.close();
    }
  });

  test('the database is in WAL mode and carries the schema version', () => {
    const path = freshPath();
    open(path).close();
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(raw.pragma('user_version', { simple: true }), MAILBOX_SCHEMA_VERSION);
    } finally {
      raw.close();
    }
  });

  test('sequence numbers keep growing across reopening, even in a mailbox that was emptied', () => {
    const path = freshPath();
    let store = open(path);
    store.register(recipient(0));
    store.register(recipient(1));
    assert.deepEqual(store.storeBatch([entry(0, 1), entry(0, 2), entry(1, 3)]).map(seqOf), [1, 2, 1]);
    assert.equal(store.ackBelow(recipient(0), 3), 2);
    store.close();
    store = open(path);
    try {
      assert.equal(seqOf(store.store(entry(0, 4))), 3);
      assert.equal(seqOf(store.store(entry(1, 5))), 2);
      store.check();
    } finally {
      store.close();
    }
  });

  test('the total is kept on disk: a full store is still full after reopening', () => {
    const path = freshPath();
    let store = open(path, { maxTotal: 4 });
    for (let r = 0; r < 3; r++) store.register(recipient(r));
    assert.deepEqual(store.storeBatch([entry(0, 1), entry(1, 2), entry(2, 3), entry(0, 4)]).map(seqOf), [1, 1, 1, 2]);
    store.close();
    store = open(path, { maxTotal: 4 });
    try {
      assert.equal(store.total(), 4);
      assert.deepEqual(store.store(entry(2, 5)), { ok: false, code: 'ERR_MAILBOX_FULL' });
      assert.equal(store.ack(recipient(1), 1), true);
      assert.equal(store.store(entry(2, 6)).ok, true);
    } finally {
      store.close();
    }
  });

  test('a batch whose transaction fails half way stores nothing and fails with ERR_MAILBOX_STORE', () => {
    const path = freshPath();
    const store = open(path);
    try {
      store.register(recipient(0));
      store.register(recipient(1));
      assert.equal(seqOf(store.store(entry(0, 1))), 1);
      // Another connection installs a trigger that aborts on one particular payload.
      const poison = Uint8Array.of(0xde, 0xad);
      const raw = new Database(path);
      raw.exec(`CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.payload = X'dead' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
      raw.close();
      const batch = [entry(0, 2), entry(1, 3), { recipient: recipient(1), surbId: null, payload: poison }, entry(0, 4)];
      assert.throws(
        () => store.storeBatch(batch),
        (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && err.cause instanceof Error && /^mailbox: /.test(err.message),
      );
      assert.equal(store.total(), 1);
      assert.equal(store.count(recipient(0)), 1);
      assert.equal(store.count(recipient(1)), 0);
      store.check();
      const raw2 = new Database(path);
      raw2.exec('DROP TRIGGER poison');
      raw2.close();
      assert.deepEqual(store.storeBatch(batch).map(seqOf), [2, 1, 2, 3]);
    } finally {
      store.close();
    }
  });

  test('a write that cannot get the lock fails with ERR_MAILBOX_STORE after the busy timeout', () => {
    const path = freshPath();
    const store = open(path, { busyTimeoutMs: 50 });
    const raw = new Database(path);
    try {
      store.register(recipient(0));
      raw.exec('BEGIN IMMEDIATE');
      assert.throws(() => store.store(entry(0, 1)), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
      raw.exec('ROLLBACK');
      assert.equal(seqOf(store.store(entry(0, 1))), 1);
    } finally {
      raw.close();
      store.close();
    }
  });

  test('an unknown schema version is refused with a clear ERR_MAILBOX_STORE', () => {
    const path = freshPath();
    open(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 7');
    raw.close();
    assert.throws(
      () => open(path),
      (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && /unknown schema version 7 \(this build reads version 2\)/.test(err.message),
    );
  });

  test('a database that is not a mailbox store, or not a database at all, is refused', () => {
    const foreign = freshPath();
    mkdirSync(dirname(foreign), { recursive: true });
    const raw = new Database(foreign);
    raw.exec('CREATE TABLE something (x)');
    raw.close();
    assert.throws(() => open(foreign), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && /not a mailbox store/.test(err.message));
    const garbage = join(root, 'garbage.sqlite');
    writeFileSync(garbage, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    assert.throws(() => open(garbage), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && err.cause !== undefined);
  });

  test('openMailboxStore refuses a bad path or bad options with a TypeError or a RangeError', () => {
    assert.throws(() => openMailboxStore('', {}), { name: 'TypeError', message: /"path"/ });
    assert.throws(() => openMailboxStore(':memory:', { maxPerMailbox: 0 }), { name: 'RangeError', message: /"maxPerMailbox"/ });
    assert.throws(() => openMailboxStore(':memory:', { maxTotal: 1.5 }), { name: 'TypeError', message: /"maxTotal"/ });
    assert.throws(() => openMailboxStore(':memory:', { busyTimeoutMs: -1 }), { name: 'RangeError', message: /"busyTimeoutMs"/ });
  });
});
