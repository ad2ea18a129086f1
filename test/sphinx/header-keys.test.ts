// The sender's hop keys with one X25519 per group element give the bytes of Katzenpost's chain of
// X25519s, for keys on the curve, keys with a small-order component and keys on the twist.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nodeBackend } from '../../src/crypto/node.js';
import { portableBackend } from '../../src/crypto/portable.js';
import type { CryptoBackend } from '../../src/crypto/types.js';
import { isBackchannelError } from '../../src/errors.js';
import { L, clampedRepresentative, clampedScalarModL, isOnCurve } from '../../src/sphinx/_curve25519.js';
import { hopKeys, onCurveCache } from '../../src/sphinx/header-keys.js';
import { blindingFactor, deriveKeys } from '../../src/sphinx/kdf.js';
import type { PacketKeys } from '../../src/sphinx/kdf.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

const P = (1n << 255n) - 19n;

function le(bytes: Uint8Array): bigint {
  return BigInt(`0x${toHex(bytes.slice().reverse()) || '0'}`);
}

function toLe(n: bigint): Uint8Array {
  return fromHex(n.toString(16).padStart(64, '0')).reverse();
}

function clamp(k: Uint8Array): Uint8Array {
  const c = k.slice();
  c[0]! &= 248;
  c[31]! &= 127;
  c[31]! |= 64;
  return c;
}

/** u(Q + T) for the point T = (0, 0) of order 2 on a Montgomery curve: 1/u(Q). */
function plusOrderTwo(u: Uint8Array): Uint8Array {
  let r = 1n;
  let b = le(u) % P;
  for (let e = P - 2n; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
  }
  return toLe(r);
}

/** Katzenpost's computation, written as docs/sphinx.md states it: the reference. */
function chain(c: CryptoBackend, x: Uint8Array, ys: Uint8Array[]): { alphas: string[]; keys: string[] } {
  const alphas = [c.x25519Base(x)];
  const keys: PacketKeys[] = [];
  const blinds: Uint8Array[] = [];
  for (let i = 0; i < ys.length; i++) {
    let s = c.x25519(x, ys[i]!);
    for (let j = 0; j < i; j++) s = c.x25519(blinds[j]!, s);
    keys.push(deriveKeys(c, s));
    if (i < ys.length - 1) {
      blinds.push(blindingFactor(c, keys[i]!));
      alphas.push(c.x25519(blinds[i]!, alphas[i]!));
    }
  }
  return { alphas: alphas.map(toHex), keys: keys.map(keyHex) };
}

function keyHex(k: PacketKeys): string {
  return [k.headerMac, k.headerKey, k.headerIv, k.payloadKey, k.blindingSeed].map(toHex).join(' ');
}

function shortcut(c: CryptoBackend, x: Uint8Array, ys: Uint8Array[]): { alphas: string[]; keys: string[] } {
  const r = hopKeys(c, x, ys, onCurveCache(16));
  return { alphas: r.alphas.map(toHex), keys: r.keys.map(keyHex) };
}

/** A backend that counts its X25519s. */
function counting(c: CryptoBackend): { backend: CryptoBackend; variable: number; fixed: number } {
  const counts = { variable: 0, fixed: 0 };
  const backend: CryptoBackend = {
    ...c,
    x25519: (s, p) => {
      counts.variable++;
      return c.x25519(s, p);
    },
    x25519Base: (s) => {
      counts.fixed++;
      return c.x25519Base(s);
    },
  };
  return Object.assign(counts, { backend });
}

// The small-order u-coordinates that libsodium refuses (0, 1, two of order 8, and p-1, p, p+1).
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(fromHex);

describe('clamped representatives of scalars mod ℓ', () => {
  test('a representative is left alone by clamping and is ±r mod ℓ', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), (bytes) => {
        const r = le(bytes) % L;
        fc.pre(r !== 0n);
        const k = clampedRepresentative(r);
        assert.ok(k !== null);
        assert.deepEqual(clamp(k), k);
        const m = le(k) % L;
        assert.ok(m === r || m === L - r);
      }),
      { numRuns: 2000 },
    );
  });

  test('the residues with no representative are refused, not misrepresented', () => {
    // r = 8w: w = 1 is below 2^251, and ℓ - 1 is above 2^252.
    assert.equal(clampedRepresentative(8n), null);
    // w = 2^252 is just past the range, and ℓ - 2^252 far below it.
    assert.equal(clampedRepresentative((8n << 252n) % L), null);
    assert.equal(clampedRepresentative(0n), null);
  });

  test('the clamped scalar of X25519 is read as RFC 7748 decodes it', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (k) => assert.equal(clampedScalarModL(k), le(clamp(k)) % L)));
    assert.equal(clampedScalarModL(new Uint8Array(32).fill(0xff)), ((1n << 255n) - 8n) % L);
  });
});

for (const c of [nodeBackend, portableBackend]) {
  describe(`hop keys with the ${c.name} backend`, () => {
    const runs = c === nodeBackend ? 60 : 6;
    const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

    test('equal Katzenpost chain for public keys of honest nodes', () => {
      fc.assert(
        fc.property(keyArb, fc.array(keyArb, { minLength: 1, maxLength: 6 }), (x, privateKeys) => {
          const ys = privateKeys.map((k) => c.x25519Base(k));
          assert.deepEqual(shortcut(c, x, ys), chain(c, x, ys));
        }),
        { numRuns: runs },
      );
    });

    test('equal the chain for public keys with a small-order component', () => {
      fc.assert(
        fc.property(keyArb, fc.array(keyArb, { minLength: 2, maxLength: 5 }), (x, privateKeys) => {
          const ys = privateKeys.map((k) => plusOrderTwo(c.x25519Base(k)));
          assert.ok(ys.every(isOnCurve));
          assert.deepEqual(shortcut(c, x, ys), chain(c, x, ys));
        }),
        { numRuns: runs },
      );
    });

    test('equal the chain for any 32 bytes as public keys, half of them on the twist', () => {
      let twist = 0;
      fc.assert(
        fc.property(keyArb, fc.array(keyArb, { minLength: 2, maxLength: 5 }), (x, ys) => {
          twist += ys.filter((y) => !isOnCurve(y)).length;
          assert.deepEqual(shortcut(c, x, ys), chain(c, x, ys));
        }),
        { numRuns: runs },
      );
      assert.ok(twist > 0);
    });

    test('refuse a small-order public key at any hop with ERR_SPHINX_POINT', () => {
      const x = c.randomBytes(32);
      for (const bad of SMALL_ORDER) {
        for (let at = 0; at < 3; at++) {
          const ys = [0, 1, 2].map((i) => (i === at ? bad : c.x25519Base(c.randomBytes(32))));
          assert.throws(
            () => hopKeys(c, x, ys, onCurveCache(16)),
            (e: unknown) => isBackchannelError(e, 'ERR_SPHINX_POINT'),
          );
        }
      }
    });

    test('cost one X25519 per group element and secret: n fixed-base and n others for n hops', () => {
      const n = counting(c);
      hopKeys(n.backend, c.randomBytes(32), [1, 2, 3, 4, 5].map(() => c.x25519Base(c.randomBytes(32))), onCurveCache(16));
      assert.equal(n.fixed, 5);
      assert.equal(n.variable, 5);
    });
  });
}
