/**
 * `npm run bench -- overload [--seconds N] [--json]`: a local network (servers as processes on
 * 127.0.0.1), an honest pair of clients (alice on gateway-1, bob on gateway-2, in this process)
 * exchanging one message every 500 ms, measured for N seconds (60 by default) without attack,
 * then N seconds under attacks 1, 2, 3 and 5 (below), 10 s after them, N seconds of junk mail
 * (attack 4) and 10 s after it, N seconds of junk to alice's address at bob (a leaked alias), and
 * N seconds after bob revoked that address and gave alice a new one. gateway-2 admits by proof of
 * work (16 bits, so that bob and the attacker's one admitted key are quick to make).
 *
 * Alice writes to bob the way the messenger does: to the extra mailbox ("alias") bob made for her
 * (src/client/messenger-host.ts, `ourAddressForNewContact`), never to his main address, which is
 * the one an attacker can know (his link key: every contact he ever wrote to first, every card
 * or invitation that carried it).
 *
 * The attack, from other sources on loopback (127.0.0.2 and up) than the honest clients:
 * - silent sockets, 10× a listener's 128 handshake slots, against gateway-2 and a layer-1 mix,
 *   reopened as soon as they are closed (attack 1 of issue 19);
 * - fresh client keys without work against gateway-2, as fast as they are answered (attack 2);
 * - an admitted key sending `retrieve_message` flat out and never reading (attack 3);
 * - junk mail into bob's mailbox: JUNK_CLIENTS clients on gateway-1 (in this process) that each
 *   keep a 1 MiB message to bob's main address queued, so that every send slot of theirs carries
 *   a junk fragment to him (attack 4); then as many fresh ones doing the same to alice's alias
 *   (leaked), before and after bob revokes it (`revokeMailbox`, the messenger's `releaseAddress`);
 * - silent sockets against authority-1's HTTP port, reopened as soon as they are closed; an honest
 *   GET of the current document is timed there each second, before and during (attack 5).
 *
 * Reported: the honest pair's delivery rate and latency (p50, p99) in each phase, the ratio under
 * attack to before (the goal: ≥ 0.9 of the delivery rate), RSS of gateway-2 and the mix before,
 * at its peak and after, and what the servers counted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Client } from '../src/client/client.js';
import { initClient, runClient } from '../src/client/node-client.js';
import { readNetworkFile } from '../src/config/genconfig.js';
import { nodeBackend } from '../src/crypto/node.js';
import { connectTcp } from '../src/link/tcp.js';
import type { Link } from '../src/link/link.js';
import { ensureLocalNetwork, startLocalNetwork } from '../src/local/up.js';
import { silentLogger } from '../src/ops/log.js';
import { readSample } from '../src/ops/metrics.js';
import { geometryFromUserPayload } from '../src/sphinx/geometry.js';
import { encodeAdmission, solveWork } from '../src/wire/admission.js';
import { WireCodec } from '../src/wire/commands.js';
import { percentile, round } from './_timing.js';

const BASE_PORT = 23_500;
const WORK_BITS = 16;
const SILENT_PER_TARGET = 1_280;
const SEND_EVERY_MS = 500;
const AFTER_S = 10;
/** Clients flooding bob's mailbox with junk (each at the network's send rate, 20/s by default). */
const JUNK_CLIENTS = 4;
const JUNK_MESSAGE_BYTES = 1024 * 1024;
/** Silent sockets held against the authority's HTTP port. */
const SILENT_AUTHORITY = 1_280;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A server's metrics, or '' when it does not answer within 10 s (then its figures read as missing). */
async function scrape(url: string): Promise<string> {
  try {
    return await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  } catch {
    return '';
  }
}

