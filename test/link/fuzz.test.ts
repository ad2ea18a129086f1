/**
 * The link's framing and state machine under hostile input, over an in-memory transport the test
 * controls byte by byte: any chunking works, and random frames, flipped or truncated ciphertexts
 * and random bytes before the handshake end the link with a typed error, never a crash, a hang or
 * a growing buffer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import { isBackchannelError } from '../../src/errors.js';
import { Link } from '../../src/link/link.js';
import type { LinkOptions } from '../../src/link/link.js';
import { nodeNoiseCrypto } from '../../src/noise/crypto-node.js';
import { MemoryTransport, pass } from '../helpers/memory-transport.js';

const serverKey = nodeBackend.randomBytes(32);
const clientKey = nodeBackend.randomBytes(32);
const serverPub = nodeBackend.x25519Base(serverKey);

/** Runs the handshake over memory transports; returns both open links and their transports. */
async function linkedPair(opts: LinkOptions = {}): Promise<{ client: Link; server: Link; ct: MemoryTransport; st: MemoryTransport }> {
  const ct = new MemoryTransport();
  const st = new MemoryTransport();
  const clientP = Link.initiate(ct, nodeNoiseCrypto, { staticKey: clientKey, remoteStatic: serverPub, ...opts });
  const serverP = Link.respond(st, nodeNoiseCrypto, { staticKey: serverKey, accept: () => true, ...opts });
  pass(ct, st); // -> e, es
  pass(st, ct); // <- e, ee
  pass(ct, st); // -> s, se
  await new Promise((r) => setImmediate(r)); // the accept callback answers asynchronously
  pass(st, ct); // ready
  return { client: await clientP, server: await serverP, ct, st };
}

/** Settles within a few turns of the event loop, or fails the test: nothing may hang. */
async function settled<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('did not settle')), 1000);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const LINK_OR_NOISE = /^ERR_(LINK|NOISE)_[A-Z_]+$/;

