// One compliance suite, run by every crypto backend: known answers from the standards, agreement
// between the two independent implementations on random inputs, and argument errors.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { isBackchannelError } from '../../src/errors.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

const te = new TextEncoder();

function complianceSuite(b: CryptoBackend): void {
  describe(`the ${b.name} crypto backend`, () => {
    test('X25519 reproduces RFC 7748 section 6.1', () => {
      const a = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
      const bb = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
      const A = b.x25519Base(a);
      const B = b.x25519Base(bb);
      assert.equal(toHex(A), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
      assert.equal(toHex(B), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
      const k = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      assert.equal(toHex(b.x25519(a, B)), k);
      assert.equal(toHex(b.x25519(bb, A)), k);
    });

    test('X25519 rejects small-order points with ERR_CRYPTO_LOW_ORDER', () => {
      const scalar = b.randomBytes(32);
      const lowOrder = [
        '0000000000000000000000000000000000000000000000000000000000000000', // 0
        '0100000000000000000000000000000000000000000000000000000000000000', // 1
        'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p - 1
        'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
        'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p (non-canonical 0)
      ];
      for (const hex of lowOrder) {
        assert.throws(() => b.x25519(scalar, fromHex(hex)), (e) => isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER'), hex);
      }
    });

    test('HMAC-SHA256 reproduces RFC 4231 test case 2', () => {
      assert.equal(
        toHex(b.hmacSha256(te.encode('Jefe'), te.encode('what do ya want for nothing?'))),
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      );
    });

    test('HMAC-SHA256 hashes keys longer than a block (RFC 4231 test case 6)', () => {
      const key = new Uint8Array(131).fill(0xaa);
      assert.equal(
        toHex(b.hmacSha256(key, te.encode('Test Using Larger Than Block-Size Key - Hash Key First'))),
        '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
      );
    });

    test('HKDF-SHA256 Expand reproduces RFC 5869 test case 1 from its PRK', () => {
      const prk = fromHex('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
      const okm = b.hkdfSha256Expand(prk, fromHex('f0f1f2f3f4f5f6f7f8f9'), 42);
      assert.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    });

    test('AES-256-CTR reproduces NIST SP 800-38A F.5.5', () => {
      const key = fromHex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
      const iv = fromHex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
      const pt = fromHex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51');
      assert.equal(toHex(b.aes256Ctr(key, iv, pt)), '601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5');
    });

    test('AES-256-CTR carries the counter across all 128 bits', () => {
      const key = new Uint8Array(32).fill(7);
      const iv = fromHex('ffffffffffffffffffffffffffffffff');
      const two = b.aes256Ctr(key, iv, new Uint8Array(32));
      const second = b.aes256Ctr(key, new Uint8Array(16), new Uint8Array(16));
      assert.deepEqual(two.subarray(16), second);
    });

    test('ChaCha20 reproduces the RFC 8439 key stream for the zero key and nonce', () => {
      assert.equal(
        toHex(b.chacha20Keystream(new Uint8Array(32), 64)),
        '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
      );
    });

    test('SHA-512/256 reproduces the FIPS 180-4 example for "abc"', () => {
      assert.equal(toHex(b.sha512_256(te.encode('abc'))), '53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23');
    });

    test('randomBytes returns fresh bytes of the requested length', () => {
      assert.equal(b.randomBytes(0).length, 0);
      const x = b.randomBytes(70000);
      assert.equal(x.length, 70000);
      assert.notDeepEqual(b.randomBytes(32), b.randomBytes(32));
    });

    test('wrong argument types and lengths are TypeError and RangeError', () => {
      const k32 = new Uint8Array(32);
      assert.throws(() => b.x25519(new Uint8Array(31), k32), RangeError);
      assert.throws(() => b.x25519('x' as unknown as Uint8Array, k32), TypeError);
      assert.throws(() => b.aes256Ctr(k32, new Uint8Array(12), k32), RangeError);
      assert.throws(() => b.aes256Ctr(new Uint8Array(16), new Uint8Array(16), k32), RangeError);
      assert.throws(() => b.hkdfSha256Expand(k32, k32, 255 * 32 + 1), RangeError);
      assert.throws(() => b.chacha20Keystream(new Uint8Array(16), 32), RangeError);
      assert.throws(() => b.hmacSha256(k32, null as unknown as Uint8Array), TypeError);
      assert.throws(() => b.chacha20Poly1305Seal(k32, new Uint8Array(16), k32, k32), RangeError);
    });

    test('ChaCha20-Poly1305 reproduces RFC 8439 section 2.8.2 and XChaCha20-Poly1305 the draft\'s appendix A.3.1, and a flipped bit fails', () => {
      const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
      const ad = fromHex('50515253c0c1c2c3c4c5c6c7');
      const pt = te.encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
      const sealed = b.chacha20Poly1305Seal(key, fromHex('070000004041424344454647'), ad, pt);
      assert.equal(toHex(sealed.subarray(0, 16)), 'd31a8d34648e60db7b86afbc53ef7ec2');
      assert.equal(toHex(sealed.subarray(pt.length)), '1ae10b594f09e26a7e902ecbd0600691');
      assert.deepEqual(b.chacha20Poly1305Open(key, fromHex('070000004041424344454647'), ad, sealed), pt);
      const xnonce = Uint8Array.from({ length: 24 }, (_, i) => 0x40 + i);
      const xsealed = b.chacha20Poly1305Seal(key, xnonce, ad, pt);
      assert.equal(toHex(xsealed.subarray(0, 16)), 'bd6d179d3e83d43b9576579493c0e939');
      assert.equal(toHex(xsealed.subarray(pt.length)), 'c0875924c1c7987947deafd8780acf49');
      assert.deepEqual(b.chacha20Poly1305Open(key, xnonce, ad, xsealed), pt);
      for (const bit of [0, 8 * pt.length, 8 * xsealed.length - 1]) {
        const bad = xsealed.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        assert.equal(b.chacha20Poly1305Open(key, xnonce, ad, bad), null);
      }
      assert.equal(b.chacha20Poly1305Open(key, xnonce, ad.subarray(1), xsealed), null);
      assert.equal(b.chacha20Poly1305Open(key, xnonce, ad, new Uint8Array(15)), null);
    });
  });
}

complianceSuite(nodeBackend);
complianceSuite(portableBackend);

describe('the two backends', () => {
  const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
  test('agree on every primitive for random inputs', () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), fc.uint8Array({ maxLength: 700 }), bytes(16), fc.integer({ min: 0, max: 300 }), (k, s, data, iv, len) => {
        const p = portableBackend.x25519Base(s);
        assert.deepEqual(nodeBackend.x25519Base(s), p);
        assert.deepEqual(nodeBackend.x25519(k, p), portableBackend.x25519(k, p));
        assert.deepEqual(nodeBackend.hmacSha256(k, data), portableBackend.hmacSha256(k, data));
        assert.deepEqual(nodeBackend.hkdfSha256Expand(k, data, len), portableBackend.hkdfSha256Expand(k, data, len));
        assert.deepEqual(nodeBackend.aes256Ctr(k, iv, data), portableBackend.aes256Ctr(k, iv, data));
        assert.deepEqual(nodeBackend.chacha20Keystream(k, len), portableBackend.chacha20Keystream(k, len));
        assert.deepEqual(nodeBackend.sha512_256(data), portableBackend.sha512_256(data));
      }),
      { numRuns: 60 },
    );
  });
});
