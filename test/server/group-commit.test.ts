/**
 * GroupCommitter: requests of one turn share one transaction, results arrive only after the
 * commit, the queue is bounded, failures reach every request of the failed batch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BackchannelError, isBackchannelError } from '../../src/errors.js';
import { GroupCommitter } from '../../src/server/group-commit.js';
import type { MailboxEntry, StoreResult } from '../../src/server/mailbox.js';
import { openMailboxStore } from '../../src/server/mailbox.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-group-commit-'));
after(() => rmSync(root, { recursive: true, force: true }));

function entry(tag: number): MailboxEntry {
  return { recipient: new Uint8Array(32).fill(1), surbId: null, payload: Uint8Array.of(tag & 0xff, tag >> 8) };
}

/** A store that records its batches and numbers entries, and whose next batch can be made to fail. */
function spyStore(): { storeBatch(e: readonly MailboxEntry[]): StoreResult[]; batches: MailboxEntry[][]; failNext: boolean } {
  let seq = 0;
  const spy = {
    batches: [] as MailboxEntry[][],
    failNext: false,
    storeBatch(entries: readonly MailboxEntry[]): StoreResult[] {
      spy.batches.push([...entries]);
      if (spy.failNext) {
        spy.failNext = false;
        throw new BackchannelError('ERR_MAILBOX_STORE', 'mailbox: store failed');
      }
      return entries.map(() => ({ ok: true as const, seq: ++seq }));
    },
  };
  return spy;
}

/** A schedule the test runs by hand. */
function manualSchedule(): { schedule(fn: () => void): void; run(): void; queued: number } {
  let fns: (() => void)[] = [];
  return {
    schedule: (fn) => void fns.push(fn),
    run() {
      const now = fns;
      fns = [];
      for (const fn of now) fn();
    },
    get queued() {
      return fns.length;
    },
  };
}

describe('group commit', () => {
  test('requests made in one turn are written in one batch, in order', async () => {
    const store = spyStore();
    const gc = new GroupCommitter(store);
    const results = await Promise.all([1, 2, 3, 4].map((t) => gc.submit(entry(t))));
    assert.deepEqual(results, [1, 2, 3, 4].map((seq) => ({ ok: true, seq })));
    assert.equal(store.batches.length, 1);
    assert.deepEqual(store.batches[0]?.map((e) => e.payload[0]), [1, 2, 3, 4]);
  });

  test('a promise settles only after its batch was written', async () => {
    const store = spyStore();
    const sched = manualSchedule();
    const gc = new GroupCommitter(store, { schedule: sched.schedule });
    let settled = false;
    const p = gc.submit(entry(1)).then((r) => {
      settled = true;
      return r;
    });
    gc.submit(entry(2)).catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false);
    assert.equal(store.batches.length, 0);
    assert.equal(gc.pending, 2);
    assert.equal(sched.queued, 1, 'one wake-up for the whole turn');
    sched.run();
    assert.deepEqual(await p, { ok: true, seq: 1 });
    assert.equal(gc.pending, 0);
  });

  test('batches hold at most maxBatch entries, one batch per turn', async () => {
    const store = spyStore();
    const sched = manualSchedule();
    const gc = new GroupCommitter(store, { maxBatch: 3, schedule: sched.schedule });
    const all = Promise.all(Array.from({ length: 8 }, (_, i) => gc.submit(entry(i))));
    sched.run();
    assert.deepEqual(store.batches.map((b) => b.length), [3]);
    sched.run();
    sched.run();
    assert.deepEqual(store.batches.map((b) => b.length), [3, 3, 2]);
    assert.deepEqual((await all).map((r) => (r.ok ? r.seq : -1)), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('beyond maxPending a request is refused at once with ERR_MAILBOX_FULL', async () => {
    const store = spyStore();
    const sched = manualSchedule();
    const gc = new GroupCommitter(store, { maxPending: 2, schedule: sched.schedule });
    const a = gc.submit(entry(1));
    const b = gc.submit(entry(2));
    assert.deepEqual(await gc.submit(entry(3)), { ok: false, code: 'ERR_MAILBOX_FULL' });
    sched.run();
    assert.deepEqual([await a, await b], [{ ok: true, seq: 1 }, { ok: true, seq: 2 }]);
    const d = gc.submit(entry(4));
    sched.run();
    assert.deepEqual(await d, { ok: true, seq: 3 }, 'once the queue drained, requests are taken again');
  });

  test('a failed transaction rejects every request of its batch and only those', async () => {
    const store = spyStore();
    const sched = manualSchedule();
    const gc = new GroupCommitter(store, { maxBatch: 2, schedule: sched.schedule });
    const ps = [1, 2, 3].map((t) => gc.submit(entry(t)));
    store.failNext = true;
    sched.run();
    sched.run();
    const outcomes = await Promise.allSettled(ps);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'fulfilled']);
    assert.ok(outcomes[0]?.status === 'rejected' && isBackchannelError(outcomes[0].reason, 'ERR_MAILBOX_STORE'));
  });

  test('entries are copied at submit, so the caller may reuse its buffers', async () => {
    const store = spyStore();
    const gc = new GroupCommitter(store);
    const e = entry(7);
    const p = gc.submit(e);
    e.payload.fill(0);
    e.recipient.fill(0);
    await p;
    assert.equal(store.batches[0]?.[0]?.payload[0], 7);
    assert.equal(store.batches[0]?.[0]?.recipient[0], 1);
  });

  test('a malformed entry is rejected alone; flush writes at once; close refuses later requests', async () => {
    const store = spyStore();
    const sched = manualSchedule();
    const gc = new GroupCommitter(store, { maxBatch: 2, schedule: sched.schedule });
    await assert.rejects(gc.submit({ recipient: new Uint8Array(31), surbId: null, payload: new Uint8Array(1) }), RangeError);
    const ps = [1, 2, 3, 4, 5].map((t) => gc.submit(entry(t)));
    await gc.flush();
    assert.equal(gc.pending, 0);
    assert.deepEqual(store.batches.map((b) => b.length), [2, 2, 1]);
    assert.equal((await Promise.all(ps)).length, 5);
    const last = gc.submit(entry(6));
    await gc.close();
    assert.deepEqual(await last, { ok: true, seq: 6 }, 'close flushes first');
    await assert.rejects(gc.submit(entry(7)), (err: unknown) => isBackchannelError(err, 'ERR_MAILBOX_STORE'));
    await gc.close();
    sched.run();
    assert.equal(store.batches.length, 4, 'the wake-up left from before close writes nothing');
  });

  test('with a real store, results are the store’s, refusals included', async () => {
    const store = openMailboxStore(join(root, 'real.sqlite'), { maxPerMailbox: 2 });
    try {
      store.register(new Uint8Array(32).fill(1));
      const gc = new GroupCommitter(store);
      const results = await Promise.all([
        gc.submit(entry(1)),
        gc.submit(entry(2)),
        gc.submit(entry(3)),
        gc.submit({ recipient: new Uint8Array(32).fill(2), surbId: null, payload: new Uint8Array(1) }),
      ]);
      assert.deepEqual(results, [
        { ok: true, seq: 1 },
        { ok: true, seq: 2 },
        { ok: false, code: 'ERR_MAILBOX_FULL' },
        { ok: false, code: 'unknown_recipient' },
      ]);
      await gc.close();
    } finally {
      store.close();
    }
  });
});
