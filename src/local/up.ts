/**
 * `backchannel up`'s work, shared with the integration tests: make a local network's configs
 * when the directory has none, start every server as its own process, and wait until the
 * authorities have signed the first consensus and every node follows it. One `up` at a time runs
 * a folder: it holds the folder's lock (lock.ts) while it runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateNetwork, networkPortCount, NETWORK_FILE, readNetworkFile } from '../config/genconfig.js';
import type { NetworkFile } from '../config/network.js';
import { LOCAL_NETWORK_EPOCH_MS } from '../config/params.js';
import type { NetworkParameters } from '../pki/types.js';
import { BackchannelError } from '../errors.js';
import { fetchDocument } from '../pki/client.js';
import { epochAt } from '../pki/document.js';
import { nodeEd25519 } from '../pki/ed25519-node.js';
import type { SignedDocument } from '../pki/types.js';
import { lockDataDir } from './lock.js';
import { findFreePortRange, LocalNetwork } from './network.js';
import { networkStatus } from './status.js';

/** The local network's shape (DESIGN.md): 3 authorities, 3 layers of 2 mixes, 2 gateways. */
export const LOCAL_AUTHORITIES = 3;
export const LOCAL_LAYERS = 3;
export const LOCAL_MIXES_PER_LAYER = 2;
export const LOCAL_GATEWAYS = 2;
export const DEFAULT_DATA_DIR = './backchannel-data';

export interface UpOptions {
  readonly dir: string;
  /** First port to try when making a new network (default 30000; the next free range is used). */
  readonly basePort?: number;
  /** For a new network: overrides of the parameters (epochs of LOCAL_NETWORK_EPOCH_MS by default). */
  readonly params?: Partial<Omit<NetworkParameters, 'layers'>>;
  /** How long to wait for the first consensus and healthy nodes. Default: 3 epochs + 30 s. */
  readonly timeoutMs?: number;
  /** Progress lines for people (stderr in the CLI). */
  readonly progress?: (line: string) => void;
  /** A server process that exits while the network runs. */
  readonly onExit?: (name: string, how: string) => void;
}

export interface RunningLocalNetwork {
  readonly network: LocalNetwork;
  readonly networkFile: NetworkFile;
  readonly document: SignedDocument;
  /** Whether the configs were made by this call. */
  readonly created: boolean;
  /** Stops every server and releases the folder's lock. */
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Makes the configs under `dir` unless they exist. Returns whether it made them. */
export async function ensureLocalNetwork(opts: Pick<UpOptions, 'dir' | 'basePort' | 'params'>): Promise<boolean> {
  if (existsSync(join(opts.dir, NETWORK_FILE))) return false;
  const shape = { authorities: LOCAL_AUTHORITIES, layers: LOCAL_LAYERS, mixesPerLayer: LOCAL_MIXES_PER_LAYER, gateways: LOCAL_GATEWAYS };
  const basePort = await findFreePortRange(networkPortCount(shape), opts.basePort ?? 30_000);
  generateNetwork({
    dir: opts.dir,
    ...shape,
    hosts: ['127.0.0.1'],
    basePort,
    params: { epochPeriodMs: LOCAL_NETWORK_EPOCH_MS, ...opts.params },
  });
  return true;
}

/**
 * Waits until the authorities serve a document, with the threshold of signatures, for the epoch
 * it is now, that lists every node named in `names`. A network's first documents may lack a node
 * that started late (an authority votes without it once its bootstrap wait is over), and a
 * document of an earlier epoch may still be served just after a boundary; neither is what a
 * caller that routes through named nodes can use.
 * @throws {BackchannelError} ERR_SERVER at the deadline, naming the nodes still missing.
 */
export async function waitForDocument(net: NetworkFile, deadline: number, names: readonly string[] = []): Promise<SignedDocument> {
  let last = 'no document could be fetched';
  for (;;) {
    try {
      const doc = await fetchDocument({ authorities: net.authorities, threshold: net.threshold, epoch: 'current', ed: nodeEd25519, timeoutMs: 2_000 });
      const listed = new Set(doc.document.nodes.map((n) => n.name));
      const missing = names.filter((n) => !listed.has(n));
      const now = epochAt(Date.now(), net.params.epochPeriodMs);
      if (missing.length === 0 && doc.document.epoch === now) return doc;
      last =
        doc.document.epoch !== now
          ? `the newest document is for epoch ${doc.document.epoch}, not ${now}`
          : `the document for epoch ${doc.document.epoch} does not list ${missing.join(', ')}`;
    } catch (e) {
      last = e instanceof Error ? e.message : 'fetch failed';
    }
    if (Date.now() >= deadline) break;
    await sleep(250);
  }
  throw new BackchannelError('ERR_SERVER', `up: no consensus document naming every node within the time allowed (${last}; see the servers' server.log)`);
}

/**
 * Starts the network in `dir` (making it first when needed) and waits until it works.
 * @throws {BackchannelError} ERR_LOCAL_IN_USE when another `up` holds the folder; ERR_SERVER
 *   when the network is not up in time. Whatever was started is stopped first.
 */
export async function startLocalNetwork(opts: UpOptions): Promise<RunningLocalNetwork> {
  const progress = opts.progress ?? (() => undefined);
  const lock = lockDataDir(opts.dir, { progress });
  let network: LocalNetwork | null = null;
  try {
    const created = await ensureLocalNetwork(opts);
    const networkFile = readNetworkFile(join(opts.dir, NETWORK_FILE));
    const net = new LocalNetwork(opts.dir, opts.onExit ? { onExit: opts.onExit } : {});
    network = net;
    const period = networkFile.params.epochPeriodMs;
    const deadline = Date.now() + (opts.timeoutMs ?? 3 * period + 30_000);
    progress(`${created ? 'made a new network; ' : ''}starting ${net.servers.length} servers...`);
    net.startAll();
    progress('waiting for the authorities to sign the first consensus...');
    const names = net.servers.filter((s) => s.role !== 'authority').map((s) => s.name);
    const document = await waitForDocument(networkFile, deadline, names);
    progress(`consensus for epoch ${document.document.epoch} signed, listing all ${names.length} nodes`);
    progress('waiting for every server to be healthy...');
    for (;;) {
      const st = await networkStatus(net.servers, 1_000);
      const down = st.nodes.filter((n) => !n.healthy).map((n) => n.name);
      if (down.length === 0) break;
      if (Date.now() > deadline) throw new BackchannelError('ERR_SERVER', `up: servers not healthy in time: ${down.join(', ')} (see their server.log)`);
      await sleep(250);
    }
    return {
      network: net,
      networkFile,
      document,
      created,
      stop: async () => {
        await net.stopAll();
        lock.release();
      },
    };
  } catch (e) {
    await network?.stopAll();
    lock.release();
    throw e;
  }
}
