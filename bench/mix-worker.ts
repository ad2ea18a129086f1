/**
 * The load side of `npm run bench -- mix`, in its own thread: builds the packets before any
 * timing, plays the previous hop (sends them to the mix over a link) and the next hop (a link
 * server that counts what the mix forwards), both in this thread so that one clock stamps the
 * send and the receipt of each packet.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { connectTcp, listenTcp } from '../src/link/index.js';
import type { Link } from '../src/link/index.js';
import { Sphinx } from '../src/sphinx/sphinx.js';
import { geometryFromUserPayload } from '../src/sphinx/geometry.js';
import { toHex } from '../src/util/bytes.js';
import { WireCodec } from '../src/wire/commands.js';

export interface MixWorkerData {
  hops: number;
  userPayloadLength: number;
  withSurb: boolean;
  packets: number;
  mix: { id: Uint8Array; mixPublic: Uint8Array; mixPrivate: Uint8Array; linkPublic: Uint8Array };
  sink: { id: Uint8Array; mixPublic: Uint8Array; linkPrivate: Uint8Array };
  senderLinkPrivate: Uint8Array;
}

export type ToWorker = { type: 'connect'; port: number } | { type: 'throughput'; count: number } | { type: 'latency'; count: number; rate: number };
export type ToParent =
  | { type: 'ready'; sinkPort: number; buildMs: number }
  | { type: 'connected' }
  | { type: 'throughput'; received: number; seconds: number }
  | { type: 'latency'; received: number; latenciesMs: number[] }
  | { type: 'failed'; message: string };

const data = workerData as MixWorkerData;
const port = parentPort!;
const g = geometryFromUserPayload(data.hops, data.userPayloadLength, data.withSurb);
const codec = new WireCodec({ packetLength: g.packetLength });
const sphinx = new Sphinx(g, nodeBackend);

// Build every packet, and the alpha each will have when it leaves the mix (to recognise it).
const t0 = performance.now();
const frames: Uint8Array[] = [];
const indexByAlpha = new Map<string, number>();
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
  indexByAlpha.set(toHex(out.packet.subarray(g.alphaOffset, g.alphaOffset + 32)), i);
  frames.push(codec.encode({ kind: 'send_packet', packet }));
}
const buildMs = performance.now() - t0;

const sentAt = new Float64Array(data.packets);
const receivedAt = new Float64Array(data.packets);
let received = 0;
let waitFor = 0;
let onAllReceived: (() => void) | null = null;

function onSinkMessage(m: Uint8Array): void {
  const cmd = codec.decode(m);
  if (cmd.kind !== 'send_packet') return;
  const i = indexByAlpha.get(toHex(cmd.packet.subarray(g.alphaOffset, g.alphaOffset + 32)));
  if (i === undefined || receivedAt[i] !== 0) return;
  receivedAt[i] = performance.now();
  received++;
  if (received >= waitFor && onAllReceived) onAllReceived();
}

const sink = await listenTcp({
  host: '127.0.0.1',
  port: 0,
  staticKey: data.sink.linkPrivate,
  maxMessageLength: codec.commandLength,
  accept: () => true,
  onLink: (link) => {
    void (async () => {
      try {
        for await (const m of link) onSinkMessage(m);
      } catch {
        // closed
      }
    })();
  },
});
port.postMessage({ type: 'ready', sinkPort: sink.port, buildMs } satisfies ToParent);

let sender: Link | null = null;
let next = 0;

function waitReceived(target: number, timeoutMs: number): Promise<void> {
  waitFor = target;
  if (received >= target) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      onAllReceived = null;
      resolve();
    }, timeoutMs);
    onAllReceived = () => {
      clearTimeout(t);
      onAllReceived = null;
      resolve();
    };
  });
}

async function sendOne(link: Link): Promise<void> {
  const i = next++;
  sentAt[i] = performance.now();
  if (!link.trySend(frames[i]!)) await link.send(frames[i]!);
}

async function throughput(count: number): Promise<void> {
  const link = sender!;
  const start = received;
  const first = next;
  const t = performance.now();
  for (let k = 0; k < count; k++) await sendOne(link);
  await waitReceived(start + count, 30_000);
  let last = t;
  for (let i = first; i < first + count; i++) if (receivedAt[i]! > last) last = receivedAt[i]!;
  port.postMessage({ type: 'throughput', received: received - start, seconds: (last - t) / 1000 } satisfies ToParent);
}

async function latency(count: number, rate: number): Promise<void> {
  const link = sender!;
  const start = received;
  const first = next;
  const t = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - t) / 1000) * rate) + 1);
    while (sent < due) {
      await sendOne(link);
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await waitReceived(start + count, 30_000);
  const lat: number[] = [];
  for (let i = first; i < first + count; i++) if (receivedAt[i]! > 0) lat.push(receivedAt[i]! - sentAt[i]!);
  port.postMessage({ type: 'latency', received: received - start, latenciesMs: lat } satisfies ToParent);
}

port.on('message', (m: ToWorker) => {
  const run = async (): Promise<void> => {
    switch (m.type) {
      case 'connect':
        sender = await connectTcp({
          host: '127.0.0.1',
          port: m.port,
          staticKey: data.senderLinkPrivate,
          remoteStatic: data.mix.linkPublic,
          maxMessageLength: codec.commandLength,
        });
        port.postMessage({ type: 'connected' } satisfies ToParent);
        return;
      case 'throughput':
        return throughput(m.count);
      case 'latency':
        return latency(m.count, m.rate);
    }
  };
  run().catch((e: unknown) => port.postMessage({ type: 'failed', message: e instanceof Error ? e.message : String(e) } satisfies ToParent));
});
