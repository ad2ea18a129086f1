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
 * Since then this thread also owns the clocks (link-clocks.ts): it draws the send, loop and fetch
 * ticks itself and sends at each a frame the engine prepared ahead, or one of a reserve of drop
 * cover when the engine has fallen behind, so that even a stall longer than the lead moves no frame.
 *
 * This file is the worker's side; node-worker-link.ts is the engine's. Messages, engine to worker:
 * `connect` (once), `send` (now), `sendAt`, `fetchAt`, `seq`, `close`; with the link's clocks,
 * `rates` (starts them), `prepare`, `reserve`, `fetchFrame`. Worker to engine: `connected`,
 * `failed` (with a typed error's code and message), `recv`, `tick` (what a send or loop tick
 * sent, and the clocks' restarts), `closed`.
 * Node only.
 */
import { randomFillSync } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { isBackchannelError } from '../errors.js';
import { connectTcp } from '../link/tcp.js';
import { LinkRefusedError } from '../link/link.js';
import type { Link } from '../link/link.js';
import { systemClock } from '../ops/clock.js';
import { TimedLink, codecForCommandLength } from './timed-link.js';
import { LinkClocks } from './link-clocks.js';
import type { ClockRates, TickKind, TickSource } from './link-clocks.js';
import { uniform01 } from './poisson.js';

export interface ConnectRequest {
  readonly type: 'connect';
  readonly host: string;
  readonly port: number;
  readonly staticKey: Uint8Array;
  readonly remoteStatic: Uint8Array;
  readonly maxMessageLength: number;
  readonly handshakeTimeoutMs: number;
  /** The third handshake message's payload: the gateway admission's proof or token (src/client/admission.ts). */
  readonly handshakePayload?: Uint8Array;
}

export type ToWorker =
  | ConnectRequest
  | { readonly type: 'send'; readonly frame: Uint8Array }
  | { readonly type: 'sendAt'; readonly frame: Uint8Array; readonly at: number }
  | { readonly type: 'fetchAt'; readonly at: number }
  | { readonly type: 'seq'; readonly sequence: number }
  | { readonly type: 'rates'; readonly rates: ClockRates }
  | { readonly type: 'prepare'; readonly kind: TickKind; readonly frame: Uint8Array }
  | { readonly type: 'reserve'; readonly frames: Uint8Array[]; readonly replace: boolean }
  | { readonly type: 'fetchFrame'; readonly frame: Uint8Array }
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'connected' }
  | { readonly type: 'failed'; readonly code: string | null; readonly message: string; readonly refusal: number | null }
  | { readonly type: 'recv'; readonly frame: Uint8Array }
  | { readonly type: 'tick'; readonly kind: TickKind; readonly source: TickSource; readonly at: number; readonly restarts: { send: number; loop: number; fetch: number } }
  | { readonly type: 'closed' };

if (parentPort === null) throw new Error('node-link-worker: not started as a worker thread');
const port = parentPort;

let link: Link | null = null;
let timed: TimedLink | null = null;
/** The link's own clocks, once the engine gave their rates and the link is up. */
let clocks: LinkClocks | null = null;
/** Rates given before the link was up. */
let rates: ClockRates | null = null;
/** A sequence given before the link was up. */
let sequence = 0;
let closing = false;

const post = (m: FromWorker): void => port.postMessage(m);

function shutDown(): void {
  if (closing) return;
  closing = true;
  clocks?.stop();
  clocks = null;
  timed?.close();
  const l = link;
  link = null;
  const done = (): void => {
    post({ type: 'closed' });
    port.close();
  };
  if (l === null) done();
  else void l.close().then(done, done);
}

async function connect(req: ConnectRequest): Promise<void> {
  try {
    const codec = codecForCommandLength(req.maxMessageLength);
    const l = await connectTcp({
      host: req.host,
      port: req.port,
      staticKey: req.staticKey,
      remoteStatic: req.remoteStatic,
      maxMessageLength: req.maxMessageLength,
      handshakeTimeoutMs: req.handshakeTimeoutMs,
      ...(req.handshakePayload === undefined ? {} : { handshakePayload: req.handshakePayload }),
    });
    req.staticKey.fill(0); // the link's handshake state has what it needs
    if (closing) {
      await l.close().catch(() => undefined);
      return;
    }
    link = l;
    timed = new TimedLink(l, { clock: systemClock, codec, onFailure: shutDown });
    timed.setFetchSequence(sequence);
    post({ type: 'connected' });
    if (rates !== null) startClocks(rates);
    for (;;) {
      const m = await l.recv();
      if (m === null) break;
      post({ type: 'recv', frame: m });
    }
  } catch (e) {
    req.staticKey.fill(0);
    if (link === null) {
      // A refusal by the gateway's admission goes back as its close reason, from which the
      // engine's side makes the same LinkRefusedError (with the work the gateway asks for).
      const refusal = e instanceof LinkRefusedError ? e.reason : null;
      post({ type: 'failed', code: isBackchannelError(e) ? e.code : null, message: isBackchannelError(e) ? e.message : 'link: cannot connect', refusal });
    }
  }
  shutDown();
}

/** The link's clocks (link-clocks.ts), on the CSPRNG; each send or loop tick is reported to the engine. */
function startClocks(r: ClockRates): void {
  const t = timed;
  if (t === null || closing) return;
  if (clocks === null) {
    const c: LinkClocks = new LinkClocks({
      clock: systemClock,
      u01: uniform01((n) => randomFillSync(new Uint8Array(n))),
      send: (frame) => t.sendNow(frame),
      fetch: () => t.fetchNow(),
      onTick: (kind, source) => post({ type: 'tick', kind, source, at: systemClock.now(), restarts: c.restarts }),
    });
    clocks = c;
  }
  clocks.setRates(r);
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'connect':
      void connect(m);
      break;
    case 'send':
      timed?.sendNow(m.frame);
      break;
    case 'sendAt':
      timed?.sendAt(m.frame, m.at);
      break;
    case 'fetchAt':
      timed?.fetchAt(m.at);
      break;
    case 'seq':
      sequence = m.sequence; // the last one given (timed-link.ts)
      timed?.setFetchSequence(m.sequence);
      break;
    case 'rates':
      rates = m.rates;
      startClocks(m.rates);
      break;
    case 'prepare':
      clocks?.prepare(m.kind, m.frame);
      break;
    case 'reserve':
      clocks?.reserve(m.frames, m.replace);
      break;
    case 'fetchFrame':
      clocks?.replaceFetch(m.frame);
      break;
    case 'close':
      shutDown();
      break;
  }
});
