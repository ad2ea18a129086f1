/**
 * The dedicated Worker that runs the client engine (src/client/client.ts) for the page: its
 * Poisson and cover clocks are a worker's timers, which Chromium does not throttle as it does a
 * hidden tab's (docs/browser.md). Keys and state are in IndexedDB (web/idb.ts); the link is the
 * gateway's WebSocket listener with Noise XK (src/link/ws-browser.ts); the directory comes from
 * the gateway over that link (`get_document`), never from an authority.
 *
 * Durability without a timing signal: frames leave at their clocks' ideal times (timedLink below)
 * and never wait for IndexedDB, since a wait that only real traffic causes would show on the wire.
 * What must be on disk before the gateway acts on it is the mailbox position a fetch confirms
 * (`retrieve_message{n}` lets it delete entries below n): fetches ask for a new position only
 * once IndexedDB has it. A packet's SURB keys may still be on their way to disk when the packet
 * leaves; should the tab die first, the acknowledgement finds no keys and the fragment goes again
 * (the receiver drops the duplicate). Should a write fail, the position stops moving and the
 * gateway keeps the entries for the next start.
 */
import { parseNetworkFile } from '../src/config/network.js';
import { portableBackend } from '../src/crypto/portable.js';
import { webCryptoX25519 } from '../src/crypto/async-x25519.js';
import { isBackchannelError } from '../src/errors.js';
import { connectBrowserWs } from '../src/link/ws-browser.js';
import type { Link } from '../src/link/link.js';
import { portableNoiseCrypto } from '../src/noise/crypto-portable.js';
import { systemClock } from '../src/ops/clock.js';
import type { LogFields, Logger } from '../src/ops/logger.js';
import { portableEd25519 } from '../src/pki/ed25519.js';
import { randomIntFrom } from '../src/pki/route.js';
import type { DocumentNode } from '../src/pki/types.js';
import { Client } from '../src/client/client.js';
import type { GatewayLink } from '../src/client/client.js';
import { TimedLink, codecForCommandLength } from '../src/client/timed-link.js';
import type { InboxMessage } from '../src/client/store.js';
import { fromHex, toHex } from '../src/util/bytes.js';
import { ADMISSION_TOKEN_SETTING } from '../src/client/admission.js';
import { clientAddress, contactNode, isInitialised, readClientIdentity, refreshGatewayContact, saveClientIdentity } from '../src/client/settings.js';
import { decodeAddress } from '../src/client/address.js';
import { InviteManager } from '../src/client/invites.js';
import { startMessenger } from '../src/client/messenger-host.js';
import type { MessengerHost } from '../src/client/messenger-host.js';
import { RecordMessengerStore } from '../src/client/record-messenger-store.js';
import { openIdbClientStore } from './idb.js';
import type { IdbClientStore } from './idb.js';
import type { FromWorker, HistoryView, ToWorker } from './protocol.js';

/** The IndexedDB database and the Web Lock of the one client a browser profile holds. */
export const PROFILE = 'backchannel-client';
const CONNECT_TIMEOUT_MS = 10_000;
const STATUS_INTERVAL_MS = 1_000;

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

function post(m: FromWorker): void {
  scope.postMessage(m);
}

/** Log lines go to the worker's console, counts and codes only (the engine's fields are safe). */
function consoleLogger(component: string): Logger {
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: LogFields) => {
    if (level === 'debug') return;
    // A worker has no other log than the browser's console.
    // eslint-disable-next-line no-console
    console[level](`[${component}] ${msg}`, fields ?? '');
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error'), child: (c) => consoleLogger(c) };
}

/**
 * The link with departures at the clocks' times (src/client/timed-link.ts): the engine's clocks
 * run LINK_LEAD_MS ahead and hand each frame over with its ideal time. Frames never wait for
 * IndexedDB, so when they leave does not depend on what the store writes (the traffic rule); the
 * one thing that must be on disk first, the mailbox position a fetch confirms (the gateway then
 * deletes what lies below it), counts for fetches only once IndexedDB has it.
 */
function timedLink(link: Link, idb: IdbClientStore, maxMessageLength: number): GatewayLink {
  const timed = new TimedLink(link, {
    clock: systemClock,
    codec: codecForCommandLength(maxMessageLength),
    durable: () => idb.flushed(),
    onFailure: () => void link.close().catch(() => undefined),
  });
  return {
    trySend: (m) => link.trySend(m),
    send: (m) => link.send(m),
    sendAt: (m, at) => timed.sendAt(m, at),
    fetchAt: (at) => timed.fetchAt(at),
    setFetchSequence: (n) => timed.setFetchSequence(n),
    recv: () => link.recv(),
    close: () => {
      timed.close();
      return link.close();
    },
  };
}

