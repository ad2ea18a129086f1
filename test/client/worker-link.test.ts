/**
 * The gateway link on a worker thread (src/client/node-worker-link.ts, node-link-worker.ts),
 * against a real link server on 127.0.0.1: frames handed over with a time leave in time order
 * and never before their time; fetches are made when they leave, with the last sequence given;
 * what the server sends comes back in order; a refused connection is a typed error; close ends it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { listenTcp } from '../../src/link/tcp.js';
import type { Link } from '../../src/link/link.js';
import type { LinkServer } from '../../src/link/acceptor.js';
import { connectInWorker } from '../../src/client/node-worker-link.js';
import { COVER_RESERVE } from '../../src/client/link-clocks.js';
import type { TickKind, TickSource } from '../../src/client/link-clocks.js';
import type { GatewayLink } from '../../src/client/client.js';
import { WireCodec } from '../../src/wire/commands.js';
import type { WireCommand } from '../../src/wire/commands.js';

const codec = new WireCodec({ packetLength: 512 });
const serverKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);

/** What the server received on one link: each command with the time it was read. */
interface Arrival {
  readonly at: number;
  readonly cmd: WireCommand;
}

describe('the gateway link on a worker thread', () => {
  let server: LinkServer;
  const links: Link[] = [];
  const arrivals: Arrival[] = [];
  let waiters: (() => void)[] = [];

  before(async () => {
    server = await listenTcp({
      staticKey: serverKey,
      accept: () => true,
      onLink: (l) => {
        links.push(l);
        void (async () => {
          for (;;) {
            const m = await l.recv();
            if (m === null) return;
            arrivals.push({ at: Date.now(), cmd: codec.decode(m) });
            for (const w of waiters.splice(0)) w();
          }
        })();
      },
    });
  });

  after(async () => {
    await server.close();
  });

  async function until(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (arrivals.length < n) {
      if (Date.now() > deadline) assert.fail(`${arrivals.length} of ${n} frames arrived`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  function connect(): Promise<GatewayLink> {
    return connectInWorker({ host: server.host, port: server.port, staticKey: nodeBackend.randomBytes(32), remoteStatic: serverPub, maxMessageLength: codec.commandLength, handshakeTimeoutMs: 5000 });
  }

  it('sends frames at their times, in time order, never early; fetches carry the sequence set last', async () => {
    arrivals.length = 0;
    waiters = [];
    const link = await connect();
    assert.ok(link.sendAt && link.fetchAt && link.setFetchSequence);
    const t0 = Date.now();
    const noop = (i: number): Uint8Array => codec.encode({ kind: 'send_packet', packet: new Uint8Array(512).fill(i) });
    // Handed over out of order: they leave in time order.
    link.sendAt!(noop(3), t0 + 300);
    link.sendAt!(noop(1), t0 + 100);
    link.fetchAt!(t0 + 200);
    link.setFetchSequence!(7);
    link.sendAt!(noop(0), t0 - 50); // already due: leaves at once
    await until(4);
    link.setFetchSequence!(9);
    link.fetchAt!(Date.now() + 20);
    await until(5);
    const got = arrivals.map((a) => (a.cmd.kind === 'send_packet' ? `p${a.cmd.packet[0]}` : a.cmd.kind === 'retrieve_message' ? `r${a.cmd.sequence}` : a.cmd.kind));
    assert.deepEqual(got, ['p0', 'p1', 'r7', 'p3', 'r9']);
    // Never before its time (the server reads later than the worker sends, never earlier).
    assert.ok(arrivals[1]!.at >= t0 + 100, 'the frame for t0+100 left on time');
    assert.ok(arrivals[2]!.at >= t0 + 200, 'the fetch for t0+200 left on time');
    assert.ok(arrivals[3]!.at >= t0 + 300, 'the frame for t0+300 left on time');
    await link.close();
    assert.equal(await link.recv(), null);
  });

  it('runs the clocks itself: through a stall of the engine\'s thread it sends reserve cover, and misses no tick while the reserve lasts', async () => {
    arrivals.length = 0;
    waiters = [];
    const link = await connect();
    const clocks = link.clocks!;
    // This thread plays the engine: DEPTH frames kept prepared for the send clock (tag 1, one made
    // after each of its ticks), the reserve (tag 2) given once.
    const DEPTH = 5;
    const frame = (tag: number): Uint8Array => codec.encode({ kind: 'send_packet', packet: new Uint8Array(512).fill(tag) });
    const ticks: Array<{ kind: TickKind; source: TickSource; at: number }> = [];
    let restarts = { send: 0, loop: 0, fetch: 0 };
    clocks.onTick = (kind, source, at, r) => {
      ticks.push({ kind, source, at });
      restarts = r;
      if (source === 'prepared') clocks.prepare(kind, frame(1));
    };
    clocks.setRates({ sendPerS: 20, loopPerS: 0, fetchPerS: 10 });
    for (let i = 0; i < DEPTH; i++) clocks.prepare('send', frame(1));
    clocks.reserve(Array.from({ length: COVER_RESERVE }, () => frame(2)), false);
    await new Promise((r) => setTimeout(r, 600));
    // The engine's thread stalls for 1.2 s: it can neither prepare frames nor hear of ticks.
    const t0 = Date.now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 600));
    clocks.setRates({ sendPerS: 0, loopPerS: 0, fetchPerS: 0 });
    await new Promise((r) => setTimeout(r, 300)); // what was in flight
    assert.ok(ticks.every((t) => t.kind === 'send'));
    // About 24 ticks fall in the stall: at most DEPTH of them find a prepared frame, the others
    // take reserve cover. The reserve is given once and never refilled here, so a tick finds
    // nothing only once all COVER_RESERVE frames are spent, before the stall or in it (on a busy
    // machine this thread may be late to prepare, and a tick before the stall take reserve too).
    // Strictly before t1: a tick in the same millisecond may come after this thread woke.
    const during = ticks.filter((t) => t.at >= t0 && t.at < t1);
    const trace = ticks.map((t) => `${t.at < t0 ? 'b' : t.at < t1 ? 's' : 'a'}${t.source[0]}`).join(' ');
    assert.ok(during.length > DEPTH, `${during.length} ticks in the stall`); // P(at most 5) = 1e-6
    const reserveBefore = ticks.filter((t) => t.at < t0 && t.source === 'reserve').length;
    const reserveUsed = during.filter((t) => t.source === 'reserve').length;
    const preparedUsed = during.filter((t) => t.source === 'prepared').length;
    assert.ok(preparedUsed <= DEPTH, `${preparedUsed} ticks in the stall found a prepared frame: ${trace}`);
    assert.ok(reserveUsed >= 1, `no tick in the stall sent reserve cover: ${trace}`);
    const firstMissed = ticks.findIndex((t) => t.source === 'missed');
    const reserveBeforeMissed = ticks.slice(0, firstMissed === -1 ? ticks.length : firstMissed).filter((t) => t.source === 'reserve').length;
    if (firstMissed !== -1) assert.equal(reserveBeforeMissed, COVER_RESERVE, `a tick missed with reserve left: ${trace}`);
    assert.ok(reserveBefore + reserveUsed <= COVER_RESERVE, trace);
    assert.deepEqual(restarts, { send: 0, loop: 0, fetch: 0 });
    // Every tick that had a frame put one on the link, and the fetch clock ran through the stall.
    // Closed first: a gap drawn before the rates went to 0 may still end in one more tick.
    await link.close();
    const sent = ticks.filter((t) => t.source !== 'missed');
    const packetsIn = (): Array<number> => arrivals.filter((a) => a.cmd.kind === 'send_packet').map((a) => (a.cmd.kind === 'send_packet' ? a.cmd.packet[0]! : 0));
    const deadline = Date.now() + 10_000;
    while (packetsIn().length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const packets = packetsIn();
    assert.deepEqual([packets.filter((t) => t === 1).length, packets.filter((t) => t === 2).length], [sent.filter((t) => t.source === 'prepared').length, sent.filter((t) => t.source === 'reserve').length]);
    const fetches = arrivals.filter((a) => a.cmd.kind === 'retrieve_message').length;
    assert.ok(fetches >= 15, `${fetches} fetches in about 2.2 s at 10/s`);
  });

  it('passes what the gateway sends back, in order, and reports the end of the link', async () => {
    const before = links.length;
    const link = await connect();
    while (links.length === before) await new Promise((r) => setTimeout(r, 10));
    const peer = links[links.length - 1]!;
    for (let i = 0; i < 50; i++) await peer.send(codec.encode({ kind: 'retrieve_message', sequence: i }));
    for (let i = 0; i < 50; i++) {
      const m = await link.recv();
      assert.ok(m !== null);
      const cmd = codec.decode(m);
      assert.equal(cmd.kind === 'retrieve_message' ? cmd.sequence : -1, i);
    }
    await peer.close();
    assert.equal(await link.recv(), null, 'the end of the link reaches the engine');
    assert.throws(() => link.trySend(codec.encode({ kind: 'noop' })), (e: unknown) => isBackchannelError(e) && e.code === 'ERR_LINK_CLOSED');
  });

  it('rejects with a typed error when nothing listens, and when the gateway is not the one expected', async () => {
    const idle = await listenTcp({ staticKey: serverKey, accept: () => true, onLink: () => undefined });
    const port = idle.port;
    await idle.close();
    await assert.rejects(
      connectInWorker({ host: '127.0.0.1', port, staticKey: nodeBackend.randomBytes(32), remoteStatic: serverPub, maxMessageLength: codec.commandLength, handshakeTimeoutMs: 2000 }),
      (e: unknown) => isBackchannelError(e) && e.code === 'ERR_LINK_CONNECT',
    );
    const wrongKey = nodeBackend.x25519Base(nodeBackend.randomBytes(32));
    await assert.rejects(
      connectInWorker({ host: server.host, port: server.port, staticKey: nodeBackend.randomBytes(32), remoteStatic: wrongKey, maxMessageLength: codec.commandLength, handshakeTimeoutMs: 2000 }),
      (e: unknown) => isBackchannelError(e) && e.code.startsWith('ERR_LINK_'),
    );
  });
});
