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

test('a database made before introductions had "shown" gains the column; its rows count as shown, new rows do not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bc-intro-shown-'));
  try {
    const path = join(dir, 'old.db');
    const s = SqliteClientStore.open(path);
    s.database.exec(`CREATE TABLE msg_introductions (id INTEGER PRIMARY KEY AUTOINCREMENT, intro_id BLOB NOT NULL, role TEXT NOT NULL, contact_id INTEGER NOT NULL,
      other_contact_id INTEGER, name TEXT NOT NULL, state TEXT NOT NULL, answer1 INTEGER NOT NULL, answer2 INTEGER NOT NULL, card1 BLOB, card2 BLOB, parts BLOB,
      parts_mask INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`);
    s.database.prepare(`INSERT INTO msg_introductions (intro_id, role, contact_id, name, state, answer1, answer2, parts_mask, created_at, expires_at)
      VALUES (?, 'received', 1, 'carol', 'offered', 0, 0, 0, 1, 2)`).run(Buffer.alloc(16, 1));
    s.close();
    const reopened = SqliteClientStore.open(path);
    const store = new SqliteMessengerStore(reopened);
    assert.deepEqual(store.introductions().map((r) => [r.name, r.shown]), [['carol', 3]]);
    const id = store.insertIntroduction({ ...store.introductions()[0]!, introId: new Uint8Array(16).fill(2), name: 'dave', shown: 0 });
    const r = store.introduction(id)!;
    assert.equal(r.shown, 0);
    r.shown = 1;
    store.updateIntroduction(r);
    assert.equal(store.introduction(id)!.shown, 1);
    store.deleteIntroduction(id);
    assert.equal(store.introduction(id), null);
    // Opening again changes nothing.
    reopened.close();
    const again = SqliteClientStore.open(path);
    assert.deepEqual(new SqliteMessengerStore(again).introductions().map((x) => [x.name, x.shown]), [['carol', 3]]);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
