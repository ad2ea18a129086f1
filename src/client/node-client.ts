/**
 * The client on Node: making a client's state (`client init`), and running it as the long-lived
 * daemon (`client run`) with its SQLite store, TCP link to the gateway and local socket.
 *
 * `client init` is the one step that may contact an authority (only when given their URLs; from a
 * network.json it contacts nothing): it records the gateway's address, link key and the network's
 * parameters. `client run` then reaches its gateway with those and gets every document through it
 * (docs/client.md); it never contacts an authority.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { authorities as parseAuthorities, splitHostPort, threshold as parseThreshold } from '../config/_validate.js';
import { NETWORK_FILE, readNetworkFile } from '../config/genconfig.js';
import { nodeBackend } from '../crypto/node.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { connectInWorker } from './node-worker-link.js';
import { nodeNoiseCrypto } from '../noise/crypto-node.js';
import { systemClock } from '../ops/clock.js';
import type { Logger } from '../ops/log.js';
import { fetchDocument } from '../pki/client.js';
import { nodeEd25519 } from '../pki/ed25519-node.js';
import type { AuthorityInfo, DocumentNode, SignedDocument } from '../pki/types.js';
import type { ClientEvent } from './api.js';
import { Client } from './client.js';
import type { GatewayLink } from './client.js';
import { startIpcServer } from './daemon.js';
import { InviteManager } from './invites.js';
import type { ContactExchange } from '../messaging/invite.js';
import type { IpcServer } from './daemon.js';
import { clientSocketPath, daemonAnswers } from './ipc.js';
import { decodeAddress } from './address.js';
import { type MessengerHost, startMessenger } from './messenger-host.js';
import { messengerIpc } from './messenger-ipc.js';
import { clientAddress, contactNode, isInitialised, readClientIdentity, refreshGatewayContact, saveClientIdentity } from './settings.js';
import type { GatewayContact } from './settings.js';
import { CLIENT_DB_FILE, SqliteClientStore } from './sqlite-store.js';
import { randomIntFrom } from '../pki/route.js';
import { fromHex, wipe } from '../util/bytes.js';
import { ADMISSION_TOKEN_SETTING } from './admission.js';

/** Where `backchannel client` keeps its state unless told otherwise. */
export const DEFAULT_CLIENT_DIR = './backchannel-client';
/** Time allowed to fetch the directory at init. */
export const INIT_FETCH_TIMEOUT_MS = 10_000;
/** Time allowed to connect to the gateway and run the handshake. */
const CONNECT_TIMEOUT_MS = 10_000;

function stateError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLIENT_STATE', `client state: ${message}`);
}

function usageError(message: string): BackchannelError {
  return new BackchannelError('ERR_CLI_USAGE', message);
}

/** The error for a directory with no client in it. */
export function notInitialisedError(dir: string): BackchannelError {
  return stateError(`not initialised in ${dir}; run \`npx backchannel client init --dir ${dir}\``);
}

/** Opens the store of an initialised client directory (never creates one). */
function openExisting(dir: string): SqliteClientStore {
  const db = join(dir, CLIENT_DB_FILE);
  if (!existsSync(db)) throw notInitialisedError(dir);
  return SqliteClientStore.open(db);
}

/** A gateway a client may choose: its identity key and how to reach it. */
interface GatewayChoice extends GatewayContact {
  readonly identityKey: Uint8Array;
}

/**
 * Parses `URL#KEYHEX,URL#KEYHEX,...` into authorities named authority-1, authority-2, ...
 * @throws {BackchannelError} ERR_CLI_USAGE naming the entry at fault (never echoing keys or URLs).
 */
export function parseAuthorityList(text: string): AuthorityInfo[] {
  const entries = text.split(',').map((s) => s.trim());
  const json = entries.map((entry, i) => {
    const hash = entry.lastIndexOf('#');
    if (hash <= 0 || hash === entry.length - 1) throw usageError(`--network: entry ${i + 1} must be URL#IDENTITYKEYHEX (an authority's URL, "#", its Ed25519 key in hex)`);
    return { name: `authority-${i + 1}`, identityKey: entry.slice(hash + 1).toLowerCase(), url: entry.slice(0, hash) };
  });
  try {
    return parseAuthorities('--network', json);
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw usageError(e.message.replace(/^config: --network\[(\d+)\]\.(\w+)/, (_m, i: string, f: string) => `--network: entry ${Number(i) + 1}'s ${f === 'identityKey' ? 'key' : f}`));
    throw e;
  }
}

