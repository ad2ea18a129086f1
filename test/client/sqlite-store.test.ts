/**
 * The client's SQLite store against real files in a temporary folder: the outgoing life cycle
 * (enqueue, attempts, acknowledgements, failure, pruning), reply SURB reservation, our SURBs,
 * reassembly of incoming fragments with its duplicates, errors and bound, the inbox, transactions,
 * persistence across reopening, and the files it refuses to open.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  CLIENT_DB_FILE,
  CLIENT_SCHEMA_VERSION,
  MAX_FRAGMENT_COUNT,
  MAX_INCOMPLETE_MESSAGES,
  SqliteClientStore,
} from '../../src/client/sqlite-store.js';
import type { Destination, FragmentResult, InboxMessage, SurbRecord } from '../../src/client/store.js';
import { isBackchannelError } from '../../src/errors.js';
import { openMailboxStore } from '../../src/server/mailbox.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-client-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh database path in a folder that does not exist yet (the store must create it). */
function freshPath(): string {
  return join(root, `case-${n++}`, 'client', CLIENT_DB_FILE);
}

const T0 = 1_700_000_000_000;

function bytes(tag: number, length = 16): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7 + 1) & 0xff);
}
function id(tag: number): Uint8Array {
  return bytes(tag, 16);
}
function frames(tag: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => bytes(tag * 100 + i, 64));
}
const address: Destination = { kind: 'address', gateway: bytes(200, 32), mailbox: bytes(201, 32) };

/** An assemble function that keeps the joined bytes as the body and attaches `surbs` reply SURBs. */
function keepAll(surbs = 0): (joined: Uint8Array) => { body: Uint8Array; replySurbs: Uint8Array[] } {
  return (joined) => ({ body: joined, replySurbs: Array.from({ length: surbs }, (_, i) => bytes(150 + i, 40)) });
}

function isCode(code: 'ERR_CLIENT_STATE' | 'ERR_CLIENT_FRAME' | 'ERR_CLIENT_NO_SURBS', pattern?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => isBackchannelError(err, code) && (pattern === undefined || pattern.test(err.message));
}

function complete(result: FragmentResult): InboxMessage {
  assert.equal(result.kind, 'complete');
  if (result.kind !== 'complete') throw new Error('unreachable');
  return result.message;
}

/** Stores a one-fragment message whose body is `body`, with `surbs` reply SURBs. */
function receive(store: SqliteClientStore, messageId: Uint8Array, body: Uint8Array, surbs: number, at = T0): InboxMessage {
  return complete(store.putFragment({ messageId, index: 0, count: 1, data: body, receivedAt: at, inReplyTo: null }, keepAll(surbs)));
}

function withStore<T>(fn: (store: SqliteClientStore, path: string) => T, path = freshPath()): T {
  const store = SqliteClientStore.open(path);
  try {
    return fn(store, path);
  } finally {
    store.close();
  }
}

