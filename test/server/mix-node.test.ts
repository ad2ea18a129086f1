/**
 * One mix node in this process over real Noise links on loopback, with a fixed document: the
 * test plays the previous layer (a gateway) and the next one (a layer-2 mix).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { connectTcp, listenTcp } from '../../src/link/tcp.js';
import type { Link } from '../../src/link/link.js';
import type { LinkServer } from '../../src/link/acceptor.js';
import { createMixNode } from '../../src/server/mix.js';
import { openReplayJournal } from '../../src/server/replay-journal.js';
import type { PacketNode } from '../../src/server/node.js';
import { systemClock } from '../../src/ops/clock.js';
import { silentLogger } from '../../src/ops/log.js';
import { nodeMetrics, readSample } from '../../src/ops/metrics.js';
import type { NodeMetrics } from '../../src/ops/metrics.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../../src/pki/types.js';
import type { PathHop } from '../../src/sphinx/sphinx.js';
import { Sphinx } from '../../src/sphinx/sphinx.js';
import { geometryFromUserPayload } from '../../src/sphinx/geometry.js';
import { WireCodec } from '../../src/wire/commands.js';

const c = nodeBackend;
const params: NetworkParameters = { epochPeriodMs: 3_600_000, hops: 5, userPayloadLength: 200, withSurb: false, layers: 3, mixMeanDelayMs: 1, sendRatePerS: 1, loopRatePerS: 1, fetchRatePerS: 1, gatewayRatePerClientPerS: 1 };
const g = geometryFromUserPayload(params.hops, params.userPayloadLength, params.withSurb);
const sphinx = new Sphinx(g, c);
const codec = new WireCodec({ packetLength: g.packetLength });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function keypair(): { privateKey: Uint8Array; publicKey: Uint8Array } {
  const privateKey = c.randomBytes(32);
  return { privateKey, publicKey: c.x25519Base(privateKey) };
}

describe('a mix node', { timeout: 60_000 }, () => {
  const epoch = Math.floor(Date.now() / params.epochPeriodMs);
  const mixLink = keypair();
  const mixKey = keypair();
  const gwLink = keypair();
  const sinkLink = keypair();
  const sinkKey = keypair();
  const farKey = keypair();
  const ids = { mix: c.randomBytes(32), gw: c.randomBytes(32), sink: c.randomBytes(32), far: c.randomBytes(32), stranger: c.randomBytes(32) };
  let sink: LinkServer;
  let received: Array<{ at: number; packet: Uint8Array }> = [];
  let mix: PacketNode;
  let metrics: NodeMetrics;
  let prev: Link;
  let theDoc: SignedDocument;

  const dropped = async (reason: string): Promise<number> => readSample(await metrics.registry.metrics(), 'backchannel_packets_dropped_total', { reason }) ?? 0;
  const hop = (id: Uint8Array, key: Uint8Array, commands: PathHop['commands'] = []): PathHop => ({ id, publicKey: key, commands });
  const toSink = (delayMs = 0): Uint8Array =>
    sphinx.createPacket([hop(ids.mix, mixKey.publicKey, delayMs ? [{ type: 'nodeDelay', delayMs }] : []), hop(ids.sink, sinkKey.publicKey, [{ type: 'recipient', id: new Uint8Array(32) }])], new Uint8Array(g.forwardPayloadLength));
  const send = (packet: Uint8Array): Promise<void> => prev.send(codec.encode({ kind: 'send_packet', packet }));

  before(async () => {
    sink = await listenTcp({
      staticKey: sinkLink.privateKey,
      maxMessageLength: codec.commandLength,
      accept: () => true,
      onLink: (link) => {
        void (async () => {
          for await (const m of link) {
            const cmd = codec.decode(m);
            if (cmd.kind === 'send_packet') received.push({ at: performance.now(), packet: cmd.packet });
          }
        })().catch(() => undefined);
      },
    });
    const n = (name: string, role: 'mix' | 'gateway', layer: number, id: Uint8Array, link: Uint8Array, key: Uint8Array, port: number): DocumentNode => ({
      name,
      identityKey: id,
      linkKey: link,
      role,
      layer,
      tcpAddress: `127.0.0.1:${port}`,
      wsAddress: null,
      mixKeys: [{ epoch, publicKey: key }],
    });
    const doc: SignedDocument = {
      document: {
        epoch,
        params,
        nodes: [
          n('gw', 'gateway', 0, ids.gw, gwLink.publicKey, keypair().publicKey, 1),
          n('mix', 'mix', 1, ids.mix, mixLink.publicKey, mixKey.publicKey, 0),
          n('sink', 'mix', 2, ids.sink, sinkLink.publicKey, sinkKey.publicKey, sink.port),
          n('far', 'mix', 3, ids.far, keypair().publicKey, farKey.publicKey, 1),
        ],
      },
      bytes: new Uint8Array(0),
      signatures: [],
    };
    theDoc = doc;
    await startMix(doc);
  });

  const journalDir = mkdtempSync(join(tmpdir(), 'bc-replay-journal-'));
  let journal = openReplayJournal(journalDir);

  /** Starts the mix (fresh metrics, the journal as it is) and links the test's previous layer to it. */
  async function startMix(doc: SignedDocument): Promise<void> {
    metrics = nodeMetrics();
    mix = createMixNode(
      {
        name: 'mix',
        role: 'mix',
        layer: 1,
        identityKey: ids.mix,
        linkKey: mixLink,
        listen: { host: '127.0.0.1', port: 0 },
        limits: { maxDelayMs: 1_000, maxQueuedPackets: 20, replayCacheEntries: 10_000, workers: 1 },
        params,
      },
      {
        clock: systemClock,
        log: silentLogger,
        metrics,
        documents: { current: () => doc, subscribe: () => () => undefined },
        keys: { privateKey: (e) => (e === epoch ? mixKey.privateKey : null) },
        format: sphinx,
        replayJournal: journal,
      },
    );
    await mix.start();
    prev = await connectTcp({ host: '127.0.0.1', port: mix.port, staticKey: gwLink.privateKey, remoteStatic: mixLink.publicKey, maxMessageLength: codec.commandLength });
  }

  after(async () => {
    await prev?.close();
    await mix?.stop();
    await sink?.close();
    journal.close();
    rmSync(journalDir, { recursive: true, force: true });
  });

  async function until(cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      assert.ok(Date.now() < end, 'condition not reached in time');
      await sleep(10);
    }
  }

  it('forwards a packet to the next layer after the delay it names, unwrapped and re-blinded', async () => {
    received = [];
    const packet = toSink(150);
    const t = performance.now();
    await send(packet);
    await until(() => received.length === 1);
    assert.ok(received[0]!.at - t >= 150, 'held for at least the delay');
    const out = received[0]!.packet;
    assert.notDeepEqual(out.subarray(g.alphaOffset, g.alphaOffset + 32), packet.subarray(g.alphaOffset, g.alphaOffset + 32));
    const last = sphinx.unwrap(sinkKey.privateKey, out);
    assert.equal(last.kind, 'final');
  });

  it('refuses links from nodes that are not in the previous layer', async () => {
    const stranger = keypair();
    await assert.rejects(
      connectTcp({ host: '127.0.0.1', port: mix.port, staticKey: stranger.privateKey, remoteStatic: mixLink.publicKey, maxMessageLength: codec.commandLength }).then(async (l) => {
        // The responder decides after the handshake; a refused link closes at once.
        const m = await l.recv();
        if (m === null) throw new Error('closed');
        return l;
      }),
    );
  });

  it('drops and counts replays, bad packets, malformed frames, wrong or unknown next hops, long delays and final hops', async () => {
    received = [];
    const before = {
      replay: await dropped('replay'),
      bad: await dropped('bad_packet'),
      frame: await dropped('malformed_frame'),
      wrong: await dropped('wrong_next_hop'),
      unknown: await dropped('unknown_next_hop'),
      delay: await dropped('delay_too_long'),
      final: await dropped('not_final'),
    };
    const p = toSink();
    await send(p);
    await send(p);
    const flipped = toSink();
    flipped[g.gammaOffset]! ^= 1;
    await send(flipped);
    await prev.send(new Uint8Array(5));
    await send(sphinx.createPacket([hop(ids.mix, mixKey.publicKey), hop(ids.far, farKey.publicKey, [{ type: 'recipient', id: new Uint8Array(32) }])], new Uint8Array(g.forwardPayloadLength)));
    await send(sphinx.createPacket([hop(ids.mix, mixKey.publicKey), hop(ids.stranger, farKey.publicKey, [{ type: 'recipient', id: new Uint8Array(32) }])], new Uint8Array(g.forwardPayloadLength)));
    await send(toSink(5_000));
    await send(sphinx.createPacket([hop(ids.mix, mixKey.publicKey, [{ type: 'recipient', id: new Uint8Array(32) }])], new Uint8Array(g.forwardPayloadLength)));
    await until(async () => (await dropped('not_final')) > before.final);
    assert.equal((await dropped('replay')) - before.replay, 1);
    assert.equal((await dropped('bad_packet')) - before.bad, 1);
    assert.equal((await dropped('malformed_frame')) - before.frame, 1);
    assert.equal((await dropped('wrong_next_hop')) - before.wrong, 1);
    assert.equal((await dropped('unknown_next_hop')) - before.unknown, 1);
    assert.equal((await dropped('delay_too_long')) - before.delay, 1);
    await until(() => received.length === 1);
    assert.ok(prev.isOpen, 'the link survives bad input');
  });

  it('restarted within the epoch, refuses a replay of a packet it forwarded before (the journal on disk)', async () => {
    received = [];
    const p = toSink();
    await send(p);
    await until(() => received.length === 1);
    await prev.close();
    await mix.stop();
    journal.close();
    journal = openReplayJournal(journalDir);
    await startMix(theDoc);
    await send(p);
    const fresh = toSink();
    await send(fresh);
    await until(async () => (await dropped('replay')) === 1 && received.length === 2);
    assert.equal(sphinx.unwrap(sinkKey.privateKey, received[1]!.packet).kind, 'final', 'only the fresh packet went on');
    assert.equal(statSync(join(journalDir, `${epoch}.tags`)).mode & 0o777, 0o600);
  });

  it('drops past its queue bound instead of growing', async () => {
    const before = await dropped('queue_full');
    const packets = Array.from({ length: 40 }, () => toSink(800));
    for (const p of packets) await send(p);
    await until(async () => (await dropped('queue_full')) - before >= 20);
    assert.equal((await dropped('queue_full')) - before, 20, 'exactly the packets beyond the bound of 20 are dropped');
  });
});
