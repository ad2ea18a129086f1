/**
 * The AES round function as AEZ uses it: full rounds only (SubBytes, ShiftRows, MixColumns,
 * AddRoundKey), no key schedule and no short final round. Portable: no `node:` imports.
 *
 * Word convention used by the whole AEZ module: a 16-byte block b[0..15] is four 32-bit words
 * w[c] = b[4c] | b[4c+1] << 8 | b[4c+2] << 16 | b[4c+3] << 24 ("little-endian column words"):
 * word c is AES state column c and its low byte is row 0.
 *
 * Cache-timing caveat: the rounds use 4 KiB of T-tables indexed by secret-dependent bytes. The
 * code has no secret-dependent branches, but table lookups can leak through the CPU cache to an
 * attacker sharing the machine. Pure JavaScript has no access to AES instructions, so this is
 * the usual trade-off of software AES.
 * @module
 */

/** The AES S-box. */
export const SBOX: Uint8Array = new Uint8Array(256);
/** T-tables: T0[x] is the MixColumns column of S(x) in row 0; T1..T3 are its byte rotations. */
const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);

// Tables are built once at load time from the field arithmetic (no secrets are involved here).
{
  // Powers of the generator 3 in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    const x2 = ((x << 1) ^ ((x >>> 7) * 0x1b)) & 0xff;
    x ^= x2; // x * 3
  }
  for (let a = 0; a < 256; a++) {
    // Multiplicative inverse (0 maps to 0), then the affine map.
    const inv = a === 0 ? 0 : exp[(255 - log[a]!) % 255]!;
    let s = inv;
    let r = inv;
    for (let k = 0; k < 4; k++) {
      r = ((r << 1) | (r >>> 7)) & 0xff;
      s ^= r;
    }
    s ^= 0x63;
    SBOX[a] = s;
    const s2 = ((s << 1) ^ ((s >>> 7) * 0x1b)) & 0xff;
    const s3 = s2 ^ s;
    const t = s2 | (s << 8) | (s << 16) | (s3 << 24);
    T0[a] = t;
    T1[a] = (t << 8) | (t >>> 24);
    T2[a] = (t << 16) | (t >>> 16);
    T3[a] = (t << 24) | (t >>> 8);
  }
}

/**
 * AES4 as AEZ defines it, with round keys (0, J, I, L, 0): the caller has already XORed the
 * block with its offset (the zero whitening key is implicit), then four full rounds run with
 * round keys k[0..3] (J), k[4..7] (I), k[8..11] (L) and zero. The result goes to out[o..o+3].
 */
export function aes4(k: Int32Array, a0: number, a1: number, a2: number, a3: number, out: Int32Array, o: number): void {
  // Round 1, key J.
  let b0 = T0[a0 & 255]! ^ T1[(a1 >>> 8) & 255]! ^ T2[(a2 >>> 16) & 255]! ^ T3[a3 >>> 24]! ^ k[0]!;
  let b1 = T0[a1 & 255]! ^ T1[(a2 >>> 8) & 255]! ^ T2[(a3 >>> 16) & 255]! ^ T3[a0 >>> 24]! ^ k[1]!;
  let b2 = T0[a2 & 255]! ^ T1[(a3 >>> 8) & 255]! ^ T2[(a0 >>> 16) & 255]! ^ T3[a1 >>> 24]! ^ k[2]!;
  let b3 = T0[a3 & 255]! ^ T1[(a0 >>> 8) & 255]! ^ T2[(a1 >>> 16) & 255]! ^ T3[a2 >>> 24]! ^ k[3]!;
  // Round 2, key I.
  a0 = T0[b0 & 255]! ^ T1[(b1 >>> 8) & 255]! ^ T2[(b2 >>> 16) & 255]! ^ T3[b3 >>> 24]! ^ k[4]!;
  a1 = T0[b1 & 255]! ^ T1[(b2 >>> 8) & 255]! ^ T2[(b3 >>> 16) & 255]! ^ T3[b0 >>> 24]! ^ k[5]!;
  a2 = T0[b2 & 255]! ^ T1[(b3 >>> 8) & 255]! ^ T2[(b0 >>> 16) & 255]! ^ T3[b1 >>> 24]! ^ k[6]!;
  a3 = T0[b3 & 255]! ^ T1[(b0 >>> 8) & 255]! ^ T2[(b1 >>> 16) & 255]! ^ T3[b2 >>> 24]! ^ k[7]!;
  // Round 3, key L.
  b0 = T0[a0 & 255]! ^ T1[(a1 >>> 8) & 255]! ^ T2[(a2 >>> 16) & 255]! ^ T3[a3 >>> 24]! ^ k[8]!;
  b1 = T0[a1 & 255]! ^ T1[(a2 >>> 8) & 255]! ^ T2[(a3 >>> 16) & 255]! ^ T3[a0 >>> 24]! ^ k[9]!;
  b2 = T0[a2 & 255]! ^ T1[(a3 >>> 8) & 255]! ^ T2[(a0 >>> 16) & 255]! ^ T3[a1 >>> 24]! ^ k[10]!;
  b3 = T0[a3 & 255]! ^ T1[(a0 >>> 8) & 255]! ^ T2[(a1 >>> 16) & 255]! ^ T3[a2 >>> 24]! ^ k[11]!;
  // Round 4, key zero.
  out[o] = T0[b0 & 255]! ^ T1[(b1 >>> 8) & 255]! ^ T2[(b2 >>> 16) & 255]! ^ T3[b3 >>> 24]!;
  out[o + 1] = T0[b1 & 255]! ^ T1[(b2 >>> 8) & 255]! ^ T2[(b3 >>> 16) & 255]! ^ T3[b0 >>> 24]!;
  out[o + 2] = T0[b2 & 255]! ^ T1[(b3 >>> 8) & 255]! ^ T2[(b0 >>> 16) & 255]! ^ T3[b1 >>> 24]!;
  out[o + 3] = T0[b3 & 255]! ^ T1[(b0 >>> 8) & 255]! ^ T2[(b1 >>> 16) & 255]! ^ T3[b2 >>> 24]!;
}

/**
 * AES10 with a zero whitening key (the caller has XORed in its offset) followed by ten full
 * rounds whose keys are the forty words k[ko..ko+39]. The result goes to out[o..o+3].
 */
export function aes10(
  k: Int32Array,
  ko: number,
  a0: number,
  a1: number,
  a2: number,
  a3: number,
  out: Int32Array,
  o: number,
): void {
  for (let r = 0; r < 10; r++, ko += 4) {
    const b0 = T0[a0 & 255]! ^ T1[(a1 >>> 8) & 255]! ^ T2[(a2 >>> 16) & 255]! ^ T3[a3 >>> 24]! ^ k[ko]!;
    const b1 = T0[a1 & 255]! ^ T1[(a2 >>> 8) & 255]! ^ T2[(a3 >>> 16) & 255]! ^ T3[a0 >>> 24]! ^ k[ko + 1]!;
    const b2 = T0[a2 & 255]! ^ T1[(a3 >>> 8) & 255]! ^ T2[(a0 >>> 16) & 255]! ^ T3[a1 >>> 24]! ^ k[ko + 2]!;
    const b3 = T0[a3 & 255]! ^ T1[(a0 >>> 8) & 255]! ^ T2[(a1 >>> 16) & 255]! ^ T3[a2 >>> 24]! ^ k[ko + 3]!;
    a0 = b0;
    a1 = b1;
    a2 = b2;
    a3 = b3;
  }
  out[o] = a0;
  out[o + 1] = a1;
  out[o + 2] = a2;
  out[o + 3] = a3;
}
