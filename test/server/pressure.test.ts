// What a server shows of the pressure it is under, over a real link listener flooded from another
// loopback address: the handshakes dropped and the connections refused appear in the metrics, the
// operations endpoint says "degraded" with the reason while it lasts, and an honest link still
// gets through.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { nodeBackend } from '../../src/crypto/node.js';
import { connectTcp, listenTcp } from '../../src/link/index.js';
import type { Link, LinkServer } from '../../src/link/index.js';
import { startOpsServer } from '../../src/ops/http.js';
import { readSample } from '../../src/ops/metrics.js';
import { watchPressure } from '../../src/server/pressure.js';

const serverKey = nodeBackend.randomBytes(32);
const clientKey = nodeBackend.randomBytes(32);

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

function silent(server: LinkServer, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: server.port, host: server.host, localAddress: from }, () => resolve(s));
    s.on('error', () => undefined);
    s.once('error', reject);
  });
}

describe('pressure on a server', () => {
  test('a flood of silent sockets shows in the metrics and as degraded health; an honest link still gets through', async () => {
    const links: Link[] = [];
    const server = await listenTcp({
      staticKey: serverKey,
      accept: () => true,
      onLink: (l) => links.push(l),
      maxPendingHandshakes: 4,
      maxPendingPerSource: 8,
      handshakeTimeoutMs: 5_000,
      gate: { maxPerSource: 4, maxTotal: 100, ratePerSource: { perSecond: 1000, burst: 1000 } },
    });
    cleanup.push(() => server.close());
    const registry = new Registry();
    let clock = 0;
    const pressure = watchPressure(registry, () => [{ name: 'link', stats: server.stats, gate: server.gate, pending: server.pending, links: server.links }], () => clock);
    cleanup.push(() => pressure.stop());
    const ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry, health: () => ({ healthy: true, degraded: pressure.degraded() }) });
    cleanup.push(() => ops.close());
    const health = async (): Promise<{ status: string; reasons?: string[] }> => (await (await fetch(`http://127.0.0.1:${ops.port}/healthz`)).json()) as { status: string; reasons?: string[] };
    assert.equal((await health()).status, 'ok');

    // Four silent sockets fill the handshake slots; the fifth is refused at the gate.
    const flood: Socket[] = [];
    for (let k = 0; k < 5; k++) flood.push(await silent(server, '127.0.0.2'));
    const deadline = Date.now() + 3_000;
    while ((server.pending < 4 || (server.gate?.refused.source_open ?? 0) < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const client = await connectTcp({ host: server.host, port: server.port, staticKey: clientKey, remoteStatic: nodeBackend.x25519Base(serverKey) });
    cleanup.push(() => client.close().then(() => undefined));
    assert.equal(server.stats.accepted, 1);
    assert.equal(server.stats.evicted, 1, 'the honest source took the oldest silent slot');

    const text = await registry.metrics();
    assert.equal(readSample(text, 'backchannel_link_handshakes_total', { listener: 'link', result: 'overloaded' }), 0);
    assert.equal(readSample(text, 'backchannel_link_handshakes_total', { listener: 'link', result: 'evicted' }), 1);
    assert.equal(readSample(text, 'backchannel_link_handshakes_total', { listener: 'link', result: 'accepted' }), 1);
    assert.equal(readSample(text, 'backchannel_connections_refused_total', { listener: 'link', reason: 'source_open' }), 1);
    assert.equal(readSample(text, 'backchannel_links_open', { listener: 'link' }), 1);
    assert.equal(readSample(text, 'backchannel_link_handshakes_pending', { listener: 'link' }), 3);
    assert.ok((readSample(text, 'backchannel_process_resident_bytes') ?? 0) > 1e6);
    assert.notEqual(readSample(text, 'backchannel_event_loop_lag_seconds', { quantile: '0.99' }), undefined);
    // Read again: counters only take in what is new.
    assert.equal(readSample(await registry.metrics(), 'backchannel_link_handshakes_total', { listener: 'link', result: 'evicted' }), 1);

    // The verdict is sampled every 5 s; it holds for a minute after the last refusal.
    const until = Date.now() + 15_000;
    while ((await health()).status !== 'degraded' && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const h = await health();
    assert.equal(h.status, 'degraded');
    assert.ok(h.reasons?.some((r) => /link/.test(r)), JSON.stringify(h));
    clock += 61_000;
    assert.equal((await health()).status, 'ok');
    for (const s of flood) s.destroy();
  });

  test('a rate limit or a full queue that drops packets makes the server degraded for a while, naming it', async () => {
    const registry = new Registry();
    let clock = 0;
    let fetchesDropped = 0;
    const pressure = watchPressure(registry, () => [], () => clock, () => new Map([['client fetches over their rate limit', fetchesDropped]]));
    cleanup.push(() => pressure.stop());
    assert.deepEqual(pressure.degraded(), []);
    fetchesDropped = 120;
    // Sampled every 5 s: wait for the sample that sees the growth.
    const until = Date.now() + 15_000;
    while (pressure.degraded().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pressure.degraded(), ['client fetches over their rate limit']);
    clock += 61_000;
    assert.deepEqual(pressure.degraded(), [], 'a minute after the last growth');
  });
});
