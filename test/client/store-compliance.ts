/**
 * One behavioural suite for every ClientStore: the SQLite store in Node
 * (store-compliance.test.ts), the record store over a simulated write-through in Node, and the
 * record store over IndexedDB in Chromium (test/browser/store.test.ts bundles this file with
 * esbuild and runs it in a page). Portable: no `node:` imports, its own small assertions.
 *
 * A harness opens a store by name (the same name reopens the same state) and closes it durably.
 */
import type { ClientStore, Destination, FragmentResult, InboxMessage } from '../../src/client/store.js';
import { isBackchannelError } from '../../src/errors.js';

export interface StoreHarness {
  /** Opens (creating when missing) the store called `name`. */
  open(name: string): Promise<ClientStore>;
  /** Closes it once everything it acknowledged is durable. */
  close(store: ClientStore): Promise<void>;
}

export interface ComplianceCase {
  readonly name: string;
  readonly run: (h: StoreHarness, name: string) => Promise<void>;
}

// ---- assertions ----

function fail(message: string): never {
  throw new Error(message);
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `bytes(${[...v].map((b) => b.toString(16).padStart(2, '0')).join('')})`;
  try {
    return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? show(x) : x));
  } catch {
    return String(v);
  }
}

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !(a instanceof Uint8Array) && !(b instanceof Uint8Array)) {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined).sort();
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined).sort();
    return same(ka, kb) && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return Object.is(a, b);
}