/** A threshold for `authorities`: `given` checked (at least a majority), or the given default. */
function checkThreshold(given: number | undefined, fallback: number, count: number): number {
  if (given === undefined) return fallback;
  try {
    return parseThreshold('--threshold', given, count);
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CONFIG')) throw usageError(e.message.replace(/^config: /, ''));
    throw e;
  }
}

export interface InitClientOptions {
  /** The client's directory (created, 0700). */
  readonly dir: string;
  /**
   * Either a network's data directory holding network.json (what `backchannel up` writes) or the
   * file itself, or a comma-separated list of authorities `URL#IDENTITYKEYHEX`.
   */
  readonly network: string;
  /** The gateway to register with, by name; by default one chosen uniformly at random. */
  readonly gatewayName?: string;
  /** Signatures a document needs (default: network.json's, or a majority of the listed authorities). */
  readonly threshold?: number;
  /** The CSPRNG (default: the system's). */
  readonly random?: (length: number) => Uint8Array;
  /** For tests: the fetch used to reach the authorities. */
  readonly fetch?: typeof fetch;
}

export interface InitClientResult {
  readonly dir: string;
  readonly address: string;
  readonly gatewayName: string;
}

/** True when `network` names authorities rather than a directory. */
function isAuthorityList(network: string): boolean {
  return network.includes('#') || /^https?:\/\//i.test(network.trim());
}

async function resolveNetwork(opts: InitClientOptions): Promise<{ authorities: readonly AuthorityInfo[]; threshold: number; gateways: GatewayChoice[] }> {
  if (isAuthorityList(opts.network)) {
    const authorities = parseAuthorityList(opts.network);
    const threshold = checkThreshold(opts.threshold, Math.floor(authorities.length / 2) + 1, authorities.length);
    let signed: SignedDocument;
    try {
      signed = await fetchDocument({
        authorities,
        threshold,
        epoch: 'current',
        ed: nodeEd25519,
        timeoutMs: INIT_FETCH_TIMEOUT_MS,
        ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
      });
    } catch (e) {
      if (isBackchannelError(e, 'ERR_PKI_FETCH')) throw new BackchannelError('ERR_CLIENT_STATE', 'cannot fetch the network directory from its authorities: is the network running?', { cause: e });
      if (isBackchannelError(e, 'ERR_PKI_THRESHOLD')) {
        throw new BackchannelError('ERR_CLIENT_STATE', `the authorities answered, but no directory carries ${threshold} valid signatures by them: check their keys and --threshold`, { cause: e });
      }
      throw e;
    }
    const params = signed.document.params;
    const gateways = signed.document.nodes
      .filter((n: DocumentNode) => n.role === 'gateway')
      .map((n) => ({ name: n.name, identityKey: n.identityKey, linkKey: n.linkKey, tcpAddress: n.tcpAddress, wsAddress: n.wsAddress, params }));
    if (gateways.length === 0) throw stateError('the network directory lists no gateway');
    return { authorities, threshold, gateways };
  }
  const path = resolve(opts.network);
  let file = path;
  try {
    if (statSync(path).isDirectory()) file = join(path, NETWORK_FILE);
  } catch {
    file = join(path, NETWORK_FILE);
  }
  if (!existsSync(file)) {
    throw stateError(`no ${NETWORK_FILE} in ${path}: start a network there with \`npx backchannel up --dir ${path}\`, or give its authorities as --network URL#KEY,...`);
  }
  const network = readNetworkFile(file);
  const threshold = checkThreshold(opts.threshold, network.threshold, network.authorities.length);
  const params = network.params;
  const gateways = network.gateways.map((g) => ({ name: g.name, identityKey: g.identityKey, linkKey: g.linkKey, tcpAddress: g.tcpAddress, wsAddress: g.wsAddress, params }));
  return { authorities: network.authorities, threshold, gateways };
}

/**
 * Makes `dir` for a client's keys, mode 0700 (and any missing parent). A folder that exists and is
 * empty (made by the user, say, with their umask's 0755) is narrowed to 0700; one that holds other
 * files is left as it is (the database itself is 0600).
 */
