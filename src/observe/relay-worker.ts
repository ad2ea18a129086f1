/**
 * The recording relays of an observed network, on a thread of their own (src/local/observed.ts
 * starts it). A relay is in the path of every link it records: each frame waits for the relay's
 * thread to read it and pass it on. On the thread that also drives an experiment (sends messages,
 * follows inboxes), the relays' timing would follow the driver's work, and a measurement of
 * answer times would partly measure the driver. Here the relays' event loop does nothing else.
 *
 * Times are taken on the process's monotonic clock (process.hrtime, the same in every thread),
 * relative to the driver's origin, so that frames and the driver's own events compare.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { procPeerIdentifier } from './peers.js';
import { RecordBudget, startRelay } from './relay.js';
import type { ConnectionLog, Relay } from './relay.js';

export interface RelayWorkerPlan {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly target: { readonly host: string; readonly port: number };
}

export interface RelayWorkerData {
  readonly plans: readonly RelayWorkerPlan[];
  readonly maxRecords: number;
  /** process.hrtime.bigint() at the observation's zero. */
  readonly originNs: bigint;
}

/** One relay's recorded connections, as handed back when the relays close. */
export interface RelayRecords {
  readonly name: string;
  readonly connections: readonly ConnectionLog[];
}

export type ToRelayWorker = { readonly type: 'processes'; readonly id: number; readonly processes: ReadonlyArray<readonly [number, string]> } | { readonly type: 'close' };

export type FromRelayWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'processes?'; readonly id: number }
  | { readonly type: 'closed'; readonly relays: readonly RelayRecords[]; readonly dropped: number };

function main(port: NonNullable<typeof parentPort>, data: RelayWorkerData): void {
  const post = (m: FromRelayWorker): void => port.postMessage(m);
  const budget = new RecordBudget(data.maxRecords);
  const now = (): number => Number(process.hrtime.bigint() - data.originNs) / 1e6;
  // Peers are named from the driver's current list of processes, asked for at each connection.
  const asked = new Map<number, (processes: ReadonlyMap<number, string>) => void>();
  let nextId = 1;
  let latest: ReadonlyMap<number, string> = new Map();
  const processes = (): ReadonlyMap<number, string> => latest;
  const refresh = (): Promise<void> =>
    new Promise((resolve) => {
      const id = nextId++;
      asked.set(id, (p) => {
        latest = p;
        resolve();
      });
      post({ type: 'processes?', id });
    });
  const byProc = procPeerIdentifier(processes);
  const identify = async (remotePort: number, localPort: number): Promise<string | null> => {
    await refresh();
    return byProc(remotePort, localPort);
  };
  const relays: Relay[] = [];
  port.on('message', (m: ToRelayWorker) => {
    if (m.type === 'processes') {
      const resolve = asked.get(m.id);
      asked.delete(m.id);
      resolve?.(new Map(m.processes));
      return;
    }
    void (async () => {
      await Promise.all(relays.map((r) => r.close()));
      post({ type: 'closed', relays: relays.map((r) => ({ name: r.name, connections: r.connections() })), dropped: budget.dropped });
      port.close();
    })();
  });
  void (async () => {
    try {
      for (const p of data.plans) relays.push(await startRelay({ name: p.name, host: p.host, port: p.port, target: p.target }, { budget, identify, now }));
      post({ type: 'ready' });
    } catch (e) {
      await Promise.all(relays.map((r) => r.close()));
      relays.length = 0;
      post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
    }
  })();
}

if (parentPort !== null) main(parentPort, workerData as RelayWorkerData);
