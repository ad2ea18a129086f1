/**
 * Extra mailboxes (aliases) at the gateway: a client's registration and revocation over its link
 * (decided at once, `pending` until durable, `ok` then), routing of mail for an alias into its
 * owner's queue with the alias as tag, the refusal of mail for a revoked alias as a counted drop,
 * the cap, a version-1 store migrated in place, and registrations that survive a restart.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Counter, Registry } from 'prom-client';
import { nodeBackend } from '../../src/crypto/node.js';
import { readSample } from '../../src/ops/metrics.js';
import { clientSessions } from '../../src/server/fetch.js';
import { GatewayMailbox } from '../../src/server/gateway-mailbox.js';
import type { MailboxStore } from '../../src/server/mailbox.js';
import { openMailboxStore } from '../../src/server/mailbox.js';
import { inlineMailboxWriter } from '../../src/server/mailbox-writer.js';
import { RateLimiter } from '../../src/server/rate-limit.js';
import { finalStage } from '../../src/server/store.js';
import type { FinalOutcome } from '../../src/server/store.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import type { PathHop } from '../../src/sphinx/sphinx.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { MemoryMailboxStore } from '../../src/sim/memory-mailbox.js';
import { ownMailbox } from '../../src/pki/intake.js';
import { WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { recordingLink } from '../helpers/recording-link.js';
import { alias, entry, fakeClock, payload, recipient } from './mailbox-compliance.js';

const root = mkdtempSync(join(tmpdir(), 'backchannel-aliases-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(root, `case-${n++}`, 'mailboxes.sqlite');

const OWNER = recipient(0);
const OTHER = recipient(1);

/** A gateway's mailbox over `store`, committing inline; flush() commits what waits. */
function gatewayMailbox(store: MailboxStore, options: { maxMailboxesPerClient?: number } = {}): GatewayMailbox {
  const boxes = new GatewayMailbox(options, { reader: store, writer: inlineMailboxWriter(store), clock: fakeClock(), schedule: (fn) => queueMicrotask(fn) });
  boxes.register(OWNER);
  boxes.register(OTHER);
  return boxes;
}

/** Asks until the answer is no longer `pending`, committing in between (what a client does on its fetch clock). */
async function until(boxes: GatewayMailbox, owner: Uint8Array, action: 'register' | 'revoke', mailbox: Uint8Array): Promise<string> {
  for (let i = 0; i < 5; i++) {
    const r = boxes.requestMailbox(owner, action, mailbox);
    if (r !== 'pending') return r;
    await boxes.flush();
  }
  return 'pending';
}

