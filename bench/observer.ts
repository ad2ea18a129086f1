/**
 * `npm run bench -- observer [--json] [--minutes M] [--trace FILE] [--from-trace FILE]`: what a global passive observer learns from
 * the wire. A local network (real processes, as `backchannel up` runs them) with a recording relay
 * on every link (src/local/observed.ts), four `backchannel client run` processes in two pairs
 * across the two gateways (alice@gateway-1 ↔ bob@gateway-2, carol@gateway-1 ↔ dave@gateway-2),
 * and a schedule of idle stretches between active ones: short messages, a burst of 30, 64 kB
 * messages, one 1 MiB message. The driver keeps the ground truth (when each message was sent,
 * acknowledged and received); the attacks of src/observe/analysis.ts run on the relays' frames
 * against it. docs/anonymity.md explains each figure. Progress on stderr; it stops by itself and
 * stops every process and relay it started. `--trace FILE` keeps the frames' times and sizes and the
 * truth; `--from-trace FILE` runs the analysis again on such a file, without a network.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientSocketPath, ipcCall, ipcRequest } from '../src/client/ipc.js';
import { initClient } from '../src/client/node-client.js';
import { nodeBackend } from '../src/crypto/node.js';
import { BIN_PATH } from '../src/local/network.js';
import { DROP_REASONS, readSample } from '../src/ops/metrics.js';
import { startLocalNetwork } from '../src/local/up.js';
import type { RunningLocalNetwork } from '../src/local/up.js';
import { ackCounting, bystanderTiming, clientLinkTests, controlTiming, fetchTiming, measureDataFrameSize, otherFrames, pairing } from '../src/observe/analysis.js';
import type { Activity, Comparison, ObservedLink, Role, Span, Trace } from '../src/observe/analysis.js';

/** What the driver read at one moment: the machine's 1-minute load average and each client's counters. */
interface Sample {
  readonly t: number;
  readonly load1: number;
  readonly clients: Record<string, { readonly clockRestarts: number; readonly packetsSent: number; readonly reserve?: number; readonly missed?: number }>;
  /** CPU seconds (user + system) each client and server process has used since it started. */
  readonly cpuS?: Record<string, number>;
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds a process has used (user + system), from /proc; null when it cannot be read. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state (field 3).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}

/**
 * A trace as the bench writes it: the observer's view and the driver's side notes, among them each
 * gateway's packets dropped by reason over the run (every sender here is honest, so a drop for a
 * limit, `intake_limited` above all, is honest mail that met it).
 */
type BenchTrace = Trace & { readonly samples?: readonly Sample[]; readonly gatewayDrops?: Record<string, Record<string, number>> };

