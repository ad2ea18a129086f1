// The recording relay on real loopback sockets: bytes pass unchanged both ways, the log holds
// only times and sizes, frames are cut at the link's length prefixes (a real Noise link passes
// through it), bad input does not crash it, and a close on one side closes the other.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { nodeBackend } from '../../src/crypto/node.js';
import { connectTcp, listenTcp } from '../../src/link/index.js';
import type { Link } from '../../src/link/index.js';
import { LengthPrefixParser, RecordBudget, startRelay } from '../../src/observe/relay.js';
import { procPeerIdentifier, parseProcNetTcp } from '../../src/observe/peers.js';

/** A TCP echo server on 127.0.0.1, any port. */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no address');
  return { server, port: a.port, sockets };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads exactly n bytes from s. */
function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (b: Buffer): void => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(parts).subarray(0, n));
      }
    };
    s.on('data', onData);
  });
}

function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = (): void => {
      if (check()) resolve();
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe('recording relay', () => {
  test('the length-prefix parser finds frames across any split, without holding bytes', () => {
    const frames = [Buffer.from([0, 3, 1, 2, 3]), Buffer.from([0, 0]), Buffer.from([1, 0, ...new Array<number>(256).fill(9)])];
    const stream = Buffer.concat(frames);
    for (const cut of [1, 2, 3, 7, stream.length]) {
      const p = new LengthPrefixParser();
      const sizes: number[] = [];
      for (let k = 0; k < stream.length; k += cut) p.push(stream.subarray(k, k + cut), (s) => sizes.push(s));
      assert.deepEqual(sizes, [5, 2, 258], `chunks of ${cut}`);
      assert.equal(p.pending, 0);
    }
    const p = new LengthPrefixParser();
    p.push(Buffer.from([0, 10, 1, 2]), () => assert.fail('not a whole frame'));
    assert.equal(p.pending, 4);
  });

  test('passes bytes unchanged both ways through a TCP echo and logs only times and sizes', async () => {
    const echo = await echoServer();
    const relay = await startRelay({ name: 'echo', target: { host: '127.0.0.1', port: echo.port }, framing: 'chunks' });
    try {
      const s = await connect(relay.port);
      const payload = nodeBackend.randomBytes(200_000);
      const back = readExactly(s, payload.length);
      s.write(payload);
      assert.deepEqual(new Uint8Array(await back), payload);
      const [c] = relay.connections();
      assert.ok(c !== undefined);
      await until(() => c.backward.sizes.reduce((a, b) => a + b, 0) === payload.length);
      assert.equal(
        c.forward.sizes.reduce((a, b) => a + b, 0),
        payload.length,
      );
      assert.equal(c.forward.times.length, c.forward.sizes.length);
      for (let k = 1; k < c.forward.times.length; k++) assert.ok(c.forward.times[k]! >= c.forward.times[k - 1]!);
      // Nothing of the content: every field of the log is a name, a number or an array of numbers.
      const json = JSON.stringify(c);
      const hex = Buffer.from(payload.subarray(0, 8)).toString('hex');
      assert.ok(!json.includes(hex));
      assert.deepEqual(Object.keys(c).sort(), ['backward', 'closedAt', 'forward', 'index', 'openedAt', 'peer', 'relay']);
      for (const d of [c.forward, c.backward]) for (const v of [...d.times, ...d.sizes]) assert.equal(typeof v, 'number');
      s.destroy();
      await until(() => c.closedAt !== null);
    } finally {
      await relay.close();
      echo.server.close();
    }
  });

  test('a real Noise link through the relay: the frame sizes it reconstructs are the link frames', async () => {
    const serverKey = nodeBackend.randomBytes(32);
    const clientKey = nodeBackend.randomBytes(32);
    const accepted: Link[] = [];
    const server = await listenTcp({ staticKey: serverKey, accept: () => true, onLink: (l) => accepted.push(l) });
    const relay = await startRelay({ name: 'noise', target: { host: server.host, port: server.port } });
    try {
      const link = await connectTcp({ host: relay.host, port: relay.port, staticKey: clientKey, remoteStatic: nodeBackend.x25519Base(serverKey) });
      await until(() => accepted.length === 1);
      const peer = accepted[0]!;
      const sizes = [1, 3111, 500];
      for (const n of sizes) await link.send(nodeBackend.randomBytes(n));
      for (const n of sizes) assert.equal((await peer.recv())!.length, n);
      await peer.send(nodeBackend.randomBytes(3111));
      assert.equal((await link.recv())!.length, 3111);
      const [c] = relay.connections();
      assert.ok(c !== undefined);
      await until(() => c.forward.sizes.length >= 2 + sizes.length && c.backward.sizes.length >= 3);
      // Handshake: XK's -> e, es (48 + 2), <- e, ee (48 + 2), -> s, se (64 + 2 + payload tag);
      // then each message as 2 (length) + 1 (kind) + n + 16 (tag); the responder's ready frame first.
      const dataSizes = (xs: readonly number[]): number[] => xs.slice(-sizes.length);
      assert.deepEqual(dataSizes(c.forward.sizes), sizes.map((n) => 2 + 1 + n + 16));
      assert.equal(c.backward.sizes.at(-1), 2 + 1 + 3111 + 16);
      assert.ok(c.backward.sizes.includes(2 + 1 + 16), 'the ready frame: a kind byte and a tag');
      assert.equal(c.forward.pending, 0);
      await link.close();
      await until(() => c.closedAt !== null);
    } finally {
      await relay.close();
      await server.close();
    }
  });

  test('garbage, a target that is down, and a full budget do not crash it; a close on one side closes the other', async () => {
    const echo = await echoServer();
    const budget = new RecordBudget(3);
    const relay = await startRelay({ name: 'bad', target: { host: '127.0.0.1', port: echo.port } }, { budget });
    try {
      const s = await connect(relay.port);
      s.on('data', () => undefined);
      for (let k = 0; k < 5; k++) s.write(Buffer.from([0, 1, 7]));
      // A frame that never ends: its length says 65535 bytes.
      s.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
      await until(() => budget.dropped > 0 && relay.connections()[0]!.forward.pending === 5);
      assert.equal(relay.stats().records, 3);
      // The echo server's side closes: the client's side is closed by the relay.
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      await until(() => echo.sockets.length === 1);
      echo.sockets[0]!.destroy();
      await closed;
      await until(() => relay.connections()[0]!.closedAt !== null);
    } finally {
      await relay.close();
      echo.server.close();
    }
    const free = await echoServer();
    const port = free.port;
    await new Promise<void>((resolve) => free.server.close(() => resolve()));
    const orphan = await startRelay({ name: 'down', target: { host: '127.0.0.1', port } });
    try {
      const s = await connect(orphan.port);
      await new Promise<void>((resolve) => s.once('close', () => resolve()));
    } finally {
      await orphan.close();
    }
  });

  test('names the connecting process from its source port (Linux), and parses the socket table', async () => {
    const table = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:7530 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1\n';
    assert.deepEqual(parseProcNetTcp(table), [{ localPort: 30000, remotePort: 0, inode: '12345' }]);
    if (process.platform !== 'linux') return;
    const echo = await echoServer();
    const relay = await startRelay({ name: 'who', target: { host: '127.0.0.1', port: echo.port } }, { identify: procPeerIdentifier(() => new Map([[process.pid, 'this-test']])) });
    try {
      const s = await connect(relay.port);
      await until(() => relay.connections()[0]?.peer !== null);
      assert.equal(relay.connections()[0]!.peer, 'this-test');
      s.destroy();
    } finally {
      await relay.close();
      echo.server.close();
    }
  });
});
