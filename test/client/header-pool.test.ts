// Header keys made ahead of the ticks (src/client/header-pool.ts): the pool fills, refills as the
// engine takes entries, is wiped on a new document and at stop, and the engine's packets built
// from it travel: every hop of a real Sphinx unwrap opens them (in virtual time, no network).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncX25519 } from '../../src/crypto/async-x25519.js';
import type { AsyncX25519 } from '../../src/crypto/async-x25519.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { Client } from '../../src/client/client.js';
import type { GatewayLink } from '../../src/client/client.js';
import { HeaderKeyPool } from '../../src/client/header-pool.js';
import { open, seal } from '../../src/client/envelope.js';
import { SqliteClientStore } from '../../src/client/sqlite-store.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { silentLogger } from '../../src/ops/log.js';
import { epochAt, epochStart } from '../../src/pki/document.js';
import { randomIntFrom } from '../../src/pki/route.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { equalBytes, isZero } from '../../src/util/bytes.js';
import { WireCodec } from '../../src/wire/commands.js';
import { seededBackend } from '../helpers/seeded.js';
import { ManualClock, bytes32, params as baseParams, testNetwork } from '../pki/fixtures.js';

const p: NetworkParameters = { ...baseParams };
const t0 = epochStart(epochAt(1_800_000_000_000, p.epochPeriodMs), p.epochPeriodMs) + 1000;
const epoch = epochAt(t0, p.epochPeriodMs);
const mixPrivate = (name: string, e: number): Uint8Array => bytes32(`mix private ${name} ${e}`);

/** A document whose nodes' mix keys have private keys we know (`mixPrivate`), for `label`'s network. */
function documentFor(label: string, docEpoch = epoch): SignedDocument {
  const epochs = [docEpoch - 1, docEpoch, docEpoch + 1];
  const nodes = testNetwork(label).map(
    (n) => n.descriptor(epochs, { mixKeys: epochs.map((e) => ({ epoch: e, publicKey: nodeBackend.x25519Base(mixPrivate(n.name, e)) })) }).desc,
  );
  return { document: { epoch: docEpoch, params: p, nodes }, bytes: new Uint8Array(0), signatures: [] };
}

/** An AsyncX25519 that keeps every array it returned: what the pool holds is among them. */
function recording(): AsyncX25519 & { outputs: Uint8Array[] } {
  const inner = syncX25519(nodeBackend);
  const outputs: Uint8Array[] = [];
  const keep = async (r: Promise<Uint8Array>): Promise<Uint8Array> => {
    const out = await r;
    outputs.push(out);
    return out;
  };
  return { name: 'recording', outputs, x25519: (s, q) => keep(inner.x25519(s, q)), x25519Base: (s) => keep(inner.x25519Base(s)) };
}

const ours = (doc: SignedDocument): DocumentNode => doc.document.nodes.find((n) => n.role === 'gateway')!;

describe('the header-key pool', () => {
  test('fills both kinds, hands out entries for its document, and wipes them all on a new document and at stop', async () => {
    const ax = recording();
    const pool = new HeaderKeyPool({ crypto: nodeBackend, x25519: ax, size: 3 });
    const doc1 = documentFor('pool-a');
    const rand = randomIntFrom(nodeBackend.randomBytes);
    pool.setTarget({ doc: doc1, ours: ours(doc1), rand });
    await pool.filled();
    assert.equal(pool.status().ready, 6);
    const entry = pool.take('forward', doc1)!;
    assert.equal(entry.doc, doc1);
    assert.equal(entry.nodes.length, 1 + p.layers);
    assert.equal(entry.nodes[0], ours(doc1));
    assert.deepEqual(entry.nodes.slice(1).map((n) => n.layer), [1, 2, 3]);
    assert.equal(pool.take('surb', doc1)!.nodes.length, p.layers);
    await pool.filled();
    assert.equal(pool.status().ready, 6, 'refilled after two were taken');
    assert.ok(ax.outputs.some((o) => !isZero(o)));
    assert.ok(entry.envelope !== null && equalBytes(entry.envelope.publicKey, nodeBackend.x25519Base(entry.envelope.secret)), 'a forward entry has an envelope key pair');
    entry.wipe();
    assert.ok(isZero(entry.envelope.secret));
    // A new document: every entry made for the old one is wiped, and the pool fills for the new one.
    const held = ax.outputs.length;
    const doc2 = documentFor('pool-b', epoch + 1);
    pool.setTarget({ doc: doc2, ours: ours(doc2), rand });
    const s = pool.status();
    assert.equal(s.ready, 0);
    assert.ok(s.discarded >= 6);
    // All but the one surb entry taken above (its taker's to wipe) are zero.
    const live = ax.outputs.slice(0, held).filter((o) => !isZero(o));
    assert.ok(live.length <= p.layers + 1, `${live.length} arrays of the old document still hold secrets`);
    await pool.filled();
    assert.equal(pool.status().ready, 6);
    assert.equal(pool.take('forward', doc1), null, 'no entry is handed out for another document');
    const e2 = pool.take('surb', doc2)!;
    assert.ok(e2.nodes.every((n) => doc2.document.nodes.includes(n)));
    assert.equal(e2.envelope, null);
    e2.wipe();
    await pool.filled();
    const before = ax.outputs.length;
    pool.stop();
    assert.equal(pool.status().ready, 0);
    assert.ok(ax.outputs.slice(held).every(isZero), 'stop wipes every entry');
    await pool.filled();
    assert.equal(ax.outputs.length, before, 'nothing is made after stop');
  });

  test('an entry being made when the document changes is wiped as it arrives', async () => {
    const ax = recording();
    const pool = new HeaderKeyPool({ crypto: nodeBackend, x25519: ax, size: 1 });
    const doc1 = documentFor('pool-c');
    const rand = randomIntFrom(nodeBackend.randomBytes);
    pool.setTarget({ doc: doc1, ours: ours(doc1), rand });
    pool.setTarget(null); // while the first entry is being made
    await pool.filled();
    assert.equal(pool.status().ready, 0);
    assert.ok(ax.outputs.length > 0 && ax.outputs.every(isZero));
  });
});

