/**
 * One compliance suite for every transport, over real sockets on 127.0.0.1: TCP, WebSocket from
 * Node (`ws`), and the WHATWG WebSocket that browsers have (Node's global WebSocket here, with
 * the portable primitives). Then interop: one node relays between a TCP link and a WebSocket link.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocket as NodeWs } from 'ws';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import type { Link, LinkOptions, LinkServer } from '../../src/link/index.js';
import { CloseReason, connectBrowserWs, connectTcp, connectWs, listenTcp, listenWs } from '../../src/link/index.js';
import { portableNoiseCrypto } from '../../src/noise/crypto-portable.js';
import type { GateLimits } from '../../src/util/gate.js';

const serverKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);
const clientKey = nodeBackend.randomBytes(32);
const clientPub = nodeBackend.x25519Base(clientKey);

interface ServerOpts extends LinkOptions {
  accept?: (k: Uint8Array) => boolean | Promise<boolean>;
  maxPendingHandshakes?: number;
  maxPendingPerSource?: number;
  gate?: GateLimits;
}

interface Harness {
  server: LinkServer & { url?: string };
  /** Links the server accepted, in order. */
  accepted: Link[];
  nextLink(): Promise<Link>;
}

interface TransportCase {
  name: string;
  listen(opts: ServerOpts, onLink: (l: Link) => void): Promise<LinkServer & { url?: string }>;
  connect(server: LinkServer & { url?: string }, opts: LinkOptions & { staticKey?: Uint8Array; remoteStatic?: Uint8Array }): Promise<Link>;
  /** A raw connection that is not a link: write bytes, learn when the server dropped it. From 127.0.0.1 unless `from` is given. */
  raw(server: LinkServer & { url?: string }, from?: string): Promise<{ write(b: Uint8Array): void; closed: Promise<void>; destroy(): void }>;
}

function rawTcp(server: LinkServer, from?: string): Promise<{ write(b: Uint8Array): void; closed: Promise<void>; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const s: Socket = netConnect({ port: server.port, host: server.host, ...(from === undefined ? {} : { localAddress: from }) }, () => {
      resolve({ write: (b) => s.write(b), closed: new Promise((r) => s.once('close', () => r())), destroy: () => s.destroy() });
    });
    s.on('error', reject);
    s.on('data', () => undefined);
  });
}

function rawWs(server: LinkServer & { url?: string }, from?: string): Promise<{ write(b: Uint8Array): void; closed: Promise<void>; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const ws = new NodeWs(server.url!, from === undefined ? {} : { localAddress: from });
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.once('open', () => resolve({ write: (b) => ws.send(b), closed, destroy: () => ws.terminate() }));
    ws.on('error', reject);
  });
}

const CASES: TransportCase[] = [
  {
    name: 'tcp',
    listen: (opts, onLink) => listenTcp({ staticKey: serverKey, accept: () => true, ...opts, onLink }),
    connect: (server, opts) => connectTcp({ host: server.host, port: server.port, staticKey: clientKey, remoteStatic: serverPub, ...opts }),
    raw: rawTcp,
  },
  {
    name: 'websocket (ws)',
    listen: (opts, onLink) => listenWs({ staticKey: serverKey, accept: () => true, ...opts, onLink }),
    connect: (server, opts) => connectWs({ url: server.url!, staticKey: clientKey, remoteStatic: serverPub, ...opts }),
    raw: rawWs,
  },
  {
    name: 'websocket (browser API, portable crypto)',
    listen: (opts, onLink) => listenWs({ staticKey: serverKey, accept: () => true, ...opts, onLink }),
    connect: (server, opts) => connectBrowserWs({ url: server.url!, staticKey: clientKey, remoteStatic: serverPub, crypto: portableNoiseCrypto, ...opts }),
    raw: rawWs,
  },
];

