/**
 * The chaos run across hosts: a local network (3 authorities, 3 layers of 2 mixes, 2 gateways)
 * with every server in its own network namespace with its own address (netns.ts), two
 * `backchannel client run` processes in the root namespace (alice on gateway-1, bob on gateway-2)
 * sending each other numbered messages, and, for a bounded time, a seeded random schedule of
 * faults on random servers: SIGKILL and restart, SIGSTOP and SIGCONT, a partition of the server's
 * host (its link down), and packet loss on its link (when the kernel can make it).
 *
 * The driver keeps the truth: every message sent, the client's verdict on it (acknowledged, i.e.
 * the `delivered` event; failed; or still pending), and every message the receiving client showed
 * (its inbox, read with `recv`). It counts sent, acknowledged, received, lost (acknowledged but
 * never received), duplicated (shown more than once), and checks at the end that every server
 * process runs and is healthy again. The schedule depends only on the seed (the faults' times are
 * offsets from the start; what the network does in between is not seeded), so a failing seed is
 * replayed with `npm run bench -- chaos --seed S`.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientSocketPath, ipcCall, ipcRequest } from '../client/ipc.js';
import type { IpcMessage } from '../client/ipc.js';
import { generateNetwork, NETWORK_FILE, readNetworkFile } from '../config/genconfig.js';
import { BackchannelError } from '../errors.js';
import { BIN_PATH, LocalNetwork } from './network.js';
import { HostNetwork, LOSS_STEPS } from './netns.js';
import { networkStatus } from './status.js';
import { expectedNodes, LOCAL_AUTHORITIES, LOCAL_GATEWAYS, LOCAL_LAYERS, LOCAL_MIXES_PER_LAYER, waitForDocument } from './up.js';

/** Ports from here in every namespace (each host has its own, so they never collide with the machine's). */
export const CHAOS_BASE_PORT = 26_000;
/** Epochs short enough that several pass in a short run, long enough for a loaded machine's consensus. */
export const CHAOS_EPOCH_MS = 20_000;
/**
 * The network's rates: a fifth of the defaults (and 10 ms per hop), so that eleven servers and two
 * clients on a 2-core machine shared with other work are not starved of CPU (at the integration
 * tests' 50 packets/s per client the queues, not the faults, set the latency: a median of 12 s
 * without any fault on the loaded development machine).
 */
export const CHAOS_PARAMS = { epochPeriodMs: CHAOS_EPOCH_MS, mixMeanDelayMs: 10, sendRatePerS: 10, loopRatePerS: 2, fetchRatePerS: 20 } as const;
/** A client sends one numbered message per this interval, alternating alice and bob. */
export const CHAOS_SEND_INTERVAL_MS = 500;
/** Messages a client may have waiting for their verdict at once (its IPC socket serves 64 connections). */
export const CHAOS_MAX_IN_FLIGHT = 32;

export type FaultKind = 'kill' | 'pause' | 'partition' | 'loss';

