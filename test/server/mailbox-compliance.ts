/**
 * The behaviour every MailboxStore (src/server/mailbox.ts) must show, whatever keeps the entries:
 * the gateway's SQLite store and the simulator's store in memory both run this suite, so that a
 * simulation exercises the mailboxes a real gateway has. What only one implementation can show
 * (durability, schema versions, SQLite's locks) stays in that implementation's own tests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isBackchannelError } from '../../src/errors.js';
import type { AliasChange, MailboxEntry, MailboxStore, StoreResult } from '../../src/server/mailbox.js';
import type { Clock } from '../../src/ops/clock.js';
import { MAX_FORWARD_PAYLOAD_LENGTH } from '../../src/sphinx/constants.js';

/** What the suite asks of a new store; anything left out is the implementation's default. */
export interface ComplianceOptions {
  maxPerMailbox?: number;
  maxTotal?: number;
  clock?: Clock;
  maxMailboxesPerClient?: number;
  maxRevokedPerClient?: number;
}

/** Opens a new, empty store. */
export type OpenMailboxStore = (options: ComplianceOptions) => MailboxStore;

/** What an implementation adds to the suite beyond opening a store. */
export interface ComplianceExtras {
  /**
   * For a store that outlives close(): closes `store` and opens what it held again, with the
   * options it was opened with. The random sequences then reopen the store between operations.
   */
  reopen?: (store: MailboxStore) => MailboxStore;
  /** Random sequences to try (default 100); a store that syncs to disk on every write affords fewer. */
  runs?: number;
}

/** A clock that moves only when a test moves it. */
export function fakeClock(start = 1_700_000_000_000): Clock & { t: number } {
  return {
    t: start,
    now() {
      return this.t;
    },
    setTimer: () => undefined,
    clearTimer: () => undefined,
  };
}

/** A recipient id, distinct for each `i` below 255. */
export function recipient(i: number): Uint8Array {
  return new Uint8Array(32).fill(i + 1);
}
/** A SURB id, distinct for each `i` below 128. */
export function surb(i: number): Uint8Array {
  return new Uint8Array(16).fill(0x80 + i);
}
/** A payload whose bytes depend on `tag`, so that a mixed-up entry shows. */
export function payload(tag: number, length = 64): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7) & 0xff);
}
/** An entry for `recipient(r)` carrying `payload(tag)`. */
export function entry(r: number, tag: number, withSurb = false): MailboxEntry {
  return { recipient: recipient(r), surbId: withSurb ? surb(tag & 0x7f) : null, payload: payload(tag) };
}

function seqOf(result: StoreResult | undefined): number {
  assert.ok(result?.ok === true, 'expected the entry to be stored');
  return result.seq;
}

const FULL: StoreResult = { ok: false, code: 'ERR_MAILBOX_FULL' };
const UNKNOWN: StoreResult = { ok: false, code: 'unknown_recipient' };

