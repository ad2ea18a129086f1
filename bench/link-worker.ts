/**
 * The receiving end of `npm run bench -- link`, run in a worker thread so that the sender and the
 * receiver each get a core. It listens on 127.0.0.1 twice: an encrypted link server (src/link)
 * and a plain `node:net` server that parses the same 2-byte big-endian length framing. It counts
 * what arrives on each and tells the parent once a round's expected count is reached.
 *
 * Messages: the worker posts `ready` (ports and its static public key) once listening; the
 * parent posts `expect` before each round (answered by `armed`), and `stop` at the end (answered
 * by `stopped`, after which the parent terminates the worker).
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { nodeBackend } from '../src/crypto/node.js';
import { listenTcp } from '../src/link/index.js';
import type { Link, LinkServer } from '../src/link/index.js';

export type Kind = 'encrypted' | 'plain';

export interface LinkWorkerData {
  /** The only static key the link server accepts: the parent's. */
  clientPublic: Uint8Array;
}

export type ToWorker = { type: 'expect'; kind: Kind; count: number } | { type: 'stop' };

export type ToParent =
  | { type: 'ready'; linkPort: number; plainPort: number; serverPublic: Uint8Array }
  | { type: 'armed'; kind: Kind }
  | { type: 'done'; kind: Kind; count: number }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

const port = parentPort;
if (!port) throw new Error('link-worker: must run in a worker thread');
const data = workerData as LinkWorkerData;

function post(m: ToParent): void {
  port!.postMessage(m);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Per kind: messages received since the last `expect`, and how many that round wants. */
const received: Record<Kind, number> = { encrypted: 0, plain: 0 };
const expected: Record<Kind, number> = { encrypted: Infinity, plain: Infinity };

function count(kind: Kind, n: number): void {
  received[kind] += n;
  if (received[kind] >= expected[kind]) {
    post({ type: 'done', kind, count: received[kind] });
    expected[kind] = Infinity;
  }
}

// ---- encrypted: a link server -------------------------------------------------------------------

const links = new Set<Link>();

/** Reads with `recv()` directly: the async iterator wraps the same call in a generator. */
async function drain(link: Link): Promise<void> {
  links.add(link);
  try {
    while ((await link.recv()) !== null) count('encrypted', 1);
  } catch {
    // the link failed; the parent notices when its round times out
  } finally {
    links.delete(link);
  }
}

const staticKey = nodeBackend.randomBytes(32);
const linkServer: LinkServer = await listenTcp({
  host: '127.0.0.1',
  port: 0,
  staticKey,
  accept: (remoteStatic) => sameBytes(remoteStatic, data.clientPublic),
  onLink: (link) => void drain(link),
});

// ---- plain: node:net with the same framing ------------------------------------------------------

const sockets = new Set<Socket>();

/** Counts 2-byte-length-prefixed frames in a byte stream without copying any of it. */
function frameCounter(): (chunk: Buffer) => void {
  let bodyLeft = 0; // bytes of the current frame's body still to come
  let header = -1; // the first header byte, when only it has arrived
  return (chunk) => {
    let frames = 0;
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (bodyLeft > 0) {
        const take = Math.min(bodyLeft, end - pos);
        bodyLeft -= take;
        pos += take;
        if (bodyLeft === 0) frames++;
        continue;
      }
      let length: number;
      if (header >= 0) {
        length = (header << 8) | chunk[pos]!;
        header = -1;
        pos += 1;
      } else if (end - pos >= 2) {
        length = (chunk[pos]! << 8) | chunk[pos + 1]!;
        pos += 2;
      } else {
        header = chunk[pos]!;
        pos += 1;
        continue;
      }
      if (length === 0) frames++;
      else bodyLeft = length;
    }
    if (frames > 0) count('plain', frames);
  };
}

const plainServer: Server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.on('data', frameCounter());
  socket.on('error', () => undefined);
  socket.on('close', () => sockets.delete(socket));
});
await new Promise<void>((resolve, reject) => {
  plainServer.once('error', reject);
  plainServer.listen(0, '127.0.0.1', () => {
    plainServer.off('error', reject);
    resolve();
  });
});
const plainAddress = plainServer.address();
if (plainAddress === null || typeof plainAddress === 'string') throw new Error('link-worker: unexpected server address');

// ---- control ------------------------------------------------------------------------------------

async function stop(): Promise<void> {
  const plainClosed = new Promise<void>((resolve) => plainServer.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await Promise.all([linkServer.close(), ...[...links].map((l) => l.close()), plainClosed]);
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'expect') {
    received[m.kind] = 0;
    expected[m.kind] = m.count;
    post({ type: 'armed', kind: m.kind });
  } else if (m.type === 'stop') {
    stop().then(
      () => post({ type: 'stopped' }),
      (e: unknown) => post({ type: 'failed', message: String(e) }),
    );
  }
});

post({ type: 'ready', linkPort: linkServer.port, plainPort: plainAddress.port, serverPublic: nodeBackend.x25519Base(staticKey) });
