/**
 * The mailbox store against real SQLite files in a temporary folder: round trips, sequence
 * numbers that never go back, caps, atomic batches, schema versions, and random operation
 * sequences checked against an in-memory model.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import type { MailboxEntry, MailboxStore, MailboxStoreOptions } from '../../src/server/mailbox.js';
import { MAILBOX_SCHEMA_VERSION, openMailboxStore } from '../../src/server/mailbox.js';
import type { Clock } from '../../src/ops/clock.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-mailbox-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh database path in a folder that does not exist yet (the store must create it). */
function freshPath(): string {
  return join(root, `case-${n++}`, 'sub', 'mailboxes.sqlite');
}

function fakeClock(start = 1_700_000_000_000): Clock & { t: number } {
  return {
    t: start,
    now() {
      return this.t;
    },
    setTimer: () => undefined,
    clearTimer: () => undefined,
  };
}

function recipient(i: number): Uint8Array {
  return new Uint8Array(32).fill(i + 1);
}
function surb(i: number): Uint8Array {
  return new Uint8Array(16).fill(0x80 + i);
}
function payload(tag: number, length = 64): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7) & 0xff);
}
function entry(r: number, tag: number, withSurb = false): MailboxEntry {
  return { recipient: recipient(r), surbId: withSurb ? surb(tag & 0x7f) : null, payload: payload(tag) };
}

function open(path: string, options: MailboxStoreOptions = {}): MailboxStore {
  return openMailboxStore(path, options);
}

function seqOf(result: { ok: boolean; seq?: number }): number {
  assert.equal(result.ok, true, 'expected the entry to be stored');
  assert.ok(result.seq !== undefined);
  return result.seq;
}