/**
 * Problems the page shows until they pass (web/main.ts shows one at a time): posted as an error
 * with its code, and `resolved` with the same code once it is over. Messages say what happened and
 * what the client does about it, never a key, an address or a message.
 */
function problem(p: { code: string; message: string }): void {
  post({ type: 'error', code: p.code, message: p.message });
}

function resolved(code: string): void {
  post({ type: 'resolved', code });
}

/** The code under which every failure to link to the gateway is shown (the cause's own code is in the message). */
const LINK_PROBLEM = 'ERR_LINK_CONNECT';

function linkProblem(gateway: string, e: unknown, attempt: number): { code: string; message: string } {
  const code = isBackchannelError(e) ? e.code : 'ERR_LINK_CONNECT';
  const again = `Trying again with growing pauses (attempt ${attempt}); what you send waits meanwhile.`;
  if (code === 'ERR_LINK_CONNECT' || code === 'ERR_LINK_CLOSED' || code === 'ERR_LINK_TIMEOUT')
    return { code: LINK_PROBLEM, message: `Cannot reach your gateway ${gateway}: it may be down or unreachable (${code}). ${again}` };
  return { code: LINK_PROBLEM, message: `Your gateway ${gateway} answered with something that is not Backchannel's protocol (${code}). ${again}` };
}

function storageProblem(e: Error): { code: string; message: string } {
  const what = e.name === 'QuotaExceededError' ? "This browser's storage for this site is full" : `This browser refused to store the client's state (${e.name})`;
  return {
    code: 'ERR_STORE_WRITE',
    message: `${what}. Nothing already sent or received is lost, but new messages wait and nothing more is taken from your gateway until it can be written. Free some space (site data of other sites); the client keeps trying.`,
  };
}

/**
 * Documents the gateway hands over that fail verification against the authorities' keys this
 * client holds (bad signatures, too few, another network's): refused by the engine, counted in its
 * status, shown here while no good one has come since.
 */
function directoryWatch(): { check(s: ReturnType<Client['status']>): void } {
  let invalidSeen = 0;
  let documentsSeen = 0;
  let shown = false;
  return {
    check(s) {
      const d = s.directory;
      if (d === null) return;
      if (d.documents > documentsSeen && shown) {
        shown = false;
        resolved('ERR_CLIENT_DIRECTORY');
      }
      documentsSeen = d.documents;
      if (d.invalid > invalidSeen && s.document !== 'current') {
        shown = true;
        problem({
          code: 'ERR_CLIENT_DIRECTORY',
          message: `The network directory your gateway gave could not be verified with the network's authority keys (${d.invalid} refused). It is not used; nothing is sent to anyone until a valid one comes. The network details this page was given may be wrong.`,
        });
      }
      invalidSeen = d.invalid;
    },
  };
}

interface Running {
  readonly client: Client;
  readonly idb: IdbClientStore;
  readonly host: MessengerHost;
  readonly invites: InviteManager;
  readonly timer: ReturnType<typeof setInterval>;
}
let running: Running | null = null;

/** Unread incoming messages counted at most (a count past it shows as this many). */
const MAX_UNREAD_COUNTED = 10_000;

/** Incoming messages not yet on screen, by contact name (the messenger's `read` mark, in the store). */
function unreadCounts(m: MessengerHost['messenger']): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of m.unread(0, MAX_UNREAD_COUNTED)) counts.set(e.contact, (counts.get(e.contact) ?? 0) + 1);
  return counts;
}

/** An outgoing file's progress: its client message's fragments acknowledged, of all; null before it left. */
function fileProgress(r: Pick<Running, 'host' | 'client'>, id: number): { done: number; total: number } | null {
  const carrier = r.host.messenger.carriers(id)?.file ?? null;
  const o = carrier === null ? null : r.client.outgoing(carrier);
  return o === null ? null : { done: o.done, total: o.fragments };
}