/** Defines a describe() block of the MailboxStore contract, run against the stores that `open` makes. */
export function mailboxStoreCompliance(name: string, open: OpenMailboxStore, extras: ComplianceExtras = {}): void {
  const { reopen, runs = 100 } = extras;
  function withStore(options: ComplianceOptions, fn: (store: MailboxStore) => void): void {
    const store = open(options);
    try {
      fn(store);
    } finally {
      store.close();
    }
  }

  aliasCompliance(name, open, reopen);

  describe(`MailboxStore compliance: ${name}`, () => {
    test('register is idempotent and isRegistered tells registered recipients from others', () => {
      withStore({}, (store) => {
        assert.equal(store.isRegistered(recipient(0)), false);
        store.register(recipient(0));
        store.register(recipient(0));
        assert.equal(store.isRegistered(recipient(0)), true);
        assert.equal(store.isRegistered(recipient(1)), false);
        assert.equal(seqOf(store.store(entry(0, 1))), 1);
        store.register(recipient(0));
        assert.equal(store.count(recipient(0)), 1, 'registering again keeps the mailbox');
        assert.equal(seqOf(store.store(entry(0, 2))), 2, 'and its sequence');
      });
    });

    test('an entry for an unregistered recipient is refused with unknown_recipient, and the rest of the batch is stored', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        assert.deepEqual(store.store(entry(5, 1)), UNKNOWN);
        assert.deepEqual(store.storeBatch([entry(0, 1), entry(5, 2), entry(0, 3)]), [{ ok: true, seq: 1 }, UNKNOWN, { ok: true, seq: 2 }]);
        assert.equal(store.count(recipient(5)), 0);
        assert.equal(store.peek(recipient(5)), null);
        assert.equal(store.isRegistered(recipient(5)), false, 'storing does not register');
        assert.equal(store.total(), 2);
      });
    });

    test('storeBatch gives one result per entry, in the order of the entries, and nothing for an empty batch', () => {
      withStore({ maxPerMailbox: 2 }, (store) => {
        store.register(recipient(0));
        store.register(recipient(1));
        assert.deepEqual(store.storeBatch([]), []);
        assert.deepEqual(store.storeBatch([entry(1, 1), entry(9, 2), entry(0, 3), entry(1, 4), entry(1, 5), entry(0, 6)]), [
          { ok: true, seq: 1 },
          UNKNOWN,
          { ok: true, seq: 1 },
          { ok: true, seq: 2 },
          FULL,
          { ok: true, seq: 2 },
        ]);
        assert.deepEqual(store.peek(recipient(1), 1)?.payload, payload(4), 'result i names where entry i went');
        assert.deepEqual(store.peek(recipient(0), 1)?.payload, payload(6));
      });
    });

    test('an entry comes back byte for byte, with its SURB id and the time it was stored', () => {
      const clock = fakeClock();
      withStore({ clock }, (store) => {
        store.register(recipient(0));
        const withSurb = entry(0, 1, true);
        const empty = { recipient: recipient(0), surbId: null, payload: new Uint8Array(0) };
        const largest = { recipient: recipient(0), surbId: surb(2), payload: payload(3, MAX_FORWARD_PAYLOAD_LENGTH) };
        const t0 = clock.t;
        store.store(withSurb);
        clock.t += 5_000;
        store.storeBatch([empty, largest]);
        assert.deepEqual(store.peek(recipient(0)), { seq: 1, surbId: withSurb.surbId, payload: withSurb.payload, storedAt: t0, remaining: 2 });
        assert.deepEqual(store.peek(recipient(0), 1), { seq: 2, surbId: null, payload: empty.payload, storedAt: t0 + 5_000, remaining: 1 });
        assert.deepEqual(store.peek(recipient(0), 2), { seq: 3, surbId: largest.surbId, payload: largest.payload, storedAt: t0 + 5_000, remaining: 0 });
      });
    });

    test('each mailbox numbers its own entries from 1 upward', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.register(recipient(1));
        assert.deepEqual(store.storeBatch([entry(0, 1), entry(0, 2), entry(1, 3), entry(0, 4)]).map(seqOf), [1, 2, 1, 3]);
        assert.deepEqual([entry(1, 5), entry(0, 6)].map((e) => seqOf(store.store(e))), [2, 4]);
      });
    });

    test('a sequence number is never handed out twice, even once its entry is acknowledged or was refused', () => {
      withStore({ maxPerMailbox: 3 }, (store) => {
        store.register(recipient(0));
        assert.deepEqual(store.storeBatch([entry(0, 1), entry(0, 2), entry(0, 3)]).map(seqOf), [1, 2, 3]);
        assert.deepEqual(store.store(entry(0, 4)), FULL);
        assert.equal(store.ack(recipient(0), 3), true, 'the newest entry goes');
        assert.equal(seqOf(store.store(entry(0, 5))), 4, 'its number is not reused, and the refused entry took none');
        assert.equal(store.ackBelow(recipient(0), 5), 3);
        assert.equal(store.count(recipient(0)), 0);
        assert.equal(seqOf(store.store(entry(0, 6))), 5, 'nor is any number of an emptied mailbox');
      });
    });

    test('peek gives the oldest entry, or the oldest after afterSeq, and counts the entries after it', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.storeBatch([1, 2, 3, 4, 5].map((t) => entry(0, t)));
        assert.equal(store.ack(recipient(0), 3), true);
        const seen: [number, number][] = [];
        for (let e = store.peek(recipient(0)); e !== null; e = store.peek(recipient(0), e.seq)) {
          assert.deepEqual(e.payload, payload(e.seq));
          seen.push([e.seq, e.remaining]);
        }
        assert.deepEqual(seen, [[1, 3], [2, 2], [4, 1], [5, 0]]);
        assert.equal(store.peek(recipient(0), 0)?.seq, 1, 'afterSeq 0 sees every entry');
        const inGap = store.peek(recipient(0), 3);
        assert.deepEqual([inGap?.seq, inGap?.remaining], [4, 1], 'afterSeq may name an entry that is gone');
        assert.equal(store.peek(recipient(0), 5), null);
        assert.equal(store.peek(recipient(0), 1_000), null);
        assert.equal(store.ack(recipient(0), 1), true);
        assert.deepEqual([store.peek(recipient(0))?.seq, store.peek(recipient(0))?.remaining], [2, 2]);
        assert.equal(store.peek(recipient(0))?.seq, 2, 'peek deletes nothing');
      });
    });

    test('ack deletes one entry once and says whether it was there', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.storeBatch([1, 2, 3].map((t) => entry(0, t)));
        assert.equal(store.ack(recipient(0), 2), true);
        assert.equal(store.ack(recipient(0), 2), false, 'an entry is acknowledged once');
        assert.equal(store.ack(recipient(0), 0), false);
        assert.equal(store.ack(recipient(0), 99), false, 'a number not handed out yet');
        assert.equal(store.ack(recipient(7), 1), false, 'an unregistered recipient has nothing to acknowledge');
        assert.deepEqual([store.peek(recipient(0))?.seq, store.peek(recipient(0), 1)?.seq], [1, 3]);
        assert.equal(store.count(recipient(0)), 2);
        assert.equal(store.total(), 2);
      });
    });

    test('ackBelow deletes every entry below a sequence number and returns how many it deleted', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.storeBatch([1, 2, 3, 4, 5].map((t) => entry(0, t)));
        assert.equal(store.ackBelow(recipient(0), 0), 0);
        assert.equal(store.ackBelow(recipient(0), 1), 0, 'nothing lies below the first number');
        assert.equal(store.ack(recipient(0), 2), true);
        assert.equal(store.ackBelow(recipient(0), 4), 2, 'entries 1 and 3; 2 was gone already');
        assert.equal(store.ackBelow(recipient(0), 4), 0);
        assert.equal(store.peek(recipient(0))?.seq, 4, 'the bound itself is kept');
        assert.equal(store.ackBelow(recipient(0), 1_000), 2);
        assert.equal(store.peek(recipient(0)), null);
        assert.equal(store.ackBelow(recipient(7), 1_000), 0, 'an unregistered recipient has nothing to acknowledge');
        assert.equal(store.total(), 0);
      });
    });

    test('count and total follow stores and deletions, and an unregistered recipient counts 0', () => {
      withStore({}, (store) => {
        assert.equal(store.total(), 0);
        assert.equal(store.count(recipient(0)), 0);
        store.register(recipient(0));
        store.register(recipient(1));
        assert.equal(store.count(recipient(0)), 0);
        store.storeBatch([entry(0, 1), entry(0, 2), entry(1, 3), entry(2, 4)]);
        assert.deepEqual([store.count(recipient(0)), store.count(recipient(1)), store.count(recipient(2)), store.total()], [2, 1, 0, 3]);
        store.ack(recipient(0), 1);
        assert.deepEqual([store.count(recipient(0)), store.total()], [1, 2]);
        store.ackBelow(recipient(1), 2);
        assert.deepEqual([store.count(recipient(1)), store.total()], [0, 1]);
      });
    });

    test('a full mailbox refuses with ERR_MAILBOX_FULL without throwing, other mailboxes still accept, and an ack makes room', () => {
      withStore({ maxPerMailbox: 3 }, (store) => {
        store.register(recipient(0));
        store.register(recipient(1));
        assert.deepEqual(store.storeBatch([entry(0, 1), entry(0, 2), entry(0, 3), entry(0, 4), entry(1, 5), entry(0, 6)]), [
          { ok: true, seq: 1 },
          { ok: true, seq: 2 },
          { ok: true, seq: 3 },
          FULL,
          { ok: true, seq: 1 },
          FULL,
        ]);
        assert.deepEqual(store.store(entry(0, 7)), FULL);
        assert.deepEqual(store.storeBatch([entry(1, 8), entry(1, 9)]).map(seqOf), [2, 3], 'the cap is per mailbox');
        assert.equal(store.ack(recipient(0), 2), true);
        assert.deepEqual(store.storeBatch([entry(0, 10), entry(0, 11)]), [{ ok: true, seq: 4 }, FULL], 'one ack, room for one');
        assert.deepEqual([store.count(recipient(0)), store.total()], [3, 6]);
        assert.deepEqual(store.peek(recipient(0), 3)?.payload, payload(10));
      });
    });

    test('a full store refuses with ERR_MAILBOX_FULL whoever the recipient, and an ack in any mailbox makes room', () => {
      withStore({ maxTotal: 4 }, (store) => {
        for (let r = 0; r < 3; r++) store.register(recipient(r));
        assert.deepEqual(store.storeBatch([entry(0, 1), entry(1, 2), entry(2, 3), entry(0, 4), entry(1, 5), entry(9, 6), entry(2, 7)]), [
          { ok: true, seq: 1 },
          { ok: true, seq: 1 },
          { ok: true, seq: 1 },
          { ok: true, seq: 2 },
          FULL,
          UNKNOWN,
          FULL,
        ]);
        assert.equal(store.total(), 4);
        assert.deepEqual(store.store(entry(2, 8)), FULL);
        assert.equal(store.ack(recipient(0), 1), true);
        assert.deepEqual(store.storeBatch([entry(2, 9), entry(1, 10)]), [{ ok: true, seq: 2 }, FULL]);
        assert.equal(store.total(), 4);
      });
    });

    test('recipients are isolated: what one mailbox stores, acknowledges or deletes leaves another as it was', () => {
      const clock = fakeClock();
      withStore({ clock }, (store) => {
        const a = recipient(0);
        // Differs from `a` in its last byte only: the whole id names a mailbox.
        const b = recipient(0);
        b[31] = 0xff;
        store.register(a);
        assert.equal(store.isRegistered(b), false);
        store.register(b);
        store.storeBatch([entry(0, 1), { recipient: b, surbId: null, payload: payload(2) }, entry(0, 3)]);
        assert.equal(store.ack(b, 2), false, 'a has a 2, b does not');
        assert.equal(store.ack(a, 1), true);
        assert.equal(store.ackBelow(a, 1_000), 1);
        assert.deepEqual([store.count(a), store.count(b)], [0, 1]);
        assert.deepEqual(store.peek(b), { seq: 1, surbId: null, payload: payload(2), storedAt: clock.t, remaining: 0 });
        assert.equal(store.ack(b, 1), true);
        assert.equal(seqOf(store.store(entry(0, 4))), 3, 'b’s acks did not touch a’s sequence');
      });
    });

    test('the store keeps its own copies, so the caller may reuse its buffers once a store returns', () => {
      withStore({}, (store) => {
        const id = recipient(0);
        store.register(id);
        id.fill(0xee);
        assert.equal(store.isRegistered(recipient(0)), true, 'the id registered is the one given, not the array');
        assert.equal(store.isRegistered(id), false);
        const plain = { recipient: recipient(0), surbId: surb(1), payload: payload(1) };
        // A Buffer carved out of a larger one, as a packet read from a socket is.
        const pool = Buffer.alloc(256, 0x5a);
        const carved = { recipient: recipient(0), surbId: pool.subarray(0, 16), payload: pool.subarray(16, 80) };
        const expected = [plain, carved].map((e) => ({ surbId: Uint8Array.from(e.surbId), payload: Uint8Array.from(e.payload) }));
        store.store(plain);
        store.storeBatch([carved]);
        plain.surbId.fill(0);
        plain.payload.fill(0);
        plain.recipient.fill(0);
        pool.fill(0);
        const first = store.peek(recipient(0));
        const second = store.peek(recipient(0), 1);
        assert.deepEqual({ surbId: first?.surbId, payload: first?.payload }, expected[0]);
        assert.deepEqual({ surbId: second?.surbId, payload: second?.payload }, expected[1]);
      });
    });

    test('peek hands out arrays the caller owns: changing them changes nothing stored', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.store(entry(0, 1, true));
        const first = store.peek(recipient(0));
        assert.ok(first !== null && first.surbId !== null);
        first.payload.fill(0);
        first.surbId.fill(0);
        const again = store.peek(recipient(0));
        assert.deepEqual(again?.payload, payload(1));
        assert.deepEqual(again.surbId, surb(1));
      });
    });

    test('check passes on a consistent store, empty or after every kind of change', () => {
      withStore({ maxPerMailbox: 2 }, (store) => {
        store.check();
        store.register(recipient(0));
        store.register(recipient(1));
        store.storeBatch([entry(0, 1), entry(0, 2), entry(0, 3), entry(1, 4), entry(4, 5)]);
        store.check();
        store.ack(recipient(0), 2);
        store.ackBelow(recipient(1), 9);
        store.store(entry(0, 6));
        store.check();
      });
    });

    test('commitGroup registers, then deletes, then stores, so that the deletions of a group make room for its entries', () => {
      withStore({ maxPerMailbox: 2 }, (store) => {
        store.register(recipient(0));
        store.storeBatch([entry(0, 1), entry(0, 2)]);
        const results = store.commitGroup({
          registrations: [recipient(1)],
          deletions: [{ kind: 'below', recipient: recipient(0), seq: 2 }],
          entries: [entry(0, 3), entry(1, 4), entry(0, 5)],
        });
        assert.deepEqual(results, [{ ok: true, seq: 3 }, { ok: true, seq: 1 }, FULL], 'one deletion, room for one');
        assert.equal(store.isRegistered(recipient(1)), true);
        assert.deepEqual([store.peek(recipient(0))?.seq, store.count(recipient(0)), store.total()], [2, 2, 3]);
        assert.deepEqual(store.commitGroup({ registrations: [], deletions: [{ kind: 'one', recipient: recipient(0), seq: 3 }], entries: [] }), []);
        assert.deepEqual([store.peek(recipient(0))?.seq, store.peek(recipient(0), 2), store.total()], [2, null, 2]);
        store.check();
      });
    });

    test('commitGroup deletions are idempotent: deleting twice, or what is gone or never was, changes nothing', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.storeBatch([1, 2, 3, 4].map((t) => entry(0, t)));
        const group = {
          registrations: [recipient(0)],
          deletions: [
            { kind: 'below', recipient: recipient(0), seq: 2 },
            { kind: 'below', recipient: recipient(0), seq: 2 },
            { kind: 'one', recipient: recipient(0), seq: 3 },
            { kind: 'one', recipient: recipient(0), seq: 3 },
            { kind: 'one', recipient: recipient(0), seq: 99 },
            { kind: 'below', recipient: recipient(5), seq: 9 },
          ] as const,
          entries: [],
        };
        store.commitGroup(group);
        store.commitGroup(group);
        assert.deepEqual([store.peek(recipient(0))?.seq, store.peek(recipient(0), 2)?.seq, store.count(recipient(0)), store.total()], [2, 4, 2, 2]);
        assert.equal(store.isRegistered(recipient(5)), false, 'a deletion registers nobody');
        store.check();
      });
    });

    test('a malformed part anywhere in a group throws and writes nothing of the group', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        store.store(entry(0, 1));
        const good = { registrations: [recipient(1)], deletions: [{ kind: 'below' as const, recipient: recipient(0), seq: 5 }], entries: [entry(0, 2)] };
        assert.throws(() => store.commitGroup({ ...good, entries: [entry(0, 2), { ...entry(0, 3), surbId: new Uint8Array(3) }] }), RangeError);
        assert.throws(() => store.commitGroup({ ...good, deletions: [{ kind: 'one', recipient: recipient(0), seq: -1 }] }), { name: 'RangeError', message: /"seq"/ });
        assert.throws(() => store.commitGroup({ ...good, registrations: [new Uint8Array(31)] }), { name: 'RangeError', message: /"recipient"/ });
        assert.throws(() => store.commitGroup({ ...good, deletions: 'x' as unknown as [] }), { name: 'TypeError', message: /"deletions"/ });
        assert.equal(store.isRegistered(recipient(1)), false);
        assert.deepEqual([store.count(recipient(0)), store.total()], [1, 1]);
      });
    });

    test('close is idempotent, and every other method then throws ERR_MAILBOX_STORE', () => {
      const store = open({});
      store.register(recipient(0));
      store.store(entry(0, 1));
      store.close();
      store.close();
      const calls: [string, () => unknown][] = [
        ['register', () => store.register(recipient(1))],
        ['isRegistered', () => store.isRegistered(recipient(0))],
        ['storeBatch', () => store.storeBatch([entry(0, 2)])],
        ['storeBatch of no entries', () => store.storeBatch([])],
        ['store', () => store.store(entry(0, 2))],
        ['commitGroup', () => store.commitGroup({ registrations: [], deletions: [], entries: [] })],
        ['peek', () => store.peek(recipient(0))],
        ['ack', () => store.ack(recipient(0), 1)],
        ['ackBelow', () => store.ackBelow(recipient(0), 2)],
        ['count', () => store.count(recipient(0))],
        ['total', () => store.total()],
        ['check', () => store.check()],
      ];
      for (const [what, call] of calls) {
        assert.throws(call, (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE') && /^mailbox: /.test(err.message), `${what} on a closed store`);
      }
    });

    test('bad arguments are a TypeError or a RangeError naming the argument', () => {
      withStore({}, (store) => {
        const short = new Uint8Array(31);
        assert.throws(() => store.register(short), { name: 'RangeError', message: /"recipient" expected Uint8Array of length 32/ });
        assert.throws(() => store.register('ab' as unknown as Uint8Array), { name: 'TypeError', message: /"recipient"/ });
        assert.throws(() => store.isRegistered(new Uint8Array(33)), RangeError);
        assert.throws(() => store.count(short), RangeError);
        assert.throws(() => store.peek(short), RangeError);
        assert.throws(() => store.ack(short, 1), RangeError);
        assert.throws(() => store.ackBelow(short, 1), RangeError);
        assert.throws(() => store.peek(recipient(0), -1), { name: 'RangeError', message: /"afterSeq"/ });
        assert.throws(() => store.peek(recipient(0), 1.5), TypeError);
        assert.throws(() => store.ack(recipient(0), Number.NaN), { name: 'TypeError', message: /"seq"/ });
        assert.throws(() => store.ack(recipient(0), -1), RangeError);
        assert.throws(() => store.ackBelow(recipient(0), -1), { name: 'RangeError', message: /"belowSeq"/ });
        assert.throws(() => store.ackBelow(recipient(0), 0.5), TypeError);
        assert.throws(() => store.storeBatch('x' as unknown as MailboxEntry[]), { name: 'TypeError', message: /"entries"/ });
        assert.throws(() => store.store(null as unknown as MailboxEntry), { name: 'TypeError', message: /"entry"/ });
        store.register(recipient(0));
        const good = entry(0, 1);
        assert.throws(() => store.store({ ...good, recipient: short }), RangeError);
        assert.throws(() => store.store({ ...good, surbId: undefined as unknown as null }), { name: 'TypeError', message: /"surbId"/ });
        assert.throws(() => store.store({ ...good, surbId: new Uint8Array(15) }), { name: 'RangeError', message: /"surbId"/ });
        assert.throws(() => store.store({ ...good, payload: 'x' as unknown as Uint8Array }), { name: 'TypeError', message: /"payload"/ });
        assert.throws(() => store.store({ ...good, payload: new Uint8Array(MAX_FORWARD_PAYLOAD_LENGTH + 1) }), { name: 'RangeError', message: /"payload"/ });
        assert.equal(store.total(), 0);
      });
    });

    test('a malformed entry anywhere in a batch throws and stores nothing of the batch', () => {
      withStore({}, (store) => {
        store.register(recipient(0));
        const badSurb = { ...entry(0, 2), surbId: new Uint8Array(15) };
        assert.throws(() => store.storeBatch([entry(0, 1), badSurb, entry(0, 3)]), RangeError);
        assert.throws(() => store.storeBatch([entry(0, 1), entry(0, 2), { ...entry(0, 3), payload: 'x' as unknown as Uint8Array }]), TypeError);
        assert.equal(store.total(), 0);
        assert.equal(store.peek(recipient(0)), null);
        assert.equal(seqOf(store.store(entry(0, 4))), 1, 'no number was taken either');
      });
    });

    test(`random sequences of ${reopen === undefined ? 'operations' : 'operations and reopenings'} give the results of a model of the contract`, () => {
      fc.assert(
        // size 'max': fast-check's default keeps arrays short, and a mailbox then seldom holds the
        // three or more entries that peek's `remaining` and the caps need to be tried at all.
        fc.property(fc.array(opArb(reopen !== undefined), { maxLength: 40, size: 'max' }), (ops) => {
          const clock = fakeClock();
          let store = open({ clock, maxPerMailbox: MODEL_MAX_PER, maxTotal: MODEL_MAX_TOTAL });
          const model = new Map<number, ModelMailbox>();
          const modelTotal = (): number => [...model.values()].reduce((sum, m) => sum + m.entries.length, 0);
          const modelStore = (item: Item): StoreResult => {
            const m = model.get(item.r);
            if (m === undefined) return UNKNOWN;
            if (m.entries.length >= MODEL_MAX_PER || modelTotal() >= MODEL_MAX_TOTAL) return FULL;
            const seq = m.nextSeq++;
            m.entries.push({ seq, surbId: item.withSurb ? surb(item.tag & 0x7f) : null, payload: payload(item.tag, item.tag), storedAt: clock.t });
            return { ok: true, seq };
          };
          try {
            for (const op of ops) {
              switch (op.kind) {
                case 'register':
                  store.register(recipient(op.r));
                  if (!model.has(op.r)) model.set(op.r, { nextSeq: 1, entries: [] });
                  break;
                case 'store':
                  assert.deepEqual(store.store(itemEntry(op.item)), modelStore(op.item));
                  break;
                case 'storeBatch': {
                  const results = store.storeBatch(op.items.map(itemEntry));
                  assert.deepEqual(results, op.items.map(modelStore));
                  break;
                }
                case 'peek': {
                  const list = model.get(op.r)?.entries ?? [];
                  const i = list.findIndex((e) => e.seq > (op.after ?? 0));
                  const expected = i < 0 ? null : { ...list[i]!, remaining: list.length - i - 1 };
                  assert.deepEqual(op.after === null ? store.peek(recipient(op.r)) : store.peek(recipient(op.r), op.after), expected);
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
                case 'tick':
                  clock.t += op.ms;
                  break;
                case 'reopen':
                  assert.ok(reopen !== undefined);
                  store = reopen(store);
                  break;
              }
              for (let r = 0; r < MODEL_RECIPIENTS; r++) {
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
        { numRuns: runs },
      );
    });
  });
}

// ---- the model for random operation sequences ----

/** Recipients 0 and 1 may be registered by a sequence; 2 never is. */
const MODEL_RECIPIENTS = 3;
/** Caps small enough that short sequences run into both. */
const MODEL_MAX_PER = 4;
const MODEL_MAX_TOTAL = 7;
/** Sequence numbers that ack, ackBelow and peek name: enough to reach past the newest entry of most sequences. */
const MODEL_MAX_SEQ = 16;

/** One entry of a generated batch; its payload's length is its tag, so lengths vary from 0 up. */
interface Item {
  r: number;
  withSurb: boolean;
  tag: number;
}

type Op =
  | { kind: 'register'; r: number }
  | { kind: 'store'; item: Item }
  | { kind: 'storeBatch'; items: Item[] }
  | { kind: 'peek'; r: number; after: number | null }
  | { kind: 'ack'; r: number; seq: number }
  | { kind: 'ackBelow'; r: number; seq: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'reopen' };

interface ModelMailbox {
  nextSeq: number;
  entries: { seq: number; surbId: Uint8Array | null; payload: Uint8Array; storedAt: number }[];
}

function itemEntry(item: Item): MailboxEntry {
  return { recipient: recipient(item.r), surbId: item.withSurb ? surb(item.tag & 0x7f) : null, payload: payload(item.tag, item.tag) };
}

function opArb(withReopen: boolean): fc.Arbitrary<Op> {
  const r = fc.integer({ min: 0, max: MODEL_RECIPIENTS - 1 });
  const seq = fc.integer({ min: 0, max: MODEL_MAX_SEQ });
  const after: fc.Arbitrary<number | null> = fc.option(seq);
  const item = fc.record({ r, withSurb: fc.boolean(), tag: fc.integer({ min: 0, max: 255 }) });
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ kind: fc.constant('register' as const), r: fc.integer({ min: 0, max: MODEL_RECIPIENTS - 2 }) }),
    fc.record({ kind: fc.constant('store' as const), item }),
    fc.record({ kind: fc.constant('storeBatch' as const), items: fc.array(item, { maxLength: 6 }) }),
    fc.record({ kind: fc.constant('peek' as const), r, after }),
    fc.record({ kind: fc.constant('ack' as const), r, seq }),
    fc.record({ kind: fc.constant('ackBelow' as const), r, seq }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 60_000 }) }),
  ];
  if (withReopen) ops.push(fc.constant({ kind: 'reopen' as const }));
  return fc.oneof(...ops);
}

