/**
 * The load side of `npm run bench -- mix`, as two threads that share their timestamps through
 * shared memory (performance.timeOrigin + performance.now() is one clock across a process's threads):
 *
 * - role 'sink' builds the packets before any timing (into shared memory) and plays the next hop:
 *   a link server that recognises each packet the mix forwards and stamps its receipt.
 * - role 'sender' plays the previous hop: sends the packets to the mix over a link and stamps
 *   each send, either as fast as the link takes them or evenly paced at a given rate. Between
 *   sends it sleeps in Atomics.wait, so pacing costs no CPU and has no 1 ms timer granularity
 *   (timer ticks sent packets in bursts, which the mix then had to queue).
 *
 * Keeping the two apart keeps either side's work from delaying the other's stamps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { connectTcp, listenTcp } from '../src/link/index.js';
import type { Link } from '../src/link/index.js';
import { Sphinx } from '../src/sphinx/sphinx.js';
import { geometryFromUserPayload } from '../src/sphinx/geometry.js';
import { WireCodec } from '../src/wire/commands.js';

export interface Shared {
  /** Every frame, back to back, frameLength bytes each (written by the sink before 'ready'). */
  readonly frames: SharedArrayBuffer;
  readonly frameLength: number;
  /** Float64 per packet: when it was sent / received, in ms on the shared clock (0: not yet). */
  readonly sentAt: SharedArrayBuffer;
  readonly receivedAt: SharedArrayBuffer;
}

export type MixWorkerData =
  | {
      role: 'sink';
      hops: number;
      userPayloadLength: number;
      withSurb: boolean;
      packets: number;
      mix: { id: Uint8Array; mixPublic: Uint8Array; mixPrivate: Uint8Array };
      sink: { id: Uint8Array; mixPublic: Uint8Array; linkPrivate: Uint8Array };
    }
  | { role: 'sender'; shared: Shared; linkPrivate: Uint8Array; mixLinkPublic: Uint8Array; maxMessageLength: number };

export type ToWorker =
  | { type: 'connect'; port: number }
  | { type: 'send'; start: number; count: number; rate: number | null }
  | { type: 'wait'; target: number; timeoutMs: number };
export type ToParent =
  | { type: 'ready'; sinkPort: number; buildMs: number; shared: Shared }
  | { type: 'connected' }
  | { type: 'sent' }
  | { type: 'received'; received: number }
  | { type: 'failed'; message: string };

/** Now, on the clock every thread of the process shares. */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Packet index by the alpha (group element) it leaves the mix with: an open-addressing table of
 * packet numbers in one Int32Array, keyed by the alpha's first four bytes, confirmed against the
 * whole alpha. No per-packet objects, so nothing for the garbage collector to trace.
 */
class AlphaIndex {
  readonly #alphas: Uint8Array;
  readonly #slots: Int32Array;
  readonly #mask: number;

  constructor(alphas: Uint8Array, count: number) {
    this.#alphas = alphas;
    let size = 1;
    while (size < count * 2) size *= 2;
    this.#slots = new Int32Array(size).fill(-1);
    this.#mask = size - 1;
    for (let i = 0; i < count; i++) {
      let h = this.#hash(alphas, i * 32);
      while (this.#slots[h] !== -1) h = (h + 1) & this.#mask;
      this.#slots[h] = i;
    }
  }

  /** The packet whose alpha is `alpha`, or -1. */
  find(alpha: Uint8Array): number {
    for (let h = this.#hash(alpha, 0); ; h = (h + 1) & this.#mask) {
      const i = this.#slots[h]!;
      if (i === -1) return -1;
      if (this.#equal(alpha, i * 32)) return i;
    }
  }

  #hash(b: Uint8Array, off: number): number {
    return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) & this.#mask;
  }

  #equal(alpha: Uint8Array, off: number): boolean {
    for (let k = 0; k < 32; k++) if (alpha[k] !== this.#alphas[off + k]) return false;
    return true;
  }
}

