/**
 * The messenger's record store (the browser's, src/client/record-messenger-store.ts) under the
 * messenger, over a backing that keeps only what each transaction committed (as IndexedDB does):
 * the same end-to-end run as the SQLite messenger store's test (chat, a file, receipts, a restart
 * from what was committed), one transaction with the client's record store, and the bounds on
 * held set-up messages and early attachments.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RecordMessengerStore } from '../../src/client/record-messenger-store.js';
import { RecordClientStore } from '../../src/client/record-store.js';
import { Net } from '../messaging/_net.js';
import { openBackedJournal } from '../helpers/record-backing.js';

let run = 0;

describe('RecordMessengerStore', () => {
  test('the messenger over records: chat, a file, receipts; everything committed survives a reopen', () => {
    const prefix = `messenger-${run++}`;
    const open = (name: string): RecordMessengerStore => new RecordMessengerStore(openBackedJournal(`${prefix}-${name}`));
    const net = new Net(open);
    const a = net.party('a');
    const b = net.party('b');
    net.introduce(a, 'alice', b, 'bob');
    a.messenger.sendText('bob', 'over records');
    b.messenger.sendFile('alice', 'f.txt', new TextEncoder().encode('file body'));
    net.settle();
    assert.deepEqual(a.messenger.history('bob').map((h) => [h.direction, h.text ?? h.fileName, h.state]), [
      ['out', 'over records', 'delivered'],
      ['in', 'f.txt', 'received'],
    ]);
    const fileId = a.messenger.history('bob')[1]!.id;
    const before = a.messenger.safetyNumber('bob');
    net.restart(a, open('a'));
    assert.equal(a.messenger.safetyNumber('bob'), before);
    assert.deepEqual(new TextDecoder().decode(a.messenger.fileData(fileId)!.data), 'file body');
    a.messenger.sendText('bob', 'after the reopen');
    net.settle();
    assert.deepEqual(b.messenger.history('alice').map((h) => h.text ?? h.fileName), ['f.txt', 'over records', 'after the reopen']);
    assert.equal(a.messenger.history('bob').at(-1)!.state, 'delivered');
    assert.deepEqual(a.messenger.unread(0, 10).map((e) => e.fileName), ['f.txt']);
    a.messenger.markRead(fileId);
    assert.deepEqual(a.messenger.unread(0, 10), []);
    a.messenger.remove('bob');
    assert.deepEqual(a.messenger.contacts(), []);
  });

  test('one journal with the client store: a failure rolls back both, a commit keeps both after a reopen', () => {
    const name = `joint-${run++}`;
    const journal = openBackedJournal(name);
    const client = new RecordClientStore(journal);
    const store = new RecordMessengerStore(journal);
    assert.throws(() =>
      store.transaction(() => {
        store.setValue('identity', Uint8Array.of(1));
        client.setNextMailboxSeq(7);
        throw new Error('crash');
      }),
    );
    assert.equal(store.getValue('identity'), null);
    assert.equal(client.nextMailboxSeq(), 0);
    client.transaction(() => {
      store.setValue('identity', Uint8Array.of(2));
      client.setNextMailboxSeq(8);
    });
    const again = openBackedJournal(name);
    assert.deepEqual(new RecordMessengerStore(again).getValue('identity'), Uint8Array.of(2));
    assert.equal(new RecordClientStore(again).nextMailboxSeq(), 8);
  });

  test('held set-up messages and early attachments keep the newest `max`, and are taken once', () => {
    const store = new RecordMessengerStore(openBackedJournal(`bounds-${run++}`));
    for (let i = 0; i < 5; i++) store.putHeld(Uint8Array.of(i), i, 3);
    assert.deepEqual(store.held().map((h) => h.data[0]), [2, 3, 4]);
    store.deleteHeld(store.held()[0]!.id);
    assert.deepEqual(store.held().map((h) => h.data[0]), [3, 4]);
    for (let i = 0; i < 4; i++) store.putOrphanAttachment(Uint8Array.of(9, i), Uint8Array.of(i, i), i, 2);
    assert.equal(store.takeOrphanAttachment(Uint8Array.of(9, 1)), null, 'evicted');
    assert.deepEqual(store.takeOrphanAttachment(Uint8Array.of(9, 3)), Uint8Array.of(3, 3));
    assert.equal(store.takeOrphanAttachment(Uint8Array.of(9, 3)), null, 'taken once');
  });
});