/** An extra mailbox id, distinct for each `i` below 100 and from every `recipient(i)`. */
export function alias(i: number): Uint8Array {
  const a = new Uint8Array(32).fill(0x9c);
  a[0] = i;
  return a;
}

function reg(owner: number, a: number): AliasChange {
  return { kind: 'register', owner: recipient(owner), mailbox: alias(a) };
}
function rev(owner: number, a: number): AliasChange {
  return { kind: 'revoke', owner: recipient(owner), mailbox: alias(a) };
}

/** Extra mailboxes (aliases): what every MailboxStore must do with them. */
function aliasCompliance(name: string, open: OpenMailboxStore, reopen: ((store: MailboxStore) => MailboxStore) | undefined): void {
  function withStore(options: ComplianceOptions, fn: (store: MailboxStore) => MailboxStore | void): void {
    let store = open(options);
    try {
      store.register(recipient(0));
      store.register(recipient(1));
      store = fn(store) ?? store;
    } finally {
      store.close();
    }
  }
  function aliases(store: MailboxStore, changes: AliasChange[]): void {
    store.commitGroup({ registrations: [], aliases: changes, deletions: [], entries: [] });
  }

  describe(`MailboxStore compliance, extra mailboxes: ${name}`, () => {
    test('a registered alias routes to its owner; registering again changes nothing; a client id routes to the client', () => {
      withStore({}, (store) => {
        assert.deepEqual(store.route(alias(1)), { kind: 'unknown' });
        assert.deepEqual(store.route(recipient(0)), { kind: 'client' });
        aliases(store, [reg(0, 1), reg(0, 1)]);
        assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: false });
        assert.equal(store.aliasCount(recipient(0)), 1);
        assert.equal(store.aliasCount(recipient(1)), 0);
        assert.equal(store.isRegistered(alias(1)), false, 'an alias is not a queue of its own');
        store.check();
      });
    });

    test('peekAddress reads one address in sequence order; nextAddress walks the addresses holding entries, main first', () => {
      withStore({}, (store) => {
        aliases(store, [reg(0, 2), reg(0, 1)]);
        assert.equal(store.nextAddress?.(recipient(0), undefined), null, 'no entries: no address');
        store.storeBatch([{ ...entry(0, 1), mailbox: alias(2) }, entry(0, 2), { ...entry(0, 3), mailbox: alias(1) }, entry(0, 4), { ...entry(0, 5), mailbox: alias(2) }]);
        assert.deepEqual(store.nextAddress?.(recipient(0), undefined), { mailbox: null });
        assert.deepEqual(store.nextAddress?.(recipient(0), null), { mailbox: alias(1) });
        assert.deepEqual(store.nextAddress?.(recipient(0), alias(1)), { mailbox: alias(2) });
        assert.equal(store.nextAddress?.(recipient(0), alias(2)), null);
        assert.deepEqual([store.peekAddress?.(recipient(0), null, 0)?.seq, store.peekAddress?.(recipient(0), null, 2)?.seq], [2, 4]);
        assert.deepEqual(store.peekAddress?.(recipient(0), alias(2), 1)?.mailbox, alias(2));
        assert.equal(store.peekAddress?.(recipient(0), alias(2), 1)?.seq, 5);
        assert.equal(store.peekAddress?.(recipient(0), alias(1), 3), null);
        assert.equal(store.peekAddress?.(recipient(1), null, 0), null, 'another client holds nothing');
        store.ackBelow(recipient(0), 5);
        assert.deepEqual(store.nextAddress?.(recipient(0), undefined), { mailbox: alias(2) }, 'only alias 2 holds an entry now');
      });
    });

    test('an entry tagged with an alias goes into the owner queue and comes back with its tag; an untagged one has none', () => {
      withStore({}, (store) => {
        aliases(store, [reg(0, 1)]);
        const [r1, r2] = store.storeBatch([{ ...entry(0, 1), mailbox: alias(1) }, entry(0, 2)]);
        assert.deepEqual([seqOf(r1), seqOf(r2)], [1, 2]);
        const first = store.peek(recipient(0));
        assert.deepEqual(first?.mailbox, alias(1));
        assert.deepEqual(first?.payload, payload(1));
        const second = store.peek(recipient(0), 1);
        assert.equal(second?.mailbox, undefined);
        first!.mailbox!.fill(0);
        assert.deepEqual(store.peek(recipient(0))?.mailbox, alias(1), 'peek hands out its own copy');
        store.check();
        if (reopen !== undefined) {
          const again = reopen(store);
          assert.deepEqual(again.peek(recipient(0))?.mailbox, alias(1), 'the tag survives a reopening');
          assert.deepEqual(again.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: false });
          return again;
        }
        return undefined;
      });
    });

    test('a revoked alias routes as revoked, is never registered again, and leaves what its owner holds', () => {
      withStore({}, (store) => {
        aliases(store, [reg(0, 1), reg(0, 2)]);
        store.store({ ...entry(0, 1), mailbox: alias(1) });
        aliases(store, [rev(0, 1), rev(0, 1)]);
        assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: true });
        assert.deepEqual(store.route(alias(2)), { kind: 'alias', owner: recipient(0), revoked: false }, 'the other alias still works');
        assert.equal(store.aliasCount(recipient(0)), 1);
        aliases(store, [reg(0, 1), reg(1, 1)]);
        assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: true });
        assert.equal(store.count(recipient(0)), 1, 'revoking deletes nothing queued');
        store.check();
        if (reopen !== undefined) {
          const again = reopen(store);
          assert.deepEqual(again.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: true }, 'a revocation survives a reopening');
          return again;
        }
        return undefined;
      });
    });

    test('an alias belongs to whoever registered it first: another client can neither take nor revoke it', () => {
      withStore({}, (store) => {
        aliases(store, [reg(0, 1), reg(1, 1), rev(1, 1)]);
        assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: recipient(0), revoked: false });
        assert.equal(store.aliasCount(recipient(1)), 0);
      });
    });

    test('a client id is never an alias, and an owner that is not a client registers nothing', () => {
      withStore({}, (store) => {
        aliases(store, [{ kind: 'register', owner: recipient(0), mailbox: recipient(1) }, { kind: 'revoke', owner: recipient(0), mailbox: recipient(1) }, reg(5, 3), rev(5, 4)]);
        assert.deepEqual(store.route(recipient(1)), { kind: 'client' });
        assert.deepEqual(store.route(alias(3)), { kind: 'unknown' });
        assert.deepEqual(store.route(alias(4)), { kind: 'unknown' });
        assert.equal(store.aliasCount(recipient(0)), 0);
        store.check();
      });
    });

    test('revoking an id nobody holds records a tombstone: it cannot be registered afterwards', () => {
      withStore({}, (store) => {
        aliases(store, [rev(0, 7), reg(0, 7), reg(1, 7)]);
        assert.deepEqual(store.route(alias(7)), { kind: 'alias', owner: recipient(0), revoked: true });
        assert.equal(store.aliasCount(recipient(0)), 0);
      });
    });

    test('the cap: an owner holding maxMailboxesPerClient active aliases registers no more until it revokes one', () => {
      withStore({ maxMailboxesPerClient: 2 }, (store) => {
        aliases(store, [reg(0, 1), reg(0, 2), reg(0, 3), reg(1, 4)]);
        assert.equal(store.aliasCount(recipient(0)), 2);
        assert.deepEqual(store.route(alias(3)), { kind: 'unknown' });
        assert.deepEqual(store.route(alias(4)), { kind: 'alias', owner: recipient(1), revoked: false }, 'the cap is per client');
        aliases(store, [rev(0, 1), reg(0, 3)]);
        assert.deepEqual(store.route(alias(3)), { kind: 'alias', owner: recipient(0), revoked: false });
        assert.equal(store.aliasCount(recipient(0)), 2);
      });
    });

    test('tombstones beyond maxRevokedPerClient are forgotten, the oldest revocation first', () => {
      const clock = fakeClock();
      withStore({ maxRevokedPerClient: 2, clock }, (store) => {
        aliases(store, [reg(0, 1), reg(0, 2), reg(0, 3), reg(1, 9)]);
        for (const a of [2, 1, 3]) {
          clock.t += 1000;
          aliases(store, [rev(0, a)]);
        }
        clock.t += 1000;
        aliases(store, [rev(1, 9)]);
        assert.deepEqual(store.route(alias(2)), { kind: 'unknown' }, 'the oldest revocation is forgotten');
        assert.equal(store.route(alias(1)).kind, 'alias');
        assert.equal(store.route(alias(3)).kind, 'alias');
        assert.equal(store.route(alias(9)).kind, 'alias', 'another client keeps its own');
        store.check();
      });
    });

    test('a malformed alias change throws and writes nothing of its group', () => {
      withStore({}, (store) => {
        const good = { registrations: [recipient(2)], deletions: [], entries: [entry(0, 1)] };
        assert.throws(() => store.commitGroup({ ...good, aliases: [reg(0, 1), { kind: 'register', owner: recipient(0), mailbox: new Uint8Array(31) }] }), { name: 'RangeError', message: /"mailbox"/ });
        assert.throws(() => store.commitGroup({ ...good, aliases: [{ kind: 'rename' as never, owner: recipient(0), mailbox: alias(1) }] }), RangeError);
        assert.throws(() => store.commitGroup({ ...good, aliases: [{ kind: 'revoke', owner: new Uint8Array(3), mailbox: alias(1) }] }), { name: 'RangeError', message: /"recipient"/ });
        assert.throws(() => store.commitGroup({ ...good, aliases: 'x' as never }), { name: 'TypeError', message: /"aliases"/ });
        assert.throws(() => store.store({ ...entry(0, 1), mailbox: new Uint8Array(5) }), { name: 'RangeError', message: /"mailbox"/ });
        assert.deepEqual(store.route(alias(1)), { kind: 'unknown' });
        assert.equal(store.isRegistered(recipient(2)), false);
        assert.equal(store.total(), 0);
        assert.throws(() => store.route(new Uint8Array(31)), RangeError);
        assert.throws(() => store.aliasCount(new Uint8Array(31)), RangeError);
      });
    });
  });
}