export interface ChaosOptions {
  /** How long faults are made; the run then heals, waits for every server and drains. */
  readonly durationMs: number;
  /** The schedule's seed (a 32-bit integer). */
  readonly seed: number;
  /** The kinds of fault to make (default all the kernel allows; empty: a run without faults, for comparison). */
  readonly kinds?: readonly FaultKind[];
  /** Faults at the same time, each on another server (default 1). */
  readonly maxConcurrentFaults?: number;
  /** Where the network and the clients live (default: a new temporary folder, removed at the end). */
  readonly dir?: string;
  /** Prefix of the namespaces and links, and the hosts' /24 (netns.ts): two runs at once need different ones. */
  readonly prefix?: string;
  readonly subnet?: string;
  /** How long, after the faults, to wait for every server and every pending message's verdict (default 90 s). */
  readonly settleMs?: number;
  /**
   * Then, verdicts frozen, how long the receivers have to show every acknowledged message before
   * it counts as lost (default 60 s): an acknowledgement says the receiver's gateway holds it, and
   * the receiving client still has to fetch it.
   */
  readonly drainMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface ChaosFault {
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly server: string;
  readonly forMs: number;
  /** Loss in sixteenths, for 'loss'. */
  readonly loss?: number;
}

export interface ChaosResult {
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly ChaosFault[];
  /** Faults by kind, as made (a loss fault is skipped where the kernel can make none). */
  readonly faultCounts: Readonly<Record<FaultKind, number>>;
  readonly sent: number;
  /** Sends the client refused outright (e.g. while it had no document): not counted as sent. */
  readonly refused: number;
  readonly acknowledged: number;
  readonly failed: number;
  /** Neither acknowledged nor failed when the run ended. */
  readonly pending: number;
  /** Distinct messages shown by the receivers. */
  readonly received: number;
  /** Acknowledged but never shown. */
  readonly lost: number;
  /** Shown more than once (extra showings). */
  readonly duplicated: number;
  /** Shown although not acknowledged (delivered, the acknowledgement lost or late): allowed. */
  readonly receivedUnacknowledged: number;
  /** Shown that no one sent (must be 0). */
  readonly unknown: number;
  readonly lossSupport: 'netem' | 'u32' | null;
  /** Null when delay was available, else why not (no delay faults are made then). */
  readonly delayUnsupported: string | null;
  /** Packets the loss qdiscs dropped. */
  readonly packetsDroppedByLoss: number;
  /** Server exits nobody asked for. */
  readonly unexpectedExits: readonly string[];
  /** Servers not running or not healthy at the end (must be empty). */
  readonly notBack: readonly string[];
  /** Acknowledgement latency of the acknowledged messages, ms: median and max. */
  readonly ackP50Ms: number;
  readonly ackMaxMs: number;
  /** From send to the receiver's inbox showing it (polled each second), ms: median and max. */
  readonly shownP50Ms: number;
  readonly shownMaxMs: number;
}

/** Restarts of a server that exits by itself, before the run leaves it down. */
const MAX_RESTARTS = 5;

/** mulberry32: a small seeded generator for the schedule (not for anything secret). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The fault schedule of a seed: faults start 1-4 s apart, each lasts 0.5-6 s (loss 3-10 s), and
 * at most `maxConcurrent` servers are faulted at once; a fault waits for a free slot. Pure: the
 * same seed, servers and duration give the same schedule.
 */
export function chaosSchedule(seed: number, servers: readonly string[], durationMs: number, kinds: readonly FaultKind[], maxConcurrent = 1): ChaosFault[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: ChaosFault[] = [];
  let t = 2_000;
  for (;;) {
    t += 1_000 + Math.floor(rnd() * 3_000);
    // A free slot: at most maxConcurrent faults overlap, each on another server.
    const active = out.filter((f) => f.atMs + f.forMs > t);
    if (active.length >= maxConcurrent) t = Math.min(...active.map((f) => f.atMs + f.forMs)) + 250;
    if (t >= durationMs) break;
    const busy = new Set(out.filter((f) => f.atMs + f.forMs > t).map((f) => f.server));
    const free = servers.filter((s) => !busy.has(s));
    if (free.length === 0) continue;
    const kind = pick(kinds);
    const server = pick(free);
    const forMs = kind === 'loss' ? 3_000 + Math.floor(rnd() * 7_000) : 500 + Math.floor(rnd() * 5_500);
    const fault: ChaosFault = kind === 'loss' ? { atMs: t, kind, server, forMs, loss: 1 + Math.floor(rnd() * 4) } : { atMs: t, kind, server, forMs };
    out.push(fault);
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sent {
  readonly from: string;
  readonly n: number;
  readonly at: number;
  verdict: 'pending' | 'delivered' | 'failed';
  ackMs: number | null;
}

/** One `backchannel client run` in the root namespace, driven over its socket. */
class ChaosClient {
  readonly name: string;
  readonly dir: string;
  readonly socket: string;
  address = '';
  #child: ChildProcess | null = null;
  inFlight = 0;

  constructor(root: string, name: string) {
    this.name = name;
    this.dir = join(root, name);
    this.socket = clientSocketPath(this.dir);
  }

  init(network: string, gateway: string): void {
    const r = spawnSync(process.execPath, [BIN_PATH, 'client', 'init', '--dir', this.dir, '--network', network, '--gateway', gateway], { encoding: 'utf8' });
    if (r.status !== 0) throw new BackchannelError('ERR_CLIENT_STATE', `chaos: client init ${this.name} failed: ${r.stderr.trim()}`);
    const a = spawnSync(process.execPath, [BIN_PATH, 'client', 'address', '--dir', this.dir], { encoding: 'utf8' });
    if (a.status !== 0) throw new BackchannelError('ERR_CLIENT_STATE', `chaos: client address ${this.name} failed: ${a.stderr.trim()}`);
    this.address = a.stdout.trim();
  }

  async run(timeoutMs: number): Promise<void> {
    const fd = openSync(join(this.dir, 'client.log'), 'a', 0o600);
    this.#child = spawn(process.execPath, [BIN_PATH, 'client', 'run', '--dir', this.dir], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status().catch(() => null);
      if (s !== null && s['connected'] === true && s['document'] !== 'none') return;
      if (Date.now() > deadline) throw new BackchannelError('ERR_CLIENT_STATE', `chaos: ${this.name} not connected with a document in ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async status(): Promise<Record<string, unknown>> {
    const r = await ipcCall(this.socket, { op: 'status' });
    return r['status'] as Record<string, unknown>;
  }

  /** Sends and follows the message until its verdict; resolves with it (a broken socket is 'pending'). */
  send(body: string, to: string, onId: () => void): Promise<'delivered' | 'failed' | 'pending'> {
    this.inFlight++;
    let verdict: 'delivered' | 'failed' | 'pending' = 'pending';
    return ipcRequest(this.socket, { op: 'send', to, body_base64: Buffer.from(body).toString('base64'), wait: true }, (m: IpcMessage) => {
      if (m['ok'] === true) onId();
      if (m['event'] === 'delivered') verdict = 'delivered';
      if (m['event'] === 'failed') verdict = 'failed';
    })
      .catch(() => undefined)
      .then(() => {
        this.inFlight--;
        return verdict;
      });
  }

  /** Every unconsumed inbox message's body, consumed. */
  async recv(): Promise<string[]> {
    const out: string[] = [];
    await ipcRequest(this.socket, { op: 'recv' }, (m: IpcMessage, conn) => {
      if (m['event'] === 'message') {
        out.push(Buffer.from(m['body_base64'] as string, 'base64').toString('utf8'));
        conn.send({ op: 'consume', seq: m['seq'] as number });
      } else if (m['event'] === 'end') conn.end();
    });
    return out;
  }

  kill(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((r) => {
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      c.once('exit', () => {
        clearTimeout(timer);
        r();
      });
      c.kill('SIGTERM');
    });
  }
}

/** The body of message `n` from `from`: what the receiver's inbox must show exactly once. */
function bodyOf(from: string, n: number): string {
  return `chaos ${from} #${n}`;
}

/** Gives the gateways room for the clients' bursts after a fault (as the integration tests do). */
function raiseGatewayClientRate(dir: string): void {
  for (let i = 1; i <= LOCAL_GATEWAYS; i++) {
    const p = join(dir, `gateway-${i}`, 'config.json');
    const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    c['clientRate'] = { perSecond: 5000, burst: 5000 };
    writeFileSync(p, JSON.stringify(c, null, 2));
  }
}

/**
 * Runs the chaos: makes the hosts and the network, starts the clients, runs the schedule, heals,
 * waits, counts. Removes the hosts and stops every process it started, also when it fails.
 * @throws {BackchannelError} when the network or the clients cannot be started; the counts are
 *   returned, not thrown, whatever they are.
 */
export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? (() => undefined);
  const ownDir = opts.dir === undefined;
  const root = opts.dir ?? mkdtempSync(join(tmpdir(), 'bc-chaos-'));
  mkdirSync(root, { recursive: true });
  const data = join(root, 'network');
  const serverCount = LOCAL_AUTHORITIES + LOCAL_LAYERS * LOCAL_MIXES_PER_LAYER + LOCAL_GATEWAYS;
  const hosts = HostNetwork.create(serverCount, { ...(opts.prefix === undefined ? {} : { prefix: opts.prefix }), ...(opts.subnet === undefined ? {} : { subnet: opts.subnet }) });
  let net: LocalNetwork | null = null;
  const clients: ChaosClient[] = [];
  const paused = new Set<string>();
  const killedOnPurpose = new Set<string>();
  const unexpectedExits: string[] = [];
  // Servers, clients and hosts go also when this process is interrupted.
  hosts.removeOnExit(() => {
    for (const s of net?.servers ?? []) {
      const pid = net?.pid(s.name);
      if (pid !== undefined && net?.running(s.name) === true) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const c of clients) {
      if (c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
  try {
    log(`chaos: seed ${opts.seed}; ${serverCount} hosts ${hosts.hosts[0]!.address}-${hosts.hosts[serverCount - 1]!.address} on bridge ${hosts.bridge}`);
    const lossSupport = hosts.lossSupport;
    const delayUnsupported = hosts.delayUnsupported;
    log(`chaos: loss ${lossSupport === null ? 'NOT AVAILABLE (no netem, no htb/u32/pfifo): no loss faults' : `by ${lossSupport}`}; delay ${delayUnsupported === null ? 'by netem (not scheduled)' : `NOT AVAILABLE: ${delayUnsupported}`}`);
    generateNetwork({
      dir: data,
      authorities: LOCAL_AUTHORITIES,
      layers: LOCAL_LAYERS,
      mixesPerLayer: LOCAL_MIXES_PER_LAYER,
      gateways: LOCAL_GATEWAYS,
      hosts: hosts.hosts.map((h) => h.address),
      basePort: CHAOS_BASE_PORT,
      opsOnHost: true,
      params: CHAOS_PARAMS,
    });
    raiseGatewayClientRate(data);
    const networkFile = readNetworkFile(join(data, NETWORK_FILE));
    // generateNetwork gives host k (0-based, in the servers' order) to the k-th server.
    const order = new LocalNetwork(data).servers;
    const hostOf = new Map<string, number>();
    for (const s of order) {
      const h = hosts.hosts.find((x) => s.config.ops.host === x.address);
      if (h === undefined) throw new BackchannelError('ERR_SERVER', `chaos: ${s.name} is on no host`);
      hostOf.set(s.name, h.index);
    }
    const n = new LocalNetwork(data, {
      wrap: (s) => hosts.execPrefix(hostOf.get(s.name)!),
      onExit: (name, how) => {
        if (killedOnPurpose.has(name)) return;
        unexpectedExits.push(`${name} (${how})`);
        // A server that keeps dying is left down (and then reported as not back), not restarted forever.
        const times = unexpectedExits.filter((e) => e.startsWith(`${name} `)).length;
        log(`chaos: ${name} exited by itself (${how})${times <= MAX_RESTARTS ? '; restarting it' : `; ${times} times, left down`}`);
        if (times <= MAX_RESTARTS) n.start(name);
      },
    });
    net = n;
    const t0 = Date.now();
    n.startAll();
    const names = n.servers.filter((s) => s.role !== 'authority').map((s) => s.name);
    await waitForDocument(networkFile, Date.now() + 3 * CHAOS_EPOCH_MS + 60_000, names, { expected: expectedNodes(n.servers, networkFile) });
    await waitHealthy(n, 60_000);
    log(`chaos: network up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const alice = new ChaosClient(root, 'alice');
    const bob = new ChaosClient(root, 'bob');
    clients.push(alice, bob);
    alice.init(data, 'gateway-1');
    bob.init(data, 'gateway-2');
    await Promise.all([alice.run(90_000), bob.run(90_000)]);
    log('chaos: clients connected');

    // ---- the run ----
    const sent = new Map<string, Sent>();
    const shown = new Map<string, number>();
    const firstShownAt = new Map<string, number>();
    const verdicts: Promise<unknown>[] = [];
    const peer = (c: ChaosClient): ChaosClient => (c === alice ? bob : alice);
    let counter = 0;
    let refused = 0;
    let frozen = false;
    let sending = true;
    const sender = (async () => {
      while (sending) {
        const from = counter % 2 === 0 ? alice : bob;
        if (from.inFlight < CHAOS_MAX_IN_FLIGHT) {
          const k = counter;
          const body = bodyOf(from.name, k);
          const rec: Sent = { from: from.name, n: k, at: Date.now(), verdict: 'pending', ackMs: null };
          verdicts.push(
            from
              .send(body, peer(from).address, () => sent.set(body, rec))
              .then((v) => {
                if (!sent.has(body)) refused++;
                // A verdict after the freeze is not counted: the message stays pending.
                if (frozen) return;
                rec.verdict = v;
                if (v === 'delivered') rec.ackMs = Date.now() - rec.at;
              }),
          );
        }
        counter++;
        await sleep(CHAOS_SEND_INTERVAL_MS);
      }
    })();
    let receiving = true;
    const collect = async (): Promise<void> => {
      for (const c of clients) {
        const bodies = await c.recv().catch(() => [] as string[]);
        for (const b of bodies) {
          shown.set(b, (shown.get(b) ?? 0) + 1);
          if (!firstShownAt.has(b)) firstShownAt.set(b, Date.now());
        }
      }
    };
    const receiver = (async () => {
      while (receiving) {
        await collect();
        await sleep(1_000);
      }
    })();

    const kinds = (opts.kinds ?? ['kill', 'pause', 'partition', 'loss']).filter((k) => k !== 'loss' || lossSupport !== null);
    const schedule = kinds.length === 0 ? [] : chaosSchedule(opts.seed, n.servers.map((s) => s.name), opts.durationMs, kinds, opts.maxConcurrentFaults ?? 1);
    const faultCounts: Record<FaultKind, number> = { kill: 0, pause: 0, partition: 0, loss: 0 };
    const start = Date.now();
    const running: Promise<void>[] = [];
    // A line of counts a minute, for long runs.
    const progress = setInterval(() => {
      const v = [...sent.values()];
      log(`chaos: +${Math.round((Date.now() - start) / 1000)} s: sent ${v.length}, acknowledged ${v.filter((r) => r.verdict === 'delivered').length}, shown ${shown.size}`);
    }, 60_000);
    progress.unref();
    for (const f of schedule) {
      const wait = start + f.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      faultCounts[f.kind]++;
      log(`chaos: +${(f.atMs / 1000).toFixed(1)} s ${f.kind} ${f.server} for ${(f.forMs / 1000).toFixed(1)} s${f.loss === undefined ? '' : ` (${f.loss}/${LOSS_STEPS} loss)`}`);
      running.push(makeFault(f));
    }
    const left = start + opts.durationMs - Date.now();
    if (left > 0) await sleep(left);
    await Promise.all(running);

    async function makeFault(f: ChaosFault): Promise<void> {
      const h = hostOf.get(f.server)!;
      switch (f.kind) {
        case 'kill':
          killedOnPurpose.add(f.server);
          await n.kill(f.server, 'SIGKILL', 0);
          await sleep(f.forMs);
          killedOnPurpose.delete(f.server);
          n.start(f.server);
          return;
        case 'pause': {
          const pid = n.pid(f.server);
          if (pid === undefined) return;
          process.kill(pid, 'SIGSTOP');
          paused.add(f.server);
          await sleep(f.forMs);
          process.kill(pid, 'SIGCONT');
          paused.delete(f.server);
          return;
        }
        case 'partition':
          hosts.partition(h);
          await sleep(f.forMs);
          hosts.heal(h);
          return;
        case 'loss':
          hosts.setLoss(h, f.loss ?? 1);
          await sleep(f.forMs);
          hosts.setLoss(h, 0);
          return;
      }
    }

    // ---- heal, wait for every server, drain ----
    clearInterval(progress);
    sending = false;
    await sender;
    hosts.clearFaults();
    const packetsDroppedByLoss = hosts.droppedPackets();
    for (const s of n.servers) {
      const pid = n.pid(s.name);
      if (pid !== undefined && paused.has(s.name)) process.kill(pid, 'SIGCONT');
      if (!n.running(s.name)) n.start(s.name);
    }
    log(`chaos: faults over (${schedule.length}); waiting for every server and every message`);
    const settleMs = opts.settleMs ?? 90_000;
    const settleEnd = Date.now() + settleMs;
    const notBack = await waitHealthy(n, settleMs).then(
      () => [] as string[],
      (e: unknown) => (e instanceof ChaosNotBack ? e.names : ['?']),
    );
    // Every verdict, or the end of the settle time.
    let allSettled = false;
    void Promise.all(verdicts).then(() => {
      allSettled = true;
    });
    while (!allSettled && Date.now() < settleEnd) await sleep(500);
    frozen = true;
    // Every acknowledged message must now be shown; the receivers fetch it from their gateways.
    const missing = (): number => [...sent.entries()].filter(([b, r]) => r.verdict === 'delivered' && !shown.has(b)).length;
    const drainEnd = Date.now() + (opts.drainMs ?? 60_000);
    while (missing() > 0 && Date.now() < drainEnd) await sleep(500);
    receiving = false;
    await receiver;
    await collect();

    // ---- count ----
    const all = [...sent.values()];
    const acked = all.filter((r) => r.verdict === 'delivered');
    const lostList = [...sent.entries()].filter(([b, r]) => r.verdict === 'delivered' && !shown.has(b)).map(([b]) => b);
    let duplicated = 0;
    let unknown = 0;
    let receivedUnacknowledged = 0;
    for (const [b, count] of shown) {
      if (count > 1) duplicated += count - 1;
      const r = sent.get(b);
      if (r === undefined) unknown++;
      else if (r.verdict !== 'delivered') receivedUnacknowledged++;
    }
    const ackTimes = acked.map((r) => r.ackMs ?? 0).sort((a, b) => a - b);
    const shownTimes = [...sent.entries()]
      .filter(([b]) => firstShownAt.has(b))
      .map(([b, r]) => firstShownAt.get(b)! - r.at)
      .sort((a, b) => a - b);
    for (const b of lostList.slice(0, 10)) log(`chaos: LOST (acknowledged, never shown): ${b}`);
    for (const [b, c] of shown) if (c > 1) log(`chaos: DUPLICATE (${c}x): ${b}`);
    return {
      seed: opts.seed,
      durationMs: opts.durationMs,
      faults: schedule,
      faultCounts,
      sent: all.length,
      refused,
      acknowledged: acked.length,
      failed: all.filter((r) => r.verdict === 'failed').length,
      pending: all.filter((r) => r.verdict === 'pending').length,
      received: shown.size,
      lost: lostList.length,
      duplicated,
      receivedUnacknowledged,
      unknown,
      lossSupport,
      delayUnsupported,
      packetsDroppedByLoss,
      unexpectedExits,
      notBack,
      ackP50Ms: ackTimes[Math.floor(ackTimes.length / 2)] ?? 0,
      ackMaxMs: ackTimes[ackTimes.length - 1] ?? 0,
      shownP50Ms: shownTimes[Math.floor(shownTimes.length / 2)] ?? 0,
      shownMaxMs: shownTimes[shownTimes.length - 1] ?? 0,
    };
  } finally {
    for (const c of clients) await c.kill();
    if (net !== null) {
      for (const s of net.servers) {
        const pid = net.pid(s.name);
        if (pid !== undefined && net.running(s.name)) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            // gone
          }
        }
      }
      // Partitioned servers cannot reach anyone to say goodbye; heal first, then stop.
      try {
        hosts.clearFaults();
      } catch {
        // removed below anyway
      }
      await net.stopAll(5_000);
    }
    hosts.destroy();
    if (ownDir) rmSync(root, { recursive: true, force: true });
  }
}

class ChaosNotBack extends Error {
  readonly names: string[];
  constructor(names: string[]) {
    super(`not back: ${names.join(', ')}`);
    this.names = names;
  }
}

/** Waits until every server's process runs and its health answers healthy. */
async function waitHealthy(net: LocalNetwork, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await networkStatus(net.servers, 1_000);
    const down = st.nodes.filter((s) => !s.healthy || !net.running(s.name)).map((s) => s.name);
    if (down.length === 0) return;
    if (Date.now() > deadline) throw new ChaosNotBack(down);
    await sleep(500);
  }
}

/** The result as lines for people. */
export function chaosReport(r: ChaosResult): string {
  const f = r.faultCounts;
  return [
    `chaos run, seed ${r.seed}, ${(r.durationMs / 60_000).toFixed(1)} min of faults: ${f.kill} kills, ${f.pause} pauses, ${f.partition} partitions, ${f.loss} loss spells`,
    `  loss: ${r.lossSupport === null ? 'not available on this kernel' : `by ${r.lossSupport}, ${r.packetsDroppedByLoss} packets dropped`}; delay: ${r.delayUnsupported === null ? 'available (not scheduled)' : `not available (${r.delayUnsupported})`}`,
    `  sent ${r.sent} (${r.refused} more refused by the client), acknowledged ${r.acknowledged}, failed ${r.failed}, pending ${r.pending}`,
    `  received ${r.received} (of which ${r.receivedUnacknowledged} not acknowledged), lost ${r.lost}, duplicated ${r.duplicated}, unknown ${r.unknown}`,
    `  acknowledgement latency: median ${r.ackP50Ms} ms, max ${r.ackMaxMs} ms; shown to the receiver after: median ${r.shownP50Ms} ms, max ${r.shownMaxMs} ms`,
    `  unexpected exits: ${r.unexpectedExits.length === 0 ? 'none' : r.unexpectedExits.join(', ')}; not back at the end: ${r.notBack.length === 0 ? 'none' : r.notBack.join(', ')}`,
    `  replay: npm run bench -- chaos --minutes ${(r.durationMs / 60_000).toFixed(2)} --seed ${r.seed}`,
  ].join('\n');
}
