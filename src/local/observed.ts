/**
 * A local network with a recording relay (src/observe/relay.ts) on every link: each mix and
 * gateway keeps advertising the address genconfig gave it (in its descriptor, and for gateways in
 * network.json), but listens on another port, and a relay named after the node listens on the
 * advertised one and forwards to it. So every node-to-node link and every client-to-gateway link
 * passes a relay, and the observer sees them all. Authorities (HTTP) and gateways' WebSocket
 * listeners are not relayed.
 *
 * The move is written into the configs, so a folder once observed needs its relays on every start
 * (`startLocalNetwork({ observe })` starts them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { writeFileAtomic } from '../config/_fs.js';
import { splitHostPort } from '../config/_validate.js';
import { CONFIG_FILE } from '../config/genconfig.js';
import { BackchannelError } from '../errors.js';
import { DEFAULT_MAX_RECORDS } from '../observe/relay.js';
import type { ConnectionLog } from '../observe/relay.js';
import type { FromRelayWorker, RelayWorkerData, ToRelayWorker } from '../observe/relay-worker.js';
import { findFreePortRange, readLocalServers } from './network.js';
import type { LocalNetwork } from './network.js';

export interface ObserveOptions {
  /** Records kept over all relays (default DEFAULT_MAX_RECORDS). */
  readonly maxRecords?: number;
  /** Processes other than the network's servers that connect to it (clients): pid → name, read at each connection. */
  readonly processes?: () => ReadonlyMap<number, string>;
  /**
   * The observation's zero on the process's monotonic clock (process.hrtime.bigint(); the same in
   * every thread): frames are timed in ms from it. Default: when the relays start.
   */
  readonly originNs?: bigint;
}

/** Where a node listens and where its relay listens. */
export interface RelayPlan {
  readonly name: string;
  readonly advertised: { readonly host: string; readonly port: number };
  readonly listen: { readonly host: string; readonly port: number };
}

/** Config files hold no secrets (as genconfig writes them). */
const CONFIG_FILE_MODE = 0o644;

/**
 * Moves every mix's and gateway's listener in `dir` off its advertised port (once: a node already
 * moved keeps its port) and returns where each listens and where its relay goes.
 * @throws {BackchannelError} ERR_CONFIG when a config cannot be rewritten; ERR_SERVER when no free ports are found.
 */
export async function planRelays(dir: string): Promise<RelayPlan[]> {
  const servers = readLocalServers(dir).filter((s) => s.role !== 'authority');
  const highest = Math.max(...readLocalServers(dir).flatMap((s) => [s.config.listen.port, s.config.ops.port, s.config.role === 'gateway' && s.config.wsListen !== null ? s.config.wsListen.port : 0]));
  const toMove = servers.filter((s) => s.config.role !== 'authority' && (s.config.advertise === null || splitHostPort(s.config.advertise).port === s.config.listen.port));
  let next = toMove.length > 0 ? await findFreePortRange(toMove.length, highest + 1) : 0;
  const plans: RelayPlan[] = [];
  for (const s of servers) {
    const c = s.config;
    if (c.role === 'authority') continue;
    const advertised = splitHostPort(c.advertise ?? `${c.listen.host}:${c.listen.port}`);
    let listen = { host: c.listen.host, port: c.listen.port };
    if (toMove.includes(s)) {
      listen = { host: c.listen.host, port: next++ };
      const path = join(dir, s.name, CONFIG_FILE);
      try {
        const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
        json['listen'] = listen;
        json['advertise'] = `${advertised.host}:${advertised.port}`;
        writeFileAtomic(path, Buffer.from(`${JSON.stringify(json, null, 2)}\n`), { mode: CONFIG_FILE_MODE });
      } catch (e) {
        throw new BackchannelError('ERR_CONFIG', `local: cannot move ${s.name}'s listener behind a relay`, { cause: e });
      }
    }
    plans.push({ name: s.name, advertised, listen });
  }
  return plans;
}

/** One relay's records, once the relays have closed. */
export interface ObservedRelay {
  readonly name: string;
  connections(): readonly ConnectionLog[];
}

/** The relays of an observed network. */
export interface Observer {
  /** Every relay and what it recorded: filled when `close` has resolved (empty before). */
  readonly relays: readonly ObservedRelay[];
  /** Records dropped past the bound, over all relays (known once closed). */
  dropped(): number;
  close(): Promise<void>;
}

/**
 * Starts one relay per plan, on the advertised address, forwarding to the node's listener, all on
 * one worker thread of their own (src/observe/relay-worker.ts: the relays' timing must not follow
 * what this thread does). Peers are named from the network's server processes and
 * `opts.processes`.
 * @throws {BackchannelError} ERR_OBSERVE_RELAY when an advertised address cannot be bound (the
 *   relays started are closed first).
 */
export async function startRelays(plans: readonly RelayPlan[], network: Pick<LocalNetwork, 'servers' | 'pid'>, opts: ObserveOptions = {}): Promise<Observer> {
  const processes = (): Array<[number, string]> => {
    const out = new Map<number, string>();
    for (const s of network.servers) {
      const pid = network.pid(s.name);
      if (pid !== undefined) out.set(pid, s.name);
    }
    for (const [pid, name] of opts.processes?.() ?? []) out.set(pid, name);
    return [...out];
  };
  const data: RelayWorkerData = {
    plans: plans.map((p) => ({
      name: p.name,
      host: p.advertised.host,
      port: p.advertised.port,
      target: { host: p.listen.host === '0.0.0.0' || p.listen.host === '::' ? '127.0.0.1' : p.listen.host, port: p.listen.port },
    })),
    maxRecords: opts.maxRecords ?? DEFAULT_MAX_RECORDS,
    originNs: opts.originNs ?? process.hrtime.bigint(),
  };
  const worker = new Worker(new URL('../observe/relay-worker.js', import.meta.url), { workerData: data });
  const relays: ObservedRelay[] = [];
  let dropped = 0;
  let closed: Promise<void> | null = null;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const ended = (): BackchannelError => new BackchannelError('ERR_OBSERVE_RELAY', 'observe: the relays\' thread ended');
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromRelayWorker) => {
      if (m.type === 'processes?') worker.postMessage({ type: 'processes', id: m.id, processes: processes() } satisfies ToRelayWorker);
      else if (m.type === 'ready') resolve();
      else if (m.type === 'failed') reject(new BackchannelError('ERR_OBSERVE_RELAY', m.message));
      else if (m.type === 'closed') {
        for (const r of m.relays) relays.push({ name: r.name, connections: () => r.connections });
        dropped = m.dropped;
      }
    });
    worker.once('error', (e) => reject(new BackchannelError('ERR_OBSERVE_RELAY', 'observe: the relays\' thread failed', { cause: e })));
    void exited.then(() => reject(ended()));
  }).catch(async (e: unknown) => {
    await worker.terminate();
    throw e;
  });
  return {
    relays,
    dropped: () => dropped,
    close: () => {
      closed ??= (async () => {
        worker.postMessage({ type: 'close' } satisfies ToRelayWorker);
        await exited;
      })();
      return closed;
    },
  };
}
