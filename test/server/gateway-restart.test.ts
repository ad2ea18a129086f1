/**
 * A gateway that starts before it has a document (as after a restart) and is linked by a
 * layer-3 mix at once: the link first looks like a client's. Once the document names the mix,
 * its packets are deliveries, stored in the recipient's mailbox, not dropped as `not_final`.
 * The gateway runs as a server's does, with its writer thread: its own connection to the store is
 * never written through.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { createGateway } from '../../src/server/gateway.js';
import type { Gateway } from '../../src/server/gateway.js';
import { openMailboxStore } from '../../src/server/mailbox.js';
import type { MailboxStore } from '../../src/server/mailbox.js';
import { openWorkerMailboxWriter } from '../../src/server/mailbox-writer.js';
import type { Link } from '../../src/link/link.js';
import { connectTcp } from '../../src/link/tcp.js';
import { encodeForwardPayload } from '../../src/sphinx/payload.js';
import { systemClock } from '../../src/ops/clock.js';
import { silentLogger } from '../../src/ops/log.js';
import { nodeMetrics, readSample } from '../../src/ops/metrics.js';
import type { NodeMetrics } from '../../src/ops/metrics.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { WireCodec } from '../../src/wire/commands.js';

const c = nodeBackend;
const params: NetworkParameters = { epochPeriodMs: 3_600_000, hops: 5, userPayloadLength: 200, withSurb: false, layers: 3, mixMeanDelayMs: 1, sendRatePerS: 1, loopRatePerS: 1, fetchRatePerS: 1, gatewayRatePerClientPerS: 1 };
const g = geometryFromUserPayload(params.hops, params.userPayloadLength, params.withSurb);
const codec = new WireCodec({ packetLength: g.packetLength });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function keypair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const privateKey = c.randomBytes(32);
  return { privateKey, publicKey: c.x25519Base(privateKey) };
}

describe('a gateway linked by its previous layer before it has a document', { timeout: 30_000 }, () => {
  const epoch = Math.floor(Date.now() / params.epochPeriodMs);
  const gwLink = keypair();
  const gwKey = keypair();
  const mixLink = keypair();
  const recipient = keypair().publicKey;
  const gwId = c.randomBytes(32);
  let dir: string;
  let mailbox: MailboxStore;
  let metrics: NodeMetrics;
  let gateway: Gateway;
  let feed: ((d: SignedDocument) => void) | null = null;
  let link: Link;
  let mainThreadWrites = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-gw-restart-'));
    mailbox = openMailboxStore(join(dir, 'mailbox.sqlite'));
    mailbox.register(recipient);
    const mailboxWriter = await openWorkerMailboxWriter(join(dir, 'mailbox.sqlite'));
    // The gateway's own connection: every write attempted through it is counted.
    const readOnly = new Proxy(mailbox, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (typeof v !== 'function') return v;
        if (['register', 'store', 'storeBatch', 'commitGroup', 'ack', 'ackBelow'].includes(String(prop))) {
          return () => {
            mainThreadWrites++;
            throw new Error('test: a write on the gateway thread');
          };
        }
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    metrics = nodeMetrics();
    gateway = createGateway(
      {
        name: 'gw',
        role: 'gateway',
        layer: 0,
        identityKey: gwId,
        linkKey: gwLink,
        listen: { host: '127.0.0.1', port: 0 },
        limits: { maxDelayMs: 1_000, maxQueuedPackets: 20, replayCacheEntries: 1_000, workers: 1 },
        params,
        clientRate: { perSecond: 100, burst: 100 },
      },
      {
        clock: systemClock,
        log: silentLogger,
        metrics,
        documents: {
          current: () => null,
          subscribe: (fn) => {
            feed = fn;
            return () => undefined;
          },
        },
        keys: { privateKey: (e) => (e === epoch ? gwKey.privateKey : null) },
        format: new Sphinx(g, c),
        mailbox: readOnly,
        mailboxWriter,
      },
    );
    await gateway.start();
  });

  after(async () => {
    await link?.close();
    await gateway?.stop();
    mailbox?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('treats the link as the previous layer once the document names it', async () => {
    // The mix links first, while the gateway knows nobody: it is taken for a client.
    link = await connectTcp({ host: '127.0.0.1', port: gateway.node.port, staticKey: mixLink.privateKey, remoteStatic: gwLink.publicKey, maxMessageLength: codec.commandLength });
    const node = (name: string, role: 'mix' | 'gateway', layer: number, id: Uint8Array, linkKey: Uint8Array, key: Uint8Array): DocumentNode => ({
      name,
      identityKey: id,
      linkKey,
      role,
      layer,
      tcpAddress: '127.0.0.1:1',
      wsAddress: null,
      mixKeys: [{ epoch, publicKey: key }],
    });
    feed!({
      document: { epoch, params, nodes: [node('gw', 'gateway', 0, gwId, gwLink.publicKey, gwKey.publicKey), node('mix-3', 'mix', 3, c.randomBytes(32), mixLink.publicKey, keypair().publicKey)] },
      bytes: new Uint8Array(0),
      signatures: [],
    });
    const sphinx = new Sphinx(g, c);
    const body = c.randomBytes(50);
    const packet = sphinx.createPacket([{ id: gwId, publicKey: gwKey.publicKey, commands: [{ type: 'recipient', id: recipient }] }], encodeForwardPayload(g, body, null));
    await link.send(codec.encode({ kind: 'send_packet', packet }));
    const end = Date.now() + 5_000;
    while (mailbox.peek(recipient) === null && Date.now() < end) await sleep(20);
    const entry = mailbox.peek(recipient);
    assert.ok(entry, 'delivered to the mailbox');
    assert.deepEqual(entry.payload.subarray(0, body.length), body);
    assert.equal(readSample(await metrics.registry.metrics(), 'backchannel_packets_dropped_total', { reason: 'not_final' }) ?? 0, 0);
    assert.equal(mainThreadWrites, 0, 'the writer thread did every write');
  });
});
