/**
 * `npm run bench -- client`: what the client costs and how fast it delivers.
 *
 * - create_cover_per_s, create_real_per_s: packets the engine builds and puts on a (stand-in)
 *   gateway link per second of process CPU time, driven in virtual time so that only building
 *   counts: idle (drop cover and loops) and with real fragments waiting (each also commits its
 *   SURB keys and attempt to SQLite). Each packet is a path, an acknowledgement SURB, an envelope
 *   and a Sphinx packet at the default geometry.
 * - cpu_us_per_packet_default_rate, cpu_share_default_rate: the same engine on the wall clock at
 *   the default rates (send 20/s + loop 5/s, fetch 30/s) for 10 seconds, three times: process CPU
 *   per packet that left, and CPU time over wall time, the median of the three runs.
 * - x25519_us: the process CPU time of one X25519 (the Node backend), measured in the same process
 *   before and after the runs above. The machine may be shared, so the ratios to it
 *   (…_over_x25519: CPU per packet in X25519s) are the figures to compare between runs.
 * - e2e_p50_ms, e2e_p99_ms: on a local network started as `backchannel up` starts it (separate
 *   processes, default parameters), two clients in this process: the time from `send` of a
 *   one-fragment message to its arrival in the other client's inbox. Compared with
 *   sum_mean_delays_ms (layers × mean mix delay, what Loopix's delays alone cost) and with
 *   expected_mean_ms, which adds the mean wait for a send slot (1 / send rate) and for a fetch
 *   (half the fetch interval). BENCH_CLIENT_MESSAGES=0 leaves this part out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../src/client/client.js';
import type { GatewayLink } from '../src/client/client.js';
import { encodeAddress } from '../src/client/address.js';
import { initClient, runClient } from '../src/client/node-client.js';
import { SqliteClientStore } from '../src/client/sqlite-store.js';
import { DEFAULT_PARAMS, LOCAL_NETWORK_EPOCH_MS } from '../src/config/params.js';
import { nodeBackend } from '../src/crypto/node.js';
import { startLocalNetwork, ensureLocalNetwork } from '../src/local/up.js';
import { nodeNoiseCrypto } from '../src/noise/crypto-node.js';
import type { Clock } from '../src/ops/clock.js';
import { systemClock } from '../src/ops/clock.js';
import { VirtualClock } from './_virtual-clock.js';
import { silentLogger } from '../src/ops/log.js';
import { epochAt } from '../src/pki/document.js';
import type { DocumentNode, NetworkParameters, SignedDocument } from '../src/pki/types.js';
import { measure, percentile, round } from './_timing.js';

const VIRTUAL_PACKETS = Number(process.env['BENCH_CLIENT_PACKETS'] ?? 1500);
const DEFAULT_RATE_SECONDS = Number(process.env['BENCH_CLIENT_SECONDS'] ?? 10);
const DEFAULT_RATE_RUNS = Number(process.env['BENCH_CLIENT_RUNS'] ?? 3);
const E2E_MESSAGES = Number(process.env['BENCH_CLIENT_MESSAGES'] ?? 100);

class CountingLink implements GatewayLink {
  packets = 0;
  readonly packetCommand: number;
  constructor(packetCommand: number) {
    this.packetCommand = packetCommand;
  }
  trySend(m: Uint8Array): boolean {
    if (m[1] === this.packetCommand) this.packets++;
    return true;
  }
  send(m: Uint8Array): Promise<void> {
    this.trySend(m);
    return Promise.resolve();
  }
  recv(): Promise<Uint8Array | null> {
    return new Promise(() => undefined);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A document of 3 layers of 2 mixes and 2 gateways with fresh keys, for building packets (no network). */