function sink(data: Extract<MixWorkerData, { role: 'sink' }>): Promise<void> {
  // Build every packet, and the alpha each will have when it leaves the mix (to recognise it).
  // Everything lives in a few large typed arrays, not one object per packet: this thread's heap
  // stays small, so its garbage collector does not pause the receipts it times (44 000 arrays and
  // hex strings made mark-compact pauses of 5 to 40 ms, which showed as the mix's tail latency).
  const t0 = performance.now();
  const g = geometryFromUserPayload(data.hops, data.userPayloadLength, data.withSurb);
  const codec = new WireCodec({ packetLength: g.packetLength });
  const sphinx = new Sphinx(g, nodeBackend);
  const frameLength = codec.commandLength;
  const framesBuffer = new SharedArrayBuffer(data.packets * frameLength);
  const frames = new Uint8Array(framesBuffer);
  const alphas = new Uint8Array(data.packets * 32);
  const payload = new Uint8Array(g.forwardPayloadLength);
  for (let i = 0; i < data.packets; i++) {
    const recipient = nodeBackend.randomBytes(32);
    const packet = sphinx.createPacket(
      [
        { id: data.mix.id, publicKey: data.mix.mixPublic, commands: [] },
        { id: data.sink.id, publicKey: data.sink.mixPublic, commands: [{ type: 'recipient', id: recipient }] },
      ],
      payload,
    );
    const out = sphinx.unwrap(data.mix.mixPrivate, packet);
    if (out.kind !== 'forward') throw new Error('bench: expected a forward hop');
    alphas.set(out.packet.subarray(g.alphaOffset, g.alphaOffset + 32), i * 32);
    frames.set(codec.encode({ kind: 'send_packet', packet }), i * frameLength);
  }
  const index = new AlphaIndex(alphas, data.packets);
  const buildMs = performance.now() - t0;
  const shared: Shared = {
    frames: framesBuffer,
    frameLength,
    sentAt: new SharedArrayBuffer(data.packets * 8),
    receivedAt: new SharedArrayBuffer(data.packets * 8),
  };
  const receivedAt = new Float64Array(shared.receivedAt);
  let received = 0;
  let waiting: { target: number; done: () => void } | null = null;

  const onMessage = (m: Uint8Array): void => {
    const cmd = codec.decode(m);
    if (cmd.kind !== 'send_packet') return;
    const i = index.find(cmd.packet.subarray(g.alphaOffset, g.alphaOffset + 32));
    if (i < 0 || receivedAt[i] !== 0) return;
    receivedAt[i] = sharedNow();
    received++;
    if (waiting !== null && received >= waiting.target) waiting.done();
  };
  return listenTcp({
    host: '127.0.0.1',
    port: 0,
    staticKey: data.sink.linkPrivate,
    maxMessageLength: codec.commandLength,
    accept: () => true,
    onLink: (link) => {
      void (async () => {
        try {
          for await (const m of link) onMessage(m);
        } catch {
          // closed
        }
      })();
    },
  }).then((server) => {
    port.postMessage({ type: 'ready', sinkPort: server.port, buildMs, shared } satisfies ToParent);
    port.on('message', (m: ToWorker) => {
      if (m.type !== 'wait') return;
      const reply = (): void => {
        clearTimeout(timer);
        waiting = null;
        port.postMessage({ type: 'received', received } satisfies ToParent);
      };
      const timer = setTimeout(reply, m.timeoutMs);
      waiting = { target: m.target, done: reply };
      if (received >= m.target) reply();
    });
  });
}

function sender(data: Extract<MixWorkerData, { role: 'sender' }>): void {
  const frames = new Uint8Array(data.shared.frames);
  const frameLength = data.shared.frameLength;
  const sentAt = new Float64Array(data.shared.sentAt);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  let link: Link | null = null;
  const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  const send = async (start: number, count: number, rate: number | null): Promise<void> => {
    const l = link!;
    const t0 = sharedNow();
    for (let i = start; i < start + count; i++) {
      if (rate !== null) {
        // Packet k of the run leaves at t0 + k / rate.
        const wait = t0 + ((i - start) * 1000) / rate - sharedNow();
        if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
      }
      const frame = frames.subarray(i * frameLength, (i + 1) * frameLength);
      sentAt[i] = sharedNow();
      if (!l.trySend(frame)) await l.send(frame);
      // Let the link's write leave (it is flushed at the end of the turn) before sleeping again.
      if (rate !== null) await yieldTurn();
    }
  };

  port.on('message', (m: ToWorker) => {
    const run = async (): Promise<void> => {
      if (m.type === 'connect') {
        link = await connectTcp({
          host: '127.0.0.1',
          port: m.port,
          staticKey: data.linkPrivate,
          remoteStatic: data.mixLinkPublic,
          maxMessageLength: data.maxMessageLength,
        });
        port.postMessage({ type: 'connected' } satisfies ToParent);
      } else if (m.type === 'send') {
        await send(m.start, m.count, m.rate);
        port.postMessage({ type: 'sent' } satisfies ToParent);
      }
    };
    run().catch((e: unknown) => port.postMessage({ type: 'failed', message: e instanceof Error ? e.message : String(e) } satisfies ToParent));
  });
}

const data = workerData as MixWorkerData;
const port = parentPort!;
if (data.role === 'sink') {
  sink(data).catch((e: unknown) => port.postMessage({ type: 'failed', message: e instanceof Error ? e.message : String(e) } satisfies ToParent));
} else {
  sender(data);
}
