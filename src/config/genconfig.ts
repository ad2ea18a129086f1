/**
 * Generates a whole network's configuration: for each server a folder with its config.json and
 * key files, and network.json, the public description clients need. Used by
 * `backchannel genconfig` and by the local network.
 *
 * Servers come in a fixed order: authorities, then mixes layer by layer, then gateways. In that
 * order each takes the next host from `hosts` (round-robin) and the next free ports from
 * `basePort` up: an authority or a mix takes two (listen, ops), a gateway three (listen, ops,
 * WebSocket).
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { BackchannelError, isBackchannelError } from '../errors.js';
import type { AuthorityInfo, NetworkParameters } from '../pki/types.js';
import { MAX_HOPS } from '../sphinx/constants.js';
import { toHex, wipe } from '../util/bytes.js';
import { writeFileAtomic } from './_fs.js';
import { array, integer, isHost, isIPv6, joinHostPort, majority, MAX_AUTHORITIES, oneOf } from './_validate.js';
import { IDENTITY_KEY_FILE, LINK_KEY_FILE, loadOrCreateIdentity, loadOrCreateLinkKey } from './keys.js';
import { LOG_LEVELS, parseConfig, readJsonFile } from './load.js';
import { networkFileToJson, parseNetworkFile } from './network.js';
import type { NetworkFile, NetworkGateway } from './network.js';
import { DEFAULT_PARAMS, paramsToJson, parseParams } from './params.js';
import type { LogLevelName, ServerRole } from './types.js';

export type { NetworkFile, NetworkGateway } from './network.js';
export { parseNetworkFile, networkFileToJson } from './network.js';
export { MAX_AUTHORITIES } from './_validate.js';

export const DEFAULT_AUTHORITIES = 3;
export const DEFAULT_MIXES_PER_LAYER = 2;
export const DEFAULT_GATEWAYS = 2;
export const DEFAULT_HOSTS: readonly string[] = ['127.0.0.1'];
/** Above the well-known and most registered service ports, below Linux's ephemeral range (32768). */
export const DEFAULT_BASE_PORT = 30_000;
/** Typo guards on the network's size. */
export const MAX_MIXES_PER_LAYER = 256;
export const MAX_GATEWAYS = 256;
export const NETWORK_FILE = 'network.json';
export const CONFIG_FILE = 'config.json';
/** Path of the WebSocket endpoint on gateways. */
export const WS_PATH = '/link';
/** Configs hold no secrets; key files are 0600 (keys.ts). */
const CONFIG_FILE_MODE = 0o644;
/** The folder names genconfig gives servers; `force` removes only folders named like these. */
const SERVER_FOLDER = /^(authority-\d+|mix-\d+-\d+|gateway-\d+)$/;

export interface GenerateOptions {
  /** Where to write; created when missing. */
  readonly dir: string;
  /** Directory authorities (default 3). */
  readonly authorities?: number;
  /** Mix layers (default 3); the default hops follow as layers + 2. */
  readonly layers?: number;
  readonly mixesPerLayer?: number;
  readonly gateways?: number;
  /** Host names or IP addresses, assigned to servers round-robin (default ["127.0.0.1"]). */
  readonly hosts?: readonly string[];
  /** The first port (default 30000). */
  readonly basePort?: number;
  /** Overrides of DEFAULT_PARAMS (layers comes from `layers`). */
  readonly params?: Partial<Omit<NetworkParameters, 'layers'>>;
  readonly logLevel?: LogLevelName;
  /** Replace an existing network in `dir` (its network.json and server folders). */
  readonly force?: boolean;
  /** Source of the new keys (default: the system CSPRNG). */
  readonly randomBytes?: (length: number) => Uint8Array;
  /**
   * Bind each server's ops endpoint (health, metrics) on its own host address rather than on
   * 127.0.0.1: for servers in their own network namespaces (src/local/netns.ts), whose loopback
   * the machine's other processes cannot reach. Default false.
   */
  readonly opsOnHost?: boolean;
}