describe('link framing and state machine (in-memory transport)', () => {
  test('messages arrive whole and in order however the byte stream is chunked', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 700 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 20 }),
      async (messages, cuts) => {
        const { client, server, ct, st } = await linkedPair();
        for (const m of messages) await client.send(m);
        const stream = ct.take();
        let off = 0;
        for (let i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          st.receive(stream.subarray(off, off + n));
          off += n;
        }
        for (const m of messages) assert.deepEqual(await settled(server.recv()), m);
        assert.equal(st.paused, false);
        void client.close();
        pass(ct, st);
        assert.equal(await settled(server.recv()), null);
      },
    ), { numRuns: 60 });
  });

  test('any flipped bit in a transport frame ends the link with a typed error', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), async (message, pos) => {
      const { client, server, ct, st } = await linkedPair();
      await client.send(message);
      const frame = ct.take();
      const bit = pos % (frame.length * 8);
      frame[bit >>> 3]! ^= 1 << (bit & 7);
      st.receive(frame);
      // A flip in the length header may make the frame look longer: the link then waits for
      // bytes that never come. The end of the stream must still not yield a message.
      st.closeFromPeer();
      const reading = server.recv();
      await assert.rejects(settled(reading), (e: unknown) => isBackchannelError(e) && LINK_OR_NOISE.test(e.code));
      const info = await settled(server.closed);
      assert.equal(info.by, 'error');
      assert.ok(st.destroyed);
    }), { numRuns: 150 });
  });

  test('random frames after the handshake end the link with a typed error', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2000 }), async (garbage) => {
      const { server, st } = await linkedPair();
      st.receive(garbage);
      const info = await Promise.race([server.closed, new Promise<null>((r) => setTimeout(() => r(null), 20))]);
      if (info === null) {
        // An incomplete frame: the link waits for the rest, holding at most what was sent.
        assert.equal(server.isOpen, true);
        st.closeFromPeer();
        const closed = await settled(server.closed);
        assert.equal(closed.by, 'error');
        assert.ok(isBackchannelError(closed.error) && LINK_OR_NOISE.test(closed.error.code));
        return;
      }
      assert.equal(info.by, 'error');
      assert.ok(isBackchannelError(info.error) && LINK_OR_NOISE.test(info.error.code), String(info.error));
    }), { numRuns: 200 });
  });

  test('random bytes before the handshake end it with a typed error on either side', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 2, maxLength: 600 }), fc.boolean(), async (garbage, toServer) => {
      const t = new MemoryTransport();
      const p = toServer
        ? Link.respond(t, nodeNoiseCrypto, { staticKey: serverKey, accept: () => true, handshakeTimeoutMs: 50 })
        : Link.initiate(t, nodeNoiseCrypto, { staticKey: clientKey, remoteStatic: serverPub, handshakeTimeoutMs: 50 });
      t.receive(garbage);
      await assert.rejects(settled(p), (e: unknown) => isBackchannelError(e) && /^ERR_(LINK|NOISE|CRYPTO)_[A-Z_]+$/.test(e.code));
      assert.ok(t.destroyed);
    }), { numRuns: 200 });
  });

  test('a stream cut in the middle of a frame is an unclean close, not a message', async () => {
    const { client, server, ct, st } = await linkedPair();
    await client.send(new Uint8Array(100).fill(1));
    await client.send(new Uint8Array(100).fill(2));
    const stream = ct.take();
    st.receive(stream.subarray(0, stream.length - 10));
    assert.deepEqual(await settled(server.recv()), new Uint8Array(100).fill(1));
    st.closeFromPeer();
    await assert.rejects(settled(server.recv()), (e: unknown) => isBackchannelError(e, 'ERR_LINK_CLOSED'));
  });

  test('a frame longer than the link allows is refused from its header alone', async () => {
    const { server, st } = await linkedPair({ maxMessageLength: 1000 });
    st.receive(Uint8Array.of(0x04, 0x00)); // 1024 > 1000 + 17
    const info = await settled(server.closed);
    assert.ok(isBackchannelError(info.error, 'ERR_LINK_FRAME'));
  });

  test('a reader that stops reading pauses the transport; the inbox stays bounded', async () => {
    const { client, server, ct, st } = await linkedPair({ maxQueuedMessages: 8 });
    for (let i = 0; i < 50; i++) await client.send(Uint8Array.of(i));
    pass(ct, st);
    assert.equal(st.paused, true);
    const received = server.stats.framesReceived;
    assert.ok(received <= 2 + 8, `${received} frames handled while paused`);
    for (let i = 0; i < 50; i++) assert.deepEqual(await settled(server.recv()), Uint8Array.of(i));
    assert.equal(st.paused, false);
  });

  test('a peer that floods a transport that cannot pause is cut off at maxBufferedBytes', async () => {
    const { client, server, ct, st } = await linkedPair({ maxQueuedMessages: 2, maxBufferedBytes: 10_000 });
    Object.defineProperty(st, 'canPause', { value: false });
    for (let i = 0; i < 40; i++) await client.send(new Uint8Array(1000));
    for (const chunk of ct.written.splice(0)) st.receive(chunk);
    const info = await settled(server.closed);
    assert.ok(isBackchannelError(info.error, 'ERR_LINK_BACKPRESSURE'));
  });

  test('rekeying every few frames keeps both directions working', async () => {
    const { client, server, ct, st } = await linkedPair({ rekeyAfterFrames: 3 });
    for (let i = 0; i < 20; i++) {
      await client.send(Uint8Array.of(i));
      await server.send(Uint8Array.of(100 + i));
    }
    pass(ct, st);
    pass(st, ct);
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await settled(server.recv()), Uint8Array.of(i));
      assert.deepEqual(await settled(client.recv()), Uint8Array.of(100 + i));
    }
    // Each rekey point is drawn in [2, 4] frames (0.5 to 1.5 × 3): 20 frames make 5 to 10 rekeys.
    for (const n of [client.stats.rekeys, server.stats.rekeys]) assert.ok(n >= 5 && n <= 10, `${n} rekeys`);
  });

  test('sends beyond maxQueuedSends fail with ERR_LINK_BACKPRESSURE; queued sends go out in order on drain', async () => {
    const { client, ct } = await linkedPair({ maxQueuedSends: 4 });
    // Choke the transport: every write now reports a full buffer until drain.
    ct.write = (chunk: Uint8Array): boolean => {
      ct.written.push(Uint8Array.from(chunk));
      return false;
    };
    await client.send(Uint8Array.of(0)); // written, and now choked
    assert.equal(client.trySend(Uint8Array.of(1)), false);
    const waiting = [1, 2, 3, 4].map((i) => client.send(Uint8Array.of(i)));
    await assert.rejects(client.send(Uint8Array.of(5)), (e: unknown) => isBackchannelError(e, 'ERR_LINK_BACKPRESSURE'));
    const before = ct.written.length;
    ct.write = (chunk: Uint8Array): boolean => {
      ct.written.push(Uint8Array.from(chunk));
      return true;
    };
    ct.handlers!.onDrain();
    await Promise.all(waiting);
    assert.equal(ct.written.length, before + 4);
  });

  test('sending after close, or a message over the limit, is refused with a typed error', async () => {
    const { client } = await linkedPair({ maxMessageLength: 64 });
    await assert.rejects(client.send(new Uint8Array(65)), (e: unknown) => isBackchannelError(e, 'ERR_LINK_FRAME'));
    void client.close();
    await assert.rejects(client.send(new Uint8Array(1)), (e: unknown) => isBackchannelError(e, 'ERR_LINK_CLOSED'));
    assert.throws(() => client.trySend(new Uint8Array(1)), (e: unknown) => isBackchannelError(e, 'ERR_LINK_CLOSED'));
  });
});