function syntheticDocument(params: NetworkParameters, epoch: number): SignedDocument {
  const node = (name: string, role: 'mix' | 'gateway', layer: number): DocumentNode => ({
    name,
    identityKey: nodeBackend.randomBytes(32),
    linkKey: nodeBackend.x25519Base(nodeBackend.randomBytes(32)),
    role,
    layer,
    tcpAddress: '127.0.0.1:1',
    wsAddress: null,
    mixKeys: [epoch, epoch + 1].map((e) => ({ epoch: e, publicKey: nodeBackend.x25519Base(nodeBackend.randomBytes(32)) })),
  });
  const nodes = [node('gw-1', 'gateway', 0), node('gw-2', 'gateway', 0)];
  for (let l = 1; l <= params.layers; l++) nodes.push(node(`mix-${l}-1`, 'mix', l), node(`mix-${l}-2`, 'mix', l));
  return { document: { epoch, params, nodes }, bytes: new Uint8Array(0), signatures: [] };
}

async function engine(clock: Clock, dir: string, params: NetworkParameters): Promise<{ client: Client; link: CountingLink; peer: string; store: SqliteClientStore }> {
  const doc = syntheticDocument(params, epochAt(clock.now(), params.epochPeriodMs));
  const store = SqliteClientStore.open(join(dir, 'client.db'));
  const link = new CountingLink(2 /* send_packet */);
  const gws = doc.document.nodes.filter((n) => n.role === 'gateway');
  const client = new Client(
    { linkPrivateKey: nodeBackend.randomBytes(32), gateway: gws[0]!.identityKey },
    { clock, crypto: nodeBackend, aead: nodeNoiseCrypto.aead('ChaChaPoly'), store, log: silentLogger, connect: () => Promise.resolve(link) },
  );
  client.setDocument(doc);
  client.start();
  await new Promise((r) => setImmediate(r)); // the link connects
  const peer = encodeAddress(nodeBackend, { gateway: gws[1]!.identityKey, mailbox: nodeBackend.x25519Base(nodeBackend.randomBytes(32)) });
  return { client, link, peer, store };
}

