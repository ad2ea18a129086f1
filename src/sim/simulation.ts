/**
 * One simulation run: a whole network in virtual time, built from the real components.
 *
 * - Mix nodes and gateways are the servers' PacketNode (src/server/node.ts) with the
 *   simulator's clock, in-memory links (src/sim/transport.ts), labelled packets
 *   (src/sim/labelled.ts) and in-memory mailboxes. Their code paths are the servers': wire
 *   decoding, replay caches, delay queues, next-hop links, rate limits, acknowledgements.
 * - Clients are the real client engine (model "engine") or population clients (model
 *   "population", src/sim/population.ts) for large runs.
 * - The adversary watches every link (the transport's observer) and knows which mixes are
 *   corrupt; src/sim/anonymity.ts turns what it sees into sender entropy and epsilon.
 *
 * Owners (the numbers the transport and the observer use): gateways first, then the mixes layer
 * by layer, then the clients.
 */
import { Client } from '../client/client.js';
import type { ClientEvent } from '../client/api.js';
import { PoissonClock, uniform01 } from '../client/poisson.js';
import { SqliteClientStore } from '../client/sqlite-store.js';
import { nodeBackend } from '../crypto/node.js';
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError } from '../errors.js';
import { createGateway } from '../server/gateway.js';
import type { Gateway } from '../server/gateway.js';
import { createMixNode } from '../server/mix.js';
import { MAX_REPLAY_ENTRIES } from '../server/replay.js';
import type { RandomInt } from '../pki/route.js';
import type { PacketNode, PacketNodeComponents, PacketNodeInit } from '../server/node.js';
import { nodeNoiseCrypto } from '../noise/crypto-node.js';
import { silentLogger } from '../ops/log.js';
import { nodeMetrics } from '../ops/metrics.js';
import type { NodeMetrics } from '../ops/metrics.js';
import type { ConsensusDocument, DocumentNode, NetworkParameters, SignedDocument } from '../pki/types.js';
import { geometryFromUserPayload } from '../sphinx/geometry.js';
import { equalBytes, isZero, toHex } from '../util/bytes.js';
import { WireCodec } from '../wire/commands.js';
import { encodeAddress } from '../client/address.js';
import { ChallengeTracker, ExpWeightEntropy, SenderEntropyTracer, entropyOfWeights } from './anonymity.js';
import { SimClock } from './clock.js';
import { LabelledPackets, packetNumber } from './labelled.js';
import type { LabelledCreation } from './labelled.js';
import { MemoryMailboxStore } from './memory-mailbox.js';
import { PopulationClient } from './population.js';
import { seededStream, seededUniform } from './random.js';
import type { Scenario } from './scenario.js';
import { Slab } from './slab.js';
import { SimLink, SimNet } from './transport.js';

/** Packet kinds, as the simulator (not the adversary) knows them. */
export const KINDS = ['real', 'drop', 'loop', 'ack', 'reply'] as const;
export type Kind = (typeof KINDS)[number];
const KIND_CODE: Readonly<Record<Kind, number>> = { real: 0, drop: 1, loop: 2, ack: 3, reply: 4 };