describe('gateway: extra mailbox requests', () => {
  for (const [name, make] of [
    ['SQLite', () => openMailboxStore(':memory:')],
    ['memory', () => new MemoryMailboxStore(fakeClock())],
  ] as const) {
    test(`a registration is pending until committed, then ok, and asking again is ok (${name})`, async () => {
      const store = make();
      const boxes = gatewayMailbox(store);
      assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'pending');
      assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'pending', 'asking again while it waits');
      assert.deepEqual(boxes.route(alias(1)), { kind: 'alias', owner: OWNER, revoked: false }, 'routed at once');
      assert.deepEqual(store.route(alias(1)), { kind: 'unknown' }, 'nothing written on this thread yet');
      await boxes.flush();
      assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: OWNER, revoked: false });
      assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'ok');
      assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'ok');
      assert.equal(boxes.pendingAliases, 0);
      await boxes.close();
      store.close();
    });

    test(`a client's own mailbox routes to it from its registration on, waiting or written, and nobody registers it (${name})`, async () => {
      const store = make();
      const boxes = gatewayMailbox(store);
      const third = recipient(2);
      const own = ownMailbox(nodeBackend, third);
      assert.deepEqual(boxes.route(own), { kind: 'unknown' }, 'before its owner registers');
      boxes.register(third);
      assert.deepEqual(boxes.route(own), { kind: 'own', owner: third }, 'while the registration waits');
      assert.deepEqual(store.route(own), { kind: 'unknown' });
      assert.equal(boxes.requestMailbox(OWNER, 'register', own), 'taken', "another client's own mailbox, while it waits");
      await boxes.flush();
      assert.deepEqual(store.route(own), { kind: 'own', owner: third });
      assert.deepEqual(boxes.route(own), { kind: 'own', owner: third });
      assert.equal(boxes.requestMailbox(OWNER, 'register', own), 'taken', "another client's own mailbox");
      assert.equal(boxes.requestMailbox(OWNER, 'revoke', own), 'taken');
      assert.equal(boxes.requestMailbox(third, 'register', own), 'invalid', 'its own');
      // Written straight into a group (a gateway that decided earlier), the store keeps it out too.
      store.commitGroup({ registrations: [], aliases: [{ kind: 'register', owner: OWNER, mailbox: own }, { kind: 'revoke', owner: OWNER, mailbox: own }], deletions: [], entries: [] });
      assert.deepEqual(store.route(own), { kind: 'own', owner: third });
      assert.equal(store.aliasCount(OWNER), 0);
      await boxes.close();
      store.close();
    });
  }

  test('another client cannot take, revoke or re-register an alias; main mailboxes and bad ids are refused', async () => {
    const store = openMailboxStore(':memory:');
    const boxes = gatewayMailbox(store);
    assert.equal(await until(boxes, OWNER, 'register', alias(1)), 'ok');
    assert.equal(boxes.requestMailbox(OTHER, 'register', alias(1)), 'taken');
    assert.equal(boxes.requestMailbox(OTHER, 'revoke', alias(1)), 'taken');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(2)), 'pending');
    assert.equal(boxes.requestMailbox(OTHER, 'register', alias(2)), 'taken', 'while it waits too');
    assert.equal(boxes.requestMailbox(OWNER, 'register', OTHER), 'taken', "another client's main mailbox");
    assert.equal(boxes.requestMailbox(OWNER, 'register', OWNER), 'invalid', 'its own main mailbox');
    assert.equal(boxes.requestMailbox(OWNER, 'register', new Uint8Array(32)), 'invalid', 'the drop-cover id');
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', new Uint8Array(32)), 'invalid');
    await boxes.flush();
    assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: OWNER, revoked: false });
    await boxes.close();
    store.close();
  });

  test('a revocation is pending, then ok; the alias is never registered again; a revocation replaces a waiting registration', async () => {
    const store = openMailboxStore(':memory:');
    const boxes = gatewayMailbox(store);
    assert.equal(await until(boxes, OWNER, 'register', alias(1)), 'ok');
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', alias(1)), 'pending');
    assert.deepEqual(boxes.route(alias(1)), { kind: 'alias', owner: OWNER, revoked: true }, 'refused at once');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'revoked');
    await boxes.flush();
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', alias(1)), 'ok');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'revoked');
    // Registered and revoked before any commit: only the revocation is written.
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(2)), 'pending');
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', alias(2)), 'pending');
    await boxes.flush();
    assert.deepEqual(store.route(alias(2)), { kind: 'alias', owner: OWNER, revoked: true });
    // Revoking what was never registered leaves a tombstone.
    assert.equal(await until(boxes, OWNER, 'revoke', alias(3)), 'ok');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(3)), 'revoked');
    await boxes.close();
    store.close();
  });

  test('the cap: a registration past maxMailboxesPerClient is refused with limit, counting those that wait; a revocation makes room', async () => {
    const store = openMailboxStore(':memory:', { maxMailboxesPerClient: 2 });
    const boxes = gatewayMailbox(store, { maxMailboxesPerClient: 2 });
    assert.equal(await until(boxes, OWNER, 'register', alias(1)), 'ok');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(2)), 'pending');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(3)), 'limit', 'one committed and one waiting fill the cap');
    assert.equal(boxes.requestMailbox(OTHER, 'register', alias(4)), 'pending', 'the cap is per client');
    await boxes.flush();
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(3)), 'limit');
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', alias(1)), 'pending');
    assert.equal(await until(boxes, OWNER, 'register', alias(3)), 'ok', 'a revocation waiting already frees its place');
    assert.equal(store.aliasCount(OWNER), 2);
    await boxes.close();
    store.close();
  });
});