/** Each gateway's nonzero drop counts by reason, from its ops endpoint; a gateway that does not answer is left out. */
async function gatewayDrops(net: RunningLocalNetwork): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const server of net.network.servers) {
    if (!server.name.startsWith('gateway')) continue;
    try {
      const text = await (await fetch(`${server.opsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const row: Record<string, number> = {};
      for (const reason of DROP_REASONS) {
        const n = readSample(text, 'backchannel_packets_dropped_total', { reason }) ?? 0;
        if (n > 0) row[reason] = n;
      }
      out[server.name] = row;
    } catch {
      // not answering: no figure rather than a wrong one
    }
  }
  return out;
}

/** Default length of the schedule's idle stretches: 5 of them at 45 s, about 10 minutes in all with start-up. */
const DEFAULT_MINUTES = 6;
/** Idle stretches are minutes·60 / IDLE_DIVISOR seconds, within these bounds. */
const IDLE_DIVISOR = 8;
const MIN_IDLE_S = 15;
const MAX_IDLE_S = 600;
/** Longest wait for one active stretch's messages to be acknowledged and received. */
const ACTIVE_TIMEOUT_MS = 240_000;
/** How far past an activity the gateway's acknowledgements and the receiver's fetches still count as active. */
const ACTIVITY_TAIL_MS = 2_000;
/**
 * A base port away from the other benches' and the tests' (the next free range from it is used),
 * below Linux's ephemeral range (32768 up), where outgoing connections could take it first.
 */
const BASE_PORT = 20_000;
/** How often the driver reads each client's status and the machine's load (for the trace). */
const SAMPLE_MS = 5_000;
/**
 * The control stretch's load: a process outside the network that spins this many ms out of every
 * CONTROL_PERIOD_MS (half of one core), to see what a busier machine alone does to answer times.
 */
const CONTROL_SPIN_MS = 10;
const CONTROL_PERIOD_MS = 20;

const CLIENTS = [
  { name: 'alice', gateway: 'gateway-1', partner: 'bob' },
  { name: 'bob', gateway: 'gateway-2', partner: 'alice' },
  { name: 'carol', gateway: 'gateway-1', partner: 'dave' },
  { name: 'dave', gateway: 'gateway-2', partner: 'carol' },
] as const;
type ClientName = (typeof CLIENTS)[number]['name'];

interface RunningClientProcess {
  readonly name: ClientName;
  readonly dir: string;
  readonly address: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

interface MessageTruth {
  readonly from: ClientName;
  readonly to: ClientName;
  readonly bytes: number;
  readonly sentAt: number;
  id: string | null;
  doneAt: number | null;
  outcome: string | null;
  receivedAt: number | null;
}

function say(line: string): void {
  process.stderr.write(`observer: ${line}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A deadline to race against: its timer does not keep the process alive once the work is done. */
function deadlineAfter(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function parseMinutes(argv: readonly string[]): number {
  const k = argv.indexOf('--minutes');
  if (k < 0) return DEFAULT_MINUTES;
  const m = Number(argv[k + 1]);
  if (!Number.isFinite(m) || m <= 0 || m > 600) throw new RangeError('observer: --minutes expects a number of minutes above 0, at most 600');
  return m;
}

async function startClientProcess(name: ClientName, dir: string, address: string): Promise<RunningClientProcess> {
  const child = spawn(process.execPath, [BIN_PATH, 'client', 'run', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  child.stderr?.on('data', () => undefined);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (/socket: /.test(out)) resolve();
    });
    void exited.then(() => reject(new Error(`bench observer: ${name}'s client exited while starting`)));
  });
  return { name, dir, address, child, exited };
}

async function waitConnected(c: RunningClientProcess, deadline: number): Promise<void> {
  for (;;) {
    try {
      const r = await ipcCall(clientSocketPath(c.dir), { op: 'status' });
      const status = r['status'] as { connected?: boolean; epoch?: number | null } | undefined;
      if (status?.connected === true && status.epoch !== null) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`bench observer: ${c.name} did not connect to its gateway in time`);
    await sleep(500);
  }
}

/** A message body: a marker and random bytes. */
function body(bytes: number): string {
  return Buffer.from(nodeBackend.randomBytes(bytes)).toString('base64');
}

function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1);
  return x.toFixed(digits);
}

function compareRow(c: Comparison, test: 'mw' | 'ks'): Record<string, number> {
  const r = test === 'mw' ? c.mannWhitney : c.ks;
  return {
    idle_mean: c.idleMean,
    active_mean: c.activeMean,
    idle_n: c.idleN,
    active_n: c.activeN,
    stat: r === null ? NaN : 'z' in r ? r.z : r.d,
    p: r === null ? NaN : r.p,
  };
}

/** A trace that `--trace` wrote, read back (roles and partners were written as objects). */
function readTrace(file: string): BenchTrace {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Omit<BenchTrace, 'roles' | 'partners'> & { roles: Record<string, Role>; partners?: Record<string, string> };
  return { ...raw, roles: new Map(Object.entries(raw.roles)), partners: new Map(Object.entries(raw.partners ?? {})) };
}

export async function benchObserver(argv: readonly string[] = []): Promise<Record<string, number>> {
  const from = argv.indexOf('--from-trace');
  if (from >= 0) {
    if (argv[from + 1] === undefined) throw new RangeError('observer: --from-trace expects a file that --trace wrote');
    return report(readTrace(argv[from + 1]!), null, 0, 0, argv.includes('--json'));
  }
  const minutes = parseMinutes(argv);
  const idleMs = Math.round(Math.min(MAX_IDLE_S, Math.max(MIN_IDLE_S, (minutes * 60) / IDLE_DIVISOR)) * 1000);
  const root = mkdtempSync(join(tmpdir(), 'bc-bench-observer-'));
  const data = join(root, 'network');
  // The process's monotonic clock, which the relays' thread reads too (src/observe/relay-worker.ts).
  const originNs = process.hrtime.bigint();
  const now = (): number => Number(process.hrtime.bigint() - originNs) / 1e6;
  const pids = new Map<number, string>();
  const clients: RunningClientProcess[] = [];
  const followers = new AbortController();
  const messages: MessageTruth[] = [];
  const samples: Sample[] = [];
  const controls: Span[] = [];
  const byId = new Map<string, MessageTruth>();
  let net: RunningLocalNetwork | null = null;
  // Ctrl-C or a kill stops what the run started (servers, clients, relays) before the bench exits,
  // also while the network is still starting (startLocalNetwork then stops what it started).
  const starting = new AbortController();
  let start: Promise<RunningLocalNetwork> | null = null;
  const interrupted = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping the clients and the network...`);
    followers.abort();
    starting.abort(new Error('interrupted'));
    void (async () => {
      await start?.catch(() => undefined);
      await stopClients(clients).catch(() => undefined);
      await net?.stop().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    say(`starting a local network with a relay on every link (idle stretches of ${idleMs / 1000} s)...`);
    start = startLocalNetwork({ dir: data, basePort: BASE_PORT, observe: { originNs, processes: () => pids }, progress: (l) => say(l), signal: starting.signal });
    net = await start;
    for (const c of CLIENTS) {
      const dir = join(root, c.name);
      const init = await initClient({ dir, network: data, gatewayName: c.gateway });
      const proc = await startClientProcess(c.name, dir, init.address);
      if (proc.child.pid !== undefined) pids.set(proc.child.pid, c.name);
      clients.push(proc);
    }
    const deadline = Date.now() + 120_000;
    await Promise.all(clients.map((c) => waitConnected(c, deadline)));
    say('four clients connected to their gateways');
    const client = (name: ClientName): RunningClientProcess => clients.find((c) => c.name === name)!;

    // Ground truth of receipt: every client follows its inbox.
    const followed = clients.map((c) =>
      ipcRequest(
        clientSocketPath(c.dir),
        { op: 'recv', follow: true },
        (m, conn) => {
          if (m['event'] !== 'message') return;
          const id = typeof m['id'] === 'string' ? m['id'] : '';
          const truth = byId.get(id);
          if (truth !== undefined && truth.receivedAt === null) truth.receivedAt = now();
          conn.send({ op: 'consume', seq: m['seq'] });
        },
        { signal: followers.signal, maxLine: 8 * 1024 * 1024 },
      ).catch(() => undefined),
    );

    const send = (from: ClientName, to: ClientName, bytes: number): Promise<void> => {
      const truth: MessageTruth = { from, to, bytes, sentAt: now(), id: null, doneAt: null, outcome: null, receivedAt: null };
      messages.push(truth);
      return ipcRequest(clientSocketPath(client(from).dir), { op: 'send', to: client(to).address, body_base64: body(bytes), wait: true }, (m) => {
        if (m['ok'] === true && typeof m['id'] === 'string') {
          truth.id = m['id'];
          byId.set(m['id'], truth);
        } else if (m['event'] === 'delivered' || m['event'] === 'sent' || m['event'] === 'failed') {
          truth.doneAt = now();
          truth.outcome = m['event'];
        }
      }).catch(() => {
        truth.outcome = 'error';
        truth.doneAt = now();
      });
    };

    /** Runs one active stretch and waits until its messages are acknowledged and received (or time out). */
    const active = async (label: string, start: () => Promise<void>[]): Promise<void> => {
      say(`active: ${label}`);
      const first = messages.length;
      const sends = start();
      const until = Date.now() + ACTIVE_TIMEOUT_MS;
      await Promise.race([Promise.all(sends), deadlineAfter(ACTIVE_TIMEOUT_MS)]);
      while (Date.now() < until && messages.slice(first).some((m) => m.receivedAt === null && m.outcome !== 'failed')) await sleep(250);
      const mine = messages.slice(first);
      say(`  ${mine.filter((m) => m.outcome === 'delivered').length}/${mine.length} delivered, ${mine.filter((m) => m.receivedAt !== null).length} received`);
    };
    const idle = async (): Promise<void> => {
      say(`idle for ${idleMs / 1000} s`);
      await sleep(idleMs);
    };

    // Side notes for the trace: each client's clock restarts and packets, and the machine's load.
    const sampling = (async () => {
      while (!followers.signal.aborted) {
        const row: Record<string, { clockRestarts: number; packetsSent: number; reserve?: number; missed?: number }> = {};
        for (const c of clients) {
          try {
            const r = await ipcCall(clientSocketPath(c.dir), { op: 'status' });
            const st = r['status'] as { clockRestarts?: Record<string, number>; packetsSent?: Record<string, number>; linkTicks?: { reserve: number; missed: number } } | undefined;
            const sum = (o: Record<string, number> | undefined): number => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
            row[c.name] = { clockRestarts: sum(st?.clockRestarts), packetsSent: sum(st?.packetsSent), ...(st?.linkTicks === undefined ? {} : { reserve: st.linkTicks.reserve, missed: st.linkTicks.missed }) };
          } catch {
            // a client busy or gone: no sample from it this time
          }
        }
        const cpuS: Record<string, number> = {};
        const procs: Array<[string, number | undefined]> = [...clients.map((c): [string, number | undefined] => [c.name, c.child.pid]), ...net!.network.servers.map((x): [string, number | undefined] => [x.name, net!.network.pid(x.name)])];
        for (const [name, pid] of procs) {
          const cpu = pid === undefined ? null : cpuSeconds(pid);
          if (cpu !== null) cpuS[name] = cpu;
        }
        samples.push({ t: now(), load1: loadavg()[0]!, clients: row, cpuS });
        await sleep(SAMPLE_MS);
      }
    })();

    const fromMs = now();
    await idle();
    await active('alice and bob: 6 short messages, 3 s apart, both ways', () => {
      const out: Promise<void>[] = [];
      return [
        (async () => {
          for (let k = 0; k < 6; k++) {
            out.push(send(k % 2 === 0 ? 'alice' : 'bob', k % 2 === 0 ? 'bob' : 'alice', 200));
            await sleep(3_000);
          }
          await Promise.all(out);
        })(),
      ];
    });
    await idle();
    await active('carol to dave: a burst of 30 short messages', () => Array.from({ length: 30 }, () => send('carol', 'dave', 200)));
    await idle();
    await active('alice and bob: a 64 kB message each way', () => [send('alice', 'bob', 64 * 1024), send('bob', 'alice', 64 * 1024)]);
    await idle();
    await active('dave to carol: one 1 MiB message', () => [send('dave', 'carol', 1024 * 1024)]);
    await idle();
    const toMs = now();
    // A control, after the schedule: no mail, and a process outside the network keeps the machine
    // half a core busier. If answers move here as they do for bystanders while others write, the
    // bystanders saw the machine.
    const controlMs = Math.round(idleMs / 2);
    say(`control: ${controlMs / 1000} s with the machine kept busy by a process outside the network, no mail`);
    const control = await busyMachine(controlMs, now);
    controls.push(control);
    say(`idle for ${controlMs / 1000} s (after the control)`);
    await sleep(controlMs);
    const controlsUntilMs = now();

    const drops = await gatewayDrops(net);
    followers.abort();
    await Promise.all(followed);
    await sampling;
    say('schedule done; stopping clients and the network...');
    await stopClients(clients);
    await net.stop();
    const observer = net.observer!;
    net = null;

    // The observer's view: every relayed connection, named by its two ends.
    const links: ObservedLink[] = [];
    let unnamed = 0;
    for (const r of observer.relays) {
      for (const c of r.connections()) {
        if (c.peer === null) unnamed++;
        links.push({ initiator: c.peer, responder: r.name, label: `${r.name} link #${c.index}`, forward: c.forward, backward: c.backward });
      }
    }
    const roles = new Map<string, Role>();
    for (const r of observer.relays) roles.set(r.name, r.name.startsWith('gateway') ? { role: 'gateway' } : { role: 'mix', layer: Number(/^mix-(\d+)-/.exec(r.name)?.[1] ?? 0) });
    for (const c of CLIENTS) roles.set(c.name, { role: 'client', gateway: c.gateway });
    const activities: Activity[] = messages.map((m) => ({
      startMs: m.sentAt,
      endMs: Math.max(m.doneAt ?? toMs, m.receivedAt ?? m.doneAt ?? toMs) + ACTIVITY_TAIL_MS,
      clients: [m.from, m.to],
    }));
    const trace: BenchTrace = { links, roles, activities, fromMs, toMs, partners: new Map(CLIENTS.map((c) => [c.name, c.partner])), controls, controlsUntilMs, samples, gatewayDrops: drops };
    const k = argv.indexOf('--trace');
    if (k >= 0 && argv[k + 1] !== undefined) {
      // Times and sizes only (what the relays recorded) and the driver's truth, for analyses of one's own.
      writeFileSync(argv[k + 1]!, JSON.stringify({ ...trace, roles: Object.fromEntries(roles), partners: Object.fromEntries(trace.partners ?? []) }));
    }
    return report(trace, messages, unnamed, observer.dropped(), argv.includes('--json'));
  } finally {
    followers.abort();
    await stopClients(clients);
    await net?.stop();
    rmSync(root, { recursive: true, force: true });
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}

