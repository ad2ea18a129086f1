// The client's invite manager on its SQLite store, in virtual time, against a real rendezvous
// service (no network): an invite made by one client and accepted by another ends with each
// holding the other's card, and it survives a restart of the inviter halfway (a new manager on
// the same database file goes on where the old one was).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeBackend } from '../../src/crypto/node.js';
import { InviteManager } from '../../src/client/invites.js';
import type { RendezvousSender } from '../../src/client/invites.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { STUB_CONTACT_PREFIX, stubContactExchange } from '../helpers/contact-stub.js';
import type { InviteEvent } from '../../src/messaging/invite.js';
import { encodeRendezvousAnswer } from '../../src/messaging/rendezvous.js';
import { RendezvousService } from '../../src/server/rendezvous.js';
import { silentLogger } from '../../src/ops/log.js';
import { ManualClock } from '../pki/fixtures.js';

const c = nodeBackend;

function sender(svc: RendezvousService, lost: { n: number }): RendezvousSender {
  return {
    rendezvous: (_channel, body) => {
      const answer = svc.handle(body).answer;
      if (lost.n > 0) {
        lost.n--;
        return Promise.resolve(null); // as a timed-out request
      }
      return Promise.resolve(encodeRendezvousAnswer(answer, 2000));
    },
  };
}

function manager(clock: ManualClock, store: SqliteClientStore, svc: RendezvousService, lost = { n: 0 }): { m: InviteManager; events: InviteEvent[] } {
  const m = new InviteManager({ clock, crypto: c, client: sender(svc, lost), store, exchange: stubContactExchange(c, store, 900), log: silentLogger });
  const events: InviteEvent[] = [];
  m.subscribe((_id, e) => events.push(e));
  return { m, events };
}

function card(store: SqliteClientStore, name: string): { ours: string; theirs: string } | null {
  const v = store.getSetting(`${STUB_CONTACT_PREFIX}${name}`);
  return v === null ? null : (JSON.parse(new TextDecoder().decode(v)) as { ours: string; theirs: string });
}

describe('the invite manager', () => {
  test('an invite survives a restart of the inviter and ends with both cards exchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-invites-'));
    try {
      const clock = new ManualClock(1_700_000_000_000);
      const svc = new RendezvousService({ clock });
      const storeA = SqliteClientStore.open(join(dir, 'a.db'));
      const storeB = SqliteClientStore.open(join(dir, 'b.db'));
      const a1 = manager(clock, storeA, svc, { n: 1 }); // the first answer is lost
      a1.m.start();
      const opened = a1.m.invite({ name: 'bob' });
      await clock.advanceTo(clock.t + 5_000);
      const codeEvent = a1.events.find((e) => e.type === 'code');
      assert.ok(codeEvent !== undefined && codeEvent.type === 'code');
      assert.equal(a1.m.get(opened.id)?.code, codeEvent.code);

      // The inviter's client stops, and a new one starts on the same database.
      a1.m.stop();
      const a2 = manager(clock, storeA, svc);
      a2.m.start();
      assert.equal(a2.m.get(opened.id)?.stage, 'open');

      const b = manager(clock, storeB, svc);
      b.m.start();
      b.m.accept({ code: codeEvent.code, name: 'alice' });
      for (let i = 0; i < 30 && !(a2.events.some((e) => e.type === 'done') && b.events.some((e) => e.type === 'done')); i++) await clock.advanceTo(clock.t + 2_000);
      assert.ok(a2.events.some((e) => e.type === 'done'), JSON.stringify(a2.events));
      assert.ok(b.events.some((e) => e.type === 'done'), JSON.stringify(b.events));
      const atA = card(storeA, 'bob');
      const atB = card(storeB, 'alice');
      assert.ok(atA !== null && atB !== null);
      assert.equal(atA.theirs, atB.ours);
      assert.equal(atB.theirs, atA.ours);
      // Accepting the same code again is refused at once, locally.
      assert.throws(() => b.m.accept({ code: codeEvent.code, name: 'again' }), (e: unknown) => (e as { code?: string }).code === 'ERR_INVITE_STATE');
      a2.m.stop();
      b.m.stop();
      storeA.close();
      storeB.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an invite nobody accepts expires with a clear error, and a cancelled one is burned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bc-invites-'));
    try {
      const clock = new ManualClock(1_700_000_000_000);
      const svc = new RendezvousService({ clock });
      const store = SqliteClientStore.open(join(dir, 'a.db'));
      const a = manager(clock, store, svc);
      a.m.start();
      const inv = a.m.invite({ name: 'nobody', lifetimeMs: 60_000 });
      for (let i = 0; i < 40 && a.m.get(inv.id)?.stage !== 'failed'; i++) await clock.advanceTo(clock.t + 2_000);
      assert.deepEqual(a.m.get(inv.id)?.failure?.code, 'ERR_INVITE_EXPIRED');
      const other = a.m.invite({ name: 'x' });
      await clock.advanceTo(clock.t + 2_000);
      a.m.cancel(other.id);
      assert.equal(a.m.get(other.id)?.stage, 'failed');
      assert.equal(a.m.get(other.id)?.code, null);
      a.m.stop();
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
