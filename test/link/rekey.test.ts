/**
 * Rekeying and keepalives as a wire observer sees them (docs/link.md): the link runs in virtual
 * time over the in-memory transport, and every frame each side writes is logged with its time and
 * size. A rekey rides on a data frame (or, on a quiet link, on a keepalive), so while data flows
 * every frame is a data frame's size; its point is drawn, not a fixed period; keepalives go out
 * only keepaliveMs after the last frame sent. Randomness comes from a seeded stream.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { LINK_PROTOCOL, Link } from '../../src/link/link.js';
import type { LinkOptions } from '../../src/link/link.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import type { NoiseCrypto } from '../../src/noise/crypto.js';
import { createHandshakeWith } from '../../src/noise/state.js';
import { SimClock } from '../../src/sim/clock.js';
import { MemoryTransport, pass } from '../helpers/memory-transport.js';
import { seededBackend } from '../helpers/seeded.js';

const te = new TextEncoder();
const serverKey = nodeBackend.randomBytes(32);
const clientKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);
/** A data frame of a 3000-byte message on the wire: length, kind, message, tag. */
const DATA_FRAME = 2 + 1 + 3000 + 16;
/** A keepalive on the wire: length, kind, tag. */
const KEEPALIVE_FRAME = 2 + 1 + 16;

const seeded = (label: string): NoiseCrypto => ({ ...nodeNoiseCrypto, dh: seededBackend(nodeBackend, te.encode(label)) });

interface Logged {
  at: number;
  length: number;
}

/** Records the time and size of every write (the link writes one frame per write). */
function logWrites(t: MemoryTransport, clock: SimClock): Logged[] {
  const log: Logged[] = [];
  const write = t.write.bind(t);
  t.write = (chunk: Uint8Array): boolean => {
    log.push({ at: clock.now(), length: chunk.length });
    return write(chunk);
  };
  return log;
}

async function pairOn(clock: SimClock, opts: LinkOptions, seed: string) {
  const ct = new MemoryTransport();
  const st = new MemoryTransport();
  const clientP = Link.initiate(ct, seeded(`client ${seed}`), { staticKey: clientKey, remoteStatic: serverPub, clock, ...opts });
  const serverP = Link.respond(st, seeded(`server ${seed}`), { staticKey: serverKey, accept: () => true, clock, ...opts });
  pass(ct, st);
  pass(st, ct);
  pass(ct, st);
  await new Promise((r) => setImmediate(r)); // the accept callback answers asynchronously
  pass(st, ct);
  const client = await clientP;
  const server = await serverP;
  return { client, server, ct, st, clientLog: logWrites(ct, clock), serverLog: logWrites(st, clock) };
}

function message(i: number): Uint8Array {
  const m = new Uint8Array(3000);
  m[0] = i & 0xff;
  m[1] = i >>> 8;
  m[2999] = (i * 7) & 0xff;
  return m;
}

/** Reads n messages from `link`, all of which must be there already. */
async function drain(link: Link, n: number, first = 0): Promise<void> {
  for (let i = first; i < first + n; i++) assert.deepEqual(await link.recv(), message(i), `message ${i}`);
}

