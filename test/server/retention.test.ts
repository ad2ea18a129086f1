/** Client records unseen for the retention period are forgotten with their mailboxes, in the SQLite store and the simulator's. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openMailboxStore } from '../../src/server/mailbox.js';
import type { MailboxStore } from '../../src/server/mailbox.js';
import { MemoryMailboxStore } from '../../src/sim/memory-mailbox.js';
import type { Clock } from '../../src/ops/clock.js';

const DAY = 24 * 3_600_000;
const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const payload = new Uint8Array(100).fill(1);

function run(name: string, open: (clock: Clock) => { store: MailboxStore; reader: MailboxStore; close(): void }) {
  test(`${name}: a client unseen since the bound is forgotten with its entries and extra mailboxes; one seen since stays`, () => {
    let now = 1_000 * DAY;
    const clock: Clock = { now: () => now, setTimer: () => null, clearTimer: () => undefined };
    const { store, reader, close } = open(clock);
    try {
      store.commitGroup({ registrations: [key(1), key(2), key(3)], deletions: [], entries: [] });
      store.commitGroup({ registrations: [], aliases: [{ kind: 'register', owner: key(2), mailbox: key(20) }], deletions: [], entries: [] });
      store.commitGroup({ registrations: [], deletions: [], entries: [1, 2, 3].map(() => ({ recipient: key(2), surbId: null, payload })) });
      assert.equal(store.total(), 3);
      assert.equal(reader.isRegistered(key(2)), true, 'the reader remembers it');
      now += 20 * DAY;
      store.commitGroup({ registrations: [], seen: [key(1)], deletions: [], entries: [] });
      now += 20 * DAY;
      // 30 days: key(1) was seen 20 days ago; key(2) and key(3) 40 days ago. One per sweep at most here.
      store.commitGroup({ registrations: [], deletions: [], entries: [], expire: { before: now - 30 * DAY, limit: 1 } });
      assert.equal(store.clients(), 2);
      store.commitGroup({ registrations: [], deletions: [], entries: [], expire: { before: now - 30 * DAY, limit: 10 } });
      assert.equal(store.clients(), 1);
      reader.forgetRegistered();
      assert.equal(reader.isRegistered(key(1)), true);
      assert.equal(reader.isRegistered(key(2)), false);
      assert.equal(reader.isRegistered(key(3)), false);
      assert.deepEqual(reader.route(key(20)), { kind: 'unknown' }, 'its extra mailbox is gone too');
      assert.equal(store.total(), 0);
      assert.equal(store.count(key(2)), 0);
      // Mail for it now is refused; it may come back as a new client.
      assert.deepEqual(store.commitGroup({ registrations: [], deletions: [], entries: [{ recipient: key(2), surbId: null, payload }] }), [{ ok: false, code: 'unknown_recipient' }]);
      store.commitGroup({ registrations: [key(2)], deletions: [], entries: [] });
      assert.equal(store.clients(), 2);
      store.check();
    } finally {
      close();
    }
  });
}

describe('server: client retention', () => {
  run('SQLite', (clock) => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-retention-'));
    const path = join(dir, 'mailbox.sqlite');
    const store = openMailboxStore(path, { clock });
    const reader = openMailboxStore(path, { clock });
    return {
      store,
      reader,
      close() {
        store.close();
        reader.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
  run('memory', (clock) => {
    const store = new MemoryMailboxStore(clock);
    return { store, reader: store, close: () => store.close() };
  });
});