/** Posts the messenger's whole state (small: contacts, their last messages, invites). */
function postMessenger(r: Pick<Running, 'host' | 'invites' | 'client'>): void {
  const m = r.host.messenger;
  const unread = unreadCounts(m);
  const contacts = m.contacts().map((c) => ({ name: c.name, session: c.session, verified: c.verified, safetyNumber: safetyNumberOf(m, c.name, c.identityKey), blocked: c.blocked, unread: unread.get(c.name) ?? 0 }));
  const history: Record<string, HistoryView[]> = {};
  for (const c of contacts) {
    history[c.name] = m.history(c.name, 200).map((h) => ({
      id: h.id, direction: h.direction, text: h.text ?? h.fileName ?? '', state: h.state, kind: h.kind, fileName: h.fileName, fileLength: h.fileLength,
      progress: h.direction === 'out' && h.kind === 'file' && h.state === 'queued' ? fileProgress(r, h.id) : null,
    }));
  }
  const invites = r.invites.list().map((i) => ({ id: i.id, role: i.role, name: i.name, stage: i.stage, code: i.code, failure: i.failure?.message ?? null }));
  const introductions = m.introductions().map((i) => ({ id: i.id, role: i.role, from: i.from, names: i.names, answers: i.answers, state: i.state, expiresAt: i.expiresAt }));
  post({ type: 'messenger', contacts, history, invites, introductions, receiving: m.receiving() });
}

/** Marks what came from `contact` read (the conversation is on screen). */
async function markRead(contact: string): Promise<void> {
  const r = running;
  if (r === null) return;
  const m = r.host.messenger;
  try {
    for (const e of m.unread(0, MAX_UNREAD_COUNTED, contact)) m.markRead(e.id);
    await r.idb.flushed();
  } catch {
    // An unknown contact (removed meanwhile) or a store that cannot write now: the count stays.
    return;
  }
  postMessenger(r);
}

/** Answers `get-file` with a copy of the file's bytes, whose buffer is handed over to the page. */
function sendFileData(id: number): void {
  const f = running?.host.messenger.fileData(id) ?? null;
  if (f === null) {
    post({ type: 'file', id, name: '', data: null, error: 'That file is not here (or not whole yet).' });
    return;
  }
  const data = f.data.slice();
  scope.postMessage({ type: 'file', id, name: f.name, data, error: null }, [data.buffer]);
}

/**
 * Safety numbers by contact name and identity key: each costs 2 x 4,097 SHA-256 (safety.ts) and
 * the messenger's state is posted every second, so each is computed once.
 */
const safetyNumbers = new Map<string, string>();
function safetyNumberOf(m: MessengerHost['messenger'], name: string, identityKey: string): string {
  const key = `${identityKey}\u0000${name}`;
  let n = safetyNumbers.get(key);
  if (n === undefined) {
    if (safetyNumbers.size > 1000) safetyNumbers.clear();
    n = m.safetyNumber(name);
    safetyNumbers.set(key, n);
  }
  return n;
}

/** The setting that holds the name the profile goes by (UTF-8; shown in the page only, never sent). */
const NAME_SETTING = 'web.name';
const MAX_PROFILE_NAME = 64;

function profileName(r: Running): string | null {
  const v = r.idb.store.getSetting(NAME_SETTING);
  return v === null ? null : new TextDecoder().decode(v);
}

/** Runs a messenger action; answers once its effect is on disk. */
async function act(requestId: number, fn: (r: Running) => void): Promise<void> {
  const r = running;
  if (r === null) {
    post({ type: 'done', requestId, error: 'The client is not running.' });
    return;
  }
  try {
    fn(r);
    await r.idb.flushed();
  } catch (e) {
    post({ type: 'done', requestId, error: e instanceof Error ? e.message : String(e) });
    return;
  }
  post({ type: 'done', requestId, error: null });
  postMessenger(r);
}