test('an envelope sealed with a key pair made ahead equals the one sealed with the same secret drawn at the time, and opens', () => {
  const aead = nodeNoiseCrypto.aead('ChaChaPoly');
  const mailboxPrivate = nodeBackend.randomBytes(32);
  const mailbox = nodeBackend.x25519Base(mailboxPrivate);
  const frame = nodeBackend.randomBytes(300);
  const e = nodeBackend.randomBytes(32);
  const drawn = seal({ ...nodeBackend, randomBytes: () => e.slice() }, aead, mailbox, frame);
  const key = { secret: e.slice(), publicKey: nodeBackend.x25519Base(e) };
  const ahead = seal({ ...nodeBackend, randomBytes: () => assert.fail('no randomness is drawn') }, aead, mailbox, frame, key);
  assert.deepEqual(ahead, drawn);
  assert.ok(isZero(key.secret), 'the secret is wiped');
  assert.deepEqual(open(nodeBackend, aead, mailboxPrivate, mailbox, ahead), frame);
});

/** A gateway link that keeps every packet put on it. */
class PacketLink implements GatewayLink {
  readonly packets: Uint8Array[] = [];
  readonly codec: WireCodec;
  #closed: ((v: null) => void) | null = null;
  constructor(codec: WireCodec) {
    this.codec = codec;
  }
  trySend(message: Uint8Array): boolean {
    const cmd = this.codec.decode(message);
    if (cmd.kind === 'send_packet') this.packets.push(cmd.packet.slice());
    return true;
  }
  send(message: Uint8Array): Promise<void> {
    this.trySend(message);
    return Promise.resolve();
  }
  recv(): Promise<Uint8Array | null> {
    return new Promise((r) => (this.#closed = r));
  }
  close(): Promise<void> {
    this.#closed?.(null);
    return Promise.resolve();
  }
}

test('the engine builds its packets from the pool: they unwrap at every hop, and the pool is wiped on a new document and at stop', async () => {
  const doc = documentFor('pool-engine');
  const byId = new Map(doc.document.nodes.map((n) => [n.identityKey.join(','), n]));
  const g = geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb);
  const codec = new WireCodec({ packetLength: g.packetLength });
  const link = new PacketLink(codec);
  const clock = new ManualClock(t0);
  const dir = mkdtempSync(join(tmpdir(), 'bc-pool-'));
  const store = SqliteClientStore.open(join(dir, 'client.db'));
  const ax = recording();
  const gateway = ours(doc);
  const client = new Client(
    { linkPrivateKey: bytes32('pool client'), gateway: gateway.identityKey },
    {
      clock,
      crypto: seededBackend(nodeBackend, bytes32('pool engine')),
      aead: nodeNoiseCrypto.aead('ChaChaPoly'),
      store,
      log: silentLogger,
      connect: () => Promise.resolve(link),
      headerKeys: { x25519: ax, poolSize: 4 },
    },
  );
  try {
    client.setDocument(doc);
    client.start();
    await clock.advanceTo(t0);
    await client.headerKeysFilled();
    assert.equal(client.headerKeyStatus()!.ready, 8);
    // Ten seconds of ticks, with the pool refilled between them (as the worker's idle time does).
    for (let t = t0; t < t0 + 10_000; t += 100) {
      await clock.advanceTo(t + 100);
      await client.headerKeysFilled();
    }
    const s = client.headerKeyStatus()!;
    assert.ok(link.packets.length >= 150, `${link.packets.length} packets`);
    assert.ok(s.pooled >= 2 * link.packets.length * 0.9, `pooled ${s.pooled}, synchronous ${s.synchronous}, packets ${link.packets.length}`);
    // Every packet, pooled or not, is a real Sphinx packet: our gateway, a mix per layer, a gateway.
    const sphinx = new Sphinx(g, nodeBackend);
    for (const packet of link.packets) {
      let node = gateway;
      let pk = packet;
      for (let hop = 0; ; hop++) {
        const r = sphinx.unwrap(mixPrivate(node.name, epoch), pk);
        if (r.kind === 'final') {
          assert.equal(hop, p.layers + 1);
          assert.equal(node.role, 'gateway');
          break;
        }
        assert.equal(r.packet.length, g.packetLength);
        node = byId.get(r.nextHop.join(','))!;
        assert.equal(node.role, hop < p.layers ? 'mix' : 'gateway');
        pk = r.packet;
      }
    }
    // A new document: the entries of the old one are wiped; the pool fills for the new one.
    const held = ax.outputs.length;
    client.setDocument(documentFor('pool-engine', epoch + 1));
    assert.equal(client.headerKeyStatus()!.ready, 0);
    assert.ok(ax.outputs.slice(0, held).every(isZero), 'nothing of the old document is left');
    await client.headerKeysFilled();
    assert.equal(client.headerKeyStatus()!.ready, 8);
    assert.ok(!ax.outputs.slice(held).every(isZero));
  } finally {
    await client.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(ax.outputs.every(isZero), 'stop wipes every entry');
  assert.ok(equalBytes(gateway.identityKey, ours(doc).identityKey));
});
