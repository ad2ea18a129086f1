/**
 * `npm run bench -- mix`: one mix node (src/mix, with its unwrap worker threads) over real Noise
 * links on loopback, zero delay. A worker thread (./mix-worker.ts) builds the packets before any
 * timing, sends them as the previous hop, and receives them as the next hop.
 *
 * - packets_per_s: packets sent as fast as the links take them, counted when the next hop has
 *   them: from the first send to the last receipt.
 * - added_latency_p50_ms / _p99_ms: at half that rate, the time from the previous hop's send to
 *   the next hop's receipt of each packet. It includes both link crossings, so it bounds what the
 *   mix adds from above.
 * The machine is shared with the load generator (2 cores here), which the figures include.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { createMixNode } from '../src/mix/mix.js';
import { systemClock } from '../src/ops/clock.js';
import { silentLogger } from '../src/ops/log.js';
import { nodeMetrics, readSample, DROP_REASONS } from '../src/ops/metrics.js';
import type { NetworkParameters, SignedDocument, DocumentNode } from '../src/pki/types.js';
import { percentile, round } from './_timing.js';
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

  const data: MixWorkerData = {
    hops: params.hops,
    userPayloadLength: params.userPayloadLength,
    withSurb: params.withSurb,
    packets: total,
    mix: { id: ids.mix, mixPublic: mixKey.publicKey, mixPrivate: mixKey.privateKey, linkPublic: mixLink.publicKey },
    sink: { id: ids.sink, mixPublic: sinkKey.publicKey, linkPrivate: sinkLink.privateKey },
    senderLinkPrivate: senderLink.privateKey,
  };
  const worker = new Worker(new URL('./mix-worker.js', import.meta.url), { workerData: data });
  const waiting = new Map<string, (m: ToParent) => void>();
  let failure: Error | null = null;
  worker.on('message', (m: ToParent) => {
    if (m.type === 'failed') failure = new Error(`mix worker: ${m.message}`);
    const w = waiting.get(m.type);
    waiting.delete(m.type);
    w?.(m);
  });
  worker.on('error', (e) => {
    failure = e;
  });
  const next = <T extends ToParent['type']>(type: T): Promise<Extract<ToParent, { type: T }>> =>
    new Promise((resolve, reject) => {
      if (failure) reject(failure);
      waiting.set(type, (m) => resolve(m as Extract<ToParent, { type: T }>));
      waiting.set('failed', () => reject(failure ?? new Error('mix worker failed')));
    });
  const post = (m: ToWorker): void => worker.postMessage(m);

  process.stderr.write(`building ${total} packets...\n`);
  const ready = await next('ready');

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
      crypto: c,
    },
  );
  await mix.start();
  try {
    post({ type: 'connect', port: mix.port });
    await next('connected');
    // Warm-up: a small run first (JIT, worker start, links).
    post({ type: 'throughput', count: 1000 });
    await next('throughput');
    process.stderr.write(`throughput: ${THROUGHPUT_PACKETS} packets...\n`);
    post({ type: 'throughput', count: THROUGHPUT_PACKETS });
    const tp = await next('throughput');
    const packetsPerS = tp.received / tp.seconds;
    const rate = packetsPerS / 2;
    const count = Math.min(total - THROUGHPUT_PACKETS - 1000, Math.round(rate * LATENCY_SECONDS));
    process.stderr.write(`latency: ${count} packets at ${Math.round(rate)}/s...\n`);
    const inside = async (): Promise<{ le1: number; all: number }> => {
      const t = await metrics.registry.metrics();
      return { le1: readSample(t, 'backchannel_processing_seconds_bucket', { le: '0.001' }) ?? 0, all: readSample(t, 'backchannel_processing_seconds_count') ?? 0 };
    };
    const insideBefore = await inside();
    post({ type: 'latency', count, rate });
    const lat = await next('latency');
    const insideAfter = await inside();
    const sorted = lat.latenciesMs.sort((a, b) => a - b);
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
    await worker.terminate();
  }
}