export interface GeneratedServer {
  readonly name: string;
  readonly role: ServerRole;
  /** 1..layers for a mix, 0 otherwise. */
  readonly layer: number;
  readonly host: string;
  /** The listen port (the HTTP API for an authority), the ops port, and a gateway's WebSocket port. */
  readonly ports: { readonly listen: number; readonly ops: number; readonly ws: number | null };
  readonly identityKey: Uint8Array;
  readonly folder: string;
  readonly configPath: string;
}

export interface GeneratedNetwork {
  /** Every file written, absolute paths, network.json last. */
  readonly files: string[];
  readonly network: NetworkFile;
  readonly networkPath: string;
  readonly servers: GeneratedServer[];
}

/** Ports each server takes, in this order: listen (an authority's API), ops, and a gateway's WebSocket. */
export const PORTS_PER_SERVER: Readonly<Record<ServerRole, number>> = { authority: 2, mix: 2, gateway: 3 };

/** How many consecutive ports from the base port a network of this size takes (defaults as in generateNetwork). */
export function networkPortCount(opts: Pick<GenerateOptions, 'authorities' | 'layers' | 'mixesPerLayer' | 'gateways'> = {}): number {
  const mixes = (opts.layers ?? DEFAULT_PARAMS.layers) * (opts.mixesPerLayer ?? DEFAULT_MIXES_PER_LAYER);
  return (opts.authorities ?? DEFAULT_AUTHORITIES) * PORTS_PER_SERVER.authority + mixes * PORTS_PER_SERVER.mix + (opts.gateways ?? DEFAULT_GATEWAYS) * PORTS_PER_SERVER.gateway;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\./.test(host) || host === '::1';
}

/**
 * Where a server on `host` listens: the loopback address itself, or every interface (the
 * advertised name may not be an address of the machine, e.g. behind NAT).
 */
function listenHostFor(host: string): string {
  if (isLoopback(host)) return host;
  return isIPv6(host) ? '::' : '0.0.0.0';
}

/** Health and metrics stay on the machine unless the operator opens them up. */
function opsHostFor(host: string): string {
  return isLoopback(host) ? host : '127.0.0.1';
}

function urlHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

interface Plan {
  readonly name: string;
  readonly role: ServerRole;
  readonly layer: number;
  readonly host: string;
  readonly ports: { readonly listen: number; readonly ops: number; readonly ws: number | null };
}

function plan(authorities: number, layers: number, mixesPerLayer: number, gateways: number, hosts: readonly string[], basePort: number): Plan[] {
  const order: { name: string; role: ServerRole; layer: number }[] = [];
  for (let i = 1; i <= authorities; i++) order.push({ name: `authority-${i}`, role: 'authority', layer: 0 });
  for (let l = 1; l <= layers; l++) for (let i = 1; i <= mixesPerLayer; i++) order.push({ name: `mix-${l}-${i}`, role: 'mix', layer: l });
  for (let i = 1; i <= gateways; i++) order.push({ name: `gateway-${i}`, role: 'gateway', layer: 0 });
  let next = basePort;
  const out = order.map((s, k): Plan => {
    const listen = next;
    const ops = next + 1;
    const ws = s.role === 'gateway' ? next + 2 : null;
    next += PORTS_PER_SERVER[s.role];
    return { ...s, host: hosts[k % hosts.length]!, ports: { listen, ops, ws } };
  });
  if (next - 1 > 65535) throw new BackchannelError('ERR_CONFIG', `config: genconfig needs ports ${basePort} to ${next - 1}, past 65535; choose a lower base port`);
  return out;
}