export interface Distribution {
  readonly count: number;
  readonly mean: number;
  readonly p10: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface RunResult {
  readonly scenario: string;
  readonly repetition: number;
  readonly seed: string;
  /** Virtual time simulated (warm-up included), in time units. */
  readonly simulated: number;
  readonly wallSeconds: number;
  /** Simulation events (timers and link deliveries) run. */
  readonly events: number;
  readonly eventsPerSecond: number;
  /** Packets that left clients during the measured window, by kind; `fetch` counts mailbox fetches. */
  readonly packets: Readonly<Record<Kind | 'fetch', number>>;
  /** Cover packets (drop and loop) among all packets clients sent. */
  readonly coverShare: number;
  /** All packets clients sent per real packet: the bandwidth cost of the cover traffic. */
  readonly overhead: number;
  /** Network latency of real packets, from their client's link to the recipient's gateway, in time units. */
  readonly latency: Distribution;
  /** Up to 2 000 of the latencies, evenly spread, for plots. */
  readonly latencySamples: readonly number[];
  /** Engine clients only: from send() to the recipient's inbox, in time units. */
  readonly messageLatency: Distribution;
  /** Real messages written after the warm-up; of them, delivered, and reported failed by their sender (MAX_ATTEMPTS spent). */
  readonly messages: { readonly written: number; readonly delivered: number; readonly failed: number };
  /** Single mix: the observer (weights exp(-mu(T - t_i))), in bits; its theory log2(e·lambda/mu). */
  readonly entropy: (Distribution & { readonly theory: number }) | null;
  /** Network: sender entropy of real packets leaving the last layer, for the Theorem-1 observer, in bits. */
  readonly senderEntropy: (Distribution & { readonly truncated: number }) | null;
  /** The same over clients only (the weight on gateways, their cover and acknowledgements, left out and the rest normalised). */
  readonly clientSenderEntropy: Distribution | null;
  /** Loopix's epsilon at the end of the run (challenge scenarios). */
  readonly epsilon: { readonly mean: number; readonly messages: number; readonly linked: number } | null;
  /** Packets the nodes dropped, by reason (the servers' metrics). */
  readonly drops: Readonly<Record<string, number>>;
  readonly corruptMixes: number;
}

export interface RunOptions {
  /** Called now and then with the fraction of virtual time done. */
  readonly onProgress?: (fraction: number) => void;
}

/** Per-packet facts in a ring (bounded memory): packets alive at once must stay below RING. */
const RING_BITS = 22;
const RING = 1 << RING_BITS;

class PacketTable {
  readonly number = new Uint32Array(RING);
  readonly kind = new Uint8Array(RING);
  readonly owner = new Int32Array(RING);
  readonly sentAt = new Float64Array(RING);

  slot(n: number): number {
    const i = n & (RING - 1);
    return this.number[i] === n ? i : -1;
  }

