// Extra mailboxes on the client: the store's records and keys (erased on revocation), the
// registrar's requests, and the engine in virtual time over a stand-in gateway link: a
// registration rides in place of a fetch until the gateway says ok, mail for the mailbox is opened
// with its key and tagged in the inbox, a revocation erases the key and is sent, a refusal is
// reported, a rotation revokes the old mailbox after its grace period.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { nodeBackend } from '../../src/crypto/node.js';
import { Client } from '../../src/client/client.js';
import type { GatewayLink } from '../../src/client/client.js';
import type { ClientEvent } from '../../src/client/api.js';
import { decodeAddress } from '../../src/client/address.js';
import { seal } from '../../src/client/envelope.js';
import { encodeMessage, fragmentFrames } from '../../src/client/frames.js';
import { MAILBOX_ANSWER_TIMEOUT_MS, MAILBOX_RETRY_MS, MailboxRegistrar } from '../../src/client/mailboxes.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import type { ExtraMailbox } from '../../src/client/store.js';
import { isBackchannelError } from '../../src/errors.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { silentLogger } from '../../src/ops/log.js';
import { epochAt, epochStart } from '../../src/pki/document.js';
import type { SignedDocument } from '../../src/pki/types.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { toHex } from '../../src/util/bytes.js';
import { MAX_EXTRA_MAILBOXES, WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock, bytes32, params, testNetwork } from '../pki/fixtures.js';

const aead = nodeNoiseCrypto.aead('ChaChaPoly');

function tempStore(): { store: SqliteClientStore; path: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'bc-mailboxes-'));
  const path = join(dir, 'client.db');
  const store = SqliteClientStore.open(path);
  return {
    store,
    path,
    done() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('client store: extra mailboxes', () => {
  test('a mailbox is stored with its key; a revocation erases the key for good; unknown ids are null', () => {
    const t = tempStore();
    try {
      const { store } = t;
      const id = new Uint8Array(32).fill(1);
      const key = new Uint8Array(32).fill(2);
      store.putMailbox(id, key, 1000);
      assert.deepEqual(store.mailboxKey(id), key);
      assert.deepEqual(store.mailboxes(), [{ id, createdAt: 1000, registered: false, refused: null, revokeAt: null, replacedBy: null, revokedAt: null, revokeConfirmed: false }]);
      assert.equal(store.updateMailbox(id, { registered: true })?.registered, true);
      assert.equal(store.updateMailbox(new Uint8Array(32).fill(9), { registered: true }), null);
      const revoked = store.updateMailbox(id, { revokedAt: 2000 });
      assert.equal(revoked?.revokedAt, 2000);
      assert.equal(store.mailboxKey(id), null);
      assert.equal(store.updateMailbox(id, { revokedAt: 3000 })?.revokedAt, 2000, 'the first revocation stays');
      // Nothing of the key is left in the row.
      const raw = new Database(t.path, { readonly: true });
      assert.equal((raw.prepare('SELECT private_key FROM mailboxes').get() as { private_key: unknown }).private_key, null);
      raw.close();
      assert.throws(() => store.updateMailbox(id, { refused: 'maybe' as never }), RangeError);
      assert.throws(() => store.putMailbox(new Uint8Array(31), key, 1), RangeError);
    } finally {
      t.done();
    }
  });

  test('a database made before the mailbox tables gets them when opened', () => {
    const t = tempStore();
    t.store.close();
    const raw = new Database(t.path);
    raw.exec('DROP TABLE mailboxes; DROP TABLE inbox_mailboxes;');
    raw.close();
    const again = SqliteClientStore.open(t.path);
    try {
      assert.deepEqual(again.mailboxes(), []);
      again.putMailbox(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2), 5);
      assert.equal(again.mailboxes().length, 1);
    } finally {
      again.close();
      rmSync(join(t.path, '..'), { recursive: true, force: true });
    }
  });

  test('a message is tagged with the extra mailbox of the fragment that completes it; main-mailbox messages have none', () => {
    const t = tempStore();
    try {
      const { store } = t;
      const assemble = (joined: Uint8Array): { body: Uint8Array; replySurbs: Uint8Array[] } => ({ body: joined, replySurbs: [] });
      const mb = new Uint8Array(32).fill(7);
      const r = store.putFragment({ messageId: new Uint8Array(16).fill(1), index: 0, count: 1, data: new Uint8Array([1]), receivedAt: 5, inReplyTo: null, mailbox: mb }, assemble);
      assert.equal(r.kind, 'complete');
      assert.deepEqual(r.kind === 'complete' && r.message.mailbox, mb);
      store.putFragment({ messageId: new Uint8Array(16).fill(2), index: 0, count: 1, data: new Uint8Array([2]), receivedAt: 6, inReplyTo: null }, assemble);
      const inbox = store.unconsumed(0, 10);
      assert.deepEqual(inbox.map((m) => m.mailbox), [mb, null]);
      assert.deepEqual(store.inboxMessage(new Uint8Array(16).fill(1))?.mailbox, mb);
    } finally {
      t.done();
    }
  });
});