/** Packets built per second of CPU time, in virtual time; with `real`, real fragments fill every send slot. */
async function creationRate(real: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-client-'));
  const clock = new VirtualClock(Date.now());
  const { client, link, peer, store } = await engine(clock, dir, { ...DEFAULT_PARAMS });
  try {
    if (real) {
      // Enough one-fragment messages that a real fragment waits at every send slot.
      for (let i = 0; i < VIRTUAL_PACKETS; i++) client.send({ to: peer, body: nodeBackend.randomBytes(1000) });
    }
    const c0 = process.cpuUsage();
    while (link.packets < VIRTUAL_PACKETS && clock.step());
    const cpu = process.cpuUsage(c0);
    return link.packets / ((cpu.user + cpu.system) / 1e6);
  } finally {
    await client.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU per packet and CPU share at the default rates, on the wall clock. */
async function defaultRateCost(): Promise<{ cpuUsPerPacket: number; cpuShare: number; packets: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-client-'));
  const { client, link, store } = await engine(systemClock, dir, { ...DEFAULT_PARAMS });
  try {
    const c0 = process.cpuUsage();
    const p0 = link.packets;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, DEFAULT_RATE_SECONDS * 1000));
    const cpu = process.cpuUsage(c0);
    const cpuUs = cpu.user + cpu.system;
    const packets = link.packets - p0;
    return { cpuUsPerPacket: cpuUs / Math.max(1, packets), cpuShare: cpuUs / 1000 / (Date.now() - t0), packets };
  } finally {
    await client.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU microseconds of one X25519 with the Node backend, the unit of the same-run ratios. */
function x25519Us(): number {
  const scalar = nodeBackend.randomBytes(32);
  const point = nodeBackend.x25519Base(nodeBackend.randomBytes(32));
  return measure(() => nodeBackend.x25519(scalar, point)).cpuUs;
}

/** The median of `runs` runs of defaultRateCost, by CPU per packet. */
async function medianDefaultRateCost(runs: number): Promise<{ cpuUsPerPacket: number; cpuShare: number; packets: number }> {
  const all = [];
  for (let i = 0; i < runs; i++) all.push(await defaultRateCost());
  all.sort((a, b) => a.cpuUsPerPacket - b.cpuUsPerPacket);
  return all[Math.floor(all.length / 2)]!;
}

/** End-to-end latency of one-fragment messages between two clients on a local network. */
async function endToEnd(): Promise<{ p50: number; p99: number; params: NetworkParameters; n: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-e2e-'));
  const data = join(dir, 'network');
  process.stderr.write('client bench: starting a local network...\n');
  await ensureLocalNetwork({ dir: data, basePort: 32_000, params: { epochPeriodMs: LOCAL_NETWORK_EPOCH_MS } });
  const net = await startLocalNetwork({ dir: data });
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let done: (() => void) | null = null;
  try {
    await initClient({ dir: join(dir, 'alice'), network: data, gatewayName: 'gateway-1' });
    await initClient({ dir: join(dir, 'bob'), network: data, gatewayName: 'gateway-2' });
    const alice = await runClient({ dir: join(dir, 'alice'), log: silentLogger });
    const bob = await runClient({
      dir: join(dir, 'bob'),
      log: silentLogger,
      onEvent: (e) => {
        if (e.type !== 'message') return;
        const t = sentAt.get(Buffer.from(e.message.id).toString('hex'));
        if (t !== undefined) latencies.push(performance.now() - t);
        if (latencies.length === E2E_MESSAGES) done?.();
      },
    });
    try {
      const connected = (c: Client): Promise<void> =>
        new Promise((resolve) => {
          const check = (): void => (c.status().connected ? resolve() : void setTimeout(check, 100));
          check();
        });
      await Promise.all([connected(alice.client), connected(bob.client)]);
      await new Promise((r) => setTimeout(r, 2000)); // both mailboxes registered
      const all = new Promise<void>((r) => (done = r));
      for (let i = 0; i < E2E_MESSAGES; i++) {
        // One message every 250 ms: well under the send rate, so messages rarely queue behind each other.
        const r = alice.client.send({ to: bob.address, body: new TextEncoder().encode(`message ${i}`) });
        sentAt.set(Buffer.from(r.id).toString('hex'), performance.now());
        await new Promise((res) => setTimeout(res, 250));
      }
      await Promise.race([all, new Promise((r) => setTimeout(r, 60_000))]);
    } finally {
      await alice.stop();
      await bob.stop();
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), params: net.document.document.params, n: sorted.length };
  } finally {
    await net.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchClient(): Promise<Record<string, number>> {
  const x0 = x25519Us();
  const cover = await creationRate(false);
  const real = await creationRate(true);
  const cost = await medianDefaultRateCost(DEFAULT_RATE_RUNS);
  const x25519 = (x0 + x25519Us()) / 2;
  const cpu = {
    create_cover_per_s: round(cover),
    create_real_per_s: round(real),
    cpu_us_per_packet_default_rate: round(cost.cpuUsPerPacket),
    cpu_share_default_rate: round(cost.cpuShare, 4),
    packets_default_rate: cost.packets,
    x25519_us: round(x25519),
    create_cover_over_x25519: round(1e6 / cover / x25519),
    create_real_over_x25519: round(1e6 / real / x25519),
    cpu_per_packet_over_x25519: round(cost.cpuUsPerPacket / x25519),
  };
  if (E2E_MESSAGES === 0) return cpu;
  const e2e = await endToEnd();
  const p = e2e.params;
  const sumDelays = p.layers * p.mixMeanDelayMs;
  const expected = sumDelays + 1000 / p.sendRatePerS + 500 / p.fetchRatePerS;
  return {
    ...cpu,
    e2e_messages: e2e.n,
    e2e_p50_ms: round(e2e.p50),
    e2e_p99_ms: round(e2e.p99),
    sum_mean_delays_ms: sumDelays,
    expected_mean_ms: round(expected),
    e2e_p50_over_sum_delays: round(e2e.p50 / sumDelays, 3),
    e2e_p99_over_sum_delays: round(e2e.p99 / sumDelays, 3),
  };
}
