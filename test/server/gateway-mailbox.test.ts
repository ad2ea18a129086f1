/**
 * GatewayMailbox and the mailbox writers: a fetch is answered without any write; deletions are
 * seen at once, committed later in groups, idempotently; a delivery is reported stored only once
 * its group is durable; the writer thread does every write of a server's store; a crash before a
 * deletion's commit hands the entry out again, and nothing else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { after, describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import type { MessageLink } from '../../src/link/message-link.js';
import { clientSessions } from '../../src/server/fetch.js';
import { GatewayMailbox } from '../../src/server/gateway-mailbox.js';
import type { MailboxGroup, MailboxStore, StoreResult } from '../../src/server/mailbox.js';
import { openMailboxStore } from '../../src/server/mailbox.js';
import type { MailboxWriter } from '../../src/server/mailbox-writer.js';
import { inlineMailboxWriter, openWorkerMailboxWriter } from '../../src/server/mailbox-writer.js';
import type { WriterWorkerData } from '../../src/server/mailbox-writer.js';
import { RateLimiter } from '../../src/server/rate-limit.js';
import { WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { entry, fakeClock, payload, recipient } from './mailbox-compliance.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-gateway-mailbox-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(root, `case-${n++}`, 'mailboxes.sqlite');

/** The methods of a MailboxStore that write. */
const WRITES = ['register', 'store', 'storeBatch', 'commitGroup', 'ack', 'ackBelow'] as const;

/** Wraps a store: every call of a writing method is counted (and refused when `refuse`). */
function watched(store: MailboxStore, refuse = false): { store: MailboxStore; writes: string[] } {
  const writes: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if ((WRITES as readonly (string | symbol)[]).includes(prop)) {
        return (...args: unknown[]) => {
          writes.push(String(prop));
          if (refuse) throw new Error(`test: ${String(prop)} called on the main thread's store`);
          return fn.apply(target, args);
        };
      }
      return fn.bind(target);
    },
  });
  return { store: proxy, writes };
}

