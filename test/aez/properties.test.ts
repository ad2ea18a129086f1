/**
 * Property tests for AEZ: round trips across the AEZ-tiny / AEZ-core boundaries, authenticity
 * with a 16-byte authenticator, the in-place SPRP variants, and argument checking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  aezDecrypt,
  aezEncrypt,
  aezHash,
  aezPrf,
  sprpDecrypt,
  sprpDecryptInPlace,
  sprpEncrypt,
  sprpEncryptInPlace,
} from '../../src/aez/index.js';
import { isBackchannelError } from '../../src/errors.js';

/** Lengths around the AEZ-tiny (< 32 bytes) / AEZ-core split and the core's 16/32-byte structure. */
const BOUNDARIES = [0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97, 127, 128, 129];

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const anyKey = fc.oneof(bytes(48), fc.uint8Array({ maxLength: 80 }));
const anyNonce = fc.oneof(bytes(16), fc.uint8Array({ maxLength: 40 }));
const anyAd = fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 4 });

function isAuthError(err: unknown): boolean {
  return isBackchannelError(err, 'ERR_AEZ_AUTH');
}

test('decrypt inverts encrypt for random keys, nonces, additional data, tau and lengths up to 600', () => {
  fc.assert(
    fc.property(
      anyKey,
      anyNonce,
      anyAd,
      fc.integer({ min: 0, max: 40 }),
      fc.uint8Array({ maxLength: 600 }),
      (key, nonce, ad, tau, m) => {
        const c = aezEncrypt(key, nonce, ad, tau, m);
        assert.equal(c.length, m.length + tau);
        assert.deepEqual(aezDecrypt(key, nonce, ad, tau, c), m);
      },
    ),
    { numRuns: 300 },
  );
});

test('decrypt inverts encrypt when the enciphered length sits on an AEZ-tiny or AEZ-core boundary', () => {
  const cases = fc
    .record({ x: fc.constantFrom(...BOUNDARIES), tau: fc.constantFrom(0, 1, 4, 16) })
    .filter(({ x, tau }) => x >= tau)
    .chain(({ x, tau }) => fc.tuple(fc.constant(tau), bytes(x - tau)));
  fc.assert(
    fc.property(anyKey, anyNonce, anyAd, cases, (key, nonce, ad, [tau, m]) => {
      const c = aezEncrypt(key, nonce, ad, tau, m);
      assert.equal(c.length, m.length + tau);
      assert.deepEqual(aezDecrypt(key, nonce, ad, tau, c), m);
    }),
    { numRuns: 400 },
  );
  // And every boundary length at least once, deterministically, with tau 0 and 16.
  const key = new Uint8Array(48).map((_, i) => i * 7);
  const nonce = new Uint8Array(16).map((_, i) => 255 - i);
  for (const n of BOUNDARIES) {
    for (const tau of [0, 16]) {
      const m = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
      const c = aezEncrypt(key, nonce, [m.subarray(0, 3)], tau, m);
      assert.deepEqual(aezDecrypt(key, nonce, [m.subarray(0, 3)], tau, c), m, `length ${n}, tau ${tau}`);
      if (tau === 0) {
        assert.deepEqual(sprpEncrypt(key, nonce, m), aezEncrypt(key, nonce, [], 0, m), `sprp length ${n}`);
        assert.deepEqual(sprpDecrypt(key, nonce, sprpEncrypt(key, nonce, m)), m, `sprp round trip ${n}`);
      }
    }
  }
});

test('with tau = 16 flipping any single ciphertext bit makes decrypt throw ERR_AEZ_AUTH', () => {
  const cases = fc
    .record({ key: anyKey, nonce: anyNonce, ad: anyAd, m: fc.uint8Array({ maxLength: 100 }) })
    .chain((r) => fc.tuple(fc.constant(r), fc.nat({ max: 8 * (r.m.length + 16) - 1 })));
  fc.assert(
    fc.property(cases, ([{ key, nonce, ad, m }, bit]) => {
      const c = aezEncrypt(key, nonce, ad, 16, m);
      c[bit >>> 3] = c[bit >>> 3]! ^ (1 << (bit & 7));
      assert.throws(() => aezDecrypt(key, nonce, ad, 16, c), isAuthError);
    }),
    { numRuns: 300 },
  );
});

test('decrypt with tau = 16 rejects a ciphertext under a different key, nonce or additional data', () => {
  const key = new Uint8Array(48).fill(1);
  const nonce = new Uint8Array(16).fill(2);
  const m = new Uint8Array(70).fill(3);
  const c = aezEncrypt(key, nonce, [new Uint8Array([1])], 16, m);
  const otherKey = key.slice();
  otherKey[47] = 0;
  assert.throws(() => aezDecrypt(otherKey, nonce, [new Uint8Array([1])], 16, c), isAuthError);
  assert.throws(() => aezDecrypt(key, nonce.subarray(1), [new Uint8Array([1])], 16, c), isAuthError);
  assert.throws(() => aezDecrypt(key, nonce, [new Uint8Array([2])], 16, c), isAuthError);
  assert.throws(() => aezDecrypt(key, nonce, [], 16, c), isAuthError);
  assert.deepEqual(aezDecrypt(key, nonce, [new Uint8Array([1])], 16, c), m);
});