describe('gateway: mail for extra mailboxes', () => {
  const c = nodeBackend;
  const g = geometryFromUserPayload(3, 200, true);
  const sphinx = new Sphinx(g, c);
  const hops = Array.from({ length: g.hops }, () => {
    const privateKey = c.randomBytes(32);
    return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
  });
  function arrive(to: Uint8Array, body: Uint8Array): FinalOutcome {
    const path: PathHop[] = hops.map((h, i) => ({ id: h.id, publicKey: h.publicKey, commands: i < hops.length - 1 ? [] : [{ type: 'recipient', id: to }] }));
    let p = sphinx.createPacket(path, encodeForwardPayload(g, body, null));
    for (let i = 0; i < hops.length; i++) {
      const r = sphinx.unwrap(hops[i]!.privateKey, p);
      if (r.kind === 'final') return { ...r, epoch: 1 };
      p = r.packet;
    }
    throw new Error('not final');
  }

  test('mail for an alias goes into its owner queue tagged with the alias; mail for a revoked one is dropped as mailbox_revoked', async () => {
    const store = openMailboxStore(':memory:');
    const boxes = gatewayMailbox(store);
    const stage = finalStage(sphinx, boxes);
    assert.equal(await until(boxes, OWNER, 'register', alias(1)), 'ok');
    const a = stage(arrive(alias(1), payload(1, 100)));
    assert.equal(a.kind, 'store');
    if (a.kind !== 'store') return;
    assert.deepEqual(a.entry.recipient, OWNER);
    assert.deepEqual(a.entry.mailbox, alias(1));
    const main = stage(arrive(OWNER, payload(2, 100)));
    assert.equal(main.kind === 'store' && main.entry.mailbox, null, 'the main mailbox carries no tag');
    assert.deepEqual(stage(arrive(alias(9), payload(3, 100))), { kind: 'drop', reason: 'unknown_recipient' });
    assert.equal(boxes.requestMailbox(OWNER, 'revoke', alias(1)), 'pending');
    assert.deepEqual(stage(arrive(alias(1), payload(4, 100))), { kind: 'drop', reason: 'mailbox_revoked' }, 'refused from the request on');
    await boxes.flush();
    assert.deepEqual(stage(arrive(alias(1), payload(4, 100))), { kind: 'drop', reason: 'mailbox_revoked' });
    // The owner's own mailbox takes SURB replies only: into its queue, tagged with it.
    assert.deepEqual(stage(arrive(ownMailbox(nodeBackend, OWNER), payload(5, 100))), { kind: 'drop', reason: 'unknown_recipient' }, 'forward mail for an own mailbox');
    const own = stage({ ...arrive(ownMailbox(nodeBackend, OWNER), payload(5, 100)), surbId: nodeBackend.randomBytes(16) });
    assert.ok(own.kind === 'store');
    assert.deepEqual(own.entry.recipient, OWNER);
    assert.deepEqual(own.entry.mailbox, ownMailbox(nodeBackend, OWNER));
    await boxes.close();
    store.close();
  });

  test("the owner's one fetch stream returns mail of every mailbox, each tagged; a mailbox_request gets exactly one mailbox_reply", async () => {
    const store = openMailboxStore(':memory:');
    const boxes = gatewayMailbox(store);
    const codec = new WireCodec({ packetLength: g.packetLength });
    const registry = new Registry();
    const requests = new Counter({ name: 'q', help: 'q', labelNames: ['action', 'result'] as const, registers: [registry] });
    const s = clientSessions({
      mailbox: boxes,
      limiter: new RateLimiter({ perSecond: 10, burst: 10, clock: fakeClock() }),
      codec,
      fetches: new Counter({ name: 'f', help: 'f', labelNames: ['result'] as const, registers: [registry] }),
      deletionsRefused: new Counter({ name: 'r', help: 'r', registers: [registry] }),
      mailboxRequests: requests,
      schedule: () => undefined,
    });
    const link = recordingLink(OWNER);
    s.opened(link);
    const ask = (mailbox: Uint8Array): WireCommand => {
      const before = link.frames.length;
      assert.deepEqual(s.command(link, { kind: 'mailbox_request', action: 'register', mailbox }), { kind: 'done' });
      assert.equal(link.frames.length, before + 1, 'exactly one frame answers');
      assert.equal(link.frames.at(-1)!.length, codec.commandLength);
      return codec.decode(link.frames.at(-1)!);
    };
    assert.deepEqual(ask(alias(1)), { kind: 'mailbox_reply', action: 'register', mailbox: alias(1), result: 'pending' });
    await boxes.flush();
    assert.deepEqual(ask(alias(1)), { kind: 'mailbox_reply', action: 'register', mailbox: alias(1), result: 'ok' });
    assert.equal(readSample(await registry.metrics(), 'q', { action: 'register', result: 'ok' }), 1);
    const stage = finalStage(sphinx, boxes);
    for (const [to, tag] of [[alias(1), 1], [OWNER, 2]] as const) {
      const a = stage(arrive(to, payload(tag, 100)));
      assert.equal(a.kind, 'store');
      if (a.kind === 'store') assert.equal((await boxes.submit(a.entry)).ok, true);
    }
    // The addresses are answered in turn (src/server/fetch.ts), the main mailbox first.
    s.command(link, { kind: 'retrieve_message', sequence: 0 });
    const first = codec.decode(link.frames.at(-1)!);
    assert.equal(first.kind === 'message' && first.sequence, 2);
    assert.equal(first.kind === 'message' && 'mailbox' in first, false, 'the main mailbox: no tag');
    s.command(link, { kind: 'retrieve_message', sequence: 3 });
    const second = codec.decode(link.frames.at(-1)!);
    assert.equal(second.kind === 'message' && second.sequence, 1);
    assert.deepEqual(second.kind === 'message' && second.mailbox, alias(1));
    await boxes.close();
    store.close();
  });
});

