/**
 * The client's gateway link on a thread of its own (Node's worker_threads), so that when frames
 * leave does not depend on what the engine's thread is doing.
 *
 * The engine's thread commits to SQLite for every real fragment it sends and every mailbox entry
 * it takes in, and opens and reassembles messages; drop cover and empty answers cost none of that.
 * On one thread, a commit waiting for a slow disk held back the next tick of the send and fetch
 * clocks, so an observer of the link saw the gaps between frames change while the user was active
 * (docs/anonymity.md, run F). Here the engine makes each tick's frame LINK_LEAD_MS early and posts
 * it with the tick's ideal time; this thread sends it at that time. Fetches are made here when they
 * leave, with the last sequence the engine committed, so that the lead costs no stale fetch.
 *
 * This file is the worker's side; node-worker-link.ts is the engine's. Messages, engine to worker:
 * `connect` (once), `send` (now), `sendAt`, `fetchAt`, `seq`, `close`. Worker to engine:
 * `connected`, `failed` (with a typed error's code and message), `recv`, `closed`.
 * Node only.
 */
import { parentPort } from 'node:worker_threads';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { connectTcp } from '../link/tcp.js';
import type { Link } from '../link/link.js';
import { MESSAGE_BODY_OVERHEAD, WIRE_HEADER_LENGTH, WireCodec } from '../wire/commands.js';

export interface ConnectRequest {
  readonly type: 'connect';
  readonly host: string;
  readonly port: number;
  readonly staticKey: Uint8Array;
  readonly remoteStatic: Uint8Array;
  readonly maxMessageLength: number;
  readonly handshakeTimeoutMs: number;
}

export type ToWorker =
  | ConnectRequest
  | { readonly type: 'send'; readonly frame: Uint8Array }
  | { readonly type: 'sendAt'; readonly frame: Uint8Array; readonly at: number }
  | { readonly type: 'fetchAt'; readonly at: number }
  | { readonly type: 'seq'; readonly sequence: number }
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'connected' }
  | { readonly type: 'failed'; readonly code: string | null; readonly message: string }
  | { readonly type: 'recv'; readonly frame: Uint8Array }
  | { readonly type: 'closed' };

/**
 * Frames waiting for their time or for room on the socket, at most. The clocks hand over a few
 * dozen per second, LINK_LEAD_MS ahead; this many means the socket has stopped taking frames, and
 * the link is closed (the engine reconnects) rather than let the queue grow.
 */
export const MAX_WAITING_FRAMES = 1024;

/** A frame to send at `at` (ms, wall clock), or a fetch made when it leaves (`frame` null). */
interface Departure {
  readonly at: number;
  readonly frame: Uint8Array | null;
}

if (parentPort === null) throw new Error('node-link-worker: not started as a worker thread');
const port = parentPort;

let link: Link | null = null;
let codec: WireCodec | null = null;
let sequence = 0;
/** Departures in time order (the clocks hand them over nearly in order: insertion from the back). */
const queue: Departure[] = [];
let timer: ReturnType<typeof setTimeout> | null = null;
let closing = false;

const post = (m: FromWorker): void => port.postMessage(m);

function shutDown(): void {
  if (closing) return;
  closing = true;
  if (timer !== null) clearTimeout(timer);
  timer = null;
  queue.length = 0;
  const l = link;
  link = null;
  const done = (): void => {
    post({ type: 'closed' });
    port.close();
  };
  if (l === null) done();
  else void l.close().then(done, done);
}

function put(frame: Uint8Array): void {
  const l = link;
  if (l === null) return;
  try {
    if (!l.trySend(frame)) void l.send(frame).catch(() => shutDown());
  } catch {
    shutDown();
  }
}

/** Sends every departure whose time has come, then sets the timer for the next. */
function run(): void {
  timer = null;
  const now = Date.now();
  while (queue.length > 0 && queue[0]!.at <= now) {
    const d = queue.shift()!;
    put(d.frame ?? codec!.encode({ kind: 'retrieve_message', sequence }));
  }
  arm();
}

function arm(): void {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  if (queue.length === 0 || closing) return;
  timer = setTimeout(run, Math.max(0, queue[0]!.at - Date.now()));
}

function schedule(d: Departure): void {
  if (link === null || closing) return;
  if (queue.length >= MAX_WAITING_FRAMES) {
    shutDown();
    return;
  }
  let i = queue.length;
  while (i > 0 && queue[i - 1]!.at > d.at) i--;
  queue.splice(i, 0, d);
  if (i === 0) arm();
}

async function connect(req: ConnectRequest): Promise<void> {
  try {
    // The engine's codec for this geometry: its commands are `maxMessageLength` long, a packet's
    // length plus a `message` command's overhead.
    codec = new WireCodec({ packetLength: req.maxMessageLength - WIRE_HEADER_LENGTH - MESSAGE_BODY_OVERHEAD });
    if (codec.commandLength !== req.maxMessageLength) throw new BackchannelError('ERR_WIRE_LENGTH', 'link: no wire geometry has commands of this length');
    const l = await connectTcp({
      host: req.host,
      port: req.port,
      staticKey: req.staticKey,
      remoteStatic: req.remoteStatic,
      maxMessageLength: req.maxMessageLength,
      handshakeTimeoutMs: req.handshakeTimeoutMs,
    });
    req.staticKey.fill(0); // the link's handshake state has what it needs
    if (closing) {
      await l.close().catch(() => undefined);
      return;
    }
    link = l;
    post({ type: 'connected' });
    for (;;) {
      const m = await l.recv();
      if (m === null) break;
      post({ type: 'recv', frame: m });
    }
  } catch (e) {
    req.staticKey.fill(0);
    if (link === null) {
      post({ type: 'failed', code: isBackchannelError(e) ? e.code : null, message: isBackchannelError(e) ? e.message : 'link: cannot connect' });
    }
  }
  shutDown();
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'connect':
      void connect(m);
      break;
    case 'send':
      put(m.frame);
      break;
    case 'sendAt':
      schedule({ at: m.at, frame: m.frame });
      break;
    case 'fetchAt':
      schedule({ at: m.at, frame: null });
      break;
    case 'seq':
      sequence = m.sequence;
      break;
    case 'close':
      shutDown();
      break;
  }
});