test('the in-place SPRP variants produce the same bytes as the copying ones, even on unaligned views', () => {
  fc.assert(
    fc.property(bytes(48), bytes(16), fc.uint8Array({ maxLength: 700 }), fc.nat({ max: 7 }), (key, iv, data, shift) => {
      const c = sprpEncrypt(key, iv, data);
      assert.equal(c.length, data.length);
      // A view at an odd offset inside a larger buffer.
      const backing = new Uint8Array(data.length + 16).fill(0xa5);
      const view = backing.subarray(shift, shift + data.length);
      view.set(data);
      sprpEncryptInPlace(key, iv, view);
      assert.deepEqual(view, c);
      assert.ok(backing.subarray(0, shift).every((b) => b === 0xa5));
      assert.ok(backing.subarray(shift + data.length).every((b) => b === 0xa5));
      assert.deepEqual(sprpDecrypt(key, iv, c), data);
      sprpDecryptInPlace(key, iv, view);
      assert.deepEqual(view, data);
    }),
    { numRuns: 200 },
  );
});

test('the SPRP inputs are not modified by the copying variants', () => {
  const key = new Uint8Array(48).fill(9);
  const iv = new Uint8Array(16).fill(8);
  const data = new Uint8Array(2606).map((_, i) => i & 255);
  const before = data.slice();
  sprpEncrypt(key, iv, data);
  sprpDecrypt(key, iv, data);
  assert.deepEqual(data, before);
});

test('argument errors are TypeErrors for wrong types and RangeErrors for wrong lengths or ranges', () => {
  const key = new Uint8Array(48);
  const iv = new Uint8Array(16);
  const data = new Uint8Array(40);
  /** Lets a wrongly typed value through the type checker, as untyped callers could. */
  const asAny = (v: unknown): never => v as never;
  for (const f of [sprpEncrypt, sprpDecrypt, sprpEncryptInPlace, sprpDecryptInPlace]) {
    assert.throws(() => f(asAny('k'.repeat(48)), iv, data), TypeError);
    assert.throws(() => f(asAny(Array.from(key)), iv, data), TypeError);
    assert.throws(() => f(key, asAny(null), data), TypeError);
    assert.throws(() => f(key, iv, asAny(undefined)), TypeError);
    assert.throws(() => f(new Uint8Array(47), iv, data), RangeError);
    assert.throws(() => f(new Uint8Array(32), iv, data), RangeError);
    assert.throws(() => f(key, new Uint8Array(15), data), RangeError);
    assert.throws(() => f(key, new Uint8Array(24), data), RangeError);
  }
  assert.throws(() => aezEncrypt(asAny('key'), iv, [], 0, data), TypeError);
  assert.throws(() => aezEncrypt(key, iv, asAny(new Uint8Array(1)), 0, data), TypeError);
  assert.throws(() => aezEncrypt(key, iv, [asAny('ad')], 0, data), TypeError);
  assert.throws(() => aezEncrypt(key, iv, [], 1.5, data), TypeError);
  assert.throws(() => aezEncrypt(key, iv, [], -1, data), RangeError);
  assert.throws(() => aezEncrypt(key, iv, [], 65537, data), RangeError);
  assert.throws(() => aezDecrypt(key, iv, [], 16, new Uint8Array(15)), RangeError);
  assert.throws(() => aezPrf(key, new Uint8Array(15), 4), RangeError);
  assert.throws(() => aezHash(key, [], -1), RangeError);
});

test('an empty message encrypts to AEZ-prf output, and an empty ciphertext is accepted only with tau 0', () => {
  const key = new Uint8Array(48).fill(5);
  const nonce = new Uint8Array(16).fill(6);
  const c = aezEncrypt(key, nonce, [], 16, new Uint8Array(0));
  const delta = aezHash(key, [nonce], 128);
  assert.deepEqual(c, aezPrf(key, delta, 16));
  assert.deepEqual(aezDecrypt(key, nonce, [], 16, c), new Uint8Array(0));
  assert.deepEqual(aezEncrypt(key, nonce, [], 0, new Uint8Array(0)), new Uint8Array(0));
  assert.deepEqual(aezDecrypt(key, nonce, [], 0, new Uint8Array(0)), new Uint8Array(0));
  assert.deepEqual(sprpEncrypt(key, nonce, new Uint8Array(0)), new Uint8Array(0));
});