function record(id: number, change: Partial<ExtraMailbox> = {}): ExtraMailbox {
  return { id: new Uint8Array(32).fill(id), createdAt: 0, registered: false, refused: null, revokeAt: null, replacedBy: null, revokedAt: null, revokeConfirmed: false, ...change };
}

describe('client: the mailbox registrar', () => {
  test('one request in flight; revocations and registrations until answered; pending is asked again later; a late answer is ignored', () => {
    const r = new MailboxRegistrar();
    const list = [record(1, { registered: true }), record(2), record(3, { revokedAt: 5 }), record(4, { refused: 'limit' })];
    const first = r.request(0, list);
    assert.deepEqual(first, { action: 'register', mailbox: list[1]!.id });
    assert.equal(r.request(1, list), null, 'one in flight');
    assert.deepEqual(r.answer({ kind: 'mailbox_reply', action: 'register', mailbox: list[2]!.id, result: 'ok' }, 2), { kind: 'ignored' });
    assert.deepEqual(r.answer({ kind: 'mailbox_reply', action: 'register', mailbox: list[1]!.id, result: 'pending' }, 2), { kind: 'pending' });
    assert.deepEqual(r.request(3, list), { action: 'revoke', mailbox: list[2]!.id }, 'the pending one waits; the next goes');
    assert.deepEqual(r.answer({ kind: 'mailbox_reply', action: 'revoke', mailbox: list[2]!.id, result: 'ok' }, 4), { kind: 'revoked', id: list[2]!.id, unexpected: null });
    assert.equal(r.request(5, [list[1]!]), null, 'not before the retry time');
    assert.deepEqual(r.request(2 + MAILBOX_RETRY_MS, [list[1]!]), { action: 'register', mailbox: list[1]!.id });
    assert.deepEqual(r.answer({ kind: 'mailbox_reply', action: 'register', mailbox: list[1]!.id, result: 'limit' }, 300), { kind: 'refused', id: list[1]!.id, reason: 'limit' });
  });

  test('an unanswered request is asked again after the timeout, and a lost link forgets it', () => {
    const r = new MailboxRegistrar();
    const list = [record(1)];
    assert.notEqual(r.request(0, list), null);
    assert.equal(r.request(MAILBOX_ANSWER_TIMEOUT_MS - 1, list), null);
    assert.notEqual(r.request(MAILBOX_ANSWER_TIMEOUT_MS, list), null);
    r.linkLost();
    assert.notEqual(r.request(MAILBOX_ANSWER_TIMEOUT_MS + 1, list), null);
  });
});

/** A gateway link that records every frame and answers what the test tells it to. */
class Link implements GatewayLink {
  readonly frames: WireCommand[] = [];
  readonly #inbox: Uint8Array[] = [];
  #waiting: ((m: Uint8Array | null) => void) | null = null;
  readonly codec: WireCodec;
  constructor(codec: WireCodec) {
    this.codec = codec;
  }
  /** When set, every mailbox request is answered ok at once, as a gateway whose commit is done. */
  autoAnswer = false;
  trySend(message: Uint8Array): boolean {
    const cmd = this.codec.decode(message);
    this.frames.push(cmd);
    if (this.autoAnswer && cmd.kind === 'mailbox_request') this.push({ kind: 'mailbox_reply', action: cmd.action, mailbox: cmd.mailbox, result: 'ok' });
    return true;
  }
  send(message: Uint8Array): Promise<void> {
    this.trySend(message);
    return Promise.resolve();
  }
  push(cmd: WireCommand): void {
    const m = this.codec.encode(cmd);
    const w = this.#waiting;
    this.#waiting = null;
    if (w !== null) w(m);
    else this.#inbox.push(m);
  }
  recv(): Promise<Uint8Array | null> {
    const m = this.#inbox.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((r) => (this.#waiting = r));
  }
  close(): Promise<void> {
    this.#waiting?.(null);
    return Promise.resolve();
  }
  requests(): Extract<WireCommand, { kind: 'mailbox_request' }>[] {
    return this.frames.filter((f): f is Extract<WireCommand, { kind: 'mailbox_request' }> => f.kind === 'mailbox_request');
  }
  /** Fetch ticks so far: every frame that is not a packet. */
  ticks(): number {
    return this.frames.filter((f) => f.kind !== 'send_packet').length;
  }
}

