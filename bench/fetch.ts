/**
 * `npm run bench -- fetch`: how long a gateway takes to answer a fetch, from the moment the fetch
 * arrives to the moment its answer is on the link, by what the mailbox is doing. The traffic rule
 * asks for the same time in every case; a wire observer measured slower answers while mail flowed.
 *
 * A real mailbox store (SQLite files in a temporary folder, WAL, synchronous = FULL) and the real
 * client sessions (src/server/fetch.ts) answer fetches that a load thread (fetch-load.ts) sends as
 * a Poisson stream, stamped when sent; deliveries come from the same thread at a realistic rate
 * in the last phase. Four phases:
 *
 * - `empty`: the client's mailbox is empty.
 * - `entries`: it holds 1 000 entries, and the fetches delete nothing (the same n each time).
 * - `deleting`: each fetch deletes the entry before the one it gets (n grows by one each time).
 * - `commits`: the mailbox is empty while deliveries to 20 other clients are committed in groups.
 *
 * Both paths run in the same process, in turns, on the same arrivals:
 *
 * - `before`: what gateways did up to this change: the deletion of `retrieve_message{n}` is a
 *   synchronous SQLite write on the thread that answers, and deliveries are group-committed on
 *   that thread too (GroupCommitter over the store).
 * - `after`: GatewayMailbox: the answer only reads; deletions wait in memory and are committed
 *   with the deliveries' groups by the writer thread (openWorkerMailboxWriter).
 *
 * The two paths take turns, `BENCH_FETCH_ROUNDS` rounds each (default 2). `BENCH_FETCH_SECONDS`
 * (default 4) sets each phase's length, `BENCH_FETCH_RATE` (default 100) the fetches per second,
 * `BENCH_FETCH_DELIVERIES` (default 300) the deliveries per second. Besides the answer time
 * (arrival to answer on the link, waiting included) `handling_p99_ms` is the time spent in the
 * answer itself: what waiting adds is the rest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counter, Registry } from 'prom-client';
import type { MessageLink } from '../src/link/message-link.js';
import { systemClock } from '../src/ops/clock.js';
import { clientSessions } from '../src/server/fetch.js';
import type { ClientSessions } from '../src/server/fetch.js';
import { GatewayMailbox } from '../src/server/gateway-mailbox.js';
import type { FetchMailbox } from '../src/server/gateway-mailbox.js';
import { GroupCommitter } from '../src/server/group-commit.js';
import type { MailboxEntry, MailboxStore, StoreResult } from '../src/server/mailbox.js';
import { openMailboxStore } from '../src/server/mailbox.js';
import { openWorkerMailboxWriter } from '../src/server/mailbox-writer.js';
import { RateLimiter } from '../src/server/rate-limit.js';
import { WireCodec } from '../src/wire/commands.js';
import type { LoadEvent, LoadPhase } from './fetch-load.js';
import { percentile, round } from './_timing.js';

const PHASES = ['empty', 'entries', 'deleting', 'commits'] as const;
/** Other clients that deliveries go to. */
const OTHERS = 20;
/** Entries in the client's mailbox for the `entries` and `deleting` phases (more than one phase fetches). */
const PREFILL = 1_000;
/** A delivery's body: about what a 2 000-byte user payload with a SURB leaves the gateway to store. */
const PAYLOAD_BYTES = 2_600;
const PACKET_LENGTH = 3082;

const id = (i: number): Uint8Array => new Uint8Array(32).fill(i + 1);
const CLIENT = id(0);
const IDLE_CLIENT = id(1);
const other = (r: number): Uint8Array => id(2 + (r % OTHERS));

/** One path under test: where fetches are answered and deliveries committed. */
interface Path {
  readonly sessions: ClientSessions;
  deliver(entry: MailboxEntry): Promise<StoreResult>;
  /** Stores entries for the client before a phase (not timed). */
  prefill(entries: MailboxEntry[]): Promise<number[]>;
  close(): Promise<void>;
}