/** Refuses to overwrite a network unless `force`; with it, removes the old one. */
function clearOld(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir, { withFileTypes: true });
  const old = entries.filter((e) => (e.isFile() && e.name === NETWORK_FILE) || (e.isDirectory() && SERVER_FOLDER.test(e.name)));
  if (old.length === 0) return;
  if (!force) {
    throw new BackchannelError('ERR_CONFIG', `config: ${basename(dir)} already holds a network (${old.map((e) => e.name).slice(0, 3).join(', ')}${old.length > 3 ? ', ...' : ''}); pass --force to replace it and its keys`);
  }
  // network.json first: a folder without it is not taken for a complete network if this stops halfway.
  for (const e of old.sort((a, b) => (a.name === NETWORK_FILE ? -1 : b.name === NETWORK_FILE ? 1 : 0))) {
    rmSync(join(dir, e.name), { recursive: true, force: true });
  }
}

function writeJson(path: string, json: unknown, files: string[]): void {
  try {
    writeFileAtomic(path, Buffer.from(`${JSON.stringify(json, null, 2)}\n`), { mode: CONFIG_FILE_MODE });
  } catch (e) {
    throw new BackchannelError('ERR_CONFIG', `config: cannot write ${basename(path)} (${String((e as { code?: unknown }).code ?? 'I/O error')})`, { cause: e });
  }
  files.push(path);
}

/**
 * Generates a network: keys and config.json for every server, then network.json. Every config
 * written passes loadConfig.
 * @throws {BackchannelError} ERR_CONFIG for options out of range, or when `dir` already holds a
 *   network and `force` is not set; ERR_KEYS when a key file cannot be written.
 * @example generateNetwork({ dir: 'backchannel-data', params: { epochPeriodMs: LOCAL_NETWORK_EPOCH_MS } })
 */