async function start(network: unknown, gatewayName: string | null, token: string | null): Promise<void> {
  if (token !== null && !/^[0-9a-f]{64}$/i.test(token)) {
    post({ type: 'error', code: 'ERR_ADMISSION_TOKEN_INVALID', message: 'The invitation token in the page\'s address is not 64 hex digits, as the gateway operator gives it.' });
    return;
  }
  post({ type: 'state', state: 'starting' });
  let idb: IdbClientStore;
  try {
    idb = await openIdbClientStore(PROFILE, {
      // Writes are retried; meanwhile frames go on as ever and nothing new is acknowledged to the gateway.
      onFailure: (e) => problem(storageProblem(e)),
      onRecovered: () => resolved('ERR_STORE_WRITE'),
    });
  } catch (e) {
    post({ type: 'error', code: 'ERR_STORE_OPEN', message: `Cannot open this client's storage (${e instanceof Error ? e.name : 'error'}). Private windows or blocked site data prevent it.` });
    return;
  }
  const store = idb.store;
  let fresh = false;
  if (!isInitialised(store)) {
    let file;
    try {
      file = parseNetworkFile(network);
    } catch (e) {
      post({ type: 'error', code: 'ERR_NETWORK', message: `The network's connection details are not valid: ${e instanceof Error ? e.message : String(e)}` });
      return;
    }
    const usable = file.gateways.filter((g) => g.wsAddress !== null && (gatewayName === null || g.name === gatewayName));
    if (usable.length === 0) {
      post({ type: 'error', code: 'ERR_NETWORK', message: gatewayName === null ? 'No gateway of this network takes WebSocket connections.' : `No gateway ${gatewayName} with a WebSocket listener.` });
      return;
    }
    const g = usable[randomIntFrom((n) => portableBackend.randomBytes(n))(usable.length)]!;
    const linkPrivateKey = portableBackend.randomBytes(32);
    saveClientIdentity(store, {
      linkPrivateKey,
      gateway: g.identityKey,
      authorities: file.authorities,
      threshold: file.threshold,
      contact: { name: g.name, linkKey: g.linkKey, tcpAddress: g.tcpAddress, wsAddress: g.wsAddress, params: file.params },
    });
    linkPrivateKey.fill(0);
    fresh = true;
    await idb.flushed();
  }
  const identity = readClientIdentity(store);
  if (identity.contact === null || identity.contact.wsAddress === null) {
    post({ type: 'error', code: 'ERR_CLIENT_STATE', message: 'This client does not know its gateway\'s WebSocket address.' });
    return;
  }
  // An invitation token the user gave (as `backchannel client token` keeps it): shown at the next handshake with a gateway that has not admitted us.
  if (token !== null) {
    store.setSetting(ADMISSION_TOKEN_SETTING, fromHex(token.toLowerCase()));
    await idb.flushed();
  }
  const address = clientAddress(portableBackend, identity);
  post({ type: 'identity', address, gateway: identity.contact.name, fresh });
  let failedConnects = 0;
  const directory = directoryWatch();
  const log = consoleLogger('client');
  // `admission`: the gateway admission's proof or token (src/client/admission.ts), computed by the
  // engine when a gateway asks for it, as the Node client does.
  const connect = async (gateway: DocumentNode, staticKey: Uint8Array, maxMessageLength: number, admission?: Uint8Array): Promise<GatewayLink> => {
    if (gateway.wsAddress === null) throw new Error('the gateway has no WebSocket listener');
    let link: Link;
    try {
      link = await connectBrowserWs({
        url: gateway.wsAddress,
        crypto: portableNoiseCrypto,
        staticKey,
        remoteStatic: gateway.linkKey,
        maxMessageLength,
        handshakeTimeoutMs: CONNECT_TIMEOUT_MS,
        ...(admission === undefined ? {} : { handshakePayload: admission }),
      });
    } catch (e) {
      // The engine tries again with a backoff (a second, doubling to a minute); the page says why
      // meanwhile. An admission refusal is not a problem to show: the engine computes the proof
      // of work the gateway asks for and links again (its status says so).
      if (!(isBackchannelError(e) && e.code.startsWith('ERR_ADMISSION_'))) problem(linkProblem(gateway.name, e, ++failedConnects));
      throw e;
    }
    failedConnects = 0;
    return timedLink(link, idb, maxMessageLength);
  };
  // WebCrypto's X25519 where the browser has it (Chromium 133 on): the header keys of the next
  // packets are made with it between ticks (src/client/header-pool.ts); else all stays on @noble.
  const webX25519 = await webCryptoX25519();
  const client = new Client(
    { linkPrivateKey: identity.linkPrivateKey, gateway: identity.gateway, bootstrap: { gateway: contactNode(identity, identity.contact), params: identity.contact.params } },
    {
      ...(webX25519 === null ? {} : { headerKeys: { x25519: webX25519 } }),
      clock: systemClock,
      crypto: portableBackend,
      aead: portableNoiseCrypto.aead('ChaChaPoly'),
      store,
      log,
      connect,
      directory: { authorities: identity.authorities, threshold: identity.threshold, ed: portableEd25519 },
      // While IndexedDB refuses writes nothing more is taken from the gateway (storageProblem says so).
      storeWritable: () => idb.failure === null,
      onDocument: (d) => {
        refreshGatewayContact(store, identity, d.document);
      },
    },
  );
  const postMessageOf = (m: InboxMessage): void => {
    post({ type: 'message', id: toHex(m.id), text: new TextDecoder().decode(m.body), receivedAt: m.receivedAt });
  };
  // The messenger: its store beside the client's in the same journal (one IndexedDB database, one
  // commit for both), fed by the engine; one-off messages are what it leaves in the inbox.
  const host = startMessenger({ client, store: { messengerStore: new RecordMessengerStore(idb.journal) }, crypto: portableBackend, now: () => Date.now(), address: decodeAddress(portableBackend, address), log });
  const invites = new InviteManager({
    clock: systemClock,
    crypto: portableBackend,
    client,
    store,
    exchange: {
      newCard: () => host.messenger.newCard(),
      addContact: (name, ourCard, theirCard) => {
        host.messenger.addContact(name, ourCard, theirCard);
      },
    },
    log,
  });
  host.api.subscribe((e) => {
    if (e.type === 'message') postMessageOf(e.message);
  });
  client.subscribe((e) => {
    if (e.type === 'connected') resolved(LINK_PROBLEM);
    if (e.type === 'connected' || e.type === 'disconnected') post({ type: 'state', state: e.type });
    else if (e.type === 'delivered' || e.type === 'sent') post({ type: 'outgoing', id: toHex(e.id), state: e.type });
    else if (e.type === 'failed') post({ type: 'outgoing', id: toHex(e.id), state: 'failed' });
  });
  // One-off messages already had (the messenger takes its own out: they are in its history).
  for (let after = 0; ; ) {
    const page = host.api.unconsumed(after, 100);
    page.forEach(postMessageOf);
    if (page.length < 100) break;
    after = page[page.length - 1]!.seq;
  }
  let refusal: string | null = null;
  const report = (): void => {
    const s = client.status();
    directory.check(s);
    // A refusal by the gateway's admission that the client cannot answer alone (a token wanted or
    // refused, a full gateway) is the user's to act on: shown once per reason. Work is computed.
    if (s.admission.state === 'refused' && s.admission.code !== refusal) {
      if (refusal !== null) resolved(refusal);
      refusal = s.admission.code;
      post({ type: 'error', code: s.admission.code, message: s.admission.message });
    } else if (s.admission.state !== 'refused' && refusal !== null) {
      // Admitted since (a token given, the gateway's policy changed): the refusal is over.
      resolved(refusal);
      refusal = null;
    }
    const hk = client.headerKeyStatus();
    const crypto = { x25519: hk === null ? ('@noble' as const) : ('WebCrypto' as const), pooled: hk?.pooled ?? 0, synchronous: hk?.synchronous ?? 0 };
    post({ type: 'status', status: { connected: s.connected, gateway: s.gateway, epoch: s.epoch, document: s.document, pendingMessages: s.pendingMessages, packetsSent: s.packetsSent, clockRestarts: s.clockRestarts, crypto } });
  };
  const tick = (): void => {
    report();
    if (running !== null) postMessenger(running);
  };
  running = { client, idb, host, invites, timer: setInterval(tick, STATUS_INTERVAL_MS) };
  post({ type: 'state', state: 'connecting' });
  client.start();
  invites.start();
  postMessenger(running);
}