function makePrivateDir(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return;
  }
  if (readdirSync(dir).length === 0 && (statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/**
 * Makes a new client in `opts.dir`: a fresh link key, a gateway, the authorities to trust.
 * @throws {BackchannelError} ERR_CLIENT_STATE when the directory is already initialised, the
 *   network cannot be read or reached; ERR_CLI_USAGE for an unknown gateway, a bad authority list
 *   or threshold; ERR_CONFIG for an invalid network.json.
 */
export async function initClient(opts: InitClientOptions): Promise<InitClientResult> {
  const dir = resolve(opts.dir);
  const db = join(dir, CLIENT_DB_FILE);
  if (existsSync(db)) {
    const store = SqliteClientStore.open(db);
    try {
      // No address in the error (errors never carry one): the user can print it.
      if (isInitialised(store)) throw stateError(`${dir} is already initialised ('npx backchannel client address --dir ${dir}' prints its address); give another --dir for another identity`);
    } finally {
      store.close();
    }
  }
  const { authorities, threshold, gateways } = await resolveNetwork(opts);
  const random = opts.random ?? ((n: number) => nodeBackend.randomBytes(n));
  let gateway: GatewayChoice;
  if (opts.gatewayName !== undefined) {
    const found = gateways.find((g) => g.name === opts.gatewayName);
    if (found === undefined) throw usageError(`--gateway: no gateway of that name in the network; its gateways are ${gateways.map((g) => g.name).join(', ')}`);
    gateway = found;
  } else {
    gateway = gateways[randomIntFrom(random)(gateways.length)]!;
  }
  makePrivateDir(dir);
  const store = SqliteClientStore.open(db);
  try {
    const contact: GatewayContact = { name: gateway.name, linkKey: gateway.linkKey, tcpAddress: gateway.tcpAddress, wsAddress: gateway.wsAddress, params: gateway.params };
    const identity = { linkPrivateKey: random(32), gateway: gateway.identityKey, authorities, threshold, contact };
    store.transaction(() => {
      if (isInitialised(store)) throw stateError(`${dir} is already initialised`);
      saveClientIdentity(store, identity);
    });
    const address = clientAddress(nodeBackend, identity);
    wipe(identity.linkPrivateKey);
    return { dir, address, gatewayName: gateway.name };
  } finally {
    store.close();
  }
}

/**
 * Keeps an invitation token (64 hex digits, from a token-admission gateway's operator) in the
 * client's store; the client carries it in its next handshake with a gateway that has not admitted
 * it yet (src/client/admission.ts). The daemon need not stop.
 * @throws {BackchannelError} ERR_CLIENT_STATE when `dir` holds no client; ERR_CLI_USAGE for a malformed token.
 */
export function saveAdmissionToken(dir: string, tokenHex: string): void {
  if (!/^[0-9a-f]{64}$/i.test(tokenHex)) throw usageError('the token is 64 hex digits, as the gateway operator gave it');
  const store = openExisting(resolve(dir));
  try {
    store.setSetting(ADMISSION_TOKEN_SETTING, fromHex(tokenHex.toLowerCase()));
  } finally {
    store.close();
  }
}

/**
 * The address of the client in `dir`, read from its state (the daemon need not run).
 * @throws {BackchannelError} ERR_CLIENT_STATE when `dir` holds no client.
 */
export function readClientAddress(dir: string): string {
  const store = openExisting(resolve(dir));
  try {
    return clientAddress(nodeBackend, readClientIdentity(store));
  } finally {
    store.close();
  }
}

export interface RunClientOptions {
  readonly dir: string;
  readonly log: Logger;
  /** The messenger's side of contacts by code; the running messenger by default (tests may give another). */
  readonly contacts?: (store: SqliteClientStore) => ContactExchange;
  /** Every event of the engine (connected, disconnected, messages, ...). */
  readonly onEvent?: (event: ClientEvent) => void;
}

export interface RunningClient {
  readonly client: Client;
  /** The messenger (contacts, sessions, conversations) running on the client. */
  readonly messenger: MessengerHost['messenger'];
  readonly address: string;
  readonly socketPath: string;
  /** Closes the socket, stops the engine, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Connects to a gateway as the engine asks, on a thread of its own (node-worker-link.ts): frames
 * then leave at their clocks' times even while this thread commits or opens a message.
 * `admission` is the third handshake message's payload (admission.ts).
 */
function connectGateway(gateway: DocumentNode, staticKey: Uint8Array, maxMessageLength: number, admission?: Uint8Array): Promise<GatewayLink> {
  return connectInWorker({
    ...splitHostPort(gateway.tcpAddress),
    staticKey,
    remoteStatic: gateway.linkKey,
    maxMessageLength,
    handshakeTimeoutMs: CONNECT_TIMEOUT_MS,
    ...(admission === undefined ? {} : { handshakePayload: admission }),
  });
}

/**
 * Runs the client of `dir`: the engine (which gets the directory through its gateway) and the
 * local socket DIR/client.sock. Contacts no authority.
 * @throws {BackchannelError} ERR_CLIENT_STATE when `dir` holds no client, another client runs
 *   for it, or the socket path is too long; ERR_CLIENT_IPC when the socket cannot be made.
 */
export async function runClient(opts: RunClientOptions): Promise<RunningClient> {
  const dir = resolve(opts.dir);
  const socketPath = clientSocketPath(dir);
  if (!existsSync(join(dir, CLIENT_DB_FILE))) throw notInitialisedError(dir);
  if (await daemonAnswers(socketPath)) throw stateError(`a client is already running for ${dir}`);
  let stale: ReturnType<typeof lstatSync> | undefined;
  try {
    stale = lstatSync(socketPath);
  } catch {
    stale = undefined;
  }
  if (stale !== undefined) {
    if (!stale.isSocket()) throw stateError(`${socketPath} exists and is not a socket; move it away`);
    rmSync(socketPath, { force: true });
  }

  const log = opts.log;
  const store = openExisting(dir);
  let client: Client;
  let address: string;
  let unsubscribe: (() => void) | null = null;
  /** Our link private key: the engine's for as long as it runs, wiped once it has stopped. */
  let linkPrivateKey: Uint8Array | null = null;
  try {
    const identity = readClientIdentity(store);
    linkPrivateKey = identity.linkPrivateKey;
    address = clientAddress(nodeBackend, identity);
    if (identity.contact === null) {
      throw stateError(`${dir} was made by an older version that did not record how to reach its gateway; make a new client with \`npx backchannel client init\``);
    }
    client = new Client(
      { linkPrivateKey: identity.linkPrivateKey, gateway: identity.gateway, bootstrap: { gateway: contactNode(identity, identity.contact), params: identity.contact.params } },
      {
        clock: systemClock,
        crypto: nodeBackend,
        aead: nodeNoiseCrypto.aead('ChaChaPoly'),
        store,
        log,
        connect: connectGateway,
        directory: { authorities: identity.authorities, threshold: identity.threshold, ed: nodeEd25519 },
        // The next start links to where the gateway is now, should it move.
        onDocument: (d) => {
          if (refreshGatewayContact(store, identity, d.document)) log.child('daemon').info('gateway contact updated from the network document');
        },
      },
    );
  } catch (e) {
    store.close();
    throw e;
  }
  let host: MessengerHost;
  try {
    host = startMessenger({ client, store, crypto: nodeBackend, now: () => Date.now(), address: decodeAddress(nodeBackend, address), log });
  } catch (e) {
    store.close();
    throw e;
  }
  // Contacts by code end in the messenger: the card it makes for a new contact goes out, the
  // card that comes back makes the contact (inside the invite's own transaction).
  const messengerExchange: ContactExchange = {
    newCard: () => host.messenger.newCard(),
    addContact: (name, ourCard, theirCard) => {
      host.messenger.addContact(name, ourCard, theirCard);
    },
  };
  const invites = new InviteManager({
    clock: systemClock,
    crypto: nodeBackend,
    client,
    store,
    exchange: opts.contacts?.(store) ?? messengerExchange,
    log,
  });
  // The socket first: it is also what keeps a second daemon from using the same identity.
  let ipc: IpcServer;
  try {
    ipc = await startIpcServer({ path: socketPath, api: host.api, log, invites, extension: messengerIpc(host.messenger, { block: host.block, unblock: host.unblock, remove: host.remove, rotateMailbox: (id, graceMs) => host.api.rotateMailbox(id, graceMs), client }) });
  } catch (e) {
    host.stop();
    store.close();
    if (isBackchannelError(e, 'ERR_CLIENT_IPC') && e.message.includes('EADDRINUSE')) throw stateError(`a client is already running for ${dir}`);
    throw e;
  }
  if (opts.onEvent !== undefined) unsubscribe = client.subscribe(opts.onEvent);
  client.start();
  invites.start();
  const shutDown = async (): Promise<void> => {
    try {
      await ipc.close();
    } finally {
      unsubscribe?.();
      invites.stop();
      host.stop();
      try {
        await client.stop();
      } finally {
        wipe(linkPrivateKey ?? undefined);
        store.close();
        rmSync(socketPath, { force: true });
      }
    }
  };
  log.child('daemon').info('client running');
  let stopping: Promise<void> | null = null;
  return {
    client,
    messenger: host.messenger,
    address,
    socketPath,
    stop: () => (stopping ??= shutDown()),
  };
}
