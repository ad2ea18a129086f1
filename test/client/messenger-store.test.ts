// The messenger's SQLite tables in the client's database: the messenger over them end to end,
// state surviving a reopen of the file, one transaction with the engine's tables, and the tables
// added to a database made before them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMessengerStore } from '../../src/client/messenger-store.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { Net } from '../messaging/_net.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'bc-msgstore-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SqliteMessengerStore', () => {
  test('the messenger over SQLite: chat, a file, receipts; everything survives a reopen', () => {
    withDir((dir) => {
      const opened: SqliteClientStore[] = [];
      const open = (name: string): SqliteMessengerStore => {
        const s = SqliteClientStore.open(join(dir, `${name}.db`));
        opened.push(s);
        return new SqliteMessengerStore(s);
      };
      try {
        const net = new Net(open);
        const a = net.party('a');
        const b = net.party('b');
        net.introduce(a, 'alice', b, 'bob');
        a.messenger.sendText('bob', 'over sqlite');
        b.messenger.sendFile('alice', 'f.txt', new TextEncoder().encode('file body'));
        net.settle();
        assert.deepEqual(a.messenger.history('bob').map((h) => [h.direction, h.text ?? h.fileName, h.state]), [
          ['out', 'over sqlite', 'delivered'],
          ['in', 'f.txt', 'received'],
        ]);
        const fileId = a.messenger.history('bob')[1]!.id;
        // Reopen a's database: identity, contacts, sessions and history are all there.
        const before = a.messenger.safetyNumber('bob');
        net.restart(a, open('a'));
        assert.equal(a.messenger.safetyNumber('bob'), before);
        assert.deepEqual(new TextDecoder().decode(a.messenger.fileData(fileId)!.data), 'file body');
        a.messenger.sendText('bob', 'after the reopen');
        net.settle();
        // b wrote its file before a's text arrived: history is in the order b stored things.
        assert.deepEqual(b.messenger.history('alice').map((h) => h.text ?? h.fileName), ['f.txt', 'over sqlite', 'after the reopen']);
        assert.equal(a.messenger.history('bob').at(-1)!.state, 'delivered');
        assert.deepEqual(a.messenger.unread(0, 10).map((e) => e.fileName), ['f.txt']);
        a.messenger.markRead(fileId);
        assert.deepEqual(a.messenger.unread(0, 10), []);
        a.messenger.remove('bob');
        assert.deepEqual(a.messenger.contacts(), []);
      } finally {
        for (const s of opened) s.close();
      }
    });
  });

  test('one transaction with the engine: a failure rolls back both', () => {
    withDir((dir) => {
      const client = SqliteClientStore.open(join(dir, 'c.db'));
      try {
        const store = new SqliteMessengerStore(client);
        assert.throws(() =>
          store.transaction(() => {
            store.setValue('identity', Uint8Array.of(1));
            client.setNextMailboxSeq(7);
            throw new Error('crash');
          }),
        );
        assert.equal(store.getValue('identity'), null);
        assert.equal(client.nextMailboxSeq(), 0);
        store.transaction(() => {
          store.setValue('identity', Uint8Array.of(2));
          client.setNextMailboxSeq(8);
        });
        assert.deepEqual(store.getValue('identity'), Uint8Array.of(2));
        assert.equal(client.nextMailboxSeq(), 8);
      } finally {
        client.close();
      }
    });
  });

  test('a database made before the messenger gets its tables; its schema version stays', () => {
    withDir((dir) => {
      const path = join(dir, 'old.db');
      const first = SqliteClientStore.open(path);
      first.setSetting('x', Uint8Array.of(1));
      const version = first.database.pragma('user_version', { simple: true });
      first.close();
      const again = SqliteClientStore.open(path);
      try {
        const store = new SqliteMessengerStore(again);
        store.setValue('prekeys', Uint8Array.of(3));
        new SqliteMessengerStore(again); // a second open changes nothing
        assert.deepEqual(store.getValue('prekeys'), Uint8Array.of(3));
        assert.equal(again.database.pragma('user_version', { simple: true }), version);
        assert.deepEqual(again.getSetting('x'), Uint8Array.of(1));
      } finally {
        again.close();
      }
    });
  });
});