function sessionsOver(mailbox: FetchMailbox): ClientSessions {
  const registry = new Registry();
  return clientSessions({
    mailbox,
    limiter: new RateLimiter({ perSecond: 1e9, burst: 1e9, clock: systemClock }),
    codec: new WireCodec({ packetLength: PACKET_LENGTH }),
    fetches: new Counter({ name: 'fetches', help: 'fetches', labelNames: ['result'] as const, registers: [registry] }),
    deletionsRefused: new Counter({ name: 'refused', help: 'refused', registers: [registry] }),
  });
}

/** The path gateways had before: deletions written synchronously while answering, commits on the same thread. */
function beforePath(store: MailboxStore): Path {
  const committer = new GroupCommitter(store);
  const mailbox: FetchMailbox = {
    register: (r) => store.register(r),
    isRegistered: (r) => store.isRegistered(r),
    peek: (r, after) => store.peek(r, after),
    deleteBelow: (r, seq) => (store.ackBelow(r, seq), true),
    deleteOne: (r, seq) => (store.ack(r, seq), true),
  };
  return {
    sessions: sessionsOver(mailbox),
    deliver: (e) => committer.submit(e),
    prefill: (entries) => Promise.resolve(store.storeBatch(entries).map((r) => (r.ok ? r.seq : 0))),
    close: () => committer.close(),
  };
}

/** This branch's path: the answer only reads; a writer thread commits. */
async function afterPath(path: string, reader: MailboxStore): Promise<Path> {
  const writer = await openWorkerMailboxWriter(path);
  const boxes = new GatewayMailbox({}, { reader, writer, clock: systemClock });
  return {
    sessions: sessionsOver(boxes),
    deliver: (e) => boxes.submit(e),
    prefill: async (entries) => (await Promise.all(entries.map((e) => boxes.submit(e)))).map((r) => (r.ok ? r.seq : 0)),
    close: () => boxes.close(),
  };
}

/** A client link whose answers go nowhere: what is timed is the gateway's work up to the link. */
function nullLink(remote: Uint8Array): MessageLink {
  return {
    remoteStatic: remote,
    isOpen: true,
    trySend: () => true,
    send: () => Promise.resolve(),
    close: () => Promise.resolve(),
    [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }),
  };
}

function body(tag: number): Uint8Array {
  const b = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 0; i < b.length; i++) b[i] = (tag * 131 + i * 7) & 0xff;
  return b;
}

const now = (): number => performance.timeOrigin + performance.now();

/** Runs one phase of load against `path`; returns the answer times (ms) of its fetches. */
function runPhase(load: Worker, path: Path, phase: LoadPhase, link: MessageLink, nextSequence: () => number): Promise<{ answer: number[]; handling: number[] }> {
  const answer: number[] = [];
  const handling: number[] = [];
  return new Promise((resolve, reject) => {
    const onMessage = (e: LoadEvent): void => {
      if (e.t === 'fetch') {
        const start = now();
        path.sessions.command(link, { kind: 'retrieve_message', sequence: nextSequence() });
        const done = now();
        answer.push(done - e.at);
        handling.push(done - start);
      } else if (e.t === 'delivery') {
        path.deliver({ recipient: other(e.r), surbId: null, payload: body(e.r) }).catch(reject);
      } else {
        load.off('message', onMessage);
        resolve({ answer, handling });
      }
    };
    load.on('message', onMessage);
    load.postMessage(phase);
  });
}

interface PathFigures {
  [phase: string]: { p50: number; p90: number; p99: number; handlingP99: number; n: number };
}

/** Answer and handling times (ms) by phase, pooled over rounds. */
type Samples = Record<string, { answer: number[]; handling: number[] }>;

function figuresOf(samples: Samples): PathFigures {
  const out: PathFigures = {};
  for (const phase of PHASES) {
    const answer = [...(samples[phase]?.answer ?? [])].sort((a, b) => a - b);
    const handling = [...(samples[phase]?.handling ?? [])].sort((a, b) => a - b);
    out[phase] = { p50: percentile(answer, 50), p90: percentile(answer, 90), p99: percentile(answer, 99), handlingP99: percentile(handling, 99), n: answer.length };
  }
  return out;
}

