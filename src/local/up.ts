/**
 * `backchannel up`'s work, shared with the integration tests: make a local network's configs
 * when the directory has none, start every server as its own process, and wait until the
 * authorities have signed the first consensus and every node follows it.
 *
 * What answers on this network's ports is not taken on trust: a second `up` of a running folder
 * (or of a copy of one, which has the same ports and keys) would otherwise find the first one's
 * servers answering and report them as its own while its own servers died. So `up` holds a lock
 * on the folder (lock.ts), refuses ports that something else holds, fails as soon as one of its
 * servers exits while starting, and accepts only a document that lists this network's nodes with
 * this network's keys.
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
import { equalBytes } from '../util/bytes.js';
import { lockDataDir } from './lock.js';
import { planRelays, startRelays } from './observed.js';
import type { ObserveOptions, Observer } from './observed.js';
import { findFreePortRange, LocalNetwork, takenPorts } from './network.js';
import type { LocalServer, ServerPort } from './network.js';
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
  /** A server process that exits while the network runs (one that exits while starting fails the start instead). */
  readonly onExit?: (name: string, how: string) => void;
  /**
   * Puts a recording relay in front of every mix and gateway (src/local/observed.ts): the wire
   * observer. The folder's configs are changed for it, so a folder once observed needs this on
   * every start.
   */
  readonly observe?: ObserveOptions;
  /** Stops the start-up: what was started is stopped, and the start throws the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface RunningLocalNetwork {
  readonly network: LocalNetwork;
  readonly networkFile: NetworkFile;
  readonly document: SignedDocument;
  /** Whether the configs were made by this call. */
  readonly created: boolean;
  /** The relays on every link, when started with `observe`; else null. */
  readonly observer: Observer | null;
  /** Stops every server and releases the folder's lock. */
  stop(): Promise<void>;
}