async function engine(seed: string) {
  const p = { ...params, fetchRatePerS: 10 };
  const t0 = epochStart(epochAt(1_800_000_000_000, p.epochPeriodMs), p.epochPeriodMs) + 1000;
  const epoch = epochAt(t0, p.epochPeriodMs);
  const nodes = testNetwork(seed).map((n) => n.descriptor([epoch - 1, epoch, epoch + 1]).desc);
  const doc: SignedDocument = { document: { epoch, params: p, nodes }, bytes: new Uint8Array(0), signatures: [] };
  const clock = new ManualClock(t0);
  const t = tempStore();
  const g = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
  const link = new Link(new WireCodec({ packetLength: g.packetLength }));
  const gateway = nodes.find((n) => n.role === 'gateway')!;
  const client = new Client(
    { linkPrivateKey: bytes32(`client ${seed}`), gateway: gateway.identityKey },
    { clock, crypto: seededBackend(nodeBackend, bytes32(`mailboxes ${seed}`)), aead, store: t.store, log: silentLogger, connect: () => Promise.resolve(link) },
  );
  const events: ClientEvent[] = [];
  client.subscribe((e) => events.push(e));
  client.setDocument(doc);
  client.start();
  await clock.advanceTo(t0);
  /** Mail for `mailbox` (sealed to it; null: our main mailbox), as the gateway hands it out under `sequence`. */
  const main = nodeBackend.x25519Base(bytes32(`client ${seed}`));
  const mail = (sequence: number, mailbox: Uint8Array | null, text: string): WireCommand => {
    const [frame] = fragmentFrames(g, nodeBackend.randomBytes(16), encodeMessage(g, new TextEncoder().encode(text), []));
    return { kind: 'message', sequence, queueHint: 0, empty: false, surbId: null, payload: seal(nodeBackend, aead, mailbox ?? main, frame!), mailbox };
  };
  return {
    client,
    link,
    clock,
    events,
    store: t.store,
    mail,
    step: (ms: number) => clock.advanceTo(clock.now() + ms),
    async done() {
      await client.stop();
      t.done();
    },
  };
}