function split(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

interface Phase {
  sent: number;
  received: number;
  latencies: number[];
  /** The 99th percentile of this process's event-loop delay during the phase (ms): the honest clients (and the junk ones) run here. */
  lagP99Ms: number;
}

export async function benchOverload(argv: string[]): Promise<Record<string, number | string>> {
  const k = argv.indexOf('--seconds');
  const seconds = k >= 0 ? Number(argv[k + 1]) : 60;
  if (!(seconds >= 5)) throw new RangeError('overload: --seconds expects at least 5');
  const dir = mkdtempSync(join(tmpdir(), 'bc-bench-overload-'));
  const data = join(dir, 'network');
  process.stderr.write('overload: starting a local network...\n');
  await ensureLocalNetwork({ dir: data, basePort: BASE_PORT, params: { epochPeriodMs: 120_000 } });
  const cfg = join(data, 'gateway-2', 'config.json');
  const c = JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>;
  c['admission'] = { mode: 'proof-of-work', workBits: WORK_BITS };
  writeFileSync(cfg, JSON.stringify(c, null, 2));
  const net = await startLocalNetwork({ dir: data });
  const stops: Array<() => Promise<void>> = [];
  try {
    const file = readNetworkFile(join(data, 'network.json'));
    const gw2 = file.gateways.find((g) => g.name === 'gateway-2')!;
    const mix = net.document.document.nodes.find((n) => n.role === 'mix' && n.layer === 1)!;
    const gwOps = net.network.server('gateway-2').opsUrl;
    const mixOps = net.network.server(mix.name).opsUrl;
    const p = file.params;
    const codec = new WireCodec({ packetLength: geometryFromUserPayload(p.hops, p.userPayloadLength, p.withSurb).packetLength });

    // The honest pair.
    const phases: Phase[] = [];
    const sentAt = new Map<string, { at: number; phase: Phase }>();
    await initClient({ dir: join(dir, 'alice'), network: data, gatewayName: 'gateway-1' });
    await initClient({ dir: join(dir, 'bob'), network: data, gatewayName: 'gateway-2' });
    const alice = await runClient({ dir: join(dir, 'alice'), log: silentLogger });
    stops.push(() => alice.stop());
    const bob = await runClient({
      dir: join(dir, 'bob'),
      log: silentLogger,
      onEvent: (e) => {
        if (e.type !== 'message') return;
        const s = sentAt.get(Buffer.from(e.message.id).toString('hex'));
        if (s === undefined) return;
        s.phase.received++;
        s.phase.latencies.push(performance.now() - s.at);
      },
    });
    stops.push(() => bob.stop());
    const connected = async (cl: Client): Promise<void> => {
      while (!cl.status().connected) await sleep(100);
    };
    /** An extra mailbox of bob's, once the gateway has it on disk. */
    const aliasForAlice = async (): Promise<{ id: Uint8Array; address: string }> => {
      const made = bob.client.createMailbox();
      const hex = Buffer.from(made.id).toString('hex');
      while (bob.client.mailboxes().find((m) => Buffer.from(m.id).toString('hex') === hex)?.registered !== true) await sleep(100);
      return made;
    };
    const junk: Array<{ readonly client: Client; stop(): Promise<void> }> = [];
    for (let j = 0; j < JUNK_CLIENTS; j++) {
      await initClient({ dir: join(dir, `junk-${j}`), network: data, gatewayName: 'gateway-1' });
      const r = await runClient({ dir: join(dir, `junk-${j}`), log: silentLogger });
      stops.push(() => r.stop());
      junk.push(r);
    }
    await Promise.all([connected(alice.client), connected(bob.client), ...junk.map((j) => connected(j.client))]);
    /** Where alice writes to bob: the alias he made for her. */
    let toBob = (await aliasForAlice()).address;
    const firstAlias = toBob;
    await sleep(2_000);

    const authority = file.authorities[0]!;
    const authorityAddr = split(new URL(authority.url).host);
    /** Times of honest GETs of the current document from authority-1 (ms; a failure counts as 10 s). */
    let authorityMs: number[] = [];
    const timeAuthority = async (): Promise<void> => {
      const t = performance.now();
      const ok = await fetch(`${authority.url}/v1/document/current`, { signal: AbortSignal.timeout(10_000) })
        .then(async (r) => {
          await r.arrayBuffer();
          return r.ok;
        })
        .catch(() => false);
      authorityMs.push(ok ? performance.now() - t : 10_000);
    };
    let rssGw: number[] = [];
    let rssMix: number[] = [];
    const sampleRss = async (): Promise<void> => {
      rssGw.push(readSample(await scrape(gwOps), 'backchannel_process_resident_bytes') ?? 0);
      rssMix.push(readSample(await scrape(mixOps), 'backchannel_process_resident_bytes') ?? 0);
    };
    /** Runs a phase of `s` seconds of honest messages; RSS sampled each second. */
    const honest = async (s: number): Promise<Phase> => {
      const phase: Phase = { sent: 0, received: 0, latencies: [], lagP99Ms: 0 };
      phases.push(phase);
      const lag = monitorEventLoopDelay({ resolution: 20 });
      lag.enable();
      const end = performance.now() + s * 1000;
      let nextRss = 0;
      while (performance.now() < end) {
        const r = alice.client.send({ to: toBob, body: new TextEncoder().encode(`overload ${phases.length} ${phase.sent}`) });
        sentAt.set(Buffer.from(r.id).toString('hex'), { at: performance.now(), phase });
        phase.sent++;
        if (performance.now() >= nextRss) {
          nextRss = performance.now() + 1000;
          await sampleRss().catch(() => undefined);
          await timeAuthority();
        }
        await sleep(SEND_EVERY_MS);
      }
      lag.disable();
      phase.lagP99Ms = lag.percentile(99) / 1e6;
      return phase;
    };

    process.stderr.write(`overload: ${seconds} s without attack...\n`);
    const quiet = await honest(seconds);
    const rssBefore = { gw: Math.max(...rssGw), mix: Math.max(...rssMix) };
    const authorityBefore = [...authorityMs].sort((a, b) => a - b);
    rssGw = [];
    rssMix = [];
    authorityMs = [];
    const before = { gw: await scrape(gwOps), mix: await scrape(mixOps) };

    // The attack.
    let attacking = true;
    const silent = new Set<Socket>();
    const keepSilent = (target: { host: string; port: number }, source: string, count: number): void => {
      const open = (): void => {
        if (!attacking) return;
        const s = netConnect({ ...target, localAddress: source });
        silent.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          silent.delete(s);
          // Reopened at once, as the issue's attacker did (a short pause keeps this process's own loop alive).
          setTimeout(open, 50);
        });
      };
      for (let i = 0; i < count; i++) open();
    };
    keepSilent(split(gw2.tcpAddress), '127.0.0.2', SILENT_PER_TARGET);
    keepSilent(split(mix.tcpAddress), '127.0.0.3', SILENT_PER_TARGET);
    keepSilent(authorityAddr, '127.0.0.6', SILENT_AUTHORITY);
    let sybils = 0;
    const sybil = (async () => {
      while (attacking) {
        await connectTcp({ ...split(gw2.tcpAddress), localAddress: '127.0.0.4', staticKey: nodeBackend.randomBytes(32), remoteStatic: gw2.linkKey, handshakeTimeoutMs: 2_000 }).then(
          (l) => void l.close(),
          () => undefined,
        );
        sybils++;
      }
    })();
    const floodKey = nodeBackend.randomBytes(32);
    const nonce = (await solveWork(gw2.identityKey, nodeBackend.x25519Base(floodKey), WORK_BITS))!;
    let fetchesSent = 0;
    let floodLink: Link | null = null;
    const flood = (async () => {
      floodLink = await connectTcp({
        ...split(gw2.tcpAddress),
        localAddress: '127.0.0.5',
        staticKey: floodKey,
        remoteStatic: gw2.linkKey,
        maxMessageLength: codec.commandLength,
        handshakePayload: encodeAdmission({ kind: 'work', nonce }),
      });
      const frame = codec.encode({ kind: 'retrieve_message', sequence: 0 });
      while (attacking) {
        // Never reads: the link's receive buffer and the gateway's send queue are what fills.
        await floodLink.send(frame).catch(() => undefined);
        fetchesSent++;
        if (fetchesSent % 100 === 0) await sleep(0);
        if (!floodLink.isOpen) break;
      }
    })();
    process.stderr.write(`overload: ${seconds} s under attack...\n`);
    const attacked = await honest(seconds);
    const rssPeak = { gw: Math.max(...rssGw), mix: Math.max(...rssMix) };
    const during = { gw: await scrape(gwOps), mix: await scrape(mixOps) };
    const health = (await fetch(`${gwOps}/healthz`, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.json())
      .catch(() => ({ status: 'no answer' }))) as { status: string; reasons?: string[] };
    const authorityDuring = [...authorityMs].sort((a, b) => a - b);
    attacking = false;
    for (const s of silent) s.destroy();
    await (floodLink as Link | null)?.close().catch(() => undefined);
    await Promise.all([sybil, flood]);
    rssGw = [];
    rssMix = [];
    process.stderr.write(`overload: ${AFTER_S} s after...\n`);
    const afterPhase = await honest(AFTER_S);
    // Stragglers: messages of the last phase still on their way.
    await sleep(10_000);
    const rssAfter = { gw: rssGw[rssGw.length - 1] ?? 0, mix: rssMix[rssMix.length - 1] ?? 0 };

    // Attack 4 on its own: junk mail to bob's main address, the one an attacker can know.
    const beforeJunk = await scrape(gwOps);
    // Junk: each junk client keeps one 1 MiB message to bob queued, so its every send slot is junk.
    let junkMessages = 0;
    const junkBody = nodeBackend.randomBytes(JUNK_MESSAGE_BYTES);
    let junkTo = bob.address;
    const feedJunk = (): void => {
      for (const j of junk) {
        if (j.client.status().pendingMessages === 0) {
          j.client.send({ to: junkTo, body: junkBody });
          junkMessages++;
        }
      }
    };
    feedJunk();
    let junkTimer = setInterval(feedJunk, 1_000);
    process.stderr.write(`overload: ${seconds} s of junk mail to bob...\n`);
    const junked = await honest(seconds);
    clearInterval(junkTimer);
    const afterJunkMetrics = await scrape(gwOps);
    /** Fetches gateway-2 answered per second between two scrapes (bob is its one client in these phases). */
    const fetchRate = (a: string, b: string, s: number): number => {
      const n = (t: string): number => (readSample(t, 'backchannel_mailbox_fetches_total', { result: 'message' }) ?? 0) + (readSample(t, 'backchannel_mailbox_fetches_total', { result: 'empty' }) ?? 0);
      return round((n(b) - n(a)) / s, 1);
    };
    const backlog = bob.client.status();
    // The junk clients stop with their junk still queued; bob's backlog is what remains.
    await Promise.all(junk.map((j) => j.stop()));
    process.stderr.write(`overload: ${AFTER_S} s after the junk...\n`);
    const afterJunk = await honest(AFTER_S);
    await sleep(10_000);

    // A leaked alias: fresh junk clients write to the address bob gave alice.
    junk.length = 0;
    for (let j = 0; j < JUNK_CLIENTS; j++) {
      await initClient({ dir: join(dir, `leak-${j}`), network: data, gatewayName: 'gateway-1' });
      const r = await runClient({ dir: join(dir, `leak-${j}`), log: silentLogger });
      stops.push(() => r.stop());
      junk.push(r);
    }
    await Promise.all(junk.map((j) => connected(j.client)));
    const beforeLeak = await scrape(gwOps);
    junkTo = firstAlias;
    feedJunk();
    junkTimer = setInterval(feedJunk, 1_000);
    process.stderr.write(`overload: ${seconds} s of junk to alice's alias at bob (leaked)...\n`);
    const leaked = await honest(seconds);
    const afterLeak = await scrape(gwOps);
    // Bob revokes it and gives alice a new one (the messenger would: a rotated contact address).
    const leakedId = bob.client.mailboxes().find((m) => m.address === firstAlias)!.id;
    bob.client.revokeMailbox(leakedId);
    toBob = (await aliasForAlice()).address;
    while (bob.client.mailboxes().find((m) => m.address === firstAlias)?.revokeConfirmed !== true) await sleep(100);
    process.stderr.write(`overload: ${seconds} s after bob revoked it (the junk goes on to it)...\n`);
    const revoked = await honest(seconds);
    const afterRevoked = await scrape(gwOps);
    clearInterval(junkTimer);
    await Promise.all(junk.map((j) => j.stop()));
    await sleep(10_000);
    const grew = (name: string, labels: Record<string, string>, server: 'gw' | 'mix'): number =>
      (readSample(during[server], name, labels) ?? 0) - (readSample(before[server], name, labels) ?? 0);
    const rate = (ph: Phase): number => ph.received / Math.max(1, ph.sent);
    const lat = (ph: Phase, q: number): number => round(percentile([...ph.latencies].sort((a, b) => a - b), q));
    return {
      seconds,
      quiet_sent: quiet.sent,
      quiet_delivery_rate: round(rate(quiet), 3),
      quiet_p50_ms: lat(quiet, 50),
      quiet_p99_ms: lat(quiet, 99),
      attack_sent: attacked.sent,
      attack_delivery_rate: round(rate(attacked), 3),
      attack_p50_ms: lat(attacked, 50),
      attack_p99_ms: lat(attacked, 99),
      attack_over_quiet_delivery: round(rate(attacked) / Math.max(1e-9, rate(quiet)), 3),
      attack_over_quiet_p50: round(lat(attacked, 50) / lat(quiet, 50), 2),
      after_delivery_rate: round(rate(afterPhase), 3),
      gateway_rss_before_mb: round(rssBefore.gw / 2 ** 20, 1),
      gateway_rss_peak_mb: round(rssPeak.gw / 2 ** 20, 1),
      gateway_rss_after_mb: round(rssAfter.gw / 2 ** 20, 1),
      mix_rss_before_mb: round(rssBefore.mix / 2 ** 20, 1),
      mix_rss_peak_mb: round(rssPeak.mix / 2 ** 20, 1),
      mix_rss_after_mb: round(rssAfter.mix / 2 ** 20, 1),
      silent_sockets_open_at_end: silent.size,
      sybil_handshakes: sybils,
      sybil_refused_work: grew('backchannel_admission_total', { outcome: 'work' }, 'gw'),
      flood_fetches_sent: fetchesSent,
      flood_fetches_dropped: grew('backchannel_packets_dropped_total', { reason: 'fetch_rate_limited' }, 'gw'),
      gw_gate_refused_source_open: grew('backchannel_connections_refused_total', { listener: 'link', reason: 'source_open' }, 'gw'),
      gw_gate_refused_source_rate: grew('backchannel_connections_refused_total', { listener: 'link', reason: 'source_rate' }, 'gw'),
      gw_handshakes_evicted: grew('backchannel_link_handshakes_total', { listener: 'link', result: 'evicted' }, 'gw'),
      mix_gate_refused_source_open: grew('backchannel_connections_refused_total', { listener: 'link', reason: 'source_open' }, 'mix'),
      mix_handshakes_evicted: grew('backchannel_link_handshakes_total', { listener: 'link', result: 'evicted' }, 'mix'),
      junk_messages_queued: junkMessages,
      junk_intake_limited: (readSample(afterJunkMetrics, 'backchannel_packets_dropped_total', { reason: 'intake_limited' }) ?? 0) - (readSample(beforeJunk, 'backchannel_packets_dropped_total', { reason: 'intake_limited' }) ?? 0),
      junk_delivery_rate: round(rate(junked), 3),
      junk_p50_ms: lat(junked, 50),
      junk_p99_ms: lat(junked, 99),
      junk_over_quiet_p50: round(lat(junked, 50) / lat(quiet, 50), 2),
      junk_sent: junked.sent,
      junk_bob_fetches_per_s: fetchRate(beforeJunk, afterJunkMetrics, seconds),
      quiet_bench_lag_p99_ms: round(quiet.lagP99Ms),
      junk_bench_lag_p99_ms: round(junked.lagP99Ms),
      leak_sent: leaked.sent,
      leak_bench_lag_p99_ms: round(leaked.lagP99Ms),
      revoked_sent: revoked.sent,
      after_junk_delivery_rate: round(rate(afterJunk), 3),
      leak_delivery_rate: round(rate(leaked), 3),
      leak_p50_ms: lat(leaked, 50),
      leak_p99_ms: lat(leaked, 99),
      leak_over_quiet_p50: round(lat(leaked, 50) / lat(quiet, 50), 2),
      leak_intake_limited: (readSample(afterLeak, 'backchannel_packets_dropped_total', { reason: 'intake_limited' }) ?? 0) - (readSample(beforeLeak, 'backchannel_packets_dropped_total', { reason: 'intake_limited' }) ?? 0),
      revoked_delivery_rate: round(rate(revoked), 3),
      revoked_p50_ms: lat(revoked, 50),
      revoked_p99_ms: lat(revoked, 99),
      revoked_over_quiet_p50: round(lat(revoked, 50) / lat(quiet, 50), 2),
      revoked_junk_refused: (readSample(afterRevoked, 'backchannel_packets_dropped_total', { reason: 'mailbox_revoked' }) ?? 0) - (readSample(afterLeak, 'backchannel_packets_dropped_total', { reason: 'mailbox_revoked' }) ?? 0),
      bob_fragments_received_by_end: backlog.entriesReceived.fragment,
      authority_get_p50_before_ms: round(percentile(authorityBefore, 50)),
      authority_get_p50_during_ms: round(percentile(authorityDuring, 50)),
      authority_get_max_during_ms: round(authorityDuring[authorityDuring.length - 1] ?? NaN),
      gateway_health_under_attack: `${health.status}${health.reasons ? `: ${health.reasons.join('; ')}` : ''}`,
    };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await net.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