export function generateNetwork(opts: GenerateOptions): GeneratedNetwork {
  const g = 'genconfig';
  const nAuth = integer(`${g}.authorities`, opts.authorities ?? DEFAULT_AUTHORITIES, 1, MAX_AUTHORITIES);
  const layers = integer(`${g}.layers`, opts.layers ?? DEFAULT_PARAMS.layers, 1, MAX_HOPS - 2);
  const perLayer = integer(`${g}.mixesPerLayer`, opts.mixesPerLayer ?? DEFAULT_MIXES_PER_LAYER, 1, MAX_MIXES_PER_LAYER);
  const nGw = integer(`${g}.gateways`, opts.gateways ?? DEFAULT_GATEWAYS, 1, MAX_GATEWAYS);
  const hosts = array(`${g}.hosts`, opts.hosts ?? DEFAULT_HOSTS, 1, 4096) as string[];
  hosts.forEach((h, i) => {
    if (typeof h !== 'string' || !isHost(h)) throw new BackchannelError('ERR_CONFIG', `config: ${g}.hosts[${i}] must be an IP address or a host name (IPv6 without brackets)`);
  });
  const basePort = integer(`${g}.basePort`, opts.basePort ?? DEFAULT_BASE_PORT, 1, 65535);
  const logLevel = oneOf(`${g}.logLevel`, opts.logLevel ?? 'info', LOG_LEVELS);
  const merged = { ...DEFAULT_PARAMS, hops: layers + 2, ...opts.params, layers };
  // The gateway's emission rate follows the client rates it must acknowledge (one slot for each
  // send and loop slot of a client, as the default is made), unless it is given itself.
  const gatewayRatePerClientPerS = opts.params?.gatewayRatePerClientPerS ?? merged.sendRatePerS + merged.loopRatePerS;
  const params = parseParams(`${g}.params`, { ...merged, gatewayRatePerClientPerS });
  const dir = resolve(opts.dir);

  const servers = plan(nAuth, layers, perLayer, nGw, hosts, basePort);
  clearOld(dir, opts.force === true);
  mkdirSync(dir, { recursive: true });

  const files: string[] = [];
  const keyed = servers.map((s) => {
    const folder = join(dir, s.name);
    const identity = loadOrCreateIdentity(folder, opts.randomBytes === undefined ? {} : { randomBytes: opts.randomBytes });
    wipe(identity.seed);
    files.push(join(folder, IDENTITY_KEY_FILE));
    let linkKey: Uint8Array | null = null;
    if (s.role !== 'authority') {
      const link = loadOrCreateLinkKey(folder, opts.randomBytes === undefined ? {} : { randomBytes: opts.randomBytes });
      wipe(link.privateKey);
      linkKey = link.publicKey;
      files.push(join(folder, LINK_KEY_FILE));
    }
    return { ...s, folder, identityKey: identity.publicKey, linkKey };
  });

  const authorities: AuthorityInfo[] = keyed
    .filter((s) => s.role === 'authority')
    .map((s) => ({ name: s.name, identityKey: s.identityKey, url: `http://${urlHost(s.host)}:${s.ports.listen}` }));
  const threshold = majority(authorities.length);
  const authoritiesJson = authorities.map((a) => ({ name: a.name, identityKey: toHex(a.identityKey), url: a.url }));
  const nodesJson = keyed
    .filter((s) => s.role !== 'authority')
    .map((s) => ({ name: s.name, identityKey: toHex(s.identityKey), role: s.role, layer: s.layer }));

  const gateways: NetworkGateway[] = [];
  const generated: GeneratedServer[] = [];
  for (const s of keyed) {
    const listen = { host: listenHostFor(s.host), port: s.ports.listen };
    const common = {
      role: s.role,
      name: s.name,
      dataDir: '.',
      ops: { host: opts.opsOnHost === true ? s.host : opsHostFor(s.host), port: s.ports.ops },
      logLevel,
      authorities: authoritiesJson,
      threshold,
      params: paramsToJson(params),
    };
    const advertise = joinHostPort(s.host, s.ports.listen);
    let json: Record<string, unknown>;
    switch (s.role) {
      case 'authority':
        json = { ...common, listen, nodes: nodesJson };
        break;
      case 'mix':
        json = { ...common, layer: s.layer, listen, advertise };
        break;
      case 'gateway': {
        const wsAdvertise = `ws://${urlHost(s.host)}:${s.ports.ws}${WS_PATH}`;
        // A generated network is a local or test one: its gateways admit any client (`open`), so that
        // `backchannel up` and the tests start clients at once. A public gateway sets "proof-of-work"
        // (the default when the field is absent) or "token" (docs/network.md, "Admission").
        json = { ...common, listen, advertise, wsListen: { host: listenHostFor(s.host), port: s.ports.ws }, wsAdvertise, admission: { mode: 'open' } };
        gateways.push({ name: s.name, identityKey: s.identityKey, linkKey: s.linkKey!, tcpAddress: advertise, wsAddress: wsAdvertise });
        break;
      }
    }
    parseConfig(json, s.folder);
    const configPath = join(s.folder, CONFIG_FILE);
    writeJson(configPath, json, files);
    generated.push({ name: s.name, role: s.role, layer: s.layer, host: s.host, ports: s.ports, identityKey: s.identityKey, folder: s.folder, configPath });
  }

  const network: NetworkFile = { authorities, threshold, params, gateways };
  const networkJson = networkFileToJson(network);
  parseNetworkFile(networkJson);
  const networkPath = join(dir, NETWORK_FILE);
  writeJson(networkPath, networkJson, files);
  return { files, network, networkPath, servers: generated };
}

/**
 * Reads and validates a network file.
 * @throws {BackchannelError} ERR_CONFIG when it is missing, not JSON or not valid; the message
 *   names the field and the file (by base name).
 */
export function readNetworkFile(path: string): NetworkFile {
  const json = readJsonFile(path);
  try {
    return parseNetworkFile(json);
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw new BackchannelError('ERR_CONFIG', `${e.message} (in ${basename(path)})`, { cause: e });
    throw e;
  }
}