describe('gateway: extra mailboxes on disk', () => {
  test('registrations and revocations survive a restart of the gateway (a store closed and opened again)', async () => {
    const path = freshPath();
    let store = openMailboxStore(path);
    let boxes = gatewayMailbox(store);
    assert.equal(await until(boxes, OWNER, 'register', alias(1)), 'ok');
    assert.equal(await until(boxes, OWNER, 'register', alias(2)), 'ok');
    assert.equal(await until(boxes, OWNER, 'revoke', alias(2)), 'ok');
    await boxes.submit({ ...entry(0, 5), mailbox: alias(1) });
    await boxes.close();
    store.close();
    store = openMailboxStore(path);
    boxes = gatewayMailbox(store);
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(1)), 'ok', 'still registered');
    assert.equal(boxes.requestMailbox(OWNER, 'register', alias(2)), 'revoked', 'still revoked');
    assert.deepEqual(boxes.peek(OWNER)?.mailbox, alias(1));
    store.check();
    await boxes.close();
    store.close();
  });

  test('a version-1 store is migrated in place: its clients and entries are kept, and aliases work', () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const raw = new Database(path);
    raw.exec(`
      CREATE TABLE clients (recipient BLOB PRIMARY KEY, registered_at INTEGER NOT NULL, next_seq INTEGER NOT NULL, stored INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE messages (id INTEGER PRIMARY KEY, recipient BLOB NOT NULL, seq INTEGER NOT NULL, surb_id BLOB, payload BLOB NOT NULL, stored_at INTEGER NOT NULL, UNIQUE (recipient, seq));
      CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0), stored INTEGER NOT NULL);
      INSERT INTO totals (id, stored) VALUES (0, 1);
    `);
    raw.prepare('INSERT INTO clients VALUES (?, 1, 2, 1)').run(OWNER);
    raw.prepare('INSERT INTO messages (recipient, seq, surb_id, payload, stored_at) VALUES (?, 1, NULL, ?, 5)').run(OWNER, payload(7));
    raw.pragma('user_version = 1');
    raw.close();
    const store = openMailboxStore(path);
    store.check();
    assert.deepEqual(store.peek(OWNER)?.payload, payload(7));
    assert.equal(store.peek(OWNER)?.mailbox, undefined);
    store.commitGroup({ registrations: [], aliases: [{ kind: 'register', owner: OWNER, mailbox: alias(1) }], deletions: [], entries: [{ ...entry(0, 8), mailbox: alias(1) }] });
    assert.deepEqual(store.route(alias(1)), { kind: 'alias', owner: OWNER, revoked: false });
    assert.deepEqual(store.peek(OWNER, 1)?.mailbox, alias(1));
    assert.deepEqual(store.route(ownMailbox(nodeBackend, OWNER)), { kind: 'own', owner: OWNER }, 'a client of an older build gets its own mailbox');
    store.check();
    store.close();
    const again = new Database(path, { readonly: true });
    assert.equal(again.pragma('user_version', { simple: true }), 2);
    again.close();
  });
});
