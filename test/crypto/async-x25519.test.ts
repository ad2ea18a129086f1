// AsyncX25519 (src/crypto/async-x25519.ts): WebCrypto's X25519 (Node 20 has it too) and a
// backend's behind promises agree with the backends on RFC 7748's vectors and random inputs,
// refuse a small-order point as they do, and detection says null where WebCrypto cannot do it.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { syncX25519, webCryptoX25519 } from '../../src/crypto/async-x25519.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import { isBackchannelError } from '../../src/errors.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

/** RFC 7748 §5.2's two vectors and §6.1's Alice and Bob. */
const VECTORS = [
  ['a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'],
  ['4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d', 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493', '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'],
  ['77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', '0900000000000000000000000000000000000000000000000000000000000000', '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'],
  ['5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'],
] as const;

describe('AsyncX25519', async () => {
  const web = await webCryptoX25519();
  test('Node 20 has WebCrypto X25519: detection finds it', () => {
    assert.ok(web !== null);
    assert.equal(web.name, 'webcrypto');
  });
  for (const [label, ax] of [
    ['WebCrypto', web!],
    ['the node backend behind promises', syncX25519(nodeBackend)],
    ['the portable backend behind promises', syncX25519(portableBackend)],
  ] as const) {
    test(`${label}: RFC 7748's vectors, 100 random inputs against the node backend, a small-order point refused`, async () => {
      for (const [k, u, out] of VECTORS) assert.equal(toHex(await ax.x25519(fromHex(k), fromHex(u))), out);
      for (let i = 0; i < 100; i++) {
        const k = nodeBackend.randomBytes(32);
        const u = i % 2 === 0 ? nodeBackend.randomBytes(32) : nodeBackend.x25519Base(nodeBackend.randomBytes(32));
        assert.deepEqual(await ax.x25519(k, u), nodeBackend.x25519(k, u));
        assert.deepEqual(await ax.x25519Base(k), nodeBackend.x25519Base(k));
      }
      await assert.rejects(ax.x25519(nodeBackend.randomBytes(32), new Uint8Array(32)), (e: unknown) => isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER'));
      await assert.rejects(ax.x25519(new Uint8Array(31), new Uint8Array(32)), RangeError);
    });
  }

  test('detection gives null without WebCrypto, when importing a key fails, or when the result is wrong', async () => {
    const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
    const subtle = globalThis.crypto.subtle;
    const withCrypto = async (c: unknown): Promise<unknown> => {
      Object.defineProperty(globalThis, 'crypto', { value: c, configurable: true, writable: true });
      try {
        return await webCryptoX25519();
      } finally {
        Object.defineProperty(globalThis, 'crypto', real);
      }
    };
    assert.equal(await withCrypto(undefined), null);
    assert.equal(await withCrypto({}), null);
    const noX25519 = { importKey: () => Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')), deriveBits: () => Promise.reject(new Error('unreachable')) };
    assert.equal(await withCrypto({ subtle: noX25519 }), null);
    const wrong = {
      importKey: (...args: unknown[]) => (subtle.importKey as (...a: unknown[]) => Promise<unknown>)(...args),
      deriveBits: () => Promise.resolve(new ArrayBuffer(32).slice(0)).then((b) => (new Uint8Array(b).fill(1), b)),
    };
    assert.equal(await withCrypto({ subtle: wrong }), null);
    assert.ok((await webCryptoX25519()) !== null, 'the real one is back');
  });
});