describe('rekeying that reveals nothing', () => {
  test('while data flows both ways every frame is a data frame, rekeys included, and the receiver follows', async () => {
    const clock = new SimClock(1_000_000);
    const opts = { keepaliveMs: 15_000, idleTimeoutMs: 60_000, rekeyAfterMs: 10_000, rekeyAfterFrames: 50 };
    const { client, server, ct, st, clientLog, serverLog } = await pairOn(clock, opts, 'flow');
    const N = 3000;
    for (let i = 0; i < N; i++) {
      // One message each way every 200 ms of virtual time: 10 minutes, timers included.
      await clock.run(clock.now() + 200);
      await client.send(message(i));
      await server.send(message(i));
      pass(ct, st);
      pass(st, ct);
      await drain(server, 1, i);
      await drain(client, 1, i);
    }
    // Rekeys by frame count (every 25 to 75 frames) and by time (every 5 to 15 s) both happened.
    assert.ok(client.stats.rekeys >= N / 75, `client rekeyed ${client.stats.rekeys} times`);
    assert.ok(server.stats.rekeys >= N / 75, `server rekeyed ${server.stats.rekeys} times`);
    for (const [side, log] of [['client', clientLog], ['server', serverLog]] as const) {
      const other = log.filter((w) => w.length !== DATA_FRAME);
      assert.deepEqual(other, [], `${side} wrote frames of another size while data flowed`);
      assert.equal(log.length, N);
    }
    assert.ok(client.isOpen && server.isOpen);
  });

  test('the frame-count rekey point is drawn uniformly in [0.5, 1.5] × rekeyAfterFrames each time', async () => {
    const clock = new SimClock(1_000_000);
    const { client, server, ct, st } = await pairOn(clock, { rekeyAfterFrames: 100, rekeyAfterMs: 1e9 }, 'frames');
    const intervals: number[] = [];
    let last = 0;
    for (let i = 0; i < 20_000; i++) {
      const before = client.stats.rekeys;
      await client.send(message(i));
      if (client.stats.rekeys > before) {
        intervals.push(i + 1 - last);
        last = i + 1;
      }
      if (i % 500 === 499) {
        pass(ct, st);
        await drain(server, 500, i - 499);
      }
    }
    assert.ok(intervals.length >= 150, `${intervals.length} rekeys`);
    assert.ok(intervals.every((n) => n >= 50 && n <= 150), `intervals ${Math.min(...intervals)}..${Math.max(...intervals)}`);
    // Uniform over 101 values: ~200 draws reach both ends and many values in between.
    assert.ok(Math.min(...intervals) <= 55 && Math.max(...intervals) >= 145);
    assert.ok(new Set(intervals).size >= 60, `${new Set(intervals).size} distinct intervals`);
    const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
    assert.ok(Math.abs(mean - 100) < 6, `mean interval ${mean}`);
    await client.send(message(20_000));
    pass(ct, st);
    await drain(server, 1, 20_000);
  });

  test('the time rekey point is drawn in [0.5, 1.5] × rekeyAfterMs, never a fixed period from set-up', async () => {
    const clock = new SimClock(1_000_000);
    const opened = clock.now();
    const { client, server, ct, st } = await pairOn(clock, { rekeyAfterMs: 10_000, rekeyAfterFrames: 1e9, keepaliveMs: 15_000, idleTimeoutMs: 60_000 }, 'time');
    const at: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      await clock.run(clock.now() + 100);
      const before = client.stats.rekeys;
      await client.send(message(i));
      await server.send(message(i));
      if (client.stats.rekeys > before) at.push(clock.now());
      pass(ct, st);
      pass(st, ct);
      await drain(server, 1, i);
      await drain(client, 1, i);
    }
    const intervals = at.map((t, i) => t - (i === 0 ? opened : at[i - 1]!));
    assert.ok(intervals.length >= 70, `${intervals.length} rekeys in 1000 s`);
    // Each rekey rides on the first frame at or after its point; frames go every 100 ms.
    assert.ok(intervals.every((d) => d >= 5_000 && d <= 15_100), `intervals ${Math.min(...intervals)}..${Math.max(...intervals)}`);
    assert.ok(Math.max(...intervals) - Math.min(...intervals) >= 8_000, 'the intervals are spread, not one period');
    assert.ok(Math.abs(at[0]! - opened - 10_000) > 100 || Math.abs(at[1]! - at[0]! - 10_000) > 100);
  });

  test('a quiet link sends only keepalives, each exactly keepaliveMs after the last frame; a due rekey rides on one', async () => {
    const clock = new SimClock(1_000_000);
    const { client, server, ct, st, clientLog } = await pairOn(clock, { keepaliveMs: 1_000, idleTimeoutMs: 10_000, rekeyAfterMs: 5_000 }, 'quiet');
    // A send at an odd moment: a timer ticking on a period from set-up would not meet lastSent + keepaliveMs.
    await clock.run(clock.now() + 333);
    await client.send(message(0));
    const lastData = clock.now();
    pass(ct, st);
    await drain(server, 1);
    for (let i = 0; i < 1200; i++) {
      await clock.run(clock.now() + 100);
      pass(ct, st);
      pass(st, ct);
    }
    const keepalives = clientLog.slice(1);
    assert.equal(clientLog[0]!.length, DATA_FRAME);
    assert.ok(keepalives.length >= 115, `${keepalives.length} keepalives in 120 s`);
    assert.ok(keepalives.every((w) => w.length === KEEPALIVE_FRAME), 'every frame of the quiet link is a keepalive');
    const times = [lastData, ...keepalives.map((w) => w.at)];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps.every((g) => g >= 1_000 && g <= 1_001), `gaps ${Math.min(...gaps)}..${Math.max(...gaps)}`);
    assert.ok(client.stats.rekeys >= 120 / 7.5, `${client.stats.rekeys} rekeys on keepalives`);
    // The server followed every one of them: the next data frame opens under the latest key.
    await client.send(message(1));
    pass(ct, st);
    await drain(server, 1, 1);
  });

  test('no keepalive while data goes out more often than keepaliveMs; the first one exactly keepaliveMs after the data stops', async () => {
    const clock = new SimClock(1_000_000);
    const { client, server, ct, st, clientLog } = await pairOn(clock, { keepaliveMs: 1_000, idleTimeoutMs: 10_000 }, 'keepalive');
    for (let i = 0; i < 100; i++) {
      await clock.run(clock.now() + 987);
      await client.send(message(i));
      pass(ct, st);
      pass(st, ct);
      await drain(server, 1, i);
    }
    assert.ok(clientLog.every((w) => w.length === DATA_FRAME), 'only data frames while data flows');
    const lastData = clock.now();
    await clock.run(lastData + 1_500);
    assert.equal(clientLog.length, 101);
    assert.deepEqual(clientLog[100], { at: lastData + 1_000, length: KEEPALIVE_FRAME });
  });
});

