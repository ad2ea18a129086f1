/**
 * `npm run bench -- mix`: one mix node (src/server, with its unwrap worker threads) over real Noise
 * links on loopback, zero delay. Two load threads (./mix-worker.ts) play its neighbours: the sink
 * builds the packets before any timing and receives them as the next hop, the sender sends them
 * as the previous hop; both stamp times into shared memory on the clock the threads share.
 *
 * - packets_per_s: packets sent as fast as the links take them, counted when the next hop has
 *   them: from the first send to the last receipt.
 * - added_latency_p50_ms / _p99_ms: at half that rate, the time from the previous hop's send to
 *   the next hop's receipt of each packet. It includes both link crossings, so it bounds what the
 *   mix adds from above.
 * - cpu_us_per_packet: the process's CPU time (every thread: the mix, its workers and the load)
 *   over the throughput run, per packet; and unwrap_us, one Sphinx unwrap on this thread in the
 *   same run. On a machine shared with other work the rate falls but these two hardly move, and
 *   2 cores / cpu_us_per_packet is the rate the run would reach alone on them.
 * The machine is shared with the load generator (2 cores here), which the figures include.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { geometryFromParameters } from '../src/sphinx/geometry.js';
import { Sphinx } from '../src/sphinx/sphinx.js';
import { createMixNode } from '../src/server/mix.js';
import { systemClock } from '../src/ops/clock.js';
import { silentLogger } from '../src/ops/log.js';
import { nodeMetrics, readSample, DROP_REASONS } from '../src/ops/metrics.js';
import type { NetworkParameters, SignedDocument, DocumentNode } from '../src/pki/types.js';
import { measure, percentile, round } from './_timing.js';
import type { MixWorkerData, ToParent, ToWorker } from './mix-worker.js';

const THROUGHPUT_PACKETS = 20_000;
const LATENCY_SECONDS = 2;

export async function benchMix(): Promise<Record<string, number>> {
  const c = nodeBackend;
  const params: NetworkParameters = {
    epochPeriodMs: 20 * 60_000,
    hops: 5,
    userPayloadLength: 2000,
    withSurb: true,
    layers: 3,
    mixMeanDelayMs: 0,
    sendRatePerS: 20,
    loopRatePerS: 5,
    fetchRatePerS: 10,
    gatewayRatePerClientPerS: 25,
  };
  const epoch = Math.floor(Date.now() / params.epochPeriodMs);
  const keypair = (): { privateKey: Uint8Array; publicKey: Uint8Array } => {
    const privateKey = c.randomBytes(32);
    return { privateKey, publicKey: c.x25519Base(privateKey) };
  };
  const mixLink = keypair();
  const mixKey = keypair();
  const nextMixKey = keypair();
  const senderLink = keypair();
  const sinkLink = keypair();
  const sinkKey = keypair();
  const ids = { mix: c.randomBytes(32), sender: c.randomBytes(32), sink: c.randomBytes(32) };
  // Enough packets for the throughput run and a latency run at half of a 12k/s guess; more if faster.
  const latencyPackets = Math.round(6000 * LATENCY_SECONDS);
  const total = THROUGHPUT_PACKETS + latencyPackets * 2;

  const sinkData: MixWorkerData = {
    role: 'sink',
    hops: params.hops,
    userPayloadLength: params.userPayloadLength,
    withSurb: params.withSurb,
    packets: total,
    mix: { id: ids.mix, mixPublic: mixKey.publicKey, mixPrivate: mixKey.privateKey },
    sink: { id: ids.sink, mixPublic: sinkKey.publicKey, linkPrivate: sinkLink.privateKey },
  };
  const threads: Worker[] = [];
  let failure: Error | null = null;
  const failed: (() => void)[] = [];
  /** Starts a load thread; `next(type)` waits for its next message of that type. */
  const start = (data: MixWorkerData): { post: (m: ToWorker) => void; next: <T extends ToParent['type']>(type: T) => Promise<Extract<ToParent, { type: T }>> } => {
    const worker = new Worker(new URL('./mix-worker.js', import.meta.url), { workerData: data });
    threads.push(worker);
    const waiting = new Map<string, (m: ToParent) => void>();
    const fail = (e: Error): void => {
      failure ??= e;
      for (const f of failed.splice(0)) f();
    };
    worker.on('message', (m: ToParent) => {
      if (m.type === 'failed') fail(new Error(`mix bench ${data.role}: ${m.message}`));
      const w = waiting.get(m.type);
      waiting.delete(m.type);
      w?.(m);
    });
    worker.on('error', fail);
    return {
      post: (m) => worker.postMessage(m),
      next: (type) =>
        new Promise((resolve, reject) => {
          if (failure) reject(failure);
          waiting.set(type, (m) => resolve(m as never));
          failed.push(() => reject(failure ?? new Error('mix bench thread failed')));
        }),
    };
  };

  process.stderr.write(`building ${total} packets...\n`);
  const sink = start(sinkData);
  const ready = await sink.next('ready');
  const sender = start({
    role: 'sender',
    shared: ready.shared,
    linkPrivate: senderLink.privateKey,
    mixLinkPublic: mixLink.publicKey,
    maxMessageLength: ready.shared.frameLength,
  });
  const sentAt = new Float64Array(ready.shared.sentAt);
  const receivedAt = new Float64Array(ready.shared.receivedAt);
  let nextPacket = 0;
  let receivedSoFar = 0;
  /** Sends `count` packets (as fast as the link takes them when `rate` is null) and waits until the sink has them or 30 s pass. */
  const run = async (count: number, rate: number | null): Promise<{ first: number; received: number }> => {
    const first = nextPacket;
    nextPacket += count;
    const received = sink.next('received');
    sink.post({ type: 'wait', target: receivedSoFar + count, timeoutMs: 30_000 + (rate === null ? 0 : (count / rate) * 1000) });
    const sent = sender.next('sent');
    sender.post({ type: 'send', start: first, count, rate });
    await sent;
    const now = (await received).received;
    const got = now - receivedSoFar;
    receivedSoFar = now;
    return { first, received: got };
  };

  const node = (name: string, role: 'mix' | 'gateway', layer: number, id: Uint8Array, link: Uint8Array, mix: Uint8Array, addr: string): DocumentNode => ({
    name,
    identityKey: id,
    linkKey: link,
    role,
    layer,
    tcpAddress: addr,
    wsAddress: null,
    mixKeys: [{ epoch, publicKey: mix }],
  });
  const doc: SignedDocument = {
    document: {
      epoch,
      params,
      nodes: [
        node('sender', 'gateway', 0, ids.sender, senderLink.publicKey, c.randomBytes(32), '127.0.0.1:1'),
        node('mix', 'mix', 1, ids.mix, mixLink.publicKey, mixKey.publicKey, '127.0.0.1:0'),
        node('sink', 'mix', 2, ids.sink, sinkLink.publicKey, sinkKey.publicKey, `127.0.0.1:${ready.sinkPort}`),
      ],
    },
    bytes: new Uint8Array(0),
    signatures: [],
  };
  // One unwrap on this thread, for scale: the CPU per packet is so many unwraps' worth.
  const sphinx = new Sphinx(geometryFromParameters(params), c);
  const probe = sphinx.createPacket(
    [
      { id: ids.mix, publicKey: mixKey.publicKey, commands: [] },
      { id: ids.sink, publicKey: sinkKey.publicKey, commands: [{ type: 'recipient', id: new Uint8Array(32) }] },
    ],
    new Uint8Array(sphinx.geometry.forwardPayloadLength),
  );
  const unwrapUs = measure(() => sphinx.unwrap(mixKey.privateKey, probe)).us;
  const metrics = nodeMetrics();
  const workers = process.env["BENCH_MIX_WORKERS"] !== undefined ? Number(process.env["BENCH_MIX_WORKERS"]) : availableParallelism();
  const mix = createMixNode(
    {
      name: 'bench-mix',
      role: 'mix',
      layer: 1,
      identityKey: ids.mix,
      linkKey: mixLink,
      listen: { host: '127.0.0.1', port: 0 },
      limits: { maxDelayMs: 60_000, maxQueuedPackets: 100_000, replayCacheEntries: 1_000_000, workers },
      params,
    },
    {
      clock: systemClock,
      log: silentLogger,
      metrics,
      documents: { current: () => doc, subscribe: () => () => undefined },
      keys: { privateKey: (e) => (e === epoch ? mixKey.privateKey : e === epoch + 1 ? nextMixKey.privateKey : null) },
      format: sphinx,
    },
  );
  await mix.start();
  try {
    const connected = sender.next('connected');
    sender.post({ type: 'connect', port: mix.port });
    await connected;
    // Warm-up: a small run first (JIT, worker start, links).
    await run(1000, null);
    process.stderr.write(`throughput: ${THROUGHPUT_PACKETS} packets...\n`);
    const cpuBefore = process.cpuUsage();
    const tp = await run(THROUGHPUT_PACKETS, null);
    const cpu = process.cpuUsage(cpuBefore);
    let firstSent = Infinity;
    let lastReceived = -Infinity;
    for (let i = tp.first; i < tp.first + THROUGHPUT_PACKETS; i++) {
      firstSent = Math.min(firstSent, sentAt[i]!);
      if (receivedAt[i]! > 0) lastReceived = Math.max(lastReceived, receivedAt[i]!);
    }
    const packetsPerS = tp.received / ((lastReceived - firstSent) / 1000);
    const rate = process.env['BENCH_MIX_LATENCY_RATE'] !== undefined ? Number(process.env['BENCH_MIX_LATENCY_RATE']) : packetsPerS / 2;
    if (!(rate > 0 && Number.isFinite(rate))) throw new Error(`mix bench: the latency rate must be a positive number of packets/s, got ${rate}`);
    const count = Math.min(total - THROUGHPUT_PACKETS - 1000, Math.round(rate * LATENCY_SECONDS));
    process.stderr.write(`latency: ${count} packets at ${Math.round(rate)}/s, evenly paced...\n`);
    const inside = async (): Promise<{ le1: number; all: number }> => {
      const t = await metrics.registry.metrics();
      return { le1: readSample(t, 'backchannel_processing_seconds_bucket', { le: '0.001' }) ?? 0, all: readSample(t, 'backchannel_processing_seconds_count') ?? 0 };
    };
    const insideBefore = await inside();
    const lat = await run(count, rate);
    const insideAfter = await inside();
    const latencies: number[] = [];
    for (let i = lat.first; i < lat.first + count; i++) if (receivedAt[i]! > 0) latencies.push(receivedAt[i]! - sentAt[i]!);
    const sorted = latencies.sort((a, b) => a - b);
    const text = await metrics.registry.metrics();
    let dropped = 0;
    const byReason: Record<string, number> = {};
    for (const r of DROP_REASONS) {
      const n = readSample(text, 'backchannel_packets_dropped_total', { reason: r }) ?? 0;
      dropped += n;
      if (n > 0) byReason[`dropped_${r}`] = n;
    }
    return {
      workers,
      packets: tp.received,
      packets_per_s: round(packetsPerS),
      cpu_us_per_packet: round((cpu.user + cpu.system) / tp.received),
      unwrap_us: round(unwrapUs),
      cpu_per_packet_over_unwrap: round((cpu.user + cpu.system) / tp.received / unwrapUs),
      latency_rate_per_s: round(rate),
      latency_packets: lat.received,
      added_latency_p50_ms: round(percentile(sorted, 50)),
      added_latency_p99_ms: round(percentile(sorted, 99)),
      added_latency_p90_ms: round(percentile(sorted, 90)),
      // Share of packets that spent at most 1 ms inside the mix (its own histogram), at half load.
      inside_mix_le_1ms: round((insideAfter.le1 - insideBefore.le1) / Math.max(1, insideAfter.all - insideBefore.all), 4),
      added_latency_max_ms: round(sorted[sorted.length - 1] ?? NaN),
      dropped,
      ...byReason,
      build_s: round(ready.buildMs / 1000),
    };
  } finally {
    await mix.stop();
    for (const t of threads) await t.terminate();
  }
}
