/**
 * One compliance suite for both Ed25519 implementations: RFC 8032 section 7.1 tests 1 to 3,
 * argument errors, never throwing on bad keys or signatures, and agreement with each other on
 * random and adversarial inputs (including the cofactor edge cases where implementations differ).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import type { Ed25519 } from '../../src/pki/ed25519.js';
import { portableEd25519 } from '../../src/pki/ed25519.js';
import { nodeEd25519 } from '../../src/pki/ed25519-node.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

// RFC 8032, section 7.1 (Ed25519), TEST 1 to TEST 3.
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const L = ed25519.Point.Fn.ORDER;

function le(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}
function fromLe(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/** A signature valid under the cofactored equation only: the public key has an order-8 component. */
function mixedOrderCase(i: number): { pub: Uint8Array; msg: Uint8Array; sig: Uint8Array } {
  const a = (fromLe(sha512(Uint8Array.of(1, i))) % (L - 1n)) + 1n;
  const T = ed25519.Point.fromBytes(fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'));
  const pub = ed25519.Point.BASE.multiply(a).add(T).toBytes();
  const r = (fromLe(sha512(Uint8Array.of(2, i))) % (L - 1n)) + 1n;
  const R = ed25519.Point.BASE.multiply(r).toBytes();
  const msg = Uint8Array.of(3, i);
  const k = fromLe(sha512(new Uint8Array([...R, ...pub, ...msg]))) % L;
  const s = (r + k * a) % L;
  return { pub, msg, sig: new Uint8Array([...R, ...le(s)]) };
}

function compliance(ed: Ed25519): void {
  describe(`the ${ed.name} Ed25519`, () => {
    test('reproduces RFC 8032 tests 1 to 3', () => {
      for (const v of RFC8032) {
        const seed = fromHex(v.seed);
        assert.equal(toHex(ed.publicKeyFromSeed(seed)), v.pub);
        assert.equal(toHex(ed.sign(seed, fromHex(v.msg))), v.sig);
        assert.equal(ed.verify(fromHex(v.pub), fromHex(v.msg), fromHex(v.sig)), true);
      }
    });

    test('refuses altered messages, signatures and keys, without throwing', () => {
      const v = RFC8032[1]!;
      const pub = fromHex(v.pub);
      const sig = fromHex(v.sig);
      assert.equal(ed.verify(pub, fromHex('73'), sig), false);
      for (const i of [0, 31, 32, 63]) {
        const bad = sig.slice();
        bad[i]! ^= 1;
        assert.equal(ed.verify(pub, fromHex(v.msg), bad), false);
      }
      assert.equal(ed.verify(fromHex(RFC8032[0]!.pub), fromHex(v.msg), sig), false);
      assert.equal(ed.verify(pub.subarray(0, 31), fromHex(v.msg), sig), false);
      assert.equal(ed.verify(pub, fromHex(v.msg), sig.subarray(0, 63)), false);
      assert.equal(ed.verify(pub, fromHex(v.msg), new Uint8Array([...sig, 0])), false);
      assert.equal(ed.verify(new Uint8Array(32).fill(0xff), fromHex(v.msg), sig), false);
    });

    test('refuses S >= L (malleability)', () => {
      const v = RFC8032[2]!;
      const sig = fromHex(v.sig);
      const s = fromLe(sig.subarray(32)) + L;
      const bad = new Uint8Array([...sig.subarray(0, 32), ...le(s)]);
      assert.equal(ed.verify(fromHex(v.pub), fromHex(v.msg), bad), false);
    });

    test('refuses small-order public keys and R', () => {
      const identity = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
      // With A and R the identity and S = 0, the equation holds: only the small-order rule refuses it.
      assert.equal(ed.verify(identity, fromHex('00'), new Uint8Array([...identity, ...new Uint8Array(32)])), false);
      const order8 = fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
      assert.equal(ed.verify(order8, fromHex('00'), new Uint8Array(64)), false);
    });

    test('checks its argument types and seed length', () => {
      assert.throws(() => ed.publicKeyFromSeed(new Uint8Array(31)), RangeError);
      assert.throws(() => ed.sign(new Uint8Array(33), new Uint8Array(0)), RangeError);
      assert.throws(() => ed.sign(new Uint8Array(32), 'x' as unknown as Uint8Array), TypeError);
      assert.throws(() => ed.verify(null as unknown as Uint8Array, new Uint8Array(0), new Uint8Array(64)), TypeError);
    });
  });
}

compliance(nodeEd25519);
compliance(portableEd25519);

describe('the two Ed25519 implementations', () => {
  test('make the same keys and signatures', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
        const pub = nodeEd25519.publicKeyFromSeed(seed);
        assert.deepEqual(portableEd25519.publicKeyFromSeed(seed), pub);
        const sig = nodeEd25519.sign(seed, msg);
        assert.deepEqual(portableEd25519.sign(seed, msg), sig);
        assert.equal(portableEd25519.verify(pub, msg, sig), true);
      }),
      { numRuns: 50 },
    );
  });

  test('agree on altered and random signatures', () => {
    const seed = fromHex(RFC8032[0]!.seed);
    const pub = nodeEd25519.publicKeyFromSeed(seed);
    const msg = Uint8Array.of(1, 2, 3);
    const sig = nodeEd25519.sign(seed, msg);
    fc.assert(
      fc.property(fc.nat({ max: 64 * 8 - 1 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (bit, randomSig, randomKey) => {
        const flipped = sig.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        assert.equal(portableEd25519.verify(pub, msg, flipped), nodeEd25519.verify(pub, msg, flipped));
        assert.equal(portableEd25519.verify(pub, msg, randomSig), nodeEd25519.verify(pub, msg, randomSig));
        assert.equal(portableEd25519.verify(randomKey, msg, sig), nodeEd25519.verify(randomKey, msg, sig));
      }),
      { numRuns: 100 },
    );
  });

  test('agree with libsodium (cofactorless) on keys with a torsion component', () => {
    let accepted = 0;
    for (let i = 0; i < 24; i++) {
      const c = mixedOrderCase(i);
      const native = nodeEd25519.verify(c.pub, c.msg, c.sig);
      assert.equal(portableEd25519.verify(c.pub, c.msg, c.sig), native, `case ${i}`);
      // The cofactored check of RFC 8032's strict mode accepts all of these; libsodium only some.
      assert.equal(ed25519.verify(c.sig, c.msg, c.pub, { zip215: false }), true);
      if (native) accepted++;
    }
    assert.ok(accepted < 24, 'the cofactorless check refuses most of them');
  });
});