/** A writer whose commits the test settles by hand. */
function heldWriter(inner: MailboxWriter): MailboxWriter & { groups: MailboxGroup[]; release(): Promise<void>; fail(): void } {
  const held: { group: MailboxGroup; resolve(r: StoreResult[]): void; reject(e: unknown): void }[] = [];
  const w = {
    groups: [] as MailboxGroup[],
    commit(group: MailboxGroup) {
      w.groups.push(group);
      return new Promise<StoreResult[]>((resolve, reject) => held.push({ group, resolve, reject }));
    },
    async release() {
      for (const h of held.splice(0)) {
        try {
          h.resolve(await inner.commit(h.group));
        } catch (err) {
          h.reject(err);
        }
      }
      await new Promise((r) => setImmediate(r));
    },
    fail() {
      for (const h of held.splice(0)) h.reject(new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: test failure'));
    },
    close: () => inner.close(),
  };
  return w;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('gateway mailbox', () => {
  test('a deletion is seen by the next read at once, and written only by a later commit, which a reopened store keeps', async () => {
    const path = freshPath();
    const store = openMailboxStore(path);
    store.register(recipient(0));
    store.storeBatch([1, 2, 3, 4].map((t) => entry(0, t)));
    const w = watched(store);
    const clock = fakeClock();
    const timers: (() => void)[] = [];
    clock.setTimer = (fn: () => void) => timers.push(fn);
    const writer = heldWriter(inlineMailboxWriter(store));
    const boxes = new GatewayMailbox({}, { reader: w.store, writer, clock });
    assert.equal(boxes.deleteBelow(recipient(0), 3), true);
    assert.equal(boxes.deleteOne(recipient(0), 4), true);
    assert.deepEqual([boxes.peek(recipient(0))?.seq, boxes.peek(recipient(0))?.remaining], [3, 0], 'deleted at once for the reader');
    assert.equal(boxes.peek(recipient(0), 3), null);
    assert.deepEqual([w.writes, writer.groups.length, store.count(recipient(0))], [[], 0, 4], 'nothing written yet');
    assert.equal(timers.length, 1, 'one timer for the group of deletions');
    timers.shift()!();
    assert.equal(writer.groups.length, 1);
    assert.deepEqual(writer.groups[0]!.deletions.map((d) => [d.kind, d.seq]), [['below', 3], ['one', 4]]);
    assert.deepEqual(boxes.peek(recipient(0))?.seq, 3, 'still hidden while the group is in flight');
    await writer.release();
    assert.equal(boxes.pendingDeletions, 0);
    store.close();
    const again = openMailboxStore(path);
    try {
      assert.deepEqual([again.peek(recipient(0))?.seq, again.count(recipient(0))], [3, 1]);
      again.check();
    } finally {
      again.close();
    }
  });

  test('deletions are idempotent: twice, below a bound already waiting, of an entry gone or never stored', async () => {
    const store = openMailboxStore(freshPath());
    try {
      store.register(recipient(0));
      store.storeBatch([1, 2, 3, 4, 5].map((t) => entry(0, t)));
      const writer = heldWriter(inlineMailboxWriter(store));
      const boxes = new GatewayMailbox({ deletionCommitMs: 1 }, { reader: store, writer, clock: fakeClock() });
      boxes.deleteBelow(recipient(0), 3);
      boxes.deleteBelow(recipient(0), 3);
      boxes.deleteBelow(recipient(0), 2);
      boxes.deleteOne(recipient(0), 4);
      boxes.deleteOne(recipient(0), 4);
      boxes.deleteOne(recipient(0), 1);
      boxes.deleteOne(recipient(0), 99);
      boxes.deleteOne(recipient(7), 1);
      assert.equal(boxes.pendingDeletions, 2, 'one bound and one entry');
      await Promise.all([boxes.flush(), writer.release()]);
      assert.deepEqual([store.peek(recipient(0))?.seq, store.peek(recipient(0), 3)?.seq, store.total()], [3, 5, 2]);
      // Deleting again what is committed as gone writes nothing more.
      boxes.deleteBelow(recipient(0), 3);
      boxes.deleteOne(recipient(0), 4);
      assert.equal(boxes.pendingDeletions, 0);
      // The same group committed twice (a retry after a lost answer) changes nothing the second time.
      const group: MailboxGroup = { registrations: [], deletions: [{ kind: 'below', recipient: recipient(0), seq: 4 }, { kind: 'one', recipient: recipient(0), seq: 5 }], entries: [] };
      store.commitGroup(group);
      store.commitGroup(group);
      assert.equal(store.total(), 0);
      store.check();
    } finally {
      store.close();
    }
  });

  test('a delivery is reported stored only once its group is durable, and a failed group fails its entries and keeps its deletions', async () => {
    const store = openMailboxStore(freshPath());
    try {
      store.register(recipient(0));
      store.storeBatch([entry(0, 1)]);
      const writer = heldWriter(inlineMailboxWriter(store));
      const boxes = new GatewayMailbox({}, { reader: store, writer, clock: fakeClock() });
      let settled: StoreResult | null = null;
      void boxes.submit(entry(0, 2)).then((r) => (settled = r));
      boxes.deleteBelow(recipient(0), 2);
      await turn();
      assert.equal(writer.groups.length, 1, 'the delivery took the deletion along');
      assert.equal(settled, null, 'not reported before the commit');
      assert.equal(store.count(recipient(0)), 1);
      await writer.release();
      assert.deepEqual(settled, { ok: true, seq: 2 });
      assert.deepEqual([store.peek(recipient(0))?.seq, store.count(recipient(0))], [2, 1]);

      const failed = boxes.submit(entry(0, 3));
      boxes.deleteBelow(recipient(0), 3);
      await turn();
      writer.fail();
      await assert.rejects(failed, (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
      assert.equal(boxes.pendingDeletions, 1, 'the deletion waits for the next group');
      assert.equal(boxes.peek(recipient(0)), null, 'and stays hidden');
      await Promise.all([boxes.close(), writer.release()]);
      await writer.release();
      assert.equal(store.count(recipient(0)), 0, 'close committed it');
    } finally {
      store.close();
    }
  });

  test('a delivery is copied when submitted: a Buffer reused by the caller before the commit changes nothing stored', async () => {
    const store = openMailboxStore(':memory:');
    try {
      store.register(recipient(0));
      const writer = heldWriter(inlineMailboxWriter(store));
      const boxes = new GatewayMailbox({}, { reader: store, writer, clock: fakeClock() });
      // A packet read from a socket is a view into a larger buffer, which the socket reuses.
      const pool = Buffer.alloc(4096, 0x5a);
      const submitted = boxes.submit({ recipient: recipient(0), surbId: pool.subarray(0, 16), payload: pool.subarray(16, 80) });
      pool.fill(0);
      await turn();
      assert.equal(writer.groups[0]?.entries[0]?.payload.buffer.byteLength, 64, 'a tight copy: the writer thread is not sent the whole buffer');
      await writer.release();
      assert.deepEqual(await submitted, { ok: true, seq: 1 });
      assert.deepEqual(store.peek(recipient(0))?.payload, new Uint8Array(64).fill(0x5a));
      assert.deepEqual(store.peek(recipient(0))?.surbId, new Uint8Array(16).fill(0x5a));
      await boxes.close();
    } finally {
      store.close();
    }
  });

  test('registrations are seen at once and committed with the next group, before its entries', async () => {
    const store = openMailboxStore(freshPath(), { maxPerMailbox: 1 });
    try {
      const boxes = new GatewayMailbox({}, { reader: store, writer: inlineMailboxWriter(store), clock: fakeClock() });
      boxes.register(recipient(3));
      assert.equal(boxes.isRegistered(recipient(3)), true);
      assert.equal(store.isRegistered(recipient(3)), false);
      const [a, b] = await Promise.all([boxes.submit(entry(3, 1)), boxes.submit(entry(3, 2))]);
      assert.deepEqual([a, b], [{ ok: true, seq: 1 }, { ok: false, code: 'ERR_MAILBOX_FULL' }], 'mailbox_full as before');
      assert.equal(store.isRegistered(recipient(3)), true);
      assert.deepEqual(await boxes.submit(entry(9, 1)), { ok: false, code: 'unknown_recipient' });
      await boxes.close();
      await assert.rejects(boxes.submit(entry(3, 3)), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
    } finally {
      store.close();
    }
  });

  test('waiting deletions and entries are bounded', async () => {
    const store = openMailboxStore(':memory:');
    try {
      for (let r = 0; r < 3; r++) store.register(recipient(r));
      store.storeBatch([entry(0, 1), entry(1, 1), entry(2, 1), entry(2, 2)]);
      const writer = heldWriter(inlineMailboxWriter(store));
      const boxes = new GatewayMailbox({ maxPendingDeletions: 2, maxPending: 1 }, { reader: store, writer, clock: fakeClock() });
      assert.equal(boxes.deleteBelow(recipient(0), 2), true);
      assert.equal(boxes.deleteOne(recipient(2), 2), true);
      assert.equal(boxes.deleteBelow(recipient(1), 2), false, 'refused: two wait');
      assert.equal(boxes.deleteBelow(recipient(0), 5), true, 'raising a waiting bound takes no room');
      const first = boxes.submit(entry(0, 2));
      assert.deepEqual(await boxes.submit(entry(0, 3)), { ok: false, code: 'ERR_MAILBOX_FULL' });
      await turn();
      await writer.release();
      assert.deepEqual(await first, { ok: true, seq: 2 });
      assert.equal(boxes.deleteBelow(recipient(1), 2), true, 'room again once committed');
      await Promise.all([boxes.close(), writer.release()]);
    } finally {
      store.close();
    }
  });
});

describe('answering a fetch', () => {
  /** A client link that keeps what the gateway sends. */
  function clientLink(id: Uint8Array, codec: WireCodec): MessageLink & { answers: Extract<WireCommand, { kind: 'message' }>[] } {
    const answers: Extract<WireCommand, { kind: 'message' }>[] = [];
    return {
      remoteStatic: id,
      isOpen: true,
      answers,
      trySend(frame: Uint8Array) {
        const cmd = codec.decode(frame);
        assert.equal(cmd.kind, 'message');
        answers.push(cmd);
        return true;
      },
      send: () => Promise.resolve(),
      close: () => Promise.resolve(),
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }),
    };
  }

  test('writes nothing, whether the mailbox is empty, holds entries, the fetch deletes some, or a commit is under way', async () => {
    const store = openMailboxStore(freshPath());
    try {
      store.register(recipient(0));
      const codec = new WireCodec({ packetLength: 3082 });
      const w = watched(store);
      const writer = heldWriter(inlineMailboxWriter(store));
      let commitsDuringAnswers = 0;
      const boxes = new GatewayMailbox({}, { reader: w.store, writer, clock: fakeClock() });
      const registry = new Registry();
      const sessions = clientSessions({
        mailbox: boxes,
        limiter: new RateLimiter({ perSecond: 100, burst: 100, clock: fakeClock() }),
        codec,
        fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
        deletionsRefused: new Counter({ name: 'd', help: 'd', registers: [registry] }),
      });
      const link = clientLink(recipient(0), codec);
      const fetch = (sequence: number): void => {
        const before = writer.groups.length;
        assert.deepEqual(sessions.command(link, { kind: 'retrieve_message', sequence }), { kind: 'done' });
        commitsDuringAnswers += writer.groups.length - before;
      };
      sessions.opened(link);
      fetch(0);
      assert.equal(link.answers.at(-1)?.empty, true, 'empty mailbox');
      store.storeBatch([1, 2, 3].map((t) => entry(0, t))); // what the writer thread would have committed
      fetch(1);
      assert.deepEqual([link.answers.at(-1)?.sequence, link.answers.at(-1)?.queueHint], [1, 2], 'mailbox with entries');
      fetch(2);
      assert.equal(link.answers.at(-1)?.sequence, 2, 'right after a deletion');
      const delivery = boxes.submit(entry(0, 4));
      await turn();
      assert.equal(writer.groups.length, 1, 'a commit is under way');
      fetch(3);
      assert.equal(link.answers.at(-1)?.sequence, 3, 'during a commit');
      sessions.command(link, { kind: 'ack', sequence: 3 });
      fetch(3);
      assert.equal(link.answers.at(-1)?.empty, true, 'the acknowledged entry is skipped at once');
      assert.deepEqual(w.writes, [], 'no write on the reader');
      assert.equal(commitsDuringAnswers, 0, 'no commit started while answering');
      await writer.release();
      assert.deepEqual(await delivery, { ok: true, seq: 4 });
      fetch(3);
      assert.deepEqual(link.answers.at(-1)?.payload, payload(4));
      await Promise.all([boxes.close(), writer.release()]);
      assert.deepEqual(w.writes, [], 'nor on close');
      assert.deepEqual([store.peek(recipient(0))?.seq, store.count(recipient(0))], [4, 1]);
    } finally {
      store.close();
    }
  });

  test('fair fetch: answers go round the client’s addresses (oldest first in each), and confirmations delete idempotently', async () => {
    const store = openMailboxStore(freshPath());
    try {
      const owner = recipient(0);
      const alias = recipient(9);
      store.register(owner);
      store.commitGroup({ registrations: [], aliases: [{ kind: 'register', owner, mailbox: alias }], deletions: [], entries: [] });
      // Junk at the main address first (1..5), then two entries to the alias (6, 7).
      store.storeBatch([...[1, 2, 3, 4, 5].map((t) => entry(0, t)), { ...entry(0, 6), mailbox: alias }, { ...entry(0, 7), mailbox: alias }]);
      const codec = new WireCodec({ packetLength: 3082 });
      const writer = heldWriter(inlineMailboxWriter(store));
      const boxes = new GatewayMailbox({}, { reader: store, writer, clock: fakeClock() });
      const registry = new Registry();
      const sessions = clientSessions({
        mailbox: boxes,
        limiter: new RateLimiter({ perSecond: 100, burst: 100, clock: fakeClock() }),
        codec,
        fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
        deletionsRefused: new Counter({ name: 'd', help: 'd', registers: [registry] }),
        schedule: (fn) => fn(),
      });
      const first = clientLink(owner, codec);
      sessions.opened(first);
      const fetch = (link: typeof first, sequence: number): Extract<WireCommand, { kind: 'message' }> => {
        sessions.command(link, { kind: 'retrieve_message', sequence });
        return link.answers.at(-1)!;
      };
      // A client that takes every answer and names it in its next fetch.
      let n = 0;
      const order: number[] = [];
      for (let i = 0; i < 3; i++) {
        const a = fetch(first, n);
        order.push(a.sequence);
        n = a.sequence + 1;
      }
      assert.deepEqual(order, [1, 6, 2], 'the alias is answered in turn with the flooded main address');
      assert.deepEqual(first.answers[1]?.mailbox, alias);
      // Two fetches sent before their answers came (the same n): two different entries, no repeat.
      const p1 = fetch(first, n);
      const p2 = fetch(first, n);
      assert.deepEqual([p1.sequence, p2.sequence], [7, 3]);
      // The link closes with 7 and 3 taken by the client but only 2 confirmed (n = 3).
      assert.deepEqual([boxes.peek(owner)?.seq, boxes.peekAddress(owner, alias, 0)?.seq], [3, 7], 'confirmed: 1, 6, 2');
      (first as { isOpen: boolean }).isOpen = false;
      sessions.linked();
      const second = clientLink(owner, codec);
      sessions.opened(second);
      // The client names 3, the last it took on the closed link: 7 (handed before it there) goes too.
      const next = fetch(second, 4);
      assert.equal(next.sequence, 4);
      assert.equal(boxes.peekAddress(owner, alias, 0), null, 'the alias entry confirmed on the old link is deleted');
      // Naming the same entry again, or one long gone, deletes nothing more and answers nothing twice.
      const before = boxes.pendingDeletions;
      fetch(second, 4);
      fetch(second, 2);
      assert.equal(boxes.pendingDeletions, before, 'idempotent');
      const seen = second.answers.filter((a) => !a.empty).map((a) => a.sequence);
      assert.deepEqual(seen, [4, 5], 'each remaining entry once, then empty');
      assert.equal(second.answers.at(-1)?.empty, true);
      fetch(second, 6); // confirms 5 (and 4 before it)
      await Promise.all([boxes.flush(), writer.release()]);
      assert.equal(store.count(owner), 0, 'everything confirmed is deleted, nothing else was');
      // A deleted entry is never answered again, even to a fetch from the start on a new link.
      const third = clientLink(owner, codec);
      sessions.opened(third);
      assert.equal(fetch(third, 0).empty, true);
      store.check();
    } finally {
      store.close();
    }
  });
});

describe('the writer thread', () => {
  test('does every write: the main thread’s connection is never written through, and entries are durable once reported', async () => {
    const path = freshPath();
    const raw = openMailboxStore(path);
    const w = watched(raw, true);
    const clock = fakeClock();
    const writer = await openWorkerMailboxWriter(path, { clock, maxPerMailbox: 3 });
    const boxes = new GatewayMailbox({ deletionCommitMs: 1 }, { reader: w.store, writer, clock: { ...clock, setTimer: (fn, ms) => setTimeout(fn, ms), clearTimer: (t) => clearTimeout(t as NodeJS.Timeout) } });
    try {
      boxes.register(recipient(0));
      const results = await Promise.all([1, 2, 3, 4].map((t) => boxes.submit(entry(0, t))));
      assert.deepEqual(results, [{ ok: true, seq: 1 }, { ok: true, seq: 2 }, { ok: true, seq: 3 }, { ok: false, code: 'ERR_MAILBOX_FULL' }]);
      assert.equal(raw.count(recipient(0)), 3, 'committed before reported: another connection sees the entries');
      assert.equal(raw.peek(recipient(0))?.storedAt, clock.t, 'stamped with the gateway’s clock');
      boxes.deleteBelow(recipient(0), 3);
      assert.equal(boxes.peek(recipient(0))?.seq, 3);
      assert.deepEqual(await boxes.submit(entry(0, 5)), { ok: true, seq: 4 }, 'the deletions rode with the delivery and made room');
      await boxes.close();
      assert.deepEqual(w.writes, []);
      assert.deepEqual([raw.peek(recipient(0))?.seq, raw.count(recipient(0))], [3, 2]);
      raw.check();
      await assert.rejects(writer.commit({ registrations: [], deletions: [], entries: [] }), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
    } finally {
      await boxes.close();
      raw.close();
    }
  });

  test('a crash before the deletion’s commit hands the entry out again to a fetch from before it, and never to one from after it', async () => {
    const path = freshPath();
    const raw = openMailboxStore(path);
    raw.register(recipient(0));
    raw.storeBatch([entry(0, 1), entry(0, 2)]);
    let worker: Worker | null = null;
    const writer = await openWorkerMailboxWriter(path, {
      spawnWorker: (url, opts: { workerData: WriterWorkerData }) => (worker = new Worker(url, opts)),
    });
    const clock = fakeClock(); // its timer never fires: the deletion is never committed
    const boxes = new GatewayMailbox({}, { reader: raw, writer, clock });
    boxes.deleteBelow(recipient(0), 2);
    assert.equal(boxes.peek(recipient(0))?.seq, 2);
    // The crash: the writer thread dies before anything reaches it, and the process's memory is gone.
    const dying = worker!.terminate();
    const pending = boxes.submit(entry(0, 3));
    await dying;
    await assert.rejects(pending, (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'), 'a delivery in flight is not reported stored');
    raw.close();
    const again = openMailboxStore(path);
    try {
      const restarted = new GatewayMailbox({}, { reader: again, writer: inlineMailboxWriter(again), clock: fakeClock() });
      assert.equal(restarted.peek(recipient(0), 1)?.seq, 2, 'a client that has entry 1 fetches from 2 and never sees it again');
      assert.equal(restarted.peek(recipient(0))?.seq, 1, 'entry 1 is still there: the deletion was lost');
      assert.deepEqual(restarted.peek(recipient(0))?.payload, payload(1));
      assert.equal(again.count(recipient(0)), 2, 'nothing reported stored is lost, and the delivery in flight was not stored');
      restarted.deleteBelow(recipient(0), 2);
      await restarted.close();
      assert.equal(again.peek(recipient(0))?.seq, 2, 'that fetch deletes it again');
    } finally {
      again.close();
    }
  });

  test('a store the thread cannot open fails the open with ERR_MAILBOX_STORE', async () => {
    const path = join(root, 'not-a-store.sqlite');
    const s = openMailboxStore(path);
    s.close();
    writeFileSync(path, 'this is not a database, just text that is long enough to have a header'.repeat(20));
    await assert.rejects(openWorkerMailboxWriter(path), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
  });
});