/** A node as this network's configs know it: what a document of this network must say of it. */
export interface ExpectedNode {
  readonly identityKey: Uint8Array;
  /** A gateway's link key as the network file gives it to clients; null for a mix. */
  readonly linkKey: Uint8Array | null;
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

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
 * This network's mixes and gateways by name: identity keys from the authorities' configs (the
 * nodes they accept descriptors from), and gateways' link keys from the network file.
 */
export function expectedNodes(servers: readonly LocalServer[], networkFile: NetworkFile): Map<string, ExpectedNode> {
  const out = new Map<string, ExpectedNode>();
  const authority = servers.map((s) => s.config).find((c) => c.role === 'authority');
  if (authority === undefined || authority.role !== 'authority') return out;
  for (const n of authority.nodes) {
    const gateway = networkFile.gateways.find((g) => g.name === n.name);
    out.set(n.name, { identityKey: n.identityKey, linkKey: gateway?.linkKey ?? null });
  }
  return out;
}

/** Names of the nodes in `doc` that are not `expected`'s, or carry other keys. */
function foreignNodes(doc: SignedDocument, expected: ReadonlyMap<string, ExpectedNode>): string[] {
  return doc.document.nodes
    .filter((n) => {
      const e = expected.get(n.name);
      return e === undefined || !equalBytes(e.identityKey, n.identityKey) || (e.linkKey !== null && !equalBytes(e.linkKey, n.linkKey));
    })
    .map((n) => n.name);
}

export interface WaitForDocumentOptions {
  /** When given, every node the document lists must be one of these, with these keys. */
  readonly expected?: ReadonlyMap<string, ExpectedNode>;
  /** Stops the wait; it then throws the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * Waits until the authorities serve a document, with the threshold of signatures, for the epoch
 * it is now, that lists every node named in `names`. A network's first documents may lack a node
 * that started late (an authority votes without it once its bootstrap wait is over), and a
 * document of an earlier epoch may still be served just after a boundary; neither is what a
 * caller that routes through named nodes can use. Nor is a document that lists nodes other than
 * `opts.expected`: that is some other network's.
 * @throws {BackchannelError} ERR_SERVER at the deadline, naming the nodes still missing; the
 *   signal's reason when `opts.signal` aborts.
 */
export async function waitForDocument(net: NetworkFile, deadline: number, names: readonly string[] = [], opts: WaitForDocumentOptions = {}): Promise<SignedDocument> {
  const { expected, signal } = opts;
  let last = 'no document could be fetched';
  for (;;) {
    signal?.throwIfAborted();
    try {
      const doc = await fetchDocument({ authorities: net.authorities, threshold: net.threshold, epoch: 'current', ed: nodeEd25519, timeoutMs: 2_000, ...(signal ? { signal } : {}) });
      const listed = new Set(doc.document.nodes.map((n) => n.name));
      const missing = names.filter((n) => !listed.has(n));
      const foreign = expected === undefined ? [] : foreignNodes(doc, expected);
      const now = epochAt(Date.now(), net.params.epochPeriodMs);
      if (missing.length === 0 && foreign.length === 0 && doc.document.epoch === now) return doc;
      last =
        foreign.length > 0
          ? `the document for epoch ${doc.document.epoch} lists nodes that are not this network's, or not with its keys: ${foreign.join(', ')}`
          : doc.document.epoch !== now
            ? `the newest document is for epoch ${doc.document.epoch}, not ${now}`
            : `the document for epoch ${doc.document.epoch} does not list ${missing.join(', ')}`;
    } catch (e) {
      signal?.throwIfAborted();
      last = e instanceof Error ? e.message : 'fetch failed';
    }
    if (Date.now() >= deadline) break;
    await sleep(250, signal);
  }
  throw new BackchannelError('ERR_SERVER', `up: no consensus document naming every node within the time allowed (${last}; see the servers' server.log)`);
}

/** Ports in use named in a message; the rest are counted. */
const MAX_PORTS_NAMED = 4;

function portsInUse(dir: string, taken: readonly ServerPort[]): BackchannelError {
  const named = taken.slice(0, MAX_PORTS_NAMED).map((p) => `${p.server} ${p.what} ${p.host}:${p.port}`);
  const more = taken.length > MAX_PORTS_NAMED ? ` and ${taken.length - MAX_PORTS_NAMED} more` : '';
  return new BackchannelError(
    'ERR_LOCAL_IN_USE',
    `up: ports of the network in ${dir} are in use (${named.join(', ')}${more}): another network, maybe a copy of this folder, or another program holds them; stop it first, or start a new network in another --dir`,
  );
}

/**
 * Starts the network in `dir` (making it first when needed) and waits until it works: the first
 * consensus lists its nodes and every server is healthy.
 * @throws {BackchannelError} ERR_LOCAL_IN_USE when another `up` holds the folder or the
 *   network's ports are taken; ERR_SERVER when a server exits while starting (naming it and its
 *   log) or the network is not up in time. Whatever was started is stopped first.
 */
export async function startLocalNetwork(opts: UpOptions): Promise<RunningLocalNetwork> {
  const progress = opts.progress ?? (() => undefined);
  const lock = lockDataDir(opts.dir, { progress });
  let network: LocalNetwork | null = null;
  let observer: Observer | null = null;
  try {
    const created = await ensureLocalNetwork(opts);
    const relayPlans = opts.observe === undefined ? null : await planRelays(opts.dir);
    const networkFile = readNetworkFile(join(opts.dir, NETWORK_FILE));
    // Aborted, with the error to throw, when a server exits before the network is up.
    const startup = new AbortController();
    opts.signal?.throwIfAborted();
    const onCancel = (): void => startup.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onCancel, { once: true });
    let started = false;
    const net = new LocalNetwork(opts.dir, {
      onExit: (name, how) => {
        if (started) {
          opts.onExit?.(name, how);
          return;
        }
        if (startup.signal.aborted) return;
        const why = net.lastError(name);
        const log = join(opts.dir, name, 'server.log');
        startup.abort(new BackchannelError('ERR_SERVER', `up: ${name} exited while starting (${how}${why === null ? '' : `: ${why}`}); see ${log}`));
      },
    });
    network = net;
    const taken = await takenPorts(net.servers);
    if (taken.length > 0) throw portsInUse(opts.dir, taken);
    if (relayPlans !== null) {
      observer = await startRelays(relayPlans, net, opts.observe);
      progress(`${relayPlans.length} recording relays in front of the mixes and gateways`);
    }

    const period = networkFile.params.epochPeriodMs;
    const deadline = Date.now() + (opts.timeoutMs ?? 3 * period + 30_000);
    progress(`${created ? 'made a new network; ' : ''}starting ${net.servers.length} servers...`);
    net.startAll();
    progress('waiting for the authorities to sign the first consensus...');
    const expected = expectedNodes(net.servers, networkFile);
    const names = net.servers.filter((s) => s.role !== 'authority').map((s) => s.name);
    // A folder without an authority's config has no list to check the nodes against.
    const document = await waitForDocument(networkFile, deadline, names, { ...(expected.size > 0 ? { expected } : {}), signal: startup.signal });
    progress(`consensus for epoch ${document.document.epoch} signed, listing all ${names.length} nodes`);
    progress('waiting for every server to be healthy...');
    for (;;) {
      startup.signal.throwIfAborted();
      const st = await networkStatus(net.servers, 1_000);
      const down = st.nodes.filter((n) => !n.healthy).map((n) => n.name);
      // Health answered on this network's ports counts only while its own processes run.
      startup.signal.throwIfAborted();
      if (down.length === 0) break;
      if (Date.now() > deadline) throw new BackchannelError('ERR_SERVER', `up: servers not healthy in time: ${down.join(', ')} (see their server.log)`);
      await sleep(250, startup.signal);
    }
    started = true;
    opts.signal?.removeEventListener('abort', onCancel);
    return {
      network: net,
      networkFile,
      document,
      created,
      observer,
      stop: async () => {
        await net.stopAll();
        await observer?.close();
        lock.release();
      },
    };
  } catch (e) {
    await network?.stopAll();
    await observer?.close();
    lock.release();
    throw e;
  }
}
