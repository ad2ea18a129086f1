/**
 * Cross-checks against the npm `aez` package (a devDependency used only as an oracle here and as
 * the benchmark baseline).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { aezDecrypt, aezEncrypt, sprpDecrypt, sprpEncrypt } from '../../src/aez/index.js';

interface NpmAez {
  encrypt(key: Buffer, nonce: Buffer, ad: Buffer[], tau: number, plaintext: Buffer): Buffer;
}

const npmAez = createRequire(import.meta.url)('aez') as NpmAez;
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

test('sprpEncrypt equals the npm aez package (tau 0, no additional data) on random inputs up to 3000 bytes', () => {
  fc.assert(
    fc.property(bytes(48), bytes(16), fc.uint8Array({ maxLength: 3000 }), (key, iv, data) => {
      const expected = npmAez.encrypt(Buffer.from(key), Buffer.from(iv), [], 0, Buffer.from(data));
      const c = sprpEncrypt(key, iv, data);
      assert.deepEqual(Buffer.from(c), expected);
      assert.deepEqual(sprpDecrypt(key, iv, c), data);
    }),
    { numRuns: 150 },
  );
});

test('aezEncrypt equals the npm aez package with additional data and tau on random inputs', () => {
  fc.assert(
    fc.property(
      bytes(48),
      bytes(16),
      fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 3 }),
      fc.integer({ min: 0, max: 32 }),
      fc.uint8Array({ maxLength: 600 }),
      (key, nonce, ad, tau, m) => {
        const expected = npmAez.encrypt(Buffer.from(key), Buffer.from(nonce), ad.map((a) => Buffer.from(a)), tau, Buffer.from(m));
        const c = aezEncrypt(key, nonce, ad, tau, m);
        assert.deepEqual(Buffer.from(c), expected);
        assert.deepEqual(aezDecrypt(key, nonce, ad, tau, c), m);
      },
    ),
    { numRuns: 200 },
  );
});