/** Queues a one-off message; answers only once it is on disk (a promise to the page waits for flushed()). */
async function send(requestId: number, to: string, text: string): Promise<void> {
  const r = running;
  if (r === null) {
    post({ type: 'queued', requestId, id: null, error: 'The client is not running.' });
    return;
  }
  let id: string;
  try {
    id = toHex(r.client.send({ to, body: new TextEncoder().encode(text) }).id);
  } catch (e) {
    post({ type: 'queued', requestId, id: null, error: isBackchannelError(e) ? e.message : 'The message was not accepted.' });
    return;
  }
  try {
    await r.idb.flushed();
  } catch {
    post({ type: 'queued', requestId, id: null, error: 'The browser refused to store the message.' });
    return;
  }
  post({ type: 'queued', requestId, id, error: null });
}

async function stop(): Promise<void> {
  const r = running;
  running = null;
  if (r === null) return;
  clearInterval(r.timer);
  r.invites.stop();
  r.host.stop();
  await r.client.stop();
  await r.idb.close().catch(() => undefined);
  post({ type: 'state', state: 'stopped' });
}

/**
 * One client per browser profile: a Web Lock held for the worker's life. A reload starts the new
 * page's worker while the old one may still be ending (seconds on a loaded machine), so the lock
 * is waited for PROFILE_WAIT_MS before the page is told another tab has it; a second tab is told
 * after that wait. Without Web Locks (an old browser) it runs unguarded.
 */