async function measurePath(load: Worker, path: Path, seconds: number, fetchRate: number, deliveryRate: number, into: Samples): Promise<void> {
  const durationMs = seconds * 1000;
  const client = nullLink(CLIENT);
  const idle = nullLink(IDLE_CLIENT);
  path.sessions.opened(client);
  path.sessions.opened(idle);
  for (let r = 0; r < OTHERS; r++) path.sessions.opened(nullLink(other(r)));
  // Registrations are committed before the first timed fetch, and the code is warm.
  await path.deliver({ recipient: other(0), surbId: null, payload: body(0) });
  await runPhase(load, path, { fetchRate, deliveryRate: 0, durationMs: 1000, seed: 1 }, idle, () => 1);
  for (const phase of PHASES) {
    let link = client;
    let next: () => number = () => 1;
    if (phase === 'entries' || phase === 'deleting') {
      const seqs = await path.prefill(Array.from({ length: PREFILL }, (_, i) => ({ recipient: CLIENT, surbId: null, payload: body(i) })));
      const first = seqs[0]!;
      let n = first;
      next = phase === 'entries' ? () => first : () => ++n;
    }
    if (phase === 'commits') link = idle;
    const { answer, handling } = await runPhase(load, path, { fetchRate, deliveryRate: phase === 'commits' ? deliveryRate : 0, durationMs, seed: 7 + PHASES.indexOf(phase) }, link, next);
    const pool = (into[phase] ??= { answer: [], handling: [] });
    pool.answer.push(...answer);
    pool.handling.push(...handling);
    if (phase === 'entries' || phase === 'deleting') {
      // Empty the client's mailbox again (not timed) so that the next phase starts as the first did.
      path.sessions.command(client, { kind: 'retrieve_message', sequence: 2 ** 31 });
      await path.deliver({ recipient: other(0), surbId: null, payload: body(0) });
    }
  }
}

/** Runs the benchmark; returns flat figures (milliseconds, and after/before ratios). */
export async function benchFetch(): Promise<Record<string, number>> {
  const seconds = Number(process.env['BENCH_FETCH_SECONDS'] ?? 4);
  const fetchRate = Number(process.env['BENCH_FETCH_RATE'] ?? 100);
  const deliveryRate = Number(process.env['BENCH_FETCH_DELIVERIES'] ?? 300);
  const rounds = Number(process.env['BENCH_FETCH_ROUNDS'] ?? 2);
  const dir = mkdtempSync(join(tmpdir(), 'backchannel-bench-fetch-'));
  const load = new Worker(new URL('./fetch-load.js', import.meta.url));
  const result: Record<string, number> = { phase_seconds: seconds, rounds, fetches_per_s: fetchRate, deliveries_per_s: deliveryRate };
  const samples: Record<'before' | 'after', Samples> = { before: {}, after: {} };
  const beforeStore = openMailboxStore(join(dir, 'before.sqlite'));
  const afterFile = join(dir, 'after.sqlite');
  const reader = openMailboxStore(afterFile);
  try {
    const paths = { before: beforePath(beforeStore), after: await afterPath(afterFile, reader) };
    // Rounds alternate which path goes first, so that a machine busier at one moment than the
    // next weighs on both alike; each path's samples are pooled over the rounds.
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)) {
        await measurePath(load, paths[which], seconds, fetchRate, deliveryRate, samples[which]);
      }
    }
    await paths.before.close();
    await paths.after.close();
  } finally {
    beforeStore.close();
    reader.close();
    load.postMessage('stop');
    await load.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
  const figures = { before: figuresOf(samples.before), after: figuresOf(samples.after) };
  for (const which of ['before', 'after'] as const) {
    for (const phase of PHASES) {
      const f = figures[which][phase]!;
      for (const p of ['p50', 'p90', 'p99'] as const) result[`${which}_${phase}_${p}_ms`] = round(f[p], 3);
      result[`${which}_${phase}_handling_p99_ms`] = round(f.handlingP99, 3);
    }
    // The traffic rule in one figure: the slowest phase's p99 against the fastest's (1 = the same whatever the mailbox does).
    const p99s = PHASES.map((p) => figures[which][p]!.p99);
    result[`${which}_p99_spread`] = round(Math.max(...p99s) / Math.min(...p99s), 2);
  }
  for (const phase of PHASES) {
    for (const p of ['p90', 'p99'] as const) {
      result[`after_over_before_${phase}_${p}`] = round(figures.after[phase]![p] / figures.before[phase]![p], 3);
    }
  }
  return result;
}