describe('client engine: extra mailboxes', () => {
  test('a registration rides in place of fetches until the gateway says ok; mail to it is opened and tagged; a revocation erases its key and is sent', async () => {
    const h = await engine('register');
    try {
      const ticksBefore = h.link.ticks();
      const { id, address } = h.client.createMailbox();
      assert.deepEqual(decodeAddress(nodeBackend, address).mailbox, id);
      assert.equal(h.client.mailboxes().length, 1, 'durable at once');
      await h.step(1000);
      const asked = h.link.requests();
      assert.equal(asked.length, 1, 'one request in flight, no answer yet');
      assert.deepEqual(asked[0], { kind: 'mailbox_request', action: 'register', mailbox: id });
      // Every tick still sends exactly one frame: a request is a fetch tick's frame, not an extra one.
      assert.equal(h.link.ticks() - ticksBefore, 10);
      h.link.push({ kind: 'mailbox_reply', action: 'register', mailbox: id, result: 'pending' });
      await h.step(1000);
      assert.equal(h.link.requests().length, 2, 'asked again after pending');
      h.link.push({ kind: 'mailbox_reply', action: 'register', mailbox: id, result: 'ok' });
      await h.step(1000);
      assert.equal(h.link.requests().length, 2, 'no more once ok');
      assert.deepEqual(h.events.filter((e) => e.type === 'mailbox'), [{ type: 'mailbox', id, state: 'registered', reason: null }]);
      assert.equal(h.client.mailboxes()[0]!.registered, true);

      h.link.push(h.mail(1, id, 'to the extra mailbox'));
      h.link.push(h.mail(2, null, 'to the main mailbox'));
      await h.step(500);
      const inbox = h.client.unconsumed(0, 10);
      assert.deepEqual(inbox.map((m) => new TextDecoder().decode(m.body)), ['to the extra mailbox', 'to the main mailbox']);
      assert.deepEqual(inbox.map((m) => (m.mailbox === null ? null : toHex(m.mailbox))), [toHex(id), null]);

      h.client.revokeMailbox(id);
      h.client.revokeMailbox(id); // idempotent
      assert.equal(h.store.mailboxKey(id), null, 'the key is erased at once');
      await h.step(1000);
      assert.deepEqual(h.link.requests().at(-1), { kind: 'mailbox_request', action: 'revoke', mailbox: id });
      h.link.push({ kind: 'mailbox_reply', action: 'revoke', mailbox: id, result: 'ok' });
      h.link.push(h.mail(3, id, 'too late'));
      await h.step(1000);
      const invalid = h.client.status().entriesReceived.invalid;
      assert.equal(invalid, 1, 'mail for a revoked mailbox cannot be opened: dropped, counted');
      assert.equal(h.client.unconsumed(0, 10).length, 2);
      assert.equal(h.client.mailboxes()[0]!.revoked, true);
      assert.equal(h.client.mailboxes()[0]!.revokeConfirmed, true);
      assert.throws(() => h.client.revokeMailbox(new Uint8Array(32)), (e) => isBackchannelError(e, 'ERR_CLIENT_MAILBOX'));
    } finally {
      await h.done();
    }
  });

  test('a refusal is reported (event, record) and not asked again', async () => {
    const h = await engine('refused');
    try {
      const { id } = h.client.createMailbox();
      await h.step(300);
      h.link.push({ kind: 'mailbox_reply', action: 'register', mailbox: id, result: 'limit' });
      await h.step(2000);
      assert.equal(h.link.requests().length, 1);
      assert.deepEqual(h.events.filter((e) => e.type === 'mailbox'), [{ type: 'mailbox', id, state: 'refused', reason: 'limit' }]);
      assert.equal(h.client.mailboxes()[0]!.refused, 'limit');
    } finally {
      await h.done();
    }
  });

  test('a rotation makes a new mailbox, keeps the old one working through its grace period, then revokes it', async () => {
    const h = await engine('rotate');
    try {
      h.link.autoAnswer = true;
      const old = h.client.createMailbox();
      const fresh = h.client.rotateMailbox(old.id, 5000);
      const listed = h.client.mailboxes();
      assert.equal(listed.length, 2);
      assert.deepEqual(listed.find((m) => toHex(m.id) === toHex(old.id))?.replacedBy, fresh.id);
      await h.step(2000);
      h.link.push(h.mail(1, old.id, 'during the grace period'));
      await h.step(500);
      assert.equal(h.client.unconsumed(0, 10).length, 1);
      assert.notEqual(h.store.mailboxKey(old.id), null);
      await h.step(4000);
      assert.equal(h.store.mailboxKey(old.id), null, 'revoked once the grace period ended');
      assert.ok(h.link.requests().some((r) => r.action === 'revoke' && toHex(r.mailbox) === toHex(old.id)));
      assert.ok(h.link.requests().some((r) => r.action === 'register' && toHex(r.mailbox) === toHex(fresh.id)));
      assert.throws(() => h.client.rotateMailbox(old.id), (e) => isBackchannelError(e, 'ERR_CLIENT_MAILBOX'));
    } finally {
      await h.done();
    }
  });

  test(`at most ${MAX_EXTRA_MAILBOXES} mailboxes in use: one more is ERR_CLIENT_MAILBOX_LIMIT until one is revoked`, async () => {
    const h = await engine('limit');
    try {
      const ids = h.store.transaction(() => Array.from({ length: MAX_EXTRA_MAILBOXES }, () => h.client.createMailbox().id));
      assert.throws(() => h.client.createMailbox(), (e) => isBackchannelError(e, 'ERR_CLIENT_MAILBOX_LIMIT'));
      h.client.revokeMailbox(ids[0]!);
      h.client.createMailbox();
    } finally {
      await h.done();
    }
  });
});