  add(n: number, kind: number, owner: number): void {
    const i = n & (RING - 1);
    this.number[i] = n;
    this.kind[i] = kind;
    this.owner[i] = owner;
    this.sentAt[i] = NaN;
  }
}

function distribution(values: number[]): Distribution {
  if (values.length === 0) return { count: 0, mean: NaN, p10: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const v = values.slice().sort((a, b) => a - b);
  const at = (q: number): number => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  let sum = 0;
  for (const x of v) sum += x;
  return { count: v.length, mean: sum / v.length, p10: at(0.1), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v[v.length - 1]! };
}

/** At most `n` of `values`, evenly spaced. */
function spread(values: readonly number[], n: number): number[] {
  if (values.length <= n) return values.slice();
  return Array.from({ length: n }, (_, i) => values[Math.floor((i * values.length) / n)]!);
}

interface SimNode {
  readonly owner: number;
  readonly doc: DocumentNode;
  readonly linkPrivate: Uint8Array;
  readonly metrics: NodeMetrics;
  packetNode: PacketNode | null;
  gateway: Gateway | null;
}

/** Runs one repetition of a scenario (a single sweep point). */
export async function runScenario(s: Scenario, repetition: number, options: RunOptions = {}): Promise<RunResult> {
  const wallStart = performance.now();
  const seed = `${s.seed}/${repetition}`;
  const stream = seededStream(nodeBackend, seed);
  const randomBytes = stream.bytes;
  const crypto: CryptoBackend = { ...nodeBackend, randomBytes };
  const u01 = seededUniform(randomBytes);
  const rand: RandomInt = stream.int;
  const unit = s.timeUnitMs;
  const single = s.kind === 'single-mix';
  const layers = single ? 1 : s.topology.layers;
  const perLayer = single ? 1 : s.topology.mixesPerLayer;
  const gatewayCount = single ? 1 : s.topology.gateways;
  const clientCount = single ? 1 : s.clients.count;
  const engine = !single && s.clients.model === 'engine';

  const params: NetworkParameters = {
    epochPeriodMs: 20 * 60_000,
    hops: layers + 2,
    userPayloadLength: s.payloadBytes,
    // Engine clients put an acknowledgement SURB in every packet; population clients carry none.
    withSurb: engine,
    layers,
    mixMeanDelayMs: unit / s.mu,
    sendRatePerS: ((single ? s.lambda : s.clients.sendRate) * 1000) / unit,
    loopRatePerS: single ? 0 : (s.clients.loopRate * 1000) / unit,
    fetchRatePerS: single ? 0 : (s.clients.fetchRate * 1000) / unit,
    // As the network's default: a gateway's own packets at its clients' send + loop rate each.
    gatewayRatePerClientPerS: single ? 0 : ((s.clients.sendRate + s.clients.loopRate) * 1000) / unit,
  };
  const geometry = geometryFromUserPayload(params.hops, params.userPayloadLength, params.withSurb);
  const codec = new WireCodec({ packetLength: geometry.packetLength });

  // Start one epoch in, so that "the previous epoch" exists from the first packet on.
  const clock = new SimClock(params.epochPeriodMs);
  const t0 = clock.now();
  const warmupEnd = t0 + s.warmup * unit;
  const end = warmupEnd + s.duration * unit;

  // ---- nodes ----
  const nodes: SimNode[] = [];
  const mkNode = (name: string, role: 'gateway' | 'mix', layer: number): SimNode => {
    const owner = nodes.length;
    const linkPrivate = randomBytes(32);
    const doc: DocumentNode = {
      name,
      identityKey: randomBytes(32),
      linkKey: crypto.x25519Base(linkPrivate),
      role,
      layer,
      tcpAddress: `127.0.0.1:${20000 + owner}`,
      wsAddress: null,
      mixKeys: [],
    };
    const n: SimNode = { owner, doc, linkPrivate, metrics: nodeMetrics(), packetNode: null, gateway: null };
    nodes.push(n);
    return n;
  };
  for (let g = 0; g < gatewayCount; g++) mkNode(`gw${g}`, 'gateway', 0);
  for (let l = 1; l <= layers; l++) for (let i = 0; i < perLayer; i++) mkNode(`mix${l}.${i}`, 'mix', l);
  const gatewayNodes = nodes.slice(0, gatewayCount);
  const mixCount = layers * perLayer;
  const firstMix = gatewayCount;
  const firstClient = nodes.length;
  const mixIndex = (owner: number): number => (owner >= firstMix && owner < firstClient ? owner - firstMix : -1);
  const lastLayerMixes = Array.from({ length: perLayer }, (_, i) => (layers - 1) * perLayer + i);

  // Corrupt mixes: a random subset of the share asked for.
  const corrupt = new Uint8Array(mixCount);
  const nCorrupt = Math.round(s.corruptShare * mixCount);
  {
    const order = Array.from({ length: mixCount }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rand(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < nCorrupt; i++) corrupt[order[i]!] = 1;
  }
  const isCorrupt = (m: number): boolean => corrupt[m] === 1;

  // ---- documents: one per epoch, the same nodes, mix keys for the epoch and the two after ----
  const mixPrivate = randomBytes(32); // labelled packets ignore keys; the nodes still load one per epoch
  const docFor = (epoch: number): SignedDocument => {
    const document: ConsensusDocument = {
      epoch,
      params,
      nodes: nodes.map((n) => ({ ...n.doc, mixKeys: [0, 1, 2].map((d) => ({ epoch: epoch + d, publicKey: crypto.x25519Base(mixPrivate) })) })),
    };
    return { document, bytes: new Uint8Array(0), signatures: [] };
  };
  let current = docFor(Math.floor(t0 / params.epochPeriodMs));
  const docListeners = new Set<(d: SignedDocument) => void>();
  const documents = {
    current: () => current,
    subscribe: (fn: (d: SignedDocument) => void) => {
      docListeners.add(fn);
      return () => docListeners.delete(fn);
    },
  };
  const publishNext = (): void => {
    current = docFor(current.document.epoch + 1);
    for (const fn of docListeners) fn(current);
    scheduleNextDocument();
  };
  const scheduleNextDocument = (): void => {
    // As the authorities: the next epoch's document a little before the epoch begins.
    const next = (current.document.epoch + 1) * params.epochPeriodMs - params.epochPeriodMs / 8;
    clock.at(next, publishNext, undefined);
  };

  // ---- the adversary's view ----
  const table = new PacketTable();
  const kindCount: Record<Kind | 'fetch', number> = { real: 0, drop: 0, loop: 0, ack: 0, reply: 0, fetch: 0 };
  const latencies: number[] = [];
  const entropySamples: number[] = [];
  const clientEntropySamples: number[] = [];
  let truncatedSum = 0;
  const measuring = (): boolean => clock.now() >= warmupEnd;
  const expWeight = single ? new ExpWeightEntropy(1 / params.mixMeanDelayMs) : null;
  const singleEntropies: number[] = [];
  const ratePerMixMs = single
    ? s.lambda / unit
    : (clientCount * (s.clients.sendRate + s.clients.loopRate) * (engine ? 2 : 1)) / unit / perLayer;
  const logCapacity = Math.min(1 << 21, Math.max(1 << 12, Math.ceil(2 * ratePerMixMs * params.mixMeanDelayMs * 40)));
  const tracer = !single && s.entropySamples > 0 ? new SenderEntropyTracer({ mixes: mixCount, corrupt: isCorrupt, logCapacity }) : null;
  const challenge = !single && s.challenge ? new ChallengeTracker(mixCount, isCorrupt) : null;
  // Sample about entropySamples real packets over the measured window.
  const expectedReal = single ? 0 : clientCount * s.clients.messageRate * s.duration + (s.challenge ? 2 * s.duration : 0);
  const sampleEvery = Math.max(1, Math.floor(expectedReal / Math.max(1, s.entropySamples)));
  let realExits = 0;

  const mailboxes: Uint8Array[] = []; // by client index
  const challengeSenders = s.challenge ? [0, 1] : [];

  const onCreate = (c: LabelledCreation): void => {
    let kind: Kind;
    if (c.viaSurb) kind = c.owner < firstClient ? 'ack' : 'reply';
    else if (isZero(c.recipient)) kind = 'drop';
    else if (c.owner >= firstClient && equalBytes(c.recipient, mailboxes[c.owner - firstClient]!)) kind = 'loop';
    else kind = 'real';
    table.add(c.packet, KIND_CODE[kind], c.owner);
    tracer?.enter(c.packet, c.owner);
    if (challenge !== null && kind === 'real' && measuring()) {
      const who = challengeSenders.indexOf(c.owner - firstClient);
      if (who === 0 || who === 1) challenge.label(c.packet, who);
    }
  };
  // Packets are made inside the send_packet commands that carry them, carved from slabs: a
  // client's packet goes on its link, and through every hop, without a copy or an allocation.
  const slab = new Slab();
  const carve = (n: number): Uint8Array => slab.take(n);
  const packets = new LabelledPackets(onCreate, (n) => (n === codec.packetLength ? codec.newSendPacket(carve).packet : new Uint8Array(n)));

  const observe = (from: number, to: number, m: Uint8Array): void => {
    if (m[1] !== 2) {
      // not a send_packet: a fetch (client to gateway) or its answer
      if (from >= firstClient && measuring()) kindCount.fetch++;
      return;
    }
    const n = packetNumber(m, 2);
    const slot = table.slot(n);
    const t = clock.now();
    if (from >= firstClient) {
      if (slot >= 0) {
        table.sentAt[slot] = t;
        if (measuring()) kindCount[KINDS[table.kind[slot]!]!]++;
      }
      return;
    }
    const fromMix = mixIndex(from);
    const toMix = mixIndex(to);
    if (fromMix >= 0) {
      tracer?.depart(fromMix, n, t);
      challenge?.depart(fromMix, n);
      if (single && expWeight !== null && t >= warmupEnd) singleEntropies.push(expWeight.entropyBits(t));
    }
    if (toMix >= 0) {
      tracer?.arrive(toMix, n, t);
      challenge?.arrive(toMix, n);
      if (expWeight !== null) expWeight.input(t);
      return;
    }
    // Leaving the last layer for a gateway: the packet is out of the mixes.
    if (fromMix >= 0) {
      if (slot >= 0 && table.kind[slot] === KIND_CODE.real && t >= warmupEnd) {
        const sent = table.sentAt[slot]!;
        if (!Number.isNaN(sent)) latencies.push((t - sent) / unit);
        if (tracer !== null && realExits++ % sampleEvery === 0 && entropySamples.length < s.entropySamples) {
          const w = tracer.weights(fromMix, n);
          entropySamples.push(entropyOfWeights(w.senders));
          truncatedSum += Math.min(1, Math.max(0, w.lost));
          // Among clients only: gateways send cover and acknowledgements of their own, and the
          // weight they take is the observer's belief that no client sent the packet at all.
          clientEntropySamples.push(entropyOfWeights(new Map([...w.senders].filter(([owner]) => owner >= firstClient))));
        }
      }
      tracer?.forget(n);
      challenge?.forget(n);
    }
  };

  const net = new SimNet(clock, { latencyMs: s.topology.latencyMs, observer: observe });

  // ---- start the nodes ----
  const limits = { maxDelayMs: 0xffffffff, maxQueuedPackets: 1 << 22, replayCacheEntries: MAX_REPLAY_ENTRIES, workers: 0 };
  for (const n of nodes) {
    const init: PacketNodeInit = {
      name: n.doc.name,
      role: n.doc.role,
      layer: n.doc.layer,
      identityKey: n.doc.identityKey,
      linkKey: { privateKey: n.linkPrivate, publicKey: n.doc.linkKey },
      listen: { host: '127.0.0.1', port: 20000 + n.owner },
      limits,
      params,
    };
    const components: PacketNodeComponents = {
      clock,
      log: silentLogger,
      metrics: n.metrics,
      documents,
      keys: { privateKey: () => mixPrivate },
      connect: (peer) => net.connect(n.owner, n.doc.linkKey, peer.tcpAddress, peer.linkKey),
      listen: (policy) => Promise.resolve(net.listen(n.owner, `${policy.host}:${policy.port}`, policy)),
      format: packets.factory(n.owner)(geometry),
      random: randomBytes,
    };
    if (n.doc.role === 'mix') {
      n.packetNode = createMixNode(init, components);
      await n.packetNode.start();
    } else {
      n.gateway = createGateway(
        { ...init, clientRate: { perSecond: 1e9, burst: 1e9 } },
        {
          ...components,
          mailbox: new MemoryMailboxStore(clock),
          commitSchedule: (fn) =>
            clock.setTimer(() => {
              fn();
              clock.settleAfter();
            }, 0),
        },
      );
      n.packetNode = n.gateway.node;
      await n.gateway.start();
    }
  }
  scheduleNextDocument();

  // ---- clients ----
  const engines: Client[] = [];
  const population: PopulationClient[] = [];
  const addresses: string[] = [];
  const clientGateway = (i: number): SimNode => gatewayNodes[i % gatewayCount]!;
  const sentAt = new Map<string, number>();
  const messageLatencies: number[] = [];
  let written = 0;
  let delivered = 0;
  let failed = 0;
  for (let i = 0; i < clientCount; i++) {
    const owner = firstClient + i;
    const gw = clientGateway(i);
    if (engine) {
      const linkPrivateKey = randomBytes(32);
      const mailbox = crypto.x25519Base(linkPrivateKey);
      mailboxes.push(mailbox);
      addresses.push(encodeAddress(crypto, { gateway: gw.doc.identityKey, mailbox }));
      const store = SqliteClientStore.open(':memory:');
      const client = new Client(
        { linkPrivateKey, gateway: gw.doc.identityKey },
        {
          clock,
          crypto,
          aead: nodeNoiseCrypto.aead('ChaChaPoly'),
          store,
          log: silentLogger,
          connect: (g) => net.connect(owner, mailbox, g.tcpAddress, g.linkKey),
          packetFormat: packets.factory(owner),
        },
      );
      client.subscribe((e: ClientEvent) => {
        if (e.type === 'failed') {
          const at = sentAt.get(toHex(e.id));
          if (at === undefined) return;
          sentAt.delete(toHex(e.id));
          if (at >= warmupEnd) failed++;
          return;
        }
        if (e.type !== 'message') return;
        const k = toHex(e.message.id);
        const at = sentAt.get(k);
        if (at === undefined) return;
        sentAt.delete(k);
        if (at >= warmupEnd) {
          delivered++;
          messageLatencies.push((clock.now() - at) / unit);
        }
      });
      client.setDocument(current);
      docListeners.add((d) => client.setDocument(d));
      client.start();
      engines.push(client);
    } else {
      // A population client's mailbox id is its link key: the gateway registers what the link presents.
      const mailbox = randomBytes(32);
      mailboxes.push(mailbox);
      const p = new PopulationClient({
        clock,
        u01,
        rand,
        format: packets.factory(owner)(geometry),
        codec,
        mailbox,
        gateway: gw.owner,
        document: () => current,
        sendRate: () => current.document.params.sendRatePerS,
        loopRate: () => current.document.params.loopRatePerS,
        fetchIntervalMs: params.fetchRatePerS > 0 ? 1000 / params.fetchRatePerS : 0,
      });
      const link = await net.connect(owner, mailbox, gw.doc.tcpAddress, gw.doc.linkKey);
      p.start(link as SimLink);
      population.push(p);
    }
  }
  clock.settleAfter();

  // ---- workload: real messages, Poisson per client; the challenge senders one per time unit ----
  const writeUntil = end - s.drain * unit;
  const write = (from: number): void => {
    if (clock.now() > writeUntil) return;
    let to = rand(clientCount - 1);
    if (to >= from) to++;
    if (engine) {
      const body = randomBytes(s.clients.messageBytes);
      try {
        const receipt = engines[from]!.send({ to: addresses[to]! , body });
        sentAt.set(toHex(receipt.id), clock.now());
        if (clock.now() >= warmupEnd) written++;
      } catch {
        // no document or link yet: the user would try again
      }
    } else {
      population[from]!.write({ gateway: clientGateway(to).owner, mailbox: mailboxes[to]! });
      if (clock.now() >= warmupEnd) written++;
    }
  };
  const writers: PoissonClock[] = [];
  if (!single && s.clients.messageRate > 0) {
    const perSecond = (s.clients.messageRate * 1000) / unit;
    for (let i = 0; i < clientCount; i++) {
      if (challengeSenders.includes(i)) continue;
      const w = new PoissonClock(clock, () => perSecond, uniform01(randomBytes), () => write(i));
      w.start();
      writers.push(w);
    }
  }
  if (challengeSenders.length > 0) {
    const tick = (): void => {
      for (const c of challengeSenders) write(c);
      if (clock.now() + unit <= end) clock.at(clock.now() + unit, tick, undefined);
    };
    clock.at(warmupEnd, tick, undefined);
  }

  // ---- failures ----
  for (const f of s.failures) {
    const node = nodes.find((n) => n.doc.name === f.node);
    if (node === undefined) throw new BackchannelError('ERR_SIM_SCENARIO', `scenario: no node named ${f.node} in this topology`);
    clock.at(t0 + f.at * unit, () => {
      void node.packetNode?.stop();
    }, undefined);
  }

  // ---- run ----
  await clock.run(end, (now) => options.onProgress?.((now - t0) / (end - t0)));
  options.onProgress?.(1);

  const eps = challenge?.epsilon(lastLayerMixes.filter((m) => !isCorrupt(m))) ?? null;
  const drops: Record<string, number> = {};
  for (const n of nodes) {
    const m = await n.metrics.dropped.get();
    for (const v of m.values) {
      const r = String(v.labels['reason']);
      if (v.value > 0) drops[r] = (drops[r] ?? 0) + v.value;
    }
  }

  // ---- stop everything ----
  for (const w of writers) w.stop();
  for (const p of population) p.stop();
  for (const c of engines) await c.stop();
  for (const n of nodes) {
    if (n.gateway) await n.gateway.stop();
    else await n.packetNode?.stop();
  }

  const sentTotal = kindCount.real + kindCount.drop + kindCount.loop;
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const entropyDist = distribution(singleEntropies);
  const senderDist = distribution(entropySamples);
  return {
    scenario: s.name,
    repetition,
    seed,
    simulated: (end - t0) / unit,
    wallSeconds,
    events: clock.events,
    eventsPerSecond: clock.events / Math.max(wallSeconds, 1e-9),
    packets: { ...kindCount },
    coverShare: sentTotal > 0 ? (kindCount.drop + kindCount.loop) / sentTotal : NaN,
    overhead: kindCount.real > 0 ? sentTotal / kindCount.real : NaN,
    latency: distribution(latencies),
    latencySamples: spread(latencies, 2000),
    messageLatency: distribution(messageLatencies),
    messages: { written, delivered, failed },
    entropy: single ? { ...entropyDist, theory: Math.log2(Math.E * (s.lambda / s.mu)) } : null,
    senderEntropy: tracer !== null ? { ...senderDist, truncated: entropySamples.length > 0 ? truncatedSum / entropySamples.length : 0 } : null,
    clientSenderEntropy: tracer !== null ? distribution(clientEntropySamples.filter((h) => !Number.isNaN(h))) : null,
    epsilon: eps === null ? null : { mean: eps.mean, messages: eps.messages, linked: eps.linked },
    drops,
    corruptMixes: nCorrupt,
  };
}