/** Runs a process that spins CONTROL_SPIN_MS of every CONTROL_PERIOD_MS for `ms`, and returns when it ran. */
async function busyMachine(ms: number, now: () => number): Promise<Span> {
  const script = `const end = Date.now() + ${ms};
const tick = () => {
  const t = performance.now();
  while (performance.now() - t < ${CONTROL_SPIN_MS});
  if (Date.now() < end) setTimeout(tick, ${CONTROL_PERIOD_MS - CONTROL_SPIN_MS});
};
tick();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const startMs = now();
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { startMs, endMs: now() };
}

async function stopClients(clients: readonly RunningClientProcess[]): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (c.child.exitCode !== null || c.child.signalCode !== null) return;
      c.child.kill('SIGINT');
      const timer = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
      await c.exited;
      clearTimeout(timer);
    }),
  );
}

/** The analysis of a trace; `messages` is the driver's truth of a live run (null for a trace read back). */
function report(trace: BenchTrace, messages: readonly MessageTruth[] | null, unnamed: number, dropped: number, json: boolean): Record<string, number> {
  const dataSize = measureDataFrameSize(trace.links);
  const opts = { dataFrameSize: dataSize };
  const out: Record<string, number> = {
    data_frame_bytes: dataSize,
    seconds: Math.floor((trace.toMs - trace.fromMs) / 1000),
    links: trace.links.length,
    links_unnamed: unnamed,
    records_dropped: dropped,
  };
  if (messages !== null) {
    out['messages'] = messages.length;
    out['messages_delivered'] = messages.filter((m) => m.outcome === 'delivered').length;
    out['messages_received'] = messages.filter((m) => m.receivedAt !== null).length;
  }
  const put = (prefix: string, row: Record<string, number>): void => {
    for (const [k, v] of Object.entries(row)) out[`${prefix}.${k}`] = v;
  };
  const lines: string[] = [];
  const line = (s: string): void => void lines.push(s);

  line(`data frames: ${dataSize} bytes; ${out['links']} links (${unnamed} with the connecting side unknown); ${out['seconds']} s observed`);
  if (messages !== null) line(`messages: ${messages.length} sent, ${out['messages_delivered']} acknowledged, ${out['messages_received']} received`);
  else line(`activities: ${trace.activities.length} (from a trace file)`);
  if (trace.gatewayDrops !== undefined) {
    // Drop cover ends at a gateway by design; anything else here is honest traffic that met a limit or a fault.
    const parts = Object.entries(trace.gatewayDrops).map(([g, row]) => {
      const shown = Object.entries(row).filter(([r]) => r !== 'drop_cover');
      for (const [r, n] of shown) out[`gateway_drops.${g}.${r}`] = n;
      return `${g} ${shown.length === 0 ? 'none' : shown.map(([r, n]) => `${r} ${n}`).join(', ')}`;
    });
    line(`gateways' drops other than drop cover (every sender here is honest): ${parts.join('; ')}`);
  }
  line('');
  line('ack counting (per second, idle vs active seconds of the gateway\'s clients; Mann-Whitney)');
  for (const r of ackCounting(trace, opts)) {
    for (const [what, c] of [
      ['surplus (to layer 1 - clients\' packets)', r.surplus],
      ['from layer 3', r.fromLayer3],
      ['to layer 1', r.toLayer1],
    ] as const) {
      line(`  ${r.gateway} ${what}: idle ${fmt(c.idleMean, 2)}/s (n=${c.idleN}), active ${fmt(c.activeMean, 2)}/s (n=${c.activeN}), z ${fmt(c.mannWhitney?.z, 2)}, p ${fmt(c.mannWhitney?.p)}`);
    }
    put(`ack.${r.gateway}.surplus`, compareRow(r.surplus, 'mw'));
    put(`ack.${r.gateway}.from_layer3`, compareRow(r.fromLayer3, 'mw'));
    put(`ack.${r.gateway}.to_layer1`, compareRow(r.toLayer1, 'mw'));
  }
  line('');
  line('fetch answer time (gateway frame after the client\'s last frame; idle vs active; KS)');
  const timing = fetchTiming(trace, opts);
  for (const r of timing) {
    const c = r.latency;
    line(
      `  ${r.client}: idle mean ${fmt(c.idleMean, 2)} ms (n=${c.idleN}), active ${fmt(c.activeMean, 2)} ms (n=${c.activeN}), D ${fmt(c.ks?.d)}, p ${fmt(c.ks?.p)}; slow (> ${fmt(r.slowThresholdMs, 2)} ms, idle p90): idle ${fmt(r.slowShareIdle)}, active ${fmt(r.slowShareActive)}`,
    );
    put(`fetch.${r.client}`, { ...compareRow(c, 'ks'), slow_ms: r.slowThresholdMs, slow_share_idle: r.slowShareIdle, slow_share_active: r.slowShareActive });
  }
  line('  per second, less the other clients\' mean that second (the test of record: what the machine does to all cancels; Mann-Whitney over seconds)');
  for (const r of timing) {
    const c = r.relative;
    line(`  ${r.client}: idle ${fmt(c.idleMean, 3)} ms (n=${c.idleN} s), active ${fmt(c.activeMean, 3)} ms (n=${c.activeN} s), z ${fmt(c.mannWhitney?.z, 2)}, p ${fmt(c.mannWhitney?.p)}`);
    put(`fetch_relative.${r.client}`, compareRow(c, 'mw'));
  }
  const bystander = bystanderTiming(trace, opts);
  line(
    `  clients idle themselves, per second, nobody active vs someone else active: ${fmt(bystander.idleMean, 3)} ms (n=${bystander.idleN} s) vs ${fmt(bystander.activeMean, 3)} ms (n=${bystander.activeN} s), z ${fmt(bystander.mannWhitney?.z, 2)}, p ${fmt(bystander.mannWhitney?.p)}`,
  );
  put('fetch_bystander', compareRow(bystander, 'mw'));
  const control = controlTiming(trace, opts);
  if (control !== null) {
    line(
      `  control (no mail; the machine kept busy by a process outside the network), all clients per second, quiet vs control: ${fmt(control.idleMean, 3)} ms (n=${control.idleN} s) vs ${fmt(control.activeMean, 3)} ms (n=${control.activeN} s), z ${fmt(control.mannWhitney?.z, 2)}, p ${fmt(control.mannWhitney?.p)}`,
    );
    put('fetch_control', compareRow(control, 'mw'));
  }
  line('');
  line("a client's own link, idle vs active (frames/s: Mann-Whitney; inter-departure times: KS)");
  for (const r of clientLinkTests(trace, opts)) {
    line(
      `  ${r.client}: sent ${fmt(r.sentPerS.idleMean, 2)} -> ${fmt(r.sentPerS.activeMean, 2)}/s p ${fmt(r.sentPerS.mannWhitney?.p)}; received ${fmt(r.receivedPerS.idleMean, 2)} -> ${fmt(r.receivedPerS.activeMean, 2)}/s p ${fmt(r.receivedPerS.mannWhitney?.p)}; gaps ${fmt(r.interDeparture.idleMean, 1)} -> ${fmt(r.interDeparture.activeMean, 1)} ms D ${fmt(r.interDeparture.ks?.d)} p ${fmt(r.interDeparture.ks?.p)}`,
    );
    put(`link.${r.client}.sent`, compareRow(r.sentPerS, 'mw'));
    put(`link.${r.client}.received`, compareRow(r.receivedPerS, 'mw'));
    put(`link.${r.client}.gaps`, compareRow(r.interDeparture, 'ks'));
  }
  line('  per second, less the other clients\' mean that second (the tests of record: what the machine does to all cancels; Mann-Whitney over seconds)');
  for (const r of clientLinkTests(trace, opts)) {
    const g = r.relativeGap;
    const n = r.relativeSentPerS;
    line(
      `  ${r.client}: frames/s ${fmt(n.idleMean, 2)} -> ${fmt(n.activeMean, 2)} p ${fmt(n.mannWhitney?.p)}; mean gap ${fmt(g.idleMean, 2)} -> ${fmt(g.activeMean, 2)} ms (n=${g.idleN}/${g.activeN} s) p ${fmt(g.mannWhitney?.p)}`,
    );
    put(`link_relative.${r.client}.sent`, compareRow(n, 'mw'));
    put(`link_relative.${r.client}.gaps`, compareRow(g, 'mw'));
  }
  if (trace.samples !== undefined && trace.samples.length >= 2) {
    const within = trace.samples.filter((x) => x.t >= trace.fromMs && x.t <= trace.toMs);
    const loads = within.map((x) => x.load1).sort((a, b) => a - b);
    if (loads.length > 0) {
      line(`  the machine: 1-minute load average ${fmt(loads[0], 1)} min, ${fmt(loads[Math.floor(loads.length / 2)], 1)} median, ${fmt(loads[loads.length - 1], 1)} max`);
      out['machine.load1_median'] = loads[Math.floor(loads.length / 2)]!;
      out['machine.load1_max'] = loads[loads.length - 1]!;
    }
    for (const c of Object.keys(within[0]?.clients ?? {})) {
      const mine = within.filter((x) => x.clients[c] !== undefined);
      if (mine.length < 2) continue;
      const a = mine[0]!;
      const b = mine[mine.length - 1]!;
      const restarts = b.clients[c]!.clockRestarts - a.clients[c]!.clockRestarts;
      const rate = (b.clients[c]!.packetsSent - a.clients[c]!.packetsSent) / ((b.t - a.t) / 1000);
      const ticks = b.clients[c]!.reserve === undefined ? '' : `, ${(b.clients[c]!.reserve ?? 0) - (a.clients[c]!.reserve ?? 0)} ticks on reserve cover (the engine behind), ${(b.clients[c]!.missed ?? 0) - (a.clients[c]!.missed ?? 0)} missed`;
      line(`  ${c}'s engine: ${fmt(rate, 2)} packets/s to the link, ${restarts} clock restarts (stalls that dropped overdue events)${ticks}`);
      out[`engine.${c}.packets_per_s`] = rate;
      out[`engine.${c}.clock_restarts`] = restarts;
      if (b.clients[c]!.reserve !== undefined) {
        out[`engine.${c}.reserve_ticks`] = (b.clients[c]!.reserve ?? 0) - (a.clients[c]!.reserve ?? 0);
        out[`engine.${c}.missed_ticks`] = (b.clients[c]!.missed ?? 0) - (a.clients[c]!.missed ?? 0);
      }
    }
    // CPU per process over the schedule: what cover traffic costs a client and a gateway.
    const first = within[0]!;
    const last = within[within.length - 1]!;
    const spanS = (last.t - first.t) / 1000;
    const cpu = Object.keys(first.cpuS ?? {})
      .filter((n) => last.cpuS?.[n] !== undefined && spanS > 0)
      .map((n) => [n, (last.cpuS![n]! - first.cpuS![n]!) / spanS] as const);
    if (cpu.length > 0) {
      line(`  CPU (share of one core over the schedule): ${cpu.filter(([n]) => !n.startsWith('mix') && !n.startsWith('auth')).map(([n, v]) => `${n} ${fmt(v * 100, 1)}%`).join(', ')}`);
      const mixes = cpu.filter(([n]) => n.startsWith('mix')).map(([, v]) => v);
      if (mixes.length > 0) line(`  CPU of the ${mixes.length} mixes: ${fmt((mixes.reduce((a, b) => a + b, 0) / mixes.length) * 100, 1)}% each on average`);
      for (const [n, v] of cpu) out[`cpu.${n}`] = v;
    }
  }
  line('');
  const pair = pairing(trace, opts);
  line('pairing (best lagged correlation of per-second series, candidates ranked)');
  for (const r of pair.results) {
    line(`  ${r.client}: ${r.ranking.map((c) => `${c.client} ${fmt(c.score)}`).join(', ')}; true partner ${r.partner ?? '-'} ${r.partnerFirst ? 'ranked first' : 'not first'}`);
    out[`pairing.${r.client}.partner_first`] = r.partnerFirst ? 1 : 0;
  }
  line(`  ${pair.correct}/${pair.scored} ranked first (binomial p ${fmt(pair.p)}, overstated: rankings share pair scores)`);
  line(`  pairs by score: ${pair.pairs.map((q) => `${q.rank}. ${q.a}-${q.b} ${fmt(q.score)}${q.partners ? ' (true)' : ''}`).join(', ')}`);
  line(`  true pairs' rank sum ${pair.pairRankSum} (${pair.truePairs} of ${pair.pairs.length} pairs); p under a random order ${fmt(pair.pairRankP)}`);
  out['pairing.correct'] = pair.correct;
  out['pairing.p'] = pair.p;
  out['pairing.rank_sum'] = pair.pairRankSum;
  out['pairing.rank_p'] = pair.pairRankP;
  line('');
  line('frames of other sizes (not data frames), by link: idle / active counts');
  let others = 0;
  for (const o of otherFrames(trace, opts)) {
    others += o.total;
    if (o.total === 0) continue;
    line(`  ${o.label} (${o.initiator ?? '?'} -> ${o.responder}): ${o.total} in all; idle ${JSON.stringify(o.idle)}; active ${JSON.stringify(o.active)}`);
  }
  out['other_frames'] = others;
  // With --json the figures go to stdout as one line; the readable report then goes to stderr.
  if (json) process.stderr.write(`${lines.join('\n')}\n`);
  else console.log(lines.join('\n'));
  return out;
}