describe('client SQLite store', () => {
  test('creates its folder, a 0600 file and an empty state; settings and the mailbox position round-trip', () => {
    withStore((store, path) => {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(dirname(path)).mode & 0o077, 0);
      assert.equal(store.getSetting('link-key'), null);
      assert.equal(store.nextMailboxSeq(), 0);
      assert.deepEqual(store.pendingFragments(), []);
      assert.deepEqual(store.unconsumed(0, 10), []);

      store.setSetting('link-key', bytes(1, 32));
      store.setSetting('empty', new Uint8Array(0));
      store.setSetting('link-key', bytes(2, 32));
      assert.deepEqual(store.getSetting('link-key'), bytes(2, 32), 'the second value replaces the first');
      assert.deepEqual(store.getSetting('empty'), new Uint8Array(0));
      store.setNextMailboxSeq(42);
      assert.equal(store.nextMailboxSeq(), 42);
      assert.equal(statSync(`${path}-wal`).mode & 0o077, 0, 'the WAL file is private too');

      const raw = new Database(path, { readonly: true });
      try {
        assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
        assert.equal(raw.pragma('user_version', { simple: true }), CLIENT_SCHEMA_VERSION);
      } finally {
        raw.close();
      }
    });
  });

  test('returned bytes are plain copies: changing them changes nothing stored', () => {
    withStore((store) => {
      store.setSetting('k', bytes(3));
      const a = store.getSetting('k');
      assert.ok(a !== null);
      assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype);
      a.fill(0);
      assert.deepEqual(store.getSetting('k'), bytes(3));
      const input = bytes(4);
      store.setSetting('k2', input);
      input.fill(0);
      assert.deepEqual(store.getSetting('k2'), bytes(4));
    });
  });

  test('an address message: queued fragments, attempts, acknowledgements in any order, then delivered', () => {
    withStore((store) => {
      const mid = id(1);
      const fs = frames(1, 3);
      const queued = store.enqueue({ id: mid, destination: address, length: 150, createdAt: T0 }, fs);
      assert.deepEqual(store.outgoing(mid), {
        id: mid,
        destination: address,
        length: 150,
        fragments: 3,
        createdAt: T0,
        status: 'pending',
        done: 0,
      });
      const pending = store.pendingFragments().sort((a, b) => a.index - b.index);
      assert.deepEqual(
        pending,
        fs.map((frame, index) => ({ messageId: mid, index, frame, destination: address, replySurb: null, attempts: 0, dueAt: T0, lastSentAt: null })),
      );
      assert.deepEqual(queued, pending, 'enqueue returns the fragments as the store lists them');

      store.recordAttempt(mid, 1, T0 + 10, T0 + 5_000);
      store.recordAttempt(mid, 1, T0 + 5_010, T0 + 15_000);
      const one = store.pendingFragments().find((f) => f.index === 1);
      assert.equal(one?.attempts, 2);
      assert.equal(one?.lastSentAt, T0 + 5_010);
      assert.equal(one?.dueAt, T0 + 15_000);
      store.recordAttempt(id(99), 0, T0, T0); // an unknown fragment is ignored

      const afterFirst = store.fragmentDone(mid, 2);
      assert.equal(afterFirst?.status, 'pending');
      assert.equal(afterFirst?.done, 1);
      assert.equal(store.fragmentDone(mid, 2)?.done, 1, 'acknowledging twice counts once');
      assert.equal(store.fragmentDone(mid, 7)?.done, 1, 'an unknown index changes nothing');
      assert.deepEqual(
        store.pendingFragments().map((f) => f.index).sort(),
        [0, 1],
      );
      assert.equal(store.fragmentDone(mid, 0)?.status, 'pending');
      const last = store.fragmentDone(mid, 1);
      assert.equal(last?.status, 'delivered');
      assert.equal(last?.done, 3);
      assert.deepEqual(store.pendingFragments(), []);
      assert.equal(store.fragmentDone(mid, 1)?.status, 'delivered', 'idempotent after delivery');
      assert.equal(store.failMessage(mid)?.status, 'delivered', 'a delivered message cannot fail');
      assert.equal(store.fragmentDone(id(98), 0), null);
      assert.equal(store.outgoing(id(98)), null);
    });
  });

  test('a failed message leaves the pending set and stays failed when a late acknowledgement comes', () => {
    withStore((store) => {
      const mid = id(2);
      store.enqueue({ id: mid, destination: address, length: 100, createdAt: T0 }, frames(2, 2));
      store.fragmentDone(mid, 0);
      const failed = store.failMessage(mid);
      assert.equal(failed?.status, 'failed');
      assert.equal(failed?.done, 1);
      assert.deepEqual(store.pendingFragments(), []);
      const late = store.fragmentDone(mid, 1);
      assert.equal(late?.status, 'failed');
      assert.equal(late?.done, 2);
      assert.equal(store.failMessage(id(97)), null);
    });
  });

  test('an id already stored is refused and changes nothing; bad arguments are TypeError or RangeError', () => {
    withStore((store) => {
      store.enqueue({ id: id(3), destination: address, length: 10, createdAt: T0 }, frames(3, 1));
      assert.throws(() => store.enqueue({ id: id(3), destination: address, length: 10, createdAt: T0 + 1 }, frames(4, 2)), isCode('ERR_CLIENT_STATE'));
      assert.equal(store.outgoing(id(3))?.fragments, 1);
      assert.equal(store.pendingFragments().length, 1);
      assert.throws(() => store.enqueue({ id: id(4), destination: address, length: 10, createdAt: T0 }, []), RangeError);
      assert.throws(() => store.setNextMailboxSeq(-1), RangeError);
      assert.throws(() => store.unconsumed(0, 1.5), TypeError);
      assert.throws(() => store.outgoing('x' as unknown as Uint8Array), TypeError);
    });
  });

  test('pruneOutgoing deletes finished messages created before the cut-off, and their fragments', () => {
    withStore((store, path) => {
      const mk = (tag: number, createdAt: number): Uint8Array => {
        store.enqueue({ id: id(tag), destination: address, length: 10, createdAt }, frames(tag, 2));
        return id(tag);
      };
      const delivered = mk(10, T0);
      const failed = mk(11, T0 + 1);
      const pendingOld = mk(12, T0 + 2);
      const deliveredNew = mk(13, T0 + 1_000);
      store.fragmentDone(delivered, 0);
      store.fragmentDone(delivered, 1);
      store.failMessage(failed);
      store.fragmentDone(deliveredNew, 0);
      store.fragmentDone(deliveredNew, 1);

      assert.equal(store.pruneOutgoing(T0 + 500), 2);
      assert.equal(store.outgoing(delivered), null);
      assert.equal(store.outgoing(failed), null);
      assert.equal(store.outgoing(pendingOld)?.status, 'pending');
      assert.equal(store.outgoing(deliveredNew)?.status, 'delivered');
      assert.equal(store.pruneOutgoing(T0 + 500), 0);
      const raw = new Database(path, { readonly: true });
      try {
        const rows = raw.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM outgoing_fragments').get();
        assert.equal(rows?.n, 4, 'only the fragments of the two kept messages remain');
      } finally {
        raw.close();
      }
    });
  });

  test('a reply reserves one SURB of the inbox message per fragment and is sent once every fragment left', () => {
    withStore((store) => {
      const question = receive(store, id(20), bytes(20, 100), 3);
      assert.equal(question.replySurbs, 3);
      const rid = id(21);
      const destination: Destination = { kind: 'reply', inReplyTo: question.id };
      const queued = store.enqueue({ id: rid, destination, length: 80, createdAt: T0 + 1 }, frames(21, 2));
      assert.equal(store.inboxMessage(question.id)?.replySurbs, 1, 'two of three SURBs are used');
      const pending = store.pendingFragments().sort((a, b) => a.index - b.index);
      assert.deepEqual(queued, pending, 'enqueue returns the fragments with the SURBs it reserved');
      assert.deepEqual(
        pending.map((f) => f.replySurb),
        [bytes(150, 40), bytes(151, 40)],
        'each fragment holds its own SURB, in order',
      );
      assert.deepEqual(pending[0]?.destination, destination);

      store.recordAttempt(rid, 0, T0 + 5, null);
      const half = store.outgoing(rid);
      assert.equal(half?.status, 'pending');
      assert.equal(half?.done, 1);
      assert.deepEqual(
        store.pendingFragments().map((f) => f.index),
        [1],
        'a reply fragment that left is never retransmitted',
      );
      store.recordAttempt(rid, 1, T0 + 6, null);
      assert.equal(store.outgoing(rid)?.status, 'sent');
      assert.equal(store.outgoing(rid)?.done, 2);
      assert.deepEqual(store.pendingFragments(), []);
    });
  });

  test('a reply that needs more SURBs than remain gets ERR_CLIENT_NO_SURBS and writes nothing', () => {
    withStore((store) => {
      const question = receive(store, id(22), bytes(22, 50), 1);
      const rid = id(23);
      assert.throws(
        () => store.enqueue({ id: rid, destination: { kind: 'reply', inReplyTo: question.id }, length: 10, createdAt: T0 }, frames(23, 2)),
        isCode('ERR_CLIENT_NO_SURBS'),
      );
      assert.equal(store.outgoing(rid), null);
      assert.deepEqual(store.pendingFragments(), []);
      assert.equal(store.inboxMessage(question.id)?.replySurbs, 1, 'the one SURB is still unused');

      const none = receive(store, id(24), bytes(24, 50), 0);
      assert.throws(
        () => store.enqueue({ id: rid, destination: { kind: 'reply', inReplyTo: none.id }, length: 10, createdAt: T0 }, frames(23, 1)),
        isCode('ERR_CLIENT_NO_SURBS'),
      );
      assert.throws(
        () => store.enqueue({ id: rid, destination: { kind: 'reply', inReplyTo: id(25) }, length: 10, createdAt: T0 }, frames(23, 1)),
        isCode('ERR_CLIENT_STATE', /^client state: no such inbox message$/),
      );
      store.enqueue({ id: rid, destination: { kind: 'reply', inReplyTo: question.id }, length: 10, createdAt: T0 }, frames(23, 1));
      assert.equal(store.inboxMessage(question.id)?.replySurbs, 0);
      assert.equal(store.pendingFragments()[0]?.replySurb?.length, 40);
    });
  });

  test('our SURBs come back as the record that was stored, and are deleted and pruned', () => {
    withStore((store) => {
      const ack: SurbRecord = { purpose: 'ack', keys: bytes(30, 64), messageId: id(31), index: 4, sentAt: T0 + 3, attempt: 2 };
      const loop: SurbRecord = { purpose: 'loop', keys: bytes(32, 64), sentAt: T0 + 4 };
      const reply: SurbRecord = { purpose: 'reply', keys: bytes(33, 64), messageId: id(34) };
      store.putSurb(id(35), ack, T0);
      store.putSurb(id(36), loop, T0 + 100);
      store.putSurb(id(37), reply, T0 + 200);
      assert.deepEqual(store.surb(id(35)), ack);
      assert.deepEqual(store.surb(id(36)), loop);
      assert.deepEqual(store.surb(id(37)), reply);
      assert.equal(store.surb(id(38)), null);
      assert.throws(() => store.putSurb(id(35), loop, T0), isCode('ERR_CLIENT_STATE'));
      assert.deepEqual(store.surb(id(35)), ack, 'a second SURB with the same id does not replace the first');

      store.deleteSurb(id(36));
      store.deleteSurb(id(36));
      assert.equal(store.surb(id(36)), null);
      assert.equal(store.pruneSurbs(T0 + 200), 1, 'made strictly before the cut-off');
      assert.equal(store.surb(id(35)), null);
      assert.deepEqual(store.surb(id(37)), reply);
    });
  });

  test('fragments reassemble in index order whatever order they arrive in, then the message is in the inbox', () => {
    withStore((store) => {
      const mid = id(40);
      const parts = [bytes(41, 30), bytes(42, 30), bytes(43, 7)];
      const joinedSeen: Uint8Array[] = [];
      const assemble = (joined: Uint8Array): { body: Uint8Array; replySurbs: Uint8Array[] } => {
        joinedSeen.push(joined);
        return { body: joined.subarray(1), replySurbs: [bytes(44, 40), bytes(45, 40)] };
      };
      const put = (index: number, at: number, inReplyTo: Uint8Array | null = null): FragmentResult =>
        store.putFragment({ messageId: mid, index, count: 3, data: parts[index]!, receivedAt: at, inReplyTo }, assemble);

      assert.deepEqual(put(2, T0), { kind: 'partial', have: 1, count: 3 });
      assert.deepEqual(put(2, T0 + 1), { kind: 'duplicate' }, 'the same fragment again');
      assert.deepEqual(put(0, T0 + 2, id(46)), { kind: 'partial', have: 2, count: 3 });
      assert.equal(joinedSeen.length, 0);
      const message = complete(put(1, T0 + 3));
      const joined = new Uint8Array([...parts[0]!, ...parts[1]!, ...parts[2]!]);
      assert.deepEqual(joinedSeen, [joined]);
      assert.deepEqual(message, { seq: message.seq, id: mid, body: joined.subarray(1).slice(), receivedAt: T0 + 3, replySurbs: 2, inReplyTo: id(46), sentAt: null, fileName: null, consumed: false, mailbox: null });
      assert.deepEqual(store.inboxMessage(mid), message);
      assert.deepEqual(store.unconsumed(0, 10), [message]);

      assert.deepEqual(put(1, T0 + 4), { kind: 'duplicate' }, 'a fragment of a message already in the inbox');
      store.consume(message.seq);
      assert.deepEqual(put(0, T0 + 5), { kind: 'duplicate' }, 'still a duplicate once consumed');
      assert.equal(joinedSeen.length, 1);
    });
  });

  test('when assemble throws, the error is rethrown and the message dropped for good', () => {
    const path = freshPath();
    const mid = id(50);
    const boom = new Error('bad encoding');
    withStore((store) => {
      assert.deepEqual(
        store.putFragment({ messageId: mid, index: 0, count: 2, data: bytes(51), receivedAt: T0, inReplyTo: null }, keepAll()),
        { kind: 'partial', have: 1, count: 2 },
      );
      assert.throws(
        () =>
          store.putFragment({ messageId: mid, index: 1, count: 2, data: bytes(52), receivedAt: T0 + 1, inReplyTo: null }, () => {
            throw boom;
          }),
        (err: unknown) => err === boom,
      );
      assert.equal(store.inboxMessage(mid), null);
    }, path);
    withStore((store) => {
      // Had fragment 0 survived, fragment 1 would complete the message now.
      assert.deepEqual(
        store.putFragment({ messageId: mid, index: 1, count: 2, data: bytes(52), receivedAt: T0 + 2, inReplyTo: null }, keepAll()),
        { kind: 'partial', have: 1, count: 2 },
      );
    }, path);
  });

  test('a malformed fragment or one whose count disagrees gets ERR_CLIENT_FRAME and stores nothing', () => {
    withStore((store) => {
      const mid = id(60);
      const put = (index: number, count: number): FragmentResult =>
        store.putFragment({ messageId: mid, index, count, data: bytes(60 + index), receivedAt: T0, inReplyTo: null }, keepAll());
      assert.deepEqual(put(0, 3), { kind: 'partial', have: 1, count: 3 });
      assert.throws(() => put(1, 2), isCode('ERR_CLIENT_FRAME'));
      assert.throws(() => put(4, 5), isCode('ERR_CLIENT_FRAME'));
      assert.throws(() => put(3, 3), isCode('ERR_CLIENT_FRAME'), 'index not below count');
      assert.throws(() => put(0, 0), isCode('ERR_CLIENT_FRAME'));
      assert.throws(() => put(0, MAX_FRAGMENT_COUNT + 1), isCode('ERR_CLIENT_FRAME'));
      assert.throws(() => put(-1, 3), isCode('ERR_CLIENT_FRAME'));
      assert.deepEqual(put(1, 3), { kind: 'partial', have: 2, count: 3 }, 'the refused fragments were not counted');
      complete(put(2, 3));
    });
  });

  test(`at most ${MAX_INCOMPLETE_MESSAGES} incomplete messages are held: the oldest goes first`, () => {
    withStore((store, path) => {
      const mid = (i: number): Uint8Array => new Uint8Array([0xaa, i >> 8, i & 0xff]);
      const put = (i: number, index: number, at: number): FragmentResult =>
        store.putFragment({ messageId: mid(i), index, count: 2, data: bytes(i), receivedAt: at, inReplyTo: null }, keepAll());
      store.transaction(() => {
        for (let i = 0; i <= MAX_INCOMPLETE_MESSAGES; i++) assert.equal(put(i, 0, T0 + i).kind, 'partial');
      });
      const raw = new Database(path, { readonly: true });
      try {
        const held = raw.prepare<[], { n: number }>('SELECT COUNT(DISTINCT message_id) AS n FROM incoming_fragments').get();
        assert.equal(held?.n, MAX_INCOMPLETE_MESSAGES);
      } finally {
        raw.close();
      }
      assert.deepEqual(put(0, 1, T0 + 5_000), { kind: 'partial', have: 1, count: 2 }, 'message 0 was evicted');
      // Message 0 came back and evicted 1, which came back and evicted 2; 3 and the newest are still held.
      assert.deepEqual(put(1, 1, T0 + 5_001), { kind: 'partial', have: 1, count: 2 });
      complete(put(3, 1, T0 + 5_002));
      complete(put(MAX_INCOMPLETE_MESSAGES, 1, T0 + 5_003));
    });
  });

  test('pruneFragments drops incomplete messages whose first fragment is older than the cut-off', () => {
    withStore((store) => {
      const put = (tag: number, index: number, at: number): FragmentResult =>
        store.putFragment({ messageId: id(tag), index, count: 3, data: bytes(tag), receivedAt: at, inReplyTo: null }, keepAll());
      put(70, 0, T0);
      put(70, 1, T0 + 2_000);
      put(71, 0, T0 + 1_500);
      assert.equal(store.pruneFragments(T0 + 1_000), 2, 'both fragments of message 70');
      assert.deepEqual(put(70, 2, T0 + 3_000), { kind: 'partial', have: 1, count: 3 });
      assert.deepEqual(put(71, 1, T0 + 3_000), { kind: 'partial', have: 2, count: 3 });
      assert.equal(store.pruneFragments(T0), 0);
    });
  });

  test('the inbox is read in seq order after a position, limited, without the consumed messages', () => {
    withStore((store) => {
      const a = receive(store, id(80), bytes(80), 0);
      const b = receive(store, id(81), bytes(81), 2);
      const c = receive(store, id(82), bytes(82), 0);
      assert.ok(a.seq < b.seq && b.seq < c.seq);
      assert.deepEqual(store.unconsumed(0, 10), [a, b, c]);
      assert.deepEqual(store.unconsumed(0, 2), [a, b]);
      assert.deepEqual(store.unconsumed(a.seq, 10), [b, c]);
      store.consume(b.seq);
      store.consume(b.seq);
      store.consume(9_999);
      assert.deepEqual(store.unconsumed(0, 10), [a, c]);
      assert.deepEqual(store.inboxMessage(b.id), { ...b, consumed: true }, 'a consumed message is still there, SURBs and all');
      assert.equal(store.inboxMessage(id(83)), null);
    });
  });

  test('a transaction is all or nothing; a nested one that throws rolls back alone', () => {
    withStore((store) => {
      const boom = new Error('abort');
      assert.throws(
        () =>
          store.transaction(() => {
            store.setSetting('a', bytes(1));
            store.setNextMailboxSeq(7);
            store.enqueue({ id: id(90), destination: address, length: 10, createdAt: T0 }, frames(90, 2));
            receive(store, id(91), bytes(91), 1);
            throw boom;
          }),
        (err: unknown) => err === boom,
      );
      assert.equal(store.getSetting('a'), null);
      assert.equal(store.nextMailboxSeq(), 0);
      assert.equal(store.outgoing(id(90)), null);
      assert.equal(store.inboxMessage(id(91)), null);
      assert.deepEqual(store.pendingFragments(), []);

      const result = store.transaction(() => {
        store.setSetting('outer', bytes(2));
        assert.throws(() =>
          store.transaction(() => {
            store.setSetting('inner', bytes(3));
            throw boom;
          }),
        );
        // A failed enqueue inside a transaction leaves the transaction usable.
        assert.throws(() => store.enqueue({ id: id(92), destination: { kind: 'reply', inReplyTo: id(93) }, length: 1, createdAt: T0 }, frames(92, 1)));
        return 'done';
      });
      assert.equal(result, 'done');
      assert.deepEqual(store.getSetting('outer'), bytes(2));
      assert.equal(store.getSetting('inner'), null);
    });
  });

  test('the inbox keeps what a message said about itself, lists read messages too, and finds one by an id prefix', () => {
    const path = freshPath();
    withStore((store) => {
      const withMeta = complete(
        store.putFragment({ messageId: id(1), index: 0, count: 1, data: bytes(1, 10), receivedAt: T0, inReplyTo: null }, (joined) => ({
          body: joined,
          replySurbs: [],
          meta: { sentAtS: 1_699_999_990, fileName: 'notes.txt' },
        })),
      );
      assert.equal(withMeta.sentAt, 1_699_999_990_000);
      assert.equal(withMeta.fileName, 'notes.txt');
      const plain = receive(store, id(2), bytes(2, 5), 1, T0 + 1);
      assert.equal(plain.sentAt, null);
      assert.equal(plain.fileName, null);
      store.consume(withMeta.seq);
      assert.deepEqual(store.unconsumed(0, 10).map((m) => m.seq), [plain.seq]);
      const all = store.inboxPage(0, 10);
      assert.deepEqual(all.map((m) => [m.seq, m.consumed, m.sentAt, m.fileName]), [
        [withMeta.seq, true, 1_699_999_990_000, 'notes.txt'],
        [plain.seq, false, null, null],
      ]);
      assert.deepEqual(store.inboxPage(withMeta.seq, 10).map((m) => m.seq), [plain.seq]);
      const hex = Buffer.from(id(1)).toString('hex');
      assert.deepEqual(store.inboxByPrefix(hex.slice(0, 8), 2).map((m) => m.seq), [withMeta.seq]);
      assert.deepEqual(store.inboxByPrefix(hex.slice(0, 9).toUpperCase(), 2).map((m) => m.seq), [withMeta.seq]);
      assert.deepEqual(store.inboxByPrefix(hex, 2).map((m) => m.seq), [withMeta.seq]);
      assert.deepEqual(store.inboxByPrefix('ffffffffff', 2), []);
      // Not hex: refused, so that no LIKE wildcard reaches the query.
      for (const bad of ['', '%', '12_4', 'xyz']) assert.throws(() => store.inboxByPrefix(bad, 2), TypeError);
    }, path);
  });

  test('a database made before inbox_meta gets it on open, and old rows read without meta', () => {
    const path = freshPath();
    withStore((store) => void receive(store, id(3), bytes(3, 4), 0), path);
    const db = new Database(path);
    db.exec('DROP TABLE inbox_meta');
    db.close();
    withStore((store) => {
      assert.deepEqual(store.inboxPage(0, 10).map((m) => [m.sentAt, m.fileName]), [[null, null]]);
      const m = complete(
        store.putFragment({ messageId: id(4), index: 0, count: 1, data: bytes(4, 4), receivedAt: T0, inReplyTo: null }, (joined) => ({
          body: joined,
          replySurbs: [],
          meta: { sentAtS: 5, fileName: null },
        })),
      );
      assert.equal(store.inboxMessage(m.id)?.sentAt, 5000);
    }, path);
  });

  test('everything survives closing and reopening the file', () => {
    const path = freshPath();
    let inbox: InboxMessage | undefined;
    withStore((store) => {
      store.setSetting('gateway', bytes(100, 32));
      store.setNextMailboxSeq(17);
      store.enqueue({ id: id(101), destination: address, length: 99, createdAt: T0 }, frames(101, 2));
      store.recordAttempt(id(101), 0, T0 + 1, T0 + 900);
      store.fragmentDone(id(101), 1);
      store.putSurb(id(102), { purpose: 'loop', keys: bytes(102, 64), sentAt: T0 + 2 }, T0 + 2);
      inbox = receive(store, id(103), bytes(103, 70), 2);
      store.putFragment({ messageId: id(104), index: 1, count: 2, data: bytes(104), receivedAt: T0, inReplyTo: null }, keepAll());
    }, path);
    withStore((store) => {
      assert.deepEqual(store.getSetting('gateway'), bytes(100, 32));
      assert.equal(store.nextMailboxSeq(), 17);
      assert.deepEqual(store.outgoing(id(101)), { id: id(101), destination: address, length: 99, fragments: 2, createdAt: T0, status: 'pending', done: 1 });
      assert.deepEqual(store.pendingFragments(), [
        { messageId: id(101), index: 0, frame: frames(101, 2)[0], destination: address, replySurb: null, attempts: 1, dueAt: T0 + 900, lastSentAt: T0 + 1 },
      ]);
      assert.deepEqual(store.surb(id(102)), { purpose: 'loop', keys: bytes(102, 64), sentAt: T0 + 2 });
      assert.deepEqual(store.unconsumed(0, 10), [inbox]);
      const done = complete(
        store.putFragment({ messageId: id(104), index: 0, count: 2, data: bytes(105), receivedAt: T0 + 1, inReplyTo: null }, keepAll()),
      );
      assert.deepEqual(done.body, new Uint8Array([...bytes(105), ...bytes(104)]));
      assert.ok(inbox !== undefined && done.seq > inbox.seq);
    }, path);
  });

  test('a closed store refuses every call with ERR_CLIENT_STATE; closing twice is fine', () => {
    const store = SqliteClientStore.open(freshPath());
    store.close();
    store.close();
    assert.throws(() => store.getSetting('k'), isCode('ERR_CLIENT_STATE', /closed/));
    assert.throws(() => store.transaction(() => 1), isCode('ERR_CLIENT_STATE'));
    assert.throws(() => store.pendingFragments(), isCode('ERR_CLIENT_STATE'));
  });

  test('an unknown schema version is refused with ERR_CLIENT_STATE', () => {
    const path = freshPath();
    SqliteClientStore.open(path).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${CLIENT_SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(() => SqliteClientStore.open(path), isCode('ERR_CLIENT_STATE', /^client state: unknown schema version 2/));
  });

  test('a database that is not a client database, or not a database at all, is refused', () => {
    const foreign = freshPath();
    mkdirSync(dirname(foreign), { recursive: true });
    const raw = new Database(foreign);
    raw.exec('CREATE TABLE something (x)');
    raw.close();
    assert.throws(() => SqliteClientStore.open(foreign), isCode('ERR_CLIENT_STATE', /not a client database/));

    const mailbox = freshPath();
    openMailboxStore(mailbox).close();
    assert.throws(() => SqliteClientStore.open(mailbox), isCode('ERR_CLIENT_STATE', /not a client database/));

    const garbage = join(root, 'garbage.db');
    writeFileSync(garbage, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    assert.throws(
      () => SqliteClientStore.open(garbage),
      (err: unknown) => isBackchannelError(err, 'ERR_CLIENT_STATE') && err.cause !== undefined,
    );
  });
});
