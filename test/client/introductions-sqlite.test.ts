// Introductions over the messenger's SQLite tables: the whole flow with every party's database
// closed and reopened between the steps (nothing lost, nothing listed twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteMessengerStore } from '../../src/client/messenger-store.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { triangle } from '../messaging/_triangle.js';
import type { Net, Party } from '../messaging/_net.js';

test('introductions over SQLite survive reopening every database between the steps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-intro-'));
  const opened = new Map<string, SqliteClientStore>();
  const open = (name: string): SqliteMessengerStore => {
    opened.get(name)?.close();
    const s = SqliteClientStore.open(join(dir, `${name}.db`));
    opened.set(name, s);
    return new SqliteMessengerStore(s);
  };
  const reopen = (net: Net, ...ps: Party[]): void => {
    for (const p of ps) net.restart(p, open(p.name));
  };
  try {
    const { net, a, b, c } = triangle(open);
    a.messenger.introduce('bob', 'carol');
    reopen(net, a);
    net.settle();
    reopen(net, a, b, c);
    const offered = (p: Party): number => p.messenger.introductions().find((i) => i.state === 'offered')!.id;
    b.messenger.acceptIntroduction(offered(b));
    reopen(net, b);
    net.settle();
    reopen(net, a, b);
    c.messenger.acceptIntroduction(offered(c), 'Bob B');
    net.settle();
    reopen(net, a, b, c);
    assert.deepEqual(a.messenger.introductions().map((i) => [i.role, i.names, i.answers, i.state]), [['made', ['bob', 'carol'], ['accepted', 'accepted'], 'done']]);
    assert.deepEqual(b.messenger.introductions().map((i) => [i.role, i.from, i.names, i.state]), [['received', 'alice', ['carol'], 'done']]);
    assert.deepEqual(c.messenger.introductions().map((i) => [i.names, i.state]), [[['Bob B'], 'done']]);
    b.messenger.sendText('carol', 'over sqlite');
    net.settle();
    reopen(net, c);
    assert.deepEqual(c.messenger.history('Bob B').map((h) => [h.direction, h.text]), [['in', 'over sqlite']]);
    assert.equal(b.messenger.history('carol')[0]!.state, 'delivered');
    assert.equal(b.messenger.safetyNumber('carol'), c.messenger.safetyNumber('Bob B'));
  } finally {
    for (const s of opened.values()) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