describe('the frame kinds a receiver accepts', () => {
  /** A peer written by hand on the Noise layer: drives a Link responder frame by frame. */
  async function handPeer(prologue: string) {
    const t = new MemoryTransport();
    const serverP = Link.respond(t, nodeNoiseCrypto, { staticKey: serverKey, accept: () => true, handshakeTimeoutMs: 1_000 });
    serverP.catch(() => undefined);
    const hs = createHandshakeWith(nodeNoiseCrypto, { protocolName: LINK_PROTOCOL, initiator: true, prologue: te.encode(prologue), s: clientKey, rs: serverPub });
    const framed = (m: Uint8Array): Uint8Array => Uint8Array.of(m.length >>> 8, m.length & 0xff, ...m);
    t.receive(framed(hs.writeMessage()));
    hs.readMessage(t.take().subarray(2));
    t.receive(framed(hs.writeMessage()));
    await new Promise((r) => setImmediate(r));
    return { t, serverP, hs, framed };
  }

  test('a data-then-rekey frame delivers its message; the next frame is under the new key', async () => {
    const { t, serverP, hs, framed } = await handPeer('backchannel link v2');
    const server = await serverP;
    t.take(); // ready
    const [send] = hs.split();
    t.receive(framed(send.encrypt(new Uint8Array(0), Uint8Array.of(5, 1, 2, 3))));
    send.rekey();
    t.receive(framed(send.encrypt(new Uint8Array(0), Uint8Array.of(0, 4, 5))));
    t.receive(framed(send.encrypt(new Uint8Array(0), Uint8Array.of(6))));
    send.rekey();
    t.receive(framed(send.encrypt(new Uint8Array(0), Uint8Array.of(0, 6))));
    assert.deepEqual(await server.recv(), Uint8Array.of(1, 2, 3));
    assert.deepEqual(await server.recv(), Uint8Array.of(4, 5));
    assert.deepEqual(await server.recv(), Uint8Array.of(6));
    assert.ok(server.isOpen);
  });

  test("v1's rekey frame (kind 2) is a protocol error: both ends are ours and none sends it", async () => {
    const { t, serverP, hs, framed } = await handPeer('backchannel link v2');
    const server = await serverP;
    const [send] = hs.split();
    t.receive(framed(send.encrypt(new Uint8Array(0), Uint8Array.of(2))));
    const info = await server.closed;
    assert.equal(info.by, 'error');
    assert.ok(isBackchannelError(info.error, 'ERR_LINK_PROTOCOL'), String(info.error));
  });

  test('a v1 peer is refused at the handshake, not at its first rekey', async () => {
    const t = new MemoryTransport();
    const serverP = Link.respond(t, nodeNoiseCrypto, { staticKey: serverKey, accept: () => true, handshakeTimeoutMs: 1_000 });
    const hs = createHandshakeWith(nodeNoiseCrypto, { protocolName: LINK_PROTOCOL, initiator: true, prologue: te.encode('backchannel link v1'), s: clientKey, rs: serverPub });
    const m1 = hs.writeMessage();
    t.receive(Uint8Array.of(m1.length >>> 8, m1.length & 0xff, ...m1));
    await assert.rejects(serverP, (e: unknown) => isBackchannelError(e, 'ERR_LINK_HANDSHAKE'));
    assert.ok(t.destroyed);
  });
});