describe('mailbox store', () => {
  test('an entry comes back as it was stored, with its SURB id, time and position', () => {
    const clock = fakeClock();
    const store = open(freshPath(), { clock });
    try {
      store.register(recipient(0));
      const a = entry(0, 1, true);
      const b = entry(0, 2);
      const [ra, rb] = store.storeBatch([a, b]);
      assert.deepEqual(ra, { ok: true, seq: 1 });
      assert.deepEqual(rb, { ok: true, seq: 2 });
      const first = store.peek(recipient(0));
      assert.deepEqual(first, { seq: 1, surbId: a.surbId, payload: a.payload, storedAt: clock.t, remaining: 1 });
      const second = store.peek(recipient(0), 1);
      assert.deepEqual(second, { seq: 2, surbId: null, payload: b.payload, storedAt: clock.t, remaining: 0 });
      assert.equal(store.peek(recipient(0), 2), null);
      assert.equal(store.count(recipient(0)), 2);
      assert.equal(store.total(), 2);
      store.check();
    } finally {
      store.close();
    }
  });

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

  test('register is idempotent and isRegistered tells registered recipients from others', () => {
    const store = open(freshPath());
    try {
      assert.equal(store.isRegistered(recipient(0)), false);
      store.register(recipient(0));
      store.register(recipient(0));
      assert.equal(store.isRegistered(recipient(0)), true);
      assert.equal(store.isRegistered(recipient(0)), true);
      assert.equal(store.isRegistered(recipient(1)), false);
      assert.equal(seqOf(store.store(entry(0, 1))), 1);
      store.register(recipient(0));
      assert.equal(store.count(recipient(0)), 1, 'registering again keeps the mailbox');
      assert.equal(seqOf(store.store(entry(0, 2))), 2, 'and its sequence');
    } finally {
      store.close();
    }
  });

  test('an entry for an unknown recipient is refused and the rest of the batch is stored', () => {
    const store = open(freshPath());
    try {
      store.register(recipient(0));
      const results = store.storeBatch([entry(0, 1), entry(5, 2), entry(0, 3)]);
      assert.deepEqual(results, [{ ok: true, seq: 1 }, { ok: false, code: 'unknown_recipient' }, { ok: true, seq: 2 }]);
      assert.equal(store.count(recipient(5)), 0);
      assert.equal(store.peek(recipient(5)), null);
      assert.equal(store.total(), 2);
    } finally {
      store.close();
    }
  });

  test('sequence numbers only grow: after acks, and across reopening', () => {
    const path = freshPath();
    let store = open(path);
    store.register(recipient(0));
    store.register(recipient(1));
    assert.deepEqual(
      store.storeBatch([entry(0, 1), entry(0, 2), entry(1, 3), entry(0, 4)]).map(seqOf),
      [1, 2, 1, 3],
      'each mailbox has its own sequence',
    );
    for (const s of [1, 2, 3]) assert.equal(store.ack(recipient(0), s), true);
    assert.equal(store.count(recipient(0)), 0);
    assert.equal(seqOf(store.store(entry(0, 5))), 4, 'the last entry was acknowledged, its number is still not reused');
    assert.equal(store.ack(recipient(0), 4), true);
    store.close();
    store = open(path);
    try {
      assert.equal(seqOf(store.store(entry(0, 6))), 5, 'nor after reopening an empty mailbox');
      assert.equal(seqOf(store.store(entry(1, 7))), 2);
      store.check();
    } finally {
      store.close();
    }
  });

  test('a full mailbox refuses with ERR_MAILBOX_FULL, others still accept, an ack makes room', () => {
    const store = open(freshPath(), { maxPerMailbox: 3 });
    try {
      store.register(recipient(0));
      store.register(recipient(1));
      const results = store.storeBatch([entry(0, 1), entry(0, 2), entry(0, 3), entry(0, 4), entry(1, 5)]);
      assert.deepEqual(results, [
        { ok: true, seq: 1 },
        { ok: true, seq: 2 },
        { ok: true, seq: 3 },
        { ok: false, code: 'ERR_MAILBOX_FULL' },
        { ok: true, seq: 1 },
      ]);
      assert.deepEqual(store.store(entry(0, 6)), { ok: false, code: 'ERR_MAILBOX_FULL' });
      assert.equal(store.ack(recipient(0), 2), true);
      assert.deepEqual(store.store(entry(0, 7)), { ok: true, seq: 4 }, 'a refused entry takes no number');
      assert.equal(store.count(recipient(0)), 3);
    } finally {
      store.close();
    }
  });

  test('a full store refuses with ERR_MAILBOX_FULL whoever the recipient', () => {
    const path = freshPath();
    let store = open(path, { maxTotal: 4 });
    for (let r = 0; r < 3; r++) store.register(recipient(r));
    const results = store.storeBatch([entry(0, 1), entry(1, 2), entry(2, 3), entry(0, 4), entry(1, 5), entry(2, 6)]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, true, true, false, false],
    );
    assert.deepEqual(results[4], { ok: false, code: 'ERR_MAILBOX_FULL' });
    assert.equal(store.total(), 4);
    store.close();
    store = open(path, { maxTotal: 4 });
    try {
      assert.equal(store.total(), 4, 'the total is kept on disk');
      assert.deepEqual(store.store(entry(2, 7)), { ok: false, code: 'ERR_MAILBOX_FULL' });
      assert.equal(store.ack(recipient(1), 1), true);
      assert.equal(store.store(entry(2, 8)).ok, true);
    } finally {
      store.close();
    }
  });

  test('a bad entry anywhere in a batch stores nothing', () => {
    const store = open(freshPath());
    try {
      store.register(recipient(0));
      const bad = { recipient: recipient(0), surbId: new Uint8Array(15), payload: payload(1) };
      assert.throws(() => store.storeBatch([entry(0, 1), bad, entry(0, 2)]), RangeError);
      assert.throws(() => store.storeBatch([entry(0, 1), { ...entry(0, 2), payload: 'x' as unknown as Uint8Array }]), TypeError);
      assert.equal(store.total(), 0);
      assert.equal(seqOf(store.store(entry(0, 3))), 1);
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

  test('peek gives the oldest entry first and acks may come in any order', () => {
    const store = open(freshPath());
    try {
      store.register(recipient(0));
      store.storeBatch([1, 2, 3, 4, 5].map((t) => entry(0, t)));
      assert.equal(store.peek(recipient(0))?.seq, 1);
      assert.equal(store.ack(recipient(0), 3), true);
      assert.equal(store.ack(recipient(0), 3), false, 'an entry is acknowledged once');
      assert.equal(store.ack(recipient(0), 99), false);
      assert.equal(store.ack(recipient(1), 1), false, 'an unknown recipient has nothing to ack');
      const seen: number[] = [];
      const remaining: number[] = [];
      for (let e = store.peek(recipient(0)); e !== null; e = store.peek(recipient(0), e.seq)) {
        seen.push(e.seq);
        remaining.push(e.remaining);
        assert.deepEqual(e.payload, payload(e.seq));
      }
      assert.deepEqual(seen, [1, 2, 4, 5]);
      assert.deepEqual(remaining, [3, 2, 1, 0]);
      assert.equal(store.ack(recipient(0), 1), true);
      const oldest = store.peek(recipient(0));
      assert.equal(oldest?.seq, 2);
      assert.equal(oldest.remaining, 2);
      assert.equal(store.peek(recipient(0), 0)?.seq, 2);
      assert.equal(store.peek(recipient(1)), null);
      assert.equal(store.count(recipient(1)), 0);
    } finally {
      store.close();
    }
  });

  test('ackBelow deletes every entry below a sequence number and counts them', () => {
    const store = open(freshPath());
    try {
      store.register(recipient(0));
      store.register(recipient(1));
      store.storeBatch([1, 2, 3, 4, 5].map((t) => entry(0, t)));
      store.store(entry(1, 9));
      assert.equal(store.ack(recipient(0), 2), true);
      assert.equal(store.ackBelow(recipient(0), 4), 2, 'entries 1 and 3; 2 was already gone');
      assert.equal(store.ackBelow(recipient(0), 4), 0);
      assert.equal(store.ackBelow(recipient(0), 0), 0);
      assert.equal(store.peek(recipient(0))?.seq, 4);
      assert.equal(store.count(recipient(0)), 2);
      assert.equal(store.count(recipient(1)), 1, 'another mailbox is untouched');
      assert.equal(store.total(), 3);
      assert.throws(() => store.ackBelow(recipient(0), -1), RangeError);
      store.check();
    } finally {
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
      (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && /unknown schema version 7 \(this build reads version 1\)/.test(err.message),
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

  test('bad arguments are TypeError or RangeError, naming the argument', () => {
    const store = open(':memory:');
    try {
      assert.throws(() => store.register(new Uint8Array(31)), { name: 'RangeError', message: /"recipient" expected Uint8Array of length 32/ });
      assert.throws(() => store.register('ab' as unknown as Uint8Array), TypeError);
      assert.throws(() => store.isRegistered(new Uint8Array(33)), RangeError);
      assert.throws(() => store.peek(recipient(0), -1), RangeError);
      assert.throws(() => store.peek(recipient(0), 1.5), TypeError);
      assert.throws(() => store.ack(recipient(0), Number.NaN), TypeError);
      assert.throws(() => store.storeBatch('x' as unknown as MailboxEntry[]), TypeError);
      assert.throws(() => store.store(null as unknown as MailboxEntry), TypeError);
      assert.throws(() => store.store({ recipient: recipient(0), surbId: undefined as unknown as null, payload: payload(1) }), TypeError);
      assert.throws(() => openMailboxStore(':memory:', { maxPerMailbox: 0 }), RangeError);
      assert.throws(() => openMailboxStore('', {}), TypeError);
    } finally {
      store.close();
    }
  });

  test('a closed store refuses every operation with ERR_MAILBOX_STORE; close is idempotent', () => {
    const store = open(':memory:');
    store.register(recipient(0));
    store.close();
    store.close();
    const closed = (err: unknown): boolean => isBackchannelError(err, 'ERR_MAILBOX_STORE');
    assert.throws(() => store.store(entry(0, 1)), closed);
    assert.throws(() => store.storeBatch([]), closed);
    assert.throws(() => store.peek(recipient(0)), closed);
    assert.throws(() => store.ack(recipient(0), 1), closed);
    assert.throws(() => store.total(), closed);
    assert.throws(() => store.isRegistered(recipient(0)), closed);
  });
});

// ---- random operation sequences against a model ----

const RECIPIENTS = 3; // 0 and 1 may be registered by the sequence; 2 never is
const MAX_PER = 4;
const MAX_TOTAL = 7;

type Op =
  | { kind: 'register'; r: number }
  | { kind: 'store'; batch: { r: number; withSurb: boolean; tag: number }[] }
  | { kind: 'peek'; r: number; after: number | null }
  | { kind: 'ack'; r: number; seq: number }
  | { kind: 'ackBelow'; r: number; seq: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), r: fc.integer({ min: 0, max: 1 }) }),
  fc.record({
    kind: fc.constant('store' as const),
    batch: fc.array(
      fc.record({ r: fc.integer({ min: 0, max: RECIPIENTS - 1 }), withSurb: fc.boolean(), tag: fc.integer({ min: 0, max: 255 }) }),
      { maxLength: 6 },
    ),
  }),
  fc.record({ kind: fc.constant('peek' as const), r: fc.integer({ min: 0, max: RECIPIENTS - 1 }), after: fc.option(fc.integer({ min: 0, max: 12 })) }),
  fc.record({ kind: fc.constant('ack' as const), r: fc.integer({ min: 0, max: RECIPIENTS - 1 }), seq: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant('ackBelow' as const), r: fc.integer({ min: 0, max: RECIPIENTS - 1 }), seq: fc.integer({ min: 0, max: 12 }) }),
  fc.constant({ kind: 'reopen' as const }),
);

interface ModelMailbox {
  nextSeq: number;
  entries: { seq: number; surbId: Uint8Array | null; payload: Uint8Array }[];
}

describe('mailbox store against a model', () => {
  test('random sequences of register, store, peek, ack and reopen agree with an in-memory model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
        const path = freshPath();
        const options = { maxPerMailbox: MAX_PER, maxTotal: MAX_TOTAL };
        let store = open(path, options);
        const model = new Map<number, ModelMailbox>();
        const modelTotal = (): number => [...model.values()].reduce((s, m) => s + m.entries.length, 0);
        try {
          for (const op of ops) {
            switch (op.kind) {
              case 'register':
                store.register(recipient(op.r));
                if (!model.has(op.r)) model.set(op.r, { nextSeq: 1, entries: [] });
                break;
              case 'store': {
                const entries = op.batch.map((b) => ({
                  recipient: recipient(b.r),
                  surbId: b.withSurb ? surb(b.tag & 0x7f) : null,
                  payload: payload(b.tag, b.tag),
                }));
                const results = store.storeBatch(entries);
                const expected = entries.map((e, i) => {
                  const m = model.get(op.batch[i]!.r);
                  if (m === undefined) return { ok: false, code: 'unknown_recipient' };
                  if (m.entries.length >= MAX_PER || modelTotal() >= MAX_TOTAL) return { ok: false, code: 'ERR_MAILBOX_FULL' };
                  const seq = m.nextSeq++;
                  m.entries.push({ seq, surbId: e.surbId, payload: e.payload });
                  return { ok: true, seq };
                });
                assert.deepEqual(results, expected);
                break;
              }
              case 'peek': {
                const list = model.get(op.r)?.entries ?? [];
                const i = list.findIndex((e) => op.after === null || e.seq > op.after);
                const got = store.peek(recipient(op.r), op.after ?? undefined);
                if (i < 0) {
                  assert.equal(got, null);
                } else {
                  const e = list[i]!;
                  assert.ok(got !== null);
                  assert.deepEqual({ seq: got.seq, surbId: got.surbId, payload: got.payload, remaining: got.remaining }, {
                    seq: e.seq,
                    surbId: e.surbId,
                    payload: e.payload,
                    remaining: list.length - i - 1,
                  });
                }
                break;
              }
              case 'ack': {
                const list = model.get(op.r)?.entries ?? [];
                const i = list.findIndex((e) => e.seq === op.seq);
                if (i >= 0) list.splice(i, 1);
                assert.equal(store.ack(recipient(op.r), op.seq), i >= 0);
                break;
              }
              case 'ackBelow': {
                const m = model.get(op.r);
                const before = m?.entries.length ?? 0;
                if (m !== undefined) m.entries = m.entries.filter((e) => e.seq >= op.seq);
                assert.equal(store.ackBelow(recipient(op.r), op.seq), before - (m?.entries.length ?? 0));
                break;
              }
              case 'reopen':
                store.close();
                store = open(path, options);
                break;
            }
            for (let r = 0; r < RECIPIENTS; r++) {
              assert.equal(store.count(recipient(r)), model.get(r)?.entries.length ?? 0);
              assert.equal(store.isRegistered(recipient(r)), model.has(r));
            }
            assert.equal(store.total(), modelTotal());
          }
          store.check();
        } finally {
          store.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
