// Header keys made ahead of time (prepareHeaderKeys, Sphinx's optional prepared entry): a packet or
// SURB built from a prepared entry is byte for byte the one built synchronously from the same
// randomness, every hop unwraps it, and an entry is wiped once used.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { syncX25519, webCryptoX25519 } from '../../src/crypto/async-x25519.js';
import type { AsyncX25519 } from '../../src/crypto/async-x25519.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { isBackchannelError } from '../../src/errors.js';
import { onCurveCache, prepareHeaderKeys } from '../../src/sphinx/header-keys.js';
import { constants, defaultGeometry, Sphinx } from '../../src/sphinx/index.js';
import type { PathHop } from '../../src/sphinx/index.js';
import { isZero } from '../../src/util/bytes.js';

interface Node {
  id: Uint8Array;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A backend whose randomBytes hands out the given arrays in order (each of the asked length). */
function scripted(base: CryptoBackend, chunks: Uint8Array[]): CryptoBackend {
  const queue = chunks.map((c) => c.slice());
  return {
    ...base,
    randomBytes(length: number): Uint8Array {
      const next = queue.shift();
      assert.ok(next !== undefined, 'the script ran out of random bytes');
      assert.equal(next.length, length, 'random bytes asked in another order than scripted');
      return next;
    },
  };
}

function makeNodes(n: number): Node[] {
  const c = nodeBackend;
  return Array.from({ length: n }, () => {
    const privateKey = c.randomBytes(32);
    return { id: c.randomBytes(32), privateKey, publicKey: c.x25519Base(privateKey) };
  });
}

function makePath(nodes: Node[], recipient: Uint8Array, surbId?: Uint8Array): PathHop[] {
  return nodes.map((n, i) => ({
    id: n.id,
    publicKey: n.publicKey,
    commands:
      i < nodes.length - 1
        ? [{ type: 'nodeDelay' as const, delayMs: 100 * i + 3 }]
        : [{ type: 'recipient' as const, id: recipient }, ...(surbId ? [{ type: 'surbReply' as const, id: surbId }] : [])],
  }));
}

/** Unwraps `packet` hop by hop; returns the last hop's payload (the SURB reply's still encrypted). */
function route(sphinx: Sphinx, nodes: Node[], packet: Uint8Array): Uint8Array {
  let p = packet;
  for (let i = 0; i < nodes.length; i++) {
    const r = sphinx.unwrap(nodes[i]!.privateKey, p);
    if (i < nodes.length - 1) {
      assert.equal(r.kind, 'forward');
      if (r.kind !== 'forward') throw new Error('unreachable');
      assert.deepEqual(r.nextHop, nodes[i + 1]!.id);
      assert.equal(r.delayMs, 100 * i + 3);
      p = r.packet;
    } else {
      assert.equal(r.kind, 'final');
      if (r.kind !== 'final') throw new Error('unreachable');
      return r.payload.slice();
    }
  }
  throw new Error('unreachable');
}

const g = defaultGeometry();
const skipped = (n: number): number => (g.hops - n) * g.perHopRoutingInfoLength;

async function implementations(): Promise<[string, CryptoBackend, AsyncX25519][]> {
  const web = await webCryptoX25519();
  const out: [string, CryptoBackend, AsyncX25519][] = [
    ['the node backend, sync', nodeBackend, syncX25519(nodeBackend)],
    ['the portable backend, sync', portableBackend, syncX25519(portableBackend)],
  ];
  // Node 20 has WebCrypto's X25519 too: the browser's code path, run here as well.
  if (web !== null) out.push(['the portable backend, WebCrypto', portableBackend, web]);
  return out;
}

describe('prepared header keys', async () => {
  for (const [label, c, ax] of await implementations()) {
    describe(label, () => {
      test('a forward packet from a prepared entry equals the synchronous one, and every hop unwraps it', async () => {
        for (const n of [1, 2, 3, g.hops]) {
          const nodes = makeNodes(n);
          const x = c.randomBytes(32);
          const pad = c.randomBytes(skipped(n));
          const payload = c.randomBytes(g.forwardPayloadLength);
          const path = makePath(nodes, c.randomBytes(32));
          const sync = new Sphinx(g, scripted(c, [x, pad])).createPacket(path, payload);
          const prepared = await prepareHeaderKeys(c, ax, x, nodes.slice(0, -1).map((h) => h.publicKey), onCurveCache(16));
          const fast = new Sphinx(g, scripted(c, [pad])).createPacket(path, payload, prepared);
          assert.deepEqual(fast, sync, `${n} hops`);
          assert.ok(prepared.wiped && isZero(prepared.x) && prepared.keys.every((k) => isZero(k.headerMac)), 'the entry is wiped once used');
          assert.deepEqual(route(new Sphinx(g, c), nodes, fast), payload);
        }
      });

      test('a SURB from a prepared entry equals the synchronous one, and its reply is read', async () => {
        const nodes = makeNodes(4);
        const own = c.randomBytes(constants.SPRP_KEY_MATERIAL_LENGTH);
        const x = c.randomBytes(32);
        const pad = c.randomBytes(skipped(4));
        const path = makePath(nodes, c.randomBytes(32), c.randomBytes(16));
        const sync = new Sphinx(g, scripted(c, [own, x, pad])).createSurb(path);
        const prepared = await prepareHeaderKeys(c, ax, x, nodes.slice(0, -1).map((h) => h.publicKey), onCurveCache(16));
        const sphinx = new Sphinx(g, scripted(c, [own, pad]));
        const fast = sphinx.createSurb(path, prepared);
        assert.deepEqual(fast.surb, sync.surb);
        assert.deepEqual(fast.surbKeys, sync.surbKeys);
        const reply = c.randomBytes(g.forwardPayloadLength);
        const built = new Sphinx(g, c).createPacketFromSurb(fast.surb, reply);
        assert.deepEqual(built.firstHop, nodes[0]!.id);
        const body = route(new Sphinx(g, c), nodes, built.packet);
        assert.deepEqual(new Sphinx(g, c).decryptSurbPayload(body, fast.surbKeys), reply);
      });

      test('any 32 bytes as public keys (half on the twist: the chain) give the synchronous bytes', async () => {
        const runs = c === nodeBackend ? 12 : 4;
        const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
        await fc.assert(
          fc.asyncProperty(key, fc.array(key, { minLength: 1, maxLength: g.hops }), async (x, ys) => {
            const path: PathHop[] = ys.map((y, i) => ({
              id: new Uint8Array(32).fill(i),
              publicKey: y,
              commands: i === ys.length - 1 ? [{ type: 'recipient' as const, id: new Uint8Array(32) }] : [],
            }));
            const pad = new Uint8Array(skipped(ys.length)).fill(7);
            const payload = new Uint8Array(g.forwardPayloadLength).fill(1);
            let sync: Uint8Array | null = null;
            try {
              sync = new Sphinx(g, scripted(c, [x, pad])).createPacket(path, payload);
            } catch (e) {
              // A small-order key: refused the same way below.
              assert.ok(isBackchannelError(e, 'ERR_SPHINX_POINT'));
            }
            let fast: Uint8Array | null = null;
            try {
              const prepared = await prepareHeaderKeys(c, ax, x, ys.slice(0, -1), onCurveCache(16));
              fast = new Sphinx(g, scripted(c, [pad])).createPacket(path, payload, prepared);
            } catch (e) {
              assert.ok(isBackchannelError(e, 'ERR_SPHINX_POINT'));
            }
            assert.deepEqual(fast, sync);
          }),
          { numRuns: runs },
        );
      });
    });
  }

  test('an entry for another path, or used once already, is refused and wiped', async () => {
    const c = nodeBackend;
    const nodes = makeNodes(3);
    const other = makeNodes(3);
    const path = makePath(nodes, c.randomBytes(32));
    const payload = new Uint8Array(g.forwardPayloadLength);
    const sphinx = new Sphinx(g, c);
    const wrong = await prepareHeaderKeys(c, syncX25519(c), c.randomBytes(32), other.slice(0, -1).map((h) => h.publicKey), onCurveCache(16));
    assert.throws(() => sphinx.createPacket(path, payload, wrong), (e: unknown) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
    assert.ok(wrong.wiped && isZero(wrong.x));
    const short = await prepareHeaderKeys(c, syncX25519(c), c.randomBytes(32), [nodes[0]!.publicKey], onCurveCache(16));
    assert.throws(() => sphinx.createSurb(makePath(nodes, c.randomBytes(32), c.randomBytes(16)), short), (e: unknown) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
    const once = await prepareHeaderKeys(c, syncX25519(c), c.randomBytes(32), nodes.slice(0, -1).map((h) => h.publicKey), onCurveCache(16));
    sphinx.createPacket(path, payload, once);
    assert.throws(() => sphinx.createPacket(path, payload, once), (e: unknown) => isBackchannelError(e, 'ERR_SPHINX_PATH'));
  });

  test('a small-order key among the prepared hops rejects with ERR_SPHINX_POINT', async () => {
    const c = nodeBackend;
    const ys = [c.x25519Base(c.randomBytes(32)), new Uint8Array(32)];
    await assert.rejects(prepareHeaderKeys(c, syncX25519(c), c.randomBytes(32), ys, onCurveCache(16)), (e: unknown) => isBackchannelError(e, 'ERR_SPHINX_POINT'));
  });
});