const PROFILE_WAIT_MS = 5_000;

async function withProfileLock(run: () => Promise<void>): Promise<void> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks === undefined) {
    await run();
    return;
  }
  const waiting = new AbortController();
  const timer = setTimeout(() => waiting.abort(), PROFILE_WAIT_MS);
  try {
    await locks.request(PROFILE, { signal: waiting.signal }, async () => {
      clearTimeout(timer);
      await run();
      // Held until the worker ends (the tab closes or reloads).
      await new Promise<never>(() => undefined);
    });
  } catch (e) {
    if (!waiting.signal.aborted) throw e;
    post({ type: 'error', code: 'ERR_PROFILE_BUSY', message: 'Backchannel is open in another tab of this browser. Use that tab, or close it: this tab then takes over by itself.' });
    // Waits for the other tab to let go (closed, reloaded elsewhere), then runs here.
    await locks.request(PROFILE, async () => {
      resolved('ERR_PROFILE_BUSY');
      await run();
      await new Promise<never>(() => undefined);
    });
  }
}

scope.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === 'start') {
    if (running !== null) return;
    void withProfileLock(() => start(m.network, m.gateway, m.token ?? null)).catch((e: unknown) => {
      post({ type: 'error', code: isBackchannelError(e) ? e.code : 'ERR_WORKER', message: e instanceof Error ? e.message : String(e) });
    });
  } else if (m.type === 'stop') {
    void stop();
  } else if (m.type === 'send') {
    void send(m.requestId, m.to, m.text);
  } else if (m.type === 'invite') {
    void act(m.requestId, (r) => void r.invites.invite({ name: m.name }));
  } else if (m.type === 'accept') {
    void act(m.requestId, (r) => void r.invites.accept({ code: m.code, name: m.name }));
  } else if (m.type === 'say') {
    void act(m.requestId, (r) => void r.host.messenger.sendText(m.contact, m.text));
  } else if (m.type === 'introduce') {
    void act(m.requestId, (r) => void r.host.messenger.introduce(m.name1, m.name2));
  } else if (m.type === 'answer-introduction') {
    void act(m.requestId, (r) => void (m.accept ? r.host.messenger.acceptIntroduction(m.id, m.name) : r.host.messenger.declineIntroduction(m.id)));
  } else if (m.type === 'verify') {
    void act(m.requestId, (r) => void r.host.messenger.setVerified(m.contact, m.verified));
  } else if (m.type === 'set-name') {
    void act(m.requestId, (r) => {
      const name = m.name.trim();
      // eslint-disable-next-line no-control-regex
      if (name.length === 0 || name.length > MAX_PROFILE_NAME || /[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new Error(`A name is 1 to ${MAX_PROFILE_NAME} characters, without control characters.`);
      r.idb.store.setSetting(NAME_SETTING, new TextEncoder().encode(name));
      post({ type: 'profile', name });
    });
  } else if (m.type === 'get-profile') {
    if (running !== null) post({ type: 'profile', name: profileName(running) });
  } else if (m.type === 'rename') {
    void act(m.requestId, (r) => void r.host.messenger.rename(m.contact, m.name));
  } else if (m.type === 'remove') {
    void act(m.requestId, (r) => r.host.remove(m.contact));
  } else if (m.type === 'block') {
    void act(m.requestId, (r) => void (m.blocked ? r.host.block(m.contact) : r.host.unblock(m.contact)));
  } else if (m.type === 'cancel-invite') {
    void act(m.requestId, (r) => r.invites.cancel(m.id));
  } else if (m.type === 'mark-read') {
    void markRead(m.contact);
  } else if (m.type === 'send-file') {
    void act(m.requestId, (r) => void r.host.messenger.sendFile(m.contact, m.name, m.data));
  } else if (m.type === 'get-file') {
    sendFileData(m.id);
  } else if (m.type === 'set-token') {
    void act(m.requestId, (r) => {
      const token = m.token.trim().toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(token)) throw new Error('An invitation token is 64 hex digits, as the gateway operator gives it.');
      // As `backchannel client token` keeps it: shown at the next link attempt (the engine's backoff, at most a minute).
      r.idb.store.setSetting(ADMISSION_TOKEN_SETTING, fromHex(token));
    });
  }
};
