/**
 * The T-table AES rounds against a byte-at-a-time textbook round (SubBytes, ShiftRows,
 * MixColumns, AddRoundKey) written independently here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SBOX, aes10, aes4 } from '../../src/aez/_aes.js';

function xtime(a: number): number {
  return ((a << 1) ^ (a & 0x80 ? 0x1b : 0)) & 0xff;
}

function gmul(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 8; i++) {
    if (b & 1) p ^= a;
    a = xtime(a);
    b >>= 1;
  }
  return p;
}

/** One full AES round on a 16-byte state (column-major, as FIPS-197 maps input bytes). */
function round(s: Uint8Array, k: Uint8Array): Uint8Array {
  const t = new Uint8Array(16);
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) t[r + 4 * c] = SBOX[s[r + 4 * ((c + r) % 4)]!]!;
  const o = new Uint8Array(16);
  for (let c = 0; c < 4; c++) {
    const [a0, a1, a2, a3] = [t[4 * c]!, t[4 * c + 1]!, t[4 * c + 2]!, t[4 * c + 3]!];
    o[4 * c] = gmul(a0, 2) ^ gmul(a1, 3) ^ a2 ^ a3;
    o[4 * c + 1] = a0 ^ gmul(a1, 2) ^ gmul(a2, 3) ^ a3;
    o[4 * c + 2] = a0 ^ a1 ^ gmul(a2, 2) ^ gmul(a3, 3);
    o[4 * c + 3] = gmul(a0, 3) ^ a1 ^ a2 ^ gmul(a3, 2);
  }
  for (let i = 0; i < 16; i++) o[i] = o[i]! ^ k[i]!;
  return o;
}

function toWords(b: Uint8Array): Int32Array {
  const w = new Int32Array(b.length / 4);
  for (let i = 0; i < w.length; i++) w[i] = b[4 * i]! | (b[4 * i + 1]! << 8) | (b[4 * i + 2]! << 16) | (b[4 * i + 3]! << 24);
  return w;
}

function fromWords(w: Int32Array): Uint8Array {
  const b = new Uint8Array(w.length * 4);
  for (let i = 0; i < b.length; i++) b[i] = w[i >>> 2]! >>> (8 * (i & 3));
  return b;
}

test('the S-box is the FIPS-197 permutation', () => {
  assert.equal(SBOX[0x00], 0x63);
  assert.equal(SBOX[0x01], 0x7c);
  assert.equal(SBOX[0x53], 0xed);
  assert.equal(SBOX[0xff], 0x16);
  assert.equal(new Set(SBOX).size, 256);
});

test('aes4 and aes10 equal four and ten textbook rounds on random blocks and keys', () => {
  const block = fc.uint8Array({ minLength: 16, maxLength: 16 });
  fc.assert(
    fc.property(block, block, block, block, (x, j, i, l) => {
      const zero = new Uint8Array(16);
      let s: Uint8Array = x;
      for (const k of [j, i, l, zero]) s = round(s, k);
      const out = new Int32Array(4);
      const xw = toWords(x);
      const kw = toWords(Uint8Array.from([...j, ...i, ...l]));
      aes4(kw, xw[0]!, xw[1]!, xw[2]!, xw[3]!, out, 0);
      assert.deepEqual(fromWords(out), s);

      const keys = [i, j, l, i, j, l, i, j, l, i];
      let s10: Uint8Array = x;
      for (const k of keys) s10 = round(s10, k);
      const kw10 = toWords(Uint8Array.from(keys.flatMap((k) => [...k])));
      const out10 = new Int32Array(8);
      aes10(kw10, 0, xw[0]!, xw[1]!, xw[2]!, xw[3]!, out10, 4);
      assert.deepEqual(fromWords(out10.subarray(4)), s10);
    }),
    { numRuns: 200 },
  );
});
