/**
 * The whole network on loopback, started by `backchannel up`'s own code path (startLocalNetwork):
 * 11 processes, real sockets, real SQLite mailboxes. A test client sends 1,000 packets through
 * gateway-1 and three mix layers to a mailbox at gateway-2; each is delivered exactly once, each
 * SURB acknowledgement comes back; replays and flipped bits are dropped and counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import type { RunningLocalNetwork } from '../../src/local/up.js';
import { ensureLocalNetwork, startLocalNetwork } from '../../src/local/up.js';
import { networkStatus, statusJson } from '../../src/local/status.js';
import { readSample } from '../../src/ops/metrics.js';
import type { DocumentNode } from '../../src/pki/types.js';
import { toHex } from '../../src/util/bytes.js';
import { connectWs } from '../../src/link/ws-node.js';
import { dropSummary, raiseClientRate, scrape, TestClient } from '../helpers/mixnet-client.js';
import { buildInTime, nodeNamed, usableDocument } from '../helpers/documents.js';

const PACKETS = 1000;
const EPOCH_MS = 30_000;
const NODES = ['gateway-1', 'gateway-2', 'mix-1-1', 'mix-1-2', 'mix-2-1', 'mix-2-2', 'mix-3-1', 'mix-3-2'];

describe('a local network started like `backchannel up`', { timeout: 240_000 }, () => {
  let dir: string;
  let net: RunningLocalNetwork;
  let sender: TestClient;
  let receiver: TestClient;
  let gw1: DocumentNode;
  let gw2: DocumentNode;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bc-net-'));
    // Short mean delays keep the test quick; 30-second epochs so that a boundary may fall inside the run.
    // The tests below send bursts of up to 1,000 packets from one client, far past any client's
    // send clock; acknowledgements go only in the gateway's emission slots, so those come faster
    // than by default: 100/s per linked client lets 1,000 acknowledgements out in about 10 s,
    // well inside MAX_ACK_WAIT_MS and the keys' lifetime. Not faster: every slot without an
    // acknowledgement is a cover packet that the gateway builds and four hops unwrap, all the time.
    // At 250/s that cover alone kept the gateways' event loops late by 0.5-2 s on a loaded
    // machine, each of the test's 2,000 fetches waited that long, and the test ran past its limit.
    await ensureLocalNetwork({ dir, basePort: 31_000, params: { epochPeriodMs: EPOCH_MS, mixMeanDelayMs: 5, gatewayRatePerClientPerS: 100 } });
    raiseClientRate(dir);
    net = await startLocalNetwork({ dir });
    gw1 = nodeNamed(net.document, 'gateway-1');
    gw2 = nodeNamed(net.document, 'gateway-2');
    sender = new TestClient(net.document, gw1);
    receiver = new TestClient(net.document, gw2);
    await sender.connect();
    await receiver.connect();
  });

  after(async () => {
    await sender?.close();
    await receiver?.close();
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists every node in the consensus and reports them healthy in `status --json`', async () => {
    assert.equal(net.document.document.nodes.length, 8);
    const st = JSON.parse(statusJson(await networkStatus(net.network.servers))) as { epoch: number; nodes: Array<{ name: string; role: string; layer: number | null; healthy: boolean }> };
    assert.equal(typeof st.epoch, 'number');
    assert.equal(st.nodes.length, 11);
    assert.deepEqual(
      st.nodes.map((n) => n.role).sort(),
      ['authority', 'authority', 'authority', 'gateway', 'gateway', 'mix', 'mix', 'mix', 'mix', 'mix', 'mix'],
    );
    assert.ok(st.nodes.every((n) => n.healthy));
  });

  it(`carries ${PACKETS} packets to a mailbox, each exactly once, and returns every SURB acknowledgement`, async (t) => {
    // Where the time went, in the test's output: a slow run says which phase was slow.
    let phaseStart = Date.now();
    const phase = (name: string): void => {
      t.diagnostic(`${name}: ${Date.now() - phaseStart} ms`);
      phaseStart = Date.now();
    };
    // Every packet and every acknowledgement must arrive while the hops hold this epoch's keys.
    const sent = new Map<string, number>();
    const surbs = new Map<string, Uint8Array>();
    const { built: packets } = await buildInTime(net, NODES, EPOCH_MS / 3, (doc) => {
      sent.clear();
      surbs.clear();
      const out: Uint8Array[] = [];
      for (let i = 0; i < PACKETS; i++) {
        const body = nodeBackend.randomBytes(64);
        body[0] = i >> 8;
        body[1] = i & 0xff;
        const p = sender.buildPacket(doc, gw2, receiver.publicKey, body, { ackTo: sender, delayMs: 2 });
        sent.set(toHex(body), i);
        surbs.set(toHex(p.surbId!), p.surbKeys!);
        out.push(p.packet);
      }
      return out;
    });
    phase('waiting for a usable document and building');
    for (const p of packets) await sender.send(p);
    phase('sending');
    const got = await receiver.drain(PACKETS, 20_000);
    phase(`fetching ${got.length} entries`);
    const seen = new Set<string>();
    for (const f of got) {
      assert.equal(f.surbId, null);
      const key = toHex(f.payload.subarray(0, 64));
      assert.ok(sent.has(key), 'a delivered payload is one that was sent');
      assert.ok(!seen.has(key), 'no payload is delivered twice');
      assert.ok(f.payload.subarray(64).every((b) => b === 0), 'the rest of the body is the zero padding');
      seen.add(key);
    }
    if (seen.size !== PACKETS) assert.fail(`${seen.size} of ${PACKETS} packets arrived; drops:\n${await dropSummary(net.network.servers)}`);
    // Nothing more arrives later.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await receiver.fetchOne(), null);

    phaseStart = Date.now();
    const acks = await sender.drain(PACKETS, 20_000);
    phase(`fetching ${acks.length} acknowledgements`);
    const acked = new Set<string>();
    for (const a of acks) {
      assert.ok(a.surbId !== null);
      const keys = surbs.get(toHex(a.surbId));
      assert.ok(keys, 'an acknowledgement names a SURB that was sent');
      const plain = sender.sphinx.decryptSurbPayload(a.payload, keys);
      assert.ok(plain.every((b) => b === 0), 'an acknowledgement carries the zero payload');
      acked.add(toHex(a.surbId));
    }
    if (acked.size !== PACKETS) assert.fail(`${acked.size} of ${PACKETS} acknowledgements came back; drops:\n${await dropSummary(net.network.servers)}`);
  });

  it('drops replayed packets at the first hop and counts them', async () => {
    const doc = await usableDocument(net, NODES, { minRemainingMs: EPOCH_MS / 3 });
    const before = readSample(await scrape(net.network.server('gateway-1').opsUrl), 'backchannel_packets_dropped_total', { reason: 'replay' }) ?? 0;
    const p = sender.buildPacket(doc, gw2, receiver.publicKey, new TextEncoder().encode('once'), { delayMs: 1 });
    for (let i = 0; i < 6; i++) await sender.send(p.packet);
    const got = await receiver.drain(6, 3_000);
    assert.equal(got.length, 1, 'one copy delivered');
    assert.equal(new TextDecoder().decode(got[0]!.payload.subarray(0, 4)), 'once');
    const after = readSample(await scrape(net.network.server('gateway-1').opsUrl), 'backchannel_packets_dropped_total', { reason: 'replay' }) ?? 0;
    assert.equal(after - before, 5);
  });

  it('drops a packet with a flipped header bit at the first hop, and one with a flipped payload bit at the last, counting both', async () => {
    const doc = await usableDocument(net, NODES, { minRemainingMs: EPOCH_MS / 3 });
    const badPacket = async (name: string): Promise<number> =>
      readSample(await scrape(net.network.server(name).opsUrl), 'backchannel_packets_dropped_total', { reason: 'bad_packet' }) ?? 0;
    const before1 = await badPacket('gateway-1');
    const before2 = await badPacket('gateway-2');
    const header = sender.buildPacket(doc, gw2, receiver.publicKey, new Uint8Array(8), { delayMs: 1 }).packet;
    header[sender.geometry.betaOffset + 7]! ^= 0x10;
    const payload = sender.buildPacket(doc, gw2, receiver.publicKey, new Uint8Array(8), { delayMs: 1 }).packet;
    payload[sender.geometry.headerLength + 100]! ^= 0x01;
    await sender.send(header);
    await sender.send(payload);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && ((await badPacket('gateway-1')) < before1 + 1 || (await badPacket('gateway-2')) < before2 + 1)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const summary = await dropSummary(net.network.servers);
    assert.equal((await badPacket('gateway-1')) - before1, 1, summary);
    assert.equal((await badPacket('gateway-2')) - before2, 1, summary);
    assert.equal(await receiver.fetchOne(), null, 'neither was delivered');
  });

  it('counts malformed frames from a client and keeps serving it', async () => {
    const before = readSample(await scrape(net.network.server('gateway-1').opsUrl), 'backchannel_packets_dropped_total', { reason: 'malformed_frame' }) ?? 0;
    await sender.link.send(new Uint8Array(17).fill(0xee));
    await sender.link.send(new Uint8Array(sender.codec.commandLength).fill(0x07));
    // Any answer will do (acknowledgements of earlier tests may still be coming in): the link is served.
    await assert.doesNotReject(sender.fetchOne(), 'the gateway still answers on the same link');
    const after = readSample(await scrape(net.network.server('gateway-1').opsUrl), 'backchannel_packets_dropped_total', { reason: 'malformed_frame' }) ?? 0;
    assert.equal(after - before, 2);
  });

  it('serves clients over WebSocket as well, on the address its descriptor publishes', async () => {
    assert.ok(gw2.wsAddress, 'the gateway publishes a WebSocket address');
    const key = nodeBackend.randomBytes(32);
    const link = await connectWs({ url: gw2.wsAddress, staticKey: key, remoteStatic: gw2.linkKey, maxMessageLength: receiver.codec.commandLength });
    try {
      await link.send(receiver.codec.encode({ kind: 'retrieve_message', sequence: 0 }));
      const reply = receiver.codec.decode((await link.recv())!);
      assert.equal(reply.kind, 'message');
      assert.ok(reply.kind === 'message' && reply.empty, 'a new mailbox answers with an empty message');
    } finally {
      await link.close();
    }
  });
});