const servers: LinkServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function harness(c: TransportCase, opts: ServerOpts = {}): Promise<Harness> {
  const accepted: Link[] = [];
  const waiting: ((l: Link) => void)[] = [];
  const server = await c.listen(opts, (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else accepted.push(l);
  });
  servers.push(server);
  return {
    server,
    accepted,
    nextLink: () => {
      const l = accepted.shift();
      return l ? Promise.resolve(l) : new Promise((r) => waiting.push(r));
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A raw connection the gate refuses: over TCP it opens and is closed at once; over WebSocket the
 * upgrade fails (the socket is destroyed before the request is read).
 */
async function refusedOrClosed(c: TransportCase, server: LinkServer & { url?: string }, from: string): Promise<void> {
  try {
    const x = await c.raw(server, from);
    await x.closed;
  } catch {
    // the WebSocket upgrade failed: refused
  }
}
const code = (c: string) => (e: unknown): boolean => isBackchannelError(e, c as never);

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('the platform WebSocket is present (run-tests passes --experimental-websocket on Node 20)', () => {
  assert.equal(typeof globalThis.WebSocket, 'function');
});

for (const c of CASES) {
  describe(`link compliance: ${c.name}`, () => {
    test('both ends authenticate each other and exchange messages in order, both ways', async () => {
      const h = await harness(c);
      const client = await c.connect(h.server, {});
      const server = await h.nextLink();
      assert.deepEqual(client.remoteStatic, serverPub);
      assert.deepEqual(server.remoteStatic, clientPub);
      assert.deepEqual(client.handshakeHash, server.handshakeHash);
      const sizes = [0, 1, 17, 3000, 65518, 1234, 2];
      const messages = sizes.map((n, i) => nodeBackend.randomBytes(n).fill(i, 0, Math.min(n, 1)));
      for (const m of messages) await client.send(m);
      for (const m of messages) assert.deepEqual(await server.recv(), m);
      for (const m of messages) await server.send(m);
      for (const m of messages) assert.deepEqual(await client.recv(), m);
      await client.close();
      assert.equal(await server.recv(), null);
      assert.equal((await server.closed).by, 'remote');
    });

    test('2,000 messages stream through intact while both sides rekey', async () => {
      const h = await harness(c, { rekeyAfterFrames: 97 });
      const client = await c.connect(h.server, { rekeyAfterFrames: 89 });
      const server = await h.nextLink();
      const echo = (async () => {
        for await (const m of server) await server.send(m);
      })();
      const N = 2000;
      const reading = (async () => {
        for (let i = 0; i < N; i++) {
          const m = (await client.recv())!;
          assert.equal(m.length, 3000);
          assert.equal(m[0], i & 0xff);
          assert.equal(m[2999], (i * 7) & 0xff);
        }
      })();
      for (let i = 0; i < N; i++) {
        const m = new Uint8Array(3000);
        m[0] = i & 0xff;
        m[2999] = (i * 7) & 0xff;
        await client.send(m);
      }
      await reading;
      // Each rekey point is drawn in [0.5, 1.5] × rekeyAfterFrames.
      assert.ok(client.stats.rekeys >= Math.floor(N / Math.floor(1.5 * 89)) && client.stats.rekeys <= Math.ceil(N / Math.ceil(0.5 * 89)));
      assert.ok(server.stats.rekeys >= Math.floor(N / Math.floor(1.5 * 97)) && server.stats.rekeys <= Math.ceil(N / Math.ceil(0.5 * 97)));
      await client.close();
      await echo;
    });

    test('the accept policy refuses a key: the initiator gets ERR_LINK_REJECTED', async () => {
      const h = await harness(c, { accept: async (k) => !k.every((b, i) => b === clientPub[i]) });
      await assert.rejects(c.connect(h.server, {}), code('ERR_LINK_REJECTED'));
      await until(() => h.server.stats.rejected === 1, 'the rejection count');
      assert.equal(h.server.stats.accepted, 0);
    });

    test('an initiator with the wrong server key fails the handshake, and the server counts it', async () => {
      const h = await harness(c);
      await assert.rejects(c.connect(h.server, { remoteStatic: clientPub }), code('ERR_LINK_HANDSHAKE'));
      await until(() => h.server.stats.failed === 1, 'the failure count');
    });

    test('keepalives hold an idle link open; a peer that stalls is timed out', async () => {
      const h = await harness(c, { keepaliveMs: 50, idleTimeoutMs: 400 });
      const client = await c.connect(h.server, { keepaliveMs: 50, idleTimeoutMs: 400 });
      const server = await h.nextLink();
      await sleep(1000);
      assert.ok(client.isOpen && server.isOpen, 'idle link closed despite keepalives');
      // A client that stops sending anything: the server times it out.
      const h2 = await harness(c, { keepaliveMs: 50, idleTimeoutMs: 400 });
      const quiet = await c.connect(h2.server, { keepaliveMs: 60_000, idleTimeoutMs: 120_000 });
      const server2 = await h2.nextLink();
      const info = await server2.closed;
      assert.ok(isBackchannelError(info.error, 'ERR_LINK_TIMEOUT'));
      const quietInfo = await quiet.closed;
      assert.notEqual(quietInfo.by, 'local');
      await client.close();
    });

    test('a raw peer that sends garbage or stalls is dropped; the server keeps serving', async () => {
      const h = await harness(c, { handshakeTimeoutMs: 300 });
      const garbage = await c.raw(h.server);
      garbage.write(nodeBackend.randomBytes(5000));
      const huge = await c.raw(h.server);
      huge.write(Uint8Array.of(0xff, 0xff, 1, 2, 3));
      const stall = await c.raw(h.server);
      await garbage.closed;
      await huge.closed;
      await stall.closed; // handshake timeout
      assert.equal(h.server.stats.failed, 3);
      const client = await c.connect(h.server, {});
      const server = await h.nextLink();
      await client.send(Uint8Array.of(42));
      assert.deepEqual(await server.recv(), Uint8Array.of(42));
      await client.close();
    });

    test('connections beyond maxPendingHandshakes are dropped at once and counted', async () => {
      const h = await harness(c, { maxPendingHandshakes: 2, handshakeTimeoutMs: 2000 });
      const a = await c.raw(h.server);
      const b = await c.raw(h.server);
      const d = await c.raw(h.server);
      await d.closed;
      assert.equal(h.server.stats.overloaded, 1);
      a.destroy();
      b.destroy();
    });

    test('one source that fills every handshake slot with silent connections cannot keep another source out', async () => {
      // The attacker (127.0.0.2) may hold every slot; each new one from 127.0.0.1 takes one of its.
      const h = await harness(c, { maxPendingHandshakes: 8, maxPendingPerSource: 16, handshakeTimeoutMs: 5000 });
      const silent = await Promise.all(Array.from({ length: 8 }, () => c.raw(h.server, '127.0.0.2')));
      await until(() => h.server.pending === 8, 'eight pending handshakes');
      const more = await c.raw(h.server, '127.0.0.2');
      await more.closed; // the attacker's own ninth is refused, not swapped for its first
      assert.equal(h.server.stats.overloaded, 1);
      const client = await c.connect(h.server, {});
      const server = await h.nextLink();
      await client.send(Uint8Array.of(7));
      assert.deepEqual(await server.recv(), Uint8Array.of(7));
      assert.equal(h.server.stats.evicted, 1);
      await Promise.race(silent.map((x) => x.closed)); // the oldest silent one made room
      await client.close();
      for (const x of silent) x.destroy();
    });

    test('a source is held to maxPendingPerSource handshakes, and the gate to its open connections', async () => {
      const h = await harness(c, { maxPendingPerSource: 2, handshakeTimeoutMs: 5000, gate: { maxPerSource: 3, maxTotal: 100, ratePerSource: { perSecond: 1000, burst: 1000 } } });
      const a = await c.raw(h.server, '127.0.0.2');
      const b = await c.raw(h.server, '127.0.0.2');
      const d = await c.raw(h.server, '127.0.0.2');
      await d.closed;
      assert.equal(h.server.stats.sourceOverloaded, 1);
      // Another source is not affected; then three open from 127.0.0.3 fill its gate allowance.
      const e = await c.raw(h.server, '127.0.0.3');
      const f = await c.raw(h.server, '127.0.0.3');
      assert.equal(h.server.pending, 4);
      a.destroy();
      b.destroy();
      e.destroy();
      f.destroy();
      const g = await harness(c, { gate: { maxPerSource: 2, maxTotal: 100, ratePerSource: { perSecond: 1000, burst: 1000 } } });
      const held = [await c.raw(g.server, '127.0.0.4'), await c.raw(g.server, '127.0.0.4')];
      await refusedOrClosed(c, g.server, '127.0.0.4');
      assert.equal(g.server.gate?.refused.source_open, 1);
      for (const x of held) x.destroy();
    });

    test('the gate holds a source to its connection rate', async () => {
      const h = await harness(c, { gate: { maxPerSource: 100, maxTotal: 100, ratePerSource: { perSecond: 0.001, burst: 2 } } });
      const held = [await c.raw(h.server, '127.0.0.5'), await c.raw(h.server, '127.0.0.5')];
      await refusedOrClosed(c, h.server, '127.0.0.5');
      assert.equal(h.server.gate?.refused.source_rate, 1);
      const other = await c.raw(h.server, '127.0.0.6');
      assert.equal(h.server.gate?.admitted, 3);
      for (const x of [...held, other]) x.destroy();
    });

    test('a receiver that does not read holds back the sender; everything arrives once it reads', async () => {
      const h = await harness(c, { maxQueuedMessages: 16 });
      const client = await c.connect(h.server, { maxQueuedSends: 100_000 });
      const server = await h.nextLink();
      const msg = new Uint8Array(16_000);
      let sent = 0;
      while (client.trySend(msg)) sent++;
      const more = Array.from({ length: 200 }, () => client.send(msg));
      await sleep(100);
      assert.ok(server.stats.framesReceived <= 16 + 4, `receiver handled ${server.stats.framesReceived} frames while not reading`);
      for (let i = 0; i < sent + more.length; i++) assert.equal((await server.recv())!.length, msg.length);
      await Promise.all(more);
      await client.close();
    });

    test('closing the server closes its links cleanly', async () => {
      const h = await harness(c);
      const client = await c.connect(h.server, {});
      await h.nextLink();
      await h.server.close();
      assert.equal(await client.recv(), null);
      assert.equal((await client.closed).by, 'remote');
    });
  });
}

describe('link interop: TCP and WebSocket', () => {
  test('a relay node forwards between a TCP link and a browser-API WebSocket link, byte for byte', async () => {
    // The relay accepts the same static key on both transports, as a gateway does.
    const fromTcp: Link[] = [];
    const fromWs: Link[] = [];
    const tcpServer = await listenTcp({ staticKey: serverKey, accept: () => true, onLink: (l) => fromTcp.push(l) });
    const wsServer = await listenWs({ staticKey: serverKey, accept: () => true, onLink: (l) => fromWs.push(l) });
    servers.push(tcpServer, wsServer);
    const tcpClient = await connectTcp({ host: tcpServer.host, port: tcpServer.port, staticKey: clientKey, remoteStatic: serverPub });
    const browserKey = nodeBackend.randomBytes(32);
    const wsClient = await connectBrowserWs({ url: wsServer.url, staticKey: browserKey, remoteStatic: serverPub, crypto: portableNoiseCrypto });
    await until(() => fromTcp.length === 1 && fromWs.length === 1, 'both links');
    const [a, b] = [fromTcp[0]!, fromWs[0]!];
    const relay = async (from: Link, to: Link): Promise<void> => {
      for await (const m of from) await to.send(m);
    };
    const relays = [relay(a, b), relay(b, a)];
    const messages = Array.from({ length: 100 }, (_, i) => nodeBackend.randomBytes(1 + ((i * 997) % 5000)));
    for (const m of messages) await tcpClient.send(m);
    for (const m of messages) assert.deepEqual(await wsClient.recv(), m);
    for (const m of messages) await wsClient.send(m);
    for (const m of messages) assert.deepEqual(await tcpClient.recv(), m);
    assert.deepEqual(b.remoteStatic, nodeBackend.x25519Base(browserKey));
    await tcpClient.close();
    await wsClient.close();
    await Promise.all(relays.map((r) => r.catch(() => undefined)));
  });
});

describe('link servers and application handlers', () => {
  test('a server whose onLink handler throws closes that link and keeps serving', async () => {
    let calls = 0;
    const server = await listenTcp({
      staticKey: serverKey,
      accept: () => true,
      onLink: () => {
        calls++;
        throw new Error('handler bug');
      },
    });
    servers.push(server);
    for (let i = 0; i < 2; i++) {
      const client = await connectTcp({ host: server.host, port: server.port, staticKey: clientKey, remoteStatic: serverPub });
      assert.equal(await client.recv(), null);
      const info = await client.closed;
      assert.equal(info.by, 'remote');
      assert.equal(info.reason, CloseReason.protocol);
    }
    assert.equal(calls, 2);
  });
});

describe('link: the handshake payload and typed refusals', () => {
  test('the accept policy gets the initiator\'s payload; a refusal reason reaches the initiator as a typed error', async () => {
    const { LinkRefusedError, WORK_REQUIRED_BASE, HANDSHAKE_PAYLOAD_LENGTH } = await import('../../src/link/link.js');
    const seen: Uint8Array[] = [];
    const verdicts = [{ refuse: WORK_REQUIRED_BASE + 12 }, { refuse: CloseReason.tokenRequired }, { refuse: CloseReason.tokenInvalid }, { refuse: CloseReason.full }, true];
    const server = await listenTcp({
      host: '127.0.0.1',
      port: 0,
      staticKey: serverKey,
      accept: (_rs, payload) => {
        seen.push(payload);
        return verdicts[seen.length - 1]!;
      },
      onLink: (l) => void l.close(),
    });
    try {
      const payload = new Uint8Array(HANDSHAKE_PAYLOAD_LENGTH).fill(0xab);
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const err = await connectTcp({ host: server.host, port: server.port, staticKey: clientKey, remoteStatic: serverPub, handshakePayload: payload }).then(
          () => assert.fail('refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof LinkRefusedError);
        codes.push(err.code);
        if (i === 0) assert.equal(err.workBits, 12);
      }
      assert.deepEqual(codes, ['ERR_ADMISSION_WORK', 'ERR_ADMISSION_TOKEN_REQUIRED', 'ERR_ADMISSION_TOKEN_INVALID', 'ERR_ADMISSION_FULL']);
      const link = await connectTcp({ host: server.host, port: server.port, staticKey: clientKey, remoteStatic: serverPub });
      await link.closed;
      assert.deepEqual(seen.slice(0, 4).map((p) => p.length), [33, 33, 33, 33]);
      assert.ok(seen.slice(0, 4).every((p) => p.every((b) => b === 0xab)));
      assert.ok(seen[4]!.every((b) => b === 0), 'no payload given: zeros of the same length');
      assert.equal(server.stats.rejected, 4);
    } finally {
      await server.close();
    }
  });
});
