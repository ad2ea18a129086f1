/**
 * `npm run bench -- link`: throughput of an encrypted link (Noise over TCP, src/link) against plain
 * TCP with the same 2-byte length framing, both over loopback with 3000-byte messages. The
 * receiver runs in a worker thread (./link-worker.ts) so that sender and receiver each get a core.
 *
 * Two plain baselines, both measured in the same run:
 * - `plain`: one socket.write per frame, the ordinary way to send frames over TCP; `ratio` is
 *   encrypted / plain.
 * - `plain_batched`: frames corked and written in bursts. The link's TCP transport batches the
 *   same way (one writev per event-loop turn), so `ratio_vs_batched` is the like-for-like figure;
 *   it is bounded by ChaCha20-Poly1305 itself (about 1.2 GB/s per core) against loopback copies.
 *
 * Each kind is warmed up once, then the kinds alternate round by round so that all see the same
 * machine; the figures are the medians over the rounds. Nothing is asserted.
 */
import { once } from 'node:events';
import { createConnection } from 'node:net';
import type { NetConnectOpts, Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { DEFAULT_HIGH_WATER_MARK, connectTcp } from '../src/link/index.js';
import type { Link } from '../src/link/index.js';
import { round } from './_timing.js';
import type { Kind, LinkWorkerData, ToParent, ToWorker } from './link-worker.js';

export interface LinkBench {
  frame_bytes: number;
  frames: number;
  rounds: number;
  encrypted_frames_per_s: number;
  encrypted_mb_per_s: number;
  plain_frames_per_s: number;
  plain_mb_per_s: number;
  ratio: number;
  plain_batched_frames_per_s: number;
  plain_batched_mb_per_s: number;
  ratio_vs_batched: number;
}

const HOST = '127.0.0.1';
const FRAME_BYTES = 3000;
const FRAMES = 20_000;
const ROUNDS = 9;
/** No new round starts after this long (warm-up included); at least one round of each runs. */
const BUDGET_MS = 20_000;
/** A round that takes longer than this has stalled. */
const ROUND_TIMEOUT_MS = 30_000;

type Message<T extends ToParent['type']> = Extract<ToParent, { type: T }>;

/** The parent's side of the worker: waits for its messages by type, stamped when they arrive. */
class Receiver {
  readonly worker: Worker;
  readonly #waiting = new Map<string, { resolve(v: { message: ToParent; at: number }): void; reject(e: Error): void }>();
  #failure: Error | null = null;

  constructor(workerData: LinkWorkerData) {
    this.worker = new Worker(new URL('./link-worker.js', import.meta.url), { workerData });
    this.worker.on('message', (message: ToParent) => {
      const at = performance.now();
      if (message.type === 'failed') {
        this.#fail(new Error(`link worker: ${message.message}`));
        return;
      }
      const w = this.#waiting.get(message.type);
      if (!w) return;
      this.#waiting.delete(message.type);
      w.resolve({ message, at });
    });
    this.worker.on('error', (e) => this.#fail(e));
    this.worker.on('exit', (code) => this.#fail(new Error(`link worker exited (code ${code})`)));
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const w of this.#waiting.values()) w.reject(e);
    this.#waiting.clear();
  }

  post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  /** The next message of this type, and performance.now() when it arrived. */
  wait<T extends ToParent['type']>(type: T, timeoutMs = ROUND_TIMEOUT_MS): Promise<{ message: Message<T>; at: number }> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(type);
        reject(new Error(`link bench: no '${type}' from the worker within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(type, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as { message: Message<T>; at: number });
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

/**
 * Sends n messages as fast as the link takes them: trySend while the transport has room, and one
 * awaited send (which queues the message and resolves on drain) when it has not. This is the
 * fastest way measured: `await link.send(msg)` for every message costs a promise and a microtask
 * turn each and came out 3-5% slower.
 */
async function sendEncrypted(link: Link, message: Uint8Array, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (!link.trySend(message)) await link.send(message);
  }
}

/** Writes n ready-made frames, waiting for 'drain' whenever write says the buffer is full. */
async function sendPlain(socket: Socket, frame: Uint8Array, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (!socket.write(frame)) await once(socket, 'drain');
  }
}

/** As sendPlain, but frames written in one go leave in one system call, as the link's TCP transport does. */
async function sendPlainBatched(socket: Socket, frame: Uint8Array, n: number): Promise<void> {
  socket.cork();
  for (let i = 0; i < n; i++) {
    if (!socket.write(frame)) {
      socket.uncork();
      await once(socket, 'drain');
      socket.cork();
    }
  }
  socket.uncork();
}

/** One round: arm the worker, send, and time from the first send to the worker's "got all n". */
async function timeRound(receiver: Receiver, kind: Kind, n: number, send: () => Promise<void>): Promise<number> {
  const armed = receiver.wait('armed');
  receiver.post({ type: 'expect', kind, count: n });
  await armed;
  const done = receiver.wait('done');
  const t0 = performance.now();
  await send();
  const { message, at } = await done;
  if (message.kind !== kind || message.count !== n) throw new Error(`link bench: expected ${n} ${kind} frames, the worker got ${message.count} ${message.kind}`);
  return at - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function connectPlain(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // The link's TCP transport waits at 1 MiB queued (DEFAULT_HIGH_WATER_MARK) rather than at
    // Node's 16 KiB, so the plain socket gets the same mark: the two differ only by the link.
    // net.Socket hands its options to stream.Duplex, which reads this; @types/node omits it.
    const options: NetConnectOpts & { writableHighWaterMark: number } = { host: HOST, port, noDelay: true, writableHighWaterMark: DEFAULT_HIGH_WATER_MARK };
    const socket = createConnection(options);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export async function benchLink(): Promise<LinkBench> {
  const started = performance.now();
  const staticKey = nodeBackend.randomBytes(32);
  const receiver = new Receiver({ clientPublic: nodeBackend.x25519Base(staticKey) });
  let link: Link | null = null;
  let socket: Socket | null = null;
  try {
    const { message: ready } = await receiver.wait('ready');
    link = await connectTcp({ host: HOST, port: ready.linkPort, staticKey, remoteStatic: ready.serverPublic });
    socket = await connectPlain(ready.plainPort);
    socket.on('error', () => undefined); // a failure shows as a round that never completes

    const message = nodeBackend.randomBytes(FRAME_BYTES);
    const frame = new Uint8Array(2 + FRAME_BYTES);
    frame[0] = FRAME_BYTES >>> 8;
    frame[1] = FRAME_BYTES & 0xff;
    frame.set(message, 2);

    const l = link;
    const s = socket;
    const plain = (): Promise<number> => timeRound(receiver, 'plain', FRAMES, () => sendPlain(s, frame, FRAMES));
    const encrypted = (): Promise<number> => timeRound(receiver, 'encrypted', FRAMES, () => sendEncrypted(l, message, FRAMES));
    const plainBatched = (): Promise<number> => timeRound(receiver, 'plain', FRAMES, () => sendPlainBatched(s, frame, FRAMES));

    await plain();
    await plainBatched();
    await encrypted();
    const plainMs: number[] = [];
    const batchedMs: number[] = [];
    const encryptedMs: number[] = [];
    while (plainMs.length < ROUNDS && (plainMs.length === 0 || performance.now() - started < BUDGET_MS)) {
      plainMs.push(await plain());
      batchedMs.push(await plainBatched());
      encryptedMs.push(await encrypted());
    }
    const batchedFps = (FRAMES * 1000) / median(batchedMs);

    const encryptedFps = (FRAMES * 1000) / median(encryptedMs);
    const plainFps = (FRAMES * 1000) / median(plainMs);
    return {
      frame_bytes: FRAME_BYTES,
      frames: FRAMES,
      rounds: plainMs.length,
      encrypted_frames_per_s: Math.round(encryptedFps),
      encrypted_mb_per_s: round((encryptedFps * FRAME_BYTES) / 1e6, 1),
      plain_frames_per_s: Math.round(plainFps),
      plain_mb_per_s: round((plainFps * FRAME_BYTES) / 1e6, 1),
      ratio: round(encryptedFps / plainFps, 2),
      plain_batched_frames_per_s: Math.round(batchedFps),
      plain_batched_mb_per_s: round((batchedFps * FRAME_BYTES) / 1e6, 1),
      ratio_vs_batched: round(encryptedFps / batchedFps, 2),
    };
  } finally {
    await shutdown(receiver, link, socket);
  }
}

/** Closes the link and the plain socket, lets the worker close its servers, then ends it. */
async function shutdown(receiver: Receiver, link: Link | null, socket: Socket | null): Promise<void> {
  const closing: Promise<unknown>[] = [];
  if (link) closing.push(link.close());
  if (socket && !socket.destroyed) {
    closing.push(once(socket, 'close').catch(() => undefined));
    socket.end();
  }
  await Promise.all(closing);
  const stopped = receiver.wait('stopped', 5_000).catch(() => undefined);
  receiver.post({ type: 'stop' });
  await stopped;
  await receiver.worker.terminate();
}