function eq(actual: unknown, expected: unknown, what: string): void {
  if (!same(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function throwsCode(fn: () => unknown, code: Parameters<typeof isBackchannelError>[1], what: string): void {
  try {
    fn();
  } catch (e) {
    if (isBackchannelError(e, code)) return;
    fail(`${what}: expected ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  fail(`${what}: expected ${code}, nothing thrown`);
}

// ---- data ----

const T0 = 1_700_000_000_000;

function bytes(tag: number, length = 16): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (tag * 31 + i * 7 + 1) & 0xff);
}
function frames(tag: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => bytes(tag * 100 + i, 64));
}
const address: Destination = { kind: 'address', gateway: bytes(200, 32), mailbox: bytes(201, 32) };

function keepAll(surbs = 0): (joined: Uint8Array) => { body: Uint8Array; replySurbs: Uint8Array[] } {
  return (joined) => ({ body: joined, replySurbs: Array.from({ length: surbs }, (_, i) => bytes(150 + i, 40)) });
}

function complete(result: FragmentResult, what: string): InboxMessage {
  if (result.kind !== 'complete') fail(`${what}: expected a complete message, got ${result.kind}`);
  return result.message;
}

function receive(store: ClientStore, tag: number, surbs = 0, at = T0): InboxMessage {
  return complete(store.putFragment({ messageId: bytes(tag), index: 0, count: 1, data: bytes(tag + 1, 20), receivedAt: at, inReplyTo: null }, keepAll(surbs)), 'receive');
}

async function withStore(h: StoreHarness, name: string, fn: (s: ClientStore) => void): Promise<void> {
  const s = await h.open(name);
  try {
    fn(s);
  } finally {
    await h.close(s);
  }
}

// ---- the cases ----

export const complianceCases: readonly ComplianceCase[] = [
  {
    name: 'settings and the mailbox position start empty, keep what is set, and hand out copies',
    run: (h, name) =>
      withStore(h, name, (s) => {
        eq(s.getSetting('missing'), null, 'unset setting');
        const v = bytes(1, 32);
        s.setSetting('k', v);
        v.fill(0);
        eq(s.getSetting('k'), bytes(1, 32), 'setting');
        s.getSetting('k')!.fill(9);
        eq(s.getSetting('k'), bytes(1, 32), 'setting after its copy was changed');
        s.setSetting('k', bytes(2, 8));
        eq(s.getSetting('k'), bytes(2, 8), 'overwritten setting');
        eq(s.nextMailboxSeq(), 0, 'first position');
        s.setNextMailboxSeq(41);
        eq(s.nextMailboxSeq(), 41, 'position');
      }),
  },
  {
    name: 'an outgoing message goes from pending to delivered as its fragments are acknowledged',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const id = bytes(3);
        const f = s.enqueue({ id, destination: address, length: 100, createdAt: T0 }, frames(3, 3));
        eq(f.length, 3, 'fragments returned');
        eq(f.map((x) => [x.index, x.attempts, x.dueAt, x.lastSentAt, x.replySurb]), [[0, 0, T0, null, null], [1, 0, T0, null, null], [2, 0, T0, null, null]], 'new fragments');
        eq(f[1]!.frame, frames(3, 3)[1], 'frame');
        eq(s.outgoing(id), { id, destination: address, length: 100, fragments: 3, createdAt: T0, status: 'pending', done: 0 }, 'new message');
        throwsCode(() => s.enqueue({ id, destination: address, length: 1, createdAt: T0 }, frames(4, 1)), 'ERR_CLIENT_STATE', 'same id again');
        s.recordAttempt(id, 1, T0 + 5, T0 + 1000);
        s.recordAttempt(id, 1, T0 + 6, T0 + 2000);
        s.recordAttempt(bytes(99), 0, T0, T0);
        const p = s.pendingFragments().sort((a, b) => a.index - b.index);
        eq(p.map((x) => [x.index, x.attempts, x.dueAt, x.lastSentAt]), [[0, 0, T0, null], [1, 2, T0 + 2000, T0 + 6], [2, 0, T0, null]], 'after attempts');
        eq(p[0]!.destination, address, 'destination of a pending fragment');
        eq(s.fragmentDone(id, 1)?.done, 1, 'one acknowledged');
        eq(s.fragmentDone(id, 1)?.done, 1, 'acknowledged twice');
        eq(s.pendingFragments().map((x) => x.index).sort(), [0, 2], 'still pending');
        s.fragmentDone(id, 0);
        const m = s.fragmentDone(id, 2);
        eq([m?.status, m?.done], ['delivered', 3], 'all acknowledged');
        eq(s.pendingFragments(), [], 'nothing pending');
        eq(s.fragmentDone(bytes(98), 0), null, 'unknown message');
        eq(s.outgoing(bytes(98)), null, 'unknown outgoing');
      }),
  },
  {
    name: 'a failed message leaves the pending list, and finished messages are pruned by age',
    run: (h, name) =>
      withStore(h, name, (s) => {
        s.enqueue({ id: bytes(5), destination: address, length: 10, createdAt: T0 }, frames(5, 2));
        s.enqueue({ id: bytes(6), destination: address, length: 10, createdAt: T0 + 10 }, frames(6, 1));
        s.enqueue({ id: bytes(7), destination: address, length: 10, createdAt: T0 }, frames(7, 1));
        eq(s.failMessage(bytes(5))?.status, 'failed', 'failed');
        eq(s.failMessage(bytes(5))?.status, 'failed', 'failed twice');
        eq(s.failMessage(bytes(97)), null, 'unknown');
        s.fragmentDone(bytes(6), 0);
        eq(s.failMessage(bytes(6))?.status, 'delivered', 'a delivered message does not fail');
        eq(s.pendingFragments().map((f) => f.messageId), [bytes(7)], 'pending');
        eq(s.pruneOutgoing(T0 + 5), 1, 'pruned (the failed one; the delivered one is newer, the pending one stays)');
        eq(s.outgoing(bytes(5)), null, 'pruned message');
        eq(s.outgoing(bytes(7))?.status, 'pending', 'pending one kept');
        eq(s.pruneOutgoing(T0 + 11), 1, 'the delivered one too');
      }),
  },
  {
    name: 'a reply reserves one SURB of its inbox message per fragment and is sent once each left',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const inbox = receive(s, 10, 3);
        eq(inbox.replySurbs, 3, 'SURBs with the message');
        const reply: Destination = { kind: 'reply', inReplyTo: inbox.id };
        throwsCode(() => s.enqueue({ id: bytes(11), destination: reply, length: 1, createdAt: T0 }, frames(11, 4)), 'ERR_CLIENT_NO_SURBS', 'too many fragments');
        eq(s.inboxMessage(inbox.id)?.replySurbs, 3, 'nothing reserved by the refused reply');
        const f = s.enqueue({ id: bytes(12), destination: reply, length: 1, createdAt: T0 }, frames(12, 2));
        eq(f.map((x) => x.replySurb), [bytes(150, 40), bytes(151, 40)], 'reserved SURBs in order');
        eq(s.inboxMessage(inbox.id)?.replySurbs, 1, 'left');
        eq(s.pendingFragments().map((x) => x.replySurb).sort((a, b) => a![0]! - b![0]!), [bytes(150, 40), bytes(151, 40)].sort((a, b) => a[0]! - b[0]!), 'pending reply fragments carry their SURBs');
        throwsCode(() => s.enqueue({ id: bytes(13), destination: { kind: 'reply', inReplyTo: bytes(96) }, length: 1, createdAt: T0 }, frames(13, 1)), 'ERR_CLIENT_STATE', 'unknown inbox message');
        s.recordAttempt(bytes(12), 0, T0 + 1, null);
        eq(s.outgoing(bytes(12))?.status, 'pending', 'one of two left');
        s.recordAttempt(bytes(12), 1, T0 + 2, null);
        eq([s.outgoing(bytes(12))?.status, s.outgoing(bytes(12))?.done], ['sent', 2], 'both left');
      }),
  },
  {
    name: 'our SURBs are stored, read, deleted and pruned by age',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const ack = { purpose: 'ack' as const, keys: bytes(20, 48), messageId: bytes(21), index: 2, sentAt: T0 + 1, attempt: 3 };
        s.putSurb(bytes(22), ack, T0);
        s.putSurb(bytes(23), { purpose: 'loop', keys: bytes(24, 48), sentAt: T0 }, T0 + 100);
        s.putSurb(bytes(25), { purpose: 'reply', keys: bytes(26, 48), messageId: bytes(27) }, T0 + 200);
        throwsCode(() => s.putSurb(bytes(22), ack, T0), 'ERR_CLIENT_STATE', 'same SURB id');
        eq(s.surb(bytes(22)), ack, 'ack SURB');
        eq(s.surb(bytes(23)), { purpose: 'loop', keys: bytes(24, 48), sentAt: T0 }, 'loop SURB');
        eq(s.surb(bytes(25)), { purpose: 'reply', keys: bytes(26, 48), messageId: bytes(27) }, 'reply SURB');
        s.deleteSurb(bytes(22));
        s.deleteSurb(bytes(22));
        eq(s.surb(bytes(22)), null, 'deleted');
        eq(s.pruneSurbs(T0 + 150), 1, 'pruned');
        eq(s.surb(bytes(23)), null, 'old one gone');
        eq(s.surb(bytes(25)) !== null, true, 'new one kept');
      }),
  },
  {
    name: 'fragments reassemble in index order, once; duplicates, bad counts and bad messages are handled',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const id = bytes(30);
        const part = (index: number, inReplyTo: Uint8Array | null = null) => ({ messageId: id, index, count: 3, data: bytes(31 + index, 10), receivedAt: T0 + index, inReplyTo });
        eq(s.putFragment(part(2, bytes(35)), keepAll()), { kind: 'partial', have: 1, count: 3 }, 'first');
        eq(s.putFragment(part(2), keepAll()), { kind: 'duplicate' }, 'same fragment');
        throwsCode(() => s.putFragment({ ...part(0), count: 4 }, keepAll()), 'ERR_CLIENT_FRAME', 'another count');
        throwsCode(() => s.putFragment({ ...part(0), index: 3 }, keepAll()), 'ERR_CLIENT_FRAME', 'index beyond the count');
        throwsCode(() => s.putFragment({ ...part(0), count: 0 }, keepAll()), 'ERR_CLIENT_FRAME', 'count zero');
        eq(s.putFragment(part(0), keepAll()), { kind: 'partial', have: 2, count: 3 }, 'second');
        const m = complete(s.putFragment({ ...part(1, bytes(34)), mailbox: bytes(36, 32) }, keepAll(1)), 'third');
        const joined = new Uint8Array(30);
        joined.set(bytes(31, 10), 0);
        joined.set(bytes(32, 10), 10);
        joined.set(bytes(33, 10), 20);
        eq(m.body, joined, 'body in index order');
        eq(m.inReplyTo, bytes(34), 'the first inReplyTo in index order');
        eq(m.mailbox, bytes(36, 32), 'the mailbox of the completing fragment');
        eq([m.replySurbs, m.consumed, m.receivedAt], [1, false, T0 + 1], 'message');
        eq(s.putFragment(part(0), keepAll()), { kind: 'duplicate' }, 'a fragment of a message in the inbox');

        const bad = bytes(40);
        let threw = false;
        try {
          s.putFragment({ messageId: bad, index: 0, count: 1, data: bytes(41), receivedAt: T0, inReplyTo: null }, () => {
            throw new Error('undecodable');
          });
        } catch (e) {
          threw = e instanceof Error && e.message === 'undecodable';
        }
        eq(threw, true, 'the assemble error is rethrown');
        eq(s.inboxMessage(bad), null, 'a bad message is not in the inbox');
        eq(s.putFragment({ messageId: bad, index: 0, count: 2, data: bytes(41), receivedAt: T0, inReplyTo: null }, keepAll()), { kind: 'partial', have: 1, count: 2 }, 'its fragments were dropped');
      }),
  },
  {
    name: 'incomplete messages are bounded: the earliest started is evicted, and old ones are pruned',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const bound = 1024;
        s.transaction(() => {
          for (let i = 0; i < bound; i++) {
            const id = new Uint8Array(16);
            id[0] = i >> 8;
            id[1] = i & 0xff;
            s.putFragment({ messageId: id, index: 0, count: 2, data: bytes(1, 4), receivedAt: T0 + i, inReplyTo: null }, keepAll());
          }
        });
        const late = bytes(50);
        s.putFragment({ messageId: late, index: 0, count: 2, data: bytes(1, 4), receivedAt: T0 + 5000, inReplyTo: null }, keepAll());
        const first = new Uint8Array(16);
        eq(s.putFragment({ messageId: first, index: 1, count: 2, data: bytes(1, 4), receivedAt: T0 + 6000, inReplyTo: null }, keepAll()).kind, 'partial', 'the earliest was evicted (its other half starts anew)');
        // Restarting the first evicted the next earliest (started at T0 + 1) in its turn.
        const third = new Uint8Array(16);
        third[1] = 2;
        eq(s.pruneFragments(T0 + 3), 1, 'pruned: what started before (the third message; the first two were evicted)');
        eq(s.putFragment({ messageId: third, index: 1, count: 2, data: bytes(1, 4), receivedAt: T0 + 7000, inReplyTo: null }, keepAll()).kind, 'partial', 'the pruned one starts anew');
      }),
  },
  {
    name: 'the inbox: unconsumed, consume, pages, prefix, metadata',
    run: async (h, name) => {
      await withStore(h, name, (s) => {
        const a = receive(s, 60);
        const b = complete(
          s.putFragment({ messageId: bytes(62), index: 0, count: 1, data: bytes(63), receivedAt: T0 + 1, inReplyTo: null }, (j) => ({ body: j, replySurbs: [], meta: { sentAtS: 1_700_000_001, fileName: 'notes.txt' } })),
          'b',
        );
        const c = receive(s, 64);
        eq(a.seq < b.seq && b.seq < c.seq, true, 'seq increases');
        eq([b.sentAt, b.fileName], [1_700_000_001_000, 'notes.txt'], 'metadata');
        eq([a.sentAt ?? null, a.fileName ?? null], [null, null], 'no metadata');
        eq(s.unconsumed(0, 10).map((m) => m.seq), [a.seq, b.seq, c.seq], 'unconsumed');
        s.consume(b.seq);
        s.consume(b.seq);
        eq(s.unconsumed(0, 10).map((m) => m.seq), [a.seq, c.seq], 'after consume');
        eq(s.unconsumed(a.seq, 1).map((m) => m.seq), [c.seq], 'after a seq, limited');
        eq(s.inboxPage(0, 10).map((m) => [m.seq, m.consumed]), [[a.seq, false], [b.seq, true], [c.seq, false]], 'page');
        eq(s.inboxPage(a.seq, 1).map((m) => m.seq), [b.seq], 'page after a seq');
        eq(s.inboxMessage(b.id)?.body, bytes(63), 'by id');
        eq(s.inboxMessage(bytes(95)), null, 'unknown id');
        const hex = [...c.id].map((x) => x.toString(16).padStart(2, '0')).join('');
        eq(s.inboxByPrefix(hex.slice(0, 6).toUpperCase(), 10).map((m) => m.seq), [c.seq], 'by prefix (any case)');
      });
    },
  },
  {
    name: 'a transaction commits as one; a throw undoes it, and a nested throw undoes only its own part',
    run: (h, name) =>
      withStore(h, name, (s) => {
        let caught = false;
        try {
          s.transaction(() => {
            s.setSetting('a', bytes(1, 4));
            s.setNextMailboxSeq(7);
            s.enqueue({ id: bytes(70), destination: address, length: 1, createdAt: T0 }, frames(70, 1));
            throw new Error('abort');
          });
        } catch {
          caught = true;
        }
        eq(caught, true, 'rethrown');
        eq([s.getSetting('a'), s.nextMailboxSeq(), s.outgoing(bytes(70)), s.pendingFragments()], [null, 0, null, []], 'nothing of it stays');
        s.transaction(() => {
          s.setSetting('b', bytes(2, 4));
          try {
            s.transaction(() => {
              s.setSetting('c', bytes(3, 4));
              s.setSetting('b', bytes(9, 4));
              throw new Error('inner');
            });
          } catch {
            // the inner part alone is undone
          }
          s.setNextMailboxSeq(3);
        });
        eq([s.getSetting('b'), s.getSetting('c'), s.nextMailboxSeq()], [bytes(2, 4), null, 3], 'outer kept, inner undone');
        eq(s.transaction(() => 42), 42, 'the result');
      }),
  },
  {
    name: 'extra mailboxes: stored once, keys copied, changes merged, a revocation erases the key for good',
    run: (h, name) =>
      withStore(h, name, (s) => {
        const a = bytes(80, 32);
        const b = bytes(81, 32);
        s.putMailbox(a, bytes(82, 32), T0 + 1);
        s.putMailbox(b, bytes(83, 32), T0);
        s.putMailbox(a, bytes(84, 32), T0 + 9);
        eq(s.mailboxes().map((m) => m.id), [b, a], 'oldest first');
        eq(s.mailboxKey(a), bytes(82, 32), 'the first key stays');
        s.mailboxKey(a)!.fill(0);
        eq(s.mailboxKey(a), bytes(82, 32), 'a copy');
        eq(s.mailboxKey(bytes(85, 32)), null, 'unknown');
        eq(s.updateMailbox(bytes(85, 32), { registered: true }), null, 'unknown update');
        eq(s.updateMailbox(a, { registered: true, revokeAt: T0 + 100, replacedBy: b }), { id: a, createdAt: T0 + 1, registered: true, refused: null, revokeAt: T0 + 100, replacedBy: b, revokedAt: null, revokeConfirmed: false }, 'changed');
        eq(s.updateMailbox(b, { refused: 'taken' })?.refused, 'taken', 'refused');
        eq(s.updateMailbox(a, { revokedAt: T0 + 200 })?.revokedAt, T0 + 200, 'revoked');
        eq(s.mailboxKey(a), null, 'its key is gone');
        eq(s.updateMailbox(a, { revokedAt: T0 + 300, revokeConfirmed: true }), { id: a, createdAt: T0 + 1, registered: true, refused: null, revokeAt: T0 + 100, replacedBy: b, revokedAt: T0 + 200, revokeConfirmed: true }, 'the first revocation time stays');
      }),
  },
  {
    name: 'everything committed is there after closing and reopening; an undone transaction is not',
    run: async (h, name) => {
      let inboxSeq = 0;
      await withStore(h, name, (s) => {
        s.setSetting('link', bytes(90, 32));
        s.setNextMailboxSeq(12);
        s.enqueue({ id: bytes(91), destination: address, length: 5, createdAt: T0 }, frames(91, 2));
        s.recordAttempt(bytes(91), 0, T0 + 1, T0 + 500);
        s.fragmentDone(bytes(91), 1);
        s.putSurb(bytes(92), { purpose: 'loop', keys: bytes(93, 48), sentAt: T0 }, T0);
        inboxSeq = receive(s, 94, 2).seq;
        s.putFragment({ messageId: bytes(96), index: 0, count: 2, data: bytes(97, 8), receivedAt: T0, inReplyTo: null }, keepAll());
        s.putMailbox(bytes(98, 32), bytes(99, 32), T0);
        s.updateMailbox(bytes(98, 32), { registered: true });
        try {
          s.transaction(() => {
            s.setSetting('gone', bytes(1, 1));
            s.setNextMailboxSeq(99);
            throw new Error('undo');
          });
        } catch {
          // undone
        }
      });
      await withStore(h, name, (s) => {
        eq(s.getSetting('link'), bytes(90, 32), 'setting');
        eq(s.getSetting('gone'), null, 'undone setting');
        eq(s.nextMailboxSeq(), 12, 'position');
        eq(s.pendingFragments().map((f) => [f.index, f.attempts, f.dueAt, f.lastSentAt]), [[0, 1, T0 + 500, T0 + 1]], 'pending fragment');
        eq(s.outgoing(bytes(91))?.done, 1, 'acknowledged count');
        eq(s.surb(bytes(92)), { purpose: 'loop', keys: bytes(93, 48), sentAt: T0 }, 'SURB');
        eq(s.unconsumed(0, 10).map((m) => [m.seq, m.replySurbs]), [[inboxSeq, 2]], 'inbox');
        eq(s.putFragment({ messageId: bytes(96), index: 1, count: 2, data: bytes(97, 8), receivedAt: T0 + 1, inReplyTo: null }, keepAll()).kind, 'complete', 'a held fragment completes after reopening');
        eq(receive(s, 110).seq > inboxSeq, true, 'inbox seq keeps increasing');
        eq(s.mailboxes().map((m) => [m.id, m.registered]), [[bytes(98, 32), true]], 'mailbox');
        eq(s.mailboxKey(bytes(98, 32)), bytes(99, 32), 'mailbox key');
      });
    },
  },
];
