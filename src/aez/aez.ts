/**
 * AEZ v5 (Hoang, Krovetz, Rogaway: "AEZ v5: Authenticated Encryption by Enciphering", the
 * CAESAR round-3 specification), written from the specification. Portable: no `node:` imports.
 *
 * Notation follows the specification: Extract turns the key into I, J, L (128 bits each);
 * E^{j,i} is the tweakable blockcipher, AES10 with round keys (0, I, J, L, I, J, L, I, J, L, I)
 * applied to X ^ iL when j = -1, and AES4 with round keys (0, J, I, L, 0) applied to
 * X ^ jJ ^ 2^ceil(i/8) I ^ (i mod 8) L when j >= 0 (multiplication in GF(2^128), with a block's
 * first bit as the most significant coefficient). AEZ-hash maps the tweak vector ([tau]_128, N,
 * A_1, ..., A_t) to a 128-bit Delta, AEZ-prf expands Delta, and Encipher is AEZ-tiny for inputs
 * under 32 bytes and AEZ-core otherwise.
 *
 * Internally blocks are four 32-bit words, byte 4c + r of a block in bits 8r..8r+7 of word c (see
 * `_aes.ts`). The functions share module-level scratch memory: every public function runs to
 * completion synchronously, sets the key up, and wipes the key material and scratch before it
 * returns or throws.
 * @module
 */
import { blake2b } from '@noble/hashes/blake2.js';
import { BackchannelError } from '../errors.js';
import { abytes, aint, equalBytes, isZero, wipe } from '../util/bytes.js';
import { aes10, aes4 } from './_aes.js';

/** Largest authenticator length accepted, in bytes. */
export const AEZ_MAX_TAU = 65536;

// ---------------------------------------------------------------------------------------------
// Key state: one Int32Array, laid out as below, filled by setupKey and wiped by clearState.

/** AES4 round keys 1..3: J, I, L (round key 4 is zero). aes4 reads words 0..11. */
const K_AES4 = 0;
/** AES10 round keys 1..10: I, J, L, I, J, L, I, J, L, I. */
const K_AES10 = 12;
/** The multiples 0L, 1L, ..., 7L. */
const K_LMUL = 52;
/** I (the offset of E^{j,0} besides jJ). */
const K_I = 84;
/** 2I (the 2^ceil(i/8) I term for 1 <= i <= 8). */
const K_I2 = 88;
/** J and 2J. */
const K_J = 92;
const K_J2 = 96;
const KEY = new Int32Array(100);

// Scratch blocks (4 words each).
const B_DELTA = 0;
const B_TMP = 4;
const B_BLK = 8;
const B_P = 12;
const B_JJ = 16;
const B_U = 20;
const B_V = 24;
const B_XX = 28;
const B_XY = 32;
const B_OFF = 36;
const BLK = new Int32Array(40);

/** Byte scratch for AEZ-tiny (message, halves, one E output). */
const TINY = new Uint8Array(32 + 16 + 16 + 16 + 16);
const T_MSG = 0;
const T_L = 32;
const T_R = 48;
const T_E = 64;
const T_N = 80;

/** Word buffer for the 32-byte pairs of AEZ-core; grows as needed, wiped after each use. */
let WORK = new Int32Array(1024);
let WORK8 = new Uint8Array(WORK.buffer);

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 0x04;
const EMPTY_LIST: readonly Uint8Array[] = [];

function bswap(x: number): number {
  return (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24);
}

/** dst[do..do+3] = 2 * src[so..so+3] in GF(2^128) (the block's first bit is the top coefficient). */
function dbl(src: Int32Array, so: number, dst: Int32Array, dof: number): void {
  const w0 = bswap(src[so]!);
  const w1 = bswap(src[so + 1]!);
  const w2 = bswap(src[so + 2]!);
  const w3 = bswap(src[so + 3]!);
  dst[dof] = bswap((w0 << 1) | (w1 >>> 31));
  dst[dof + 1] = bswap((w1 << 1) | (w2 >>> 31));
  dst[dof + 2] = bswap((w2 << 1) | (w3 >>> 31));
  dst[dof + 3] = bswap((w3 << 1) ^ ((w0 >>> 31) * 0x87));
}

function xor3(a: Int32Array, ao: number, b: Int32Array, bo: number, dst: Int32Array, dof: number): void {
  dst[dof] = a[ao]! ^ b[bo]!;
  dst[dof + 1] = a[ao + 1]! ^ b[bo + 1]!;
  dst[dof + 2] = a[ao + 2]! ^ b[bo + 2]!;
  dst[dof + 3] = a[ao + 3]! ^ b[bo + 3]!;
}

function copy4(src: Int32Array, so: number, dst: Int32Array, dof: number): void {
  dst[dof] = src[so]!;
  dst[dof + 1] = src[so + 1]!;
  dst[dof + 2] = src[so + 2]!;
  dst[dof + 3] = src[so + 3]!;
}

/** dst = c * src in GF(2^128) for a small non-negative integer c (double-and-add). */
function mulSmall(src: Int32Array, so: number, c: number, dst: Int32Array, dof: number): void {
  // Uses B_TMP as the running power; dst must not be B_TMP.
  copy4(src, so, BLK, B_TMP);
  dst[dof] = dst[dof + 1] = dst[dof + 2] = dst[dof + 3] = 0;
  while (c > 0) {
    if ((c & 1) !== 0) xor3(dst, dof, BLK, B_TMP, dst, dof);
    dbl(BLK, B_TMP, BLK, B_TMP);
    c >>>= 1;
  }
}

/** Reads n <= 16 bytes from src[off..] as a block, zero-filled, into dst[o..o+3]. */
function loadBlock(src: Uint8Array, off: number, n: number, dst: Int32Array, o: number): void {
  if (n === 16) {
    for (let t = 0; t < 4; t++, off += 4) {
      dst[o + t] = src[off]! | (src[off + 1]! << 8) | (src[off + 2]! << 16) | (src[off + 3]! << 24);
    }
    return;
  }
  for (let t = 0; t < 4; t++) {
    let w = 0;
    for (let b = 0; b < 4; b++) {
      const p = 4 * t + b;
      if (p < n) w |= src[off + p]! << (8 * b);
    }
    dst[o + t] = w;
  }
}

/** Writes the first n <= 16 bytes of the block src[o..o+3] to dst[off..]. */
function storeBlock(src: Int32Array, o: number, dst: Uint8Array, off: number, n: number): void {
  for (let p = 0; p < n; p++) dst[off + p] = src[o + (p >>> 2)]! >>> (8 * (p & 3));
}

/** Keeps the first n bytes of a block (n <= 16), zeroes the rest, and appends 10* when n < 16. */
function truncPad(b: Int32Array, o: number, n: number): void {
  for (let t = 0; t < 4; t++) {
    const r = n - 4 * t;
    if (r <= 0) b[o + t] = 0;
    else if (r < 4) b[o + t] = b[o + t]! & ((1 << (8 * r)) - 1);
  }
  if (n < 16) b[o + (n >>> 2)] = b[o + (n >>> 2)]! | (0x80 << (8 * (n & 3)));
}

/** Extract: 48-byte keys are I || J || L directly, any other length goes through BLAKE2b-384. */
function extractBytes(key: Uint8Array): Uint8Array {
  return key.length === 48 ? key : blake2b(key, { dkLen: 48 });
}

/** Fills KEY from the key bytes. */
function setupKey(key: Uint8Array): void {
  const ex = extractBytes(key);
  loadBlock(ex, 0, 16, KEY, K_I);
  loadBlock(ex, 16, 16, KEY, K_J);
  loadBlock(ex, 32, 16, KEY, K_LMUL + 4);
  if (ex !== key) wipe(ex);
  // AES4 round keys J, I, L.
  copy4(KEY, K_J, KEY, K_AES4);
  copy4(KEY, K_I, KEY, K_AES4 + 4);
  copy4(KEY, K_LMUL + 4, KEY, K_AES4 + 8);
  // AES10 round keys I, J, L, I, J, L, I, J, L, I.
  for (let r = 0; r < 10; r++) {
    const src = r % 3 === 0 ? K_I : r % 3 === 1 ? K_J : K_LMUL + 4;
    copy4(KEY, src, KEY, K_AES10 + 4 * r);
  }
  // 0L .. 7L.
  KEY.fill(0, K_LMUL, K_LMUL + 4);
  dbl(KEY, K_LMUL + 4, KEY, K_LMUL + 8); // 2L
  xor3(KEY, K_LMUL + 8, KEY, K_LMUL + 4, KEY, K_LMUL + 12); // 3L
  dbl(KEY, K_LMUL + 8, KEY, K_LMUL + 16); // 4L
  xor3(KEY, K_LMUL + 16, KEY, K_LMUL + 4, KEY, K_LMUL + 20); // 5L
  xor3(KEY, K_LMUL + 16, KEY, K_LMUL + 8, KEY, K_LMUL + 24); // 6L
  xor3(KEY, K_LMUL + 24, KEY, K_LMUL + 4, KEY, K_LMUL + 28); // 7L
  dbl(KEY, K_I, KEY, K_I2);
  dbl(KEY, K_J, KEY, K_J2);
}

/** Wipes the key state and every scratch buffer. */
function clearState(workWords: number): void {
  KEY.fill(0);
  BLK.fill(0);
  TINY.fill(0);
  if (workWords > 0) WORK.fill(0, 0, workWords);
}

/** BLK[B_OFF] = the offset of E^{0,i} for 1 <= i <= 7: 2I ^ iL. */
function setOff0(i: number): void {
  xor3(KEY, K_I2, KEY, K_LMUL + 4 * i, BLK, B_OFF);
}

/** out[o..] = E^{0,i}(BLK[src]) for 1 <= i <= 7 (AES4). */
function e0(i: number, src: number, out: Int32Array, o: number): void {
  setOff0(i);
  aes4(
    KEY,
    BLK[src]! ^ BLK[B_OFF]!,
    BLK[src + 1]! ^ BLK[B_OFF + 1]!,
    BLK[src + 2]! ^ BLK[B_OFF + 2]!,
    BLK[src + 3]! ^ BLK[B_OFF + 3]!,
    out,
    o,
  );
}

/** out[o..] = E^{-1,i}(BLK[src]) for 0 <= i <= 7 (AES10 of the block ^ iL). */
function em1(i: number, src: number, out: Int32Array, o: number): void {
  const l = K_LMUL + 4 * i;
  aes10(
    KEY,
    K_AES10,
    BLK[src]! ^ KEY[l]!,
    BLK[src + 1]! ^ KEY[l + 1]!,
    BLK[src + 2]! ^ KEY[l + 2]!,
    BLK[src + 3]! ^ KEY[l + 3]!,
    out,
    o,
  );
}

// ---------------------------------------------------------------------------------------------
// AEZ-hash

/** BLK[B_DELTA] ^= the AEZ-hash contribution of tweak string t at position j (j >= 3). */
function hashString(j: number, t: Uint8Array): void {
  mulSmall(KEY, K_J, j, BLK, B_JJ);
  const n = t.length;
  const full = n >>> 4;
  copy4(KEY, K_I, BLK, B_P);
  for (let i = 1; i <= full; i++) {
    if ((i & 7) === 1) dbl(BLK, B_P, BLK, B_P); // 2^ceil(i/8) I
    const l = K_LMUL + 4 * (i & 7);
    const off = (i - 1) << 4;
    loadBlock(t, off, 16, BLK, B_BLK);
    aes4(
      KEY,
      BLK[B_BLK]! ^ BLK[B_JJ]! ^ BLK[B_P]! ^ KEY[l]!,
      BLK[B_BLK + 1]! ^ BLK[B_JJ + 1]! ^ BLK[B_P + 1]! ^ KEY[l + 1]!,
      BLK[B_BLK + 2]! ^ BLK[B_JJ + 2]! ^ BLK[B_P + 2]! ^ KEY[l + 2]!,
      BLK[B_BLK + 3]! ^ BLK[B_JJ + 3]! ^ BLK[B_P + 3]! ^ KEY[l + 3]!,
      BLK,
      B_TMP,
    );
    xor3(BLK, B_DELTA, BLK, B_TMP, BLK, B_DELTA);
  }
  const rem = n & 15;
  if (rem !== 0 || n === 0) {
    // Last block shorter than 128 bits (or the empty string): E^{j,0}(X 10*), offset jJ ^ I.
    loadBlock(t, full << 4, rem, BLK, B_BLK);
    truncPad(BLK, B_BLK, rem);
    aes4(
      KEY,
      BLK[B_BLK]! ^ BLK[B_JJ]! ^ KEY[K_I]!,
      BLK[B_BLK + 1]! ^ BLK[B_JJ + 1]! ^ KEY[K_I + 1]!,
      BLK[B_BLK + 2]! ^ BLK[B_JJ + 2]! ^ KEY[K_I + 2]!,
      BLK[B_BLK + 3]! ^ BLK[B_JJ + 3]! ^ KEY[K_I + 3]!,
      BLK,
      B_TMP,
    );
    xor3(BLK, B_DELTA, BLK, B_TMP, BLK, B_DELTA);
  }
}

/**
 * BLK[B_DELTA] = AEZ-hash of the tweak vector ([tauBits]_128, first?, ...rest). The first
 * component is one full block, so it is E^{3,1}([tauBits]_128) with offset 3J ^ 2I ^ L.
 */
function hashInto(tauBits: number, first: Uint8Array | null, rest: readonly Uint8Array[]): void {
  // 3J = 2J ^ J.
  const t3 = bswap(tauBits);
  aes4(
    KEY,
    KEY[K_J2]! ^ KEY[K_J]! ^ KEY[K_I2]! ^ KEY[K_LMUL + 4]!,
    KEY[K_J2 + 1]! ^ KEY[K_J + 1]! ^ KEY[K_I2 + 1]! ^ KEY[K_LMUL + 5]!,
    KEY[K_J2 + 2]! ^ KEY[K_J + 2]! ^ KEY[K_I2 + 2]! ^ KEY[K_LMUL + 6]!,
    t3 ^ KEY[K_J2 + 3]! ^ KEY[K_J + 3]! ^ KEY[K_I2 + 3]! ^ KEY[K_LMUL + 7]!,
    BLK,
    B_DELTA,
  );
  let j = 4;
  if (first !== null) hashString(j++, first);
  for (const t of rest) hashString(j++, t);
}

// ---------------------------------------------------------------------------------------------
// AEZ-prf

/** out = the first out.length bytes of E^{-1,3}(Delta ^ [0]) || E^{-1,3}(Delta ^ [1]) || ... */
function prfInto(out: Uint8Array): void {
  const l = K_LMUL + 12;
  for (let i = 0, pos = 0; pos < out.length; i++, pos += 16) {
    aes10(
      KEY,
      K_AES10,
      BLK[B_DELTA]! ^ KEY[l]!,
      BLK[B_DELTA + 1]! ^ KEY[l + 1]!,
      BLK[B_DELTA + 2]! ^ KEY[l + 2]!,
      BLK[B_DELTA + 3]! ^ KEY[l + 3]! ^ bswap(i),
      BLK,
      B_TMP,
    );
    storeBlock(BLK, B_TMP, out, pos, Math.min(16, out.length - pos));
  }
}

// ---------------------------------------------------------------------------------------------
// AEZ-tiny (inputs of 1..31 bytes)

/** Copies nbits bits starting at bit `start` of TINY[src..] into the 16 bytes at TINY[dst..], zero-filled. */
function getBits(src: number, start: number, nbits: number, dst: number): void {
  TINY.fill(0, dst, dst + 16);
  for (let b = 0; b < nbits; b++) {
    const s = start + b;
    const bit = (TINY[src + (s >>> 3)]! >>> (7 - (s & 7))) & 1;
    TINY[dst + (b >>> 3)] = TINY[dst + (b >>> 3)]! | (bit << (7 - (b & 7)));
  }
}

/** Writes nbits bits from TINY[src..] to bit `start` onward of TINY[dst..] (bits there are zero). */
function putBits(src: number, nbits: number, dst: number, start: number): void {
  for (let b = 0; b < nbits; b++) {
    const bit = (TINY[src + (b >>> 3)]! >>> (7 - (b & 7))) & 1;
    const s = start + b;
    TINY[dst + (s >>> 3)] = TINY[dst + (s >>> 3)]! | (bit << (7 - (s & 7)));
  }
}

/** For inputs under 16 bytes: flips the first bit of TINY[T_MSG..] by E^{0,3}(Delta ^ (C0* | 10*)). */
function tinyFix(len: number): void {
  loadBlock(TINY, T_MSG, len, BLK, B_BLK);
  BLK[B_BLK] = BLK[B_BLK]! | 0x80;
  xor3(BLK, B_BLK, BLK, B_DELTA, BLK, B_BLK);
  e0(3, B_BLK, BLK, B_TMP);
  TINY[T_MSG] = TINY[T_MSG]! ^ (BLK[B_TMP]! & 0x80);
}

function tiny(src: Uint8Array, dst: Uint8Array, decipher: boolean): void {
  const len = src.length;
  const nb = len * 4; // bits in each half
  const rounds = len === 1 ? 24 : len === 2 ? 16 : len < 16 ? 10 : 8;
  const jt = len < 16 ? 7 : 6;
  TINY.fill(0, T_MSG, T_MSG + 32);
  TINY.set(src, T_MSG);
  if (decipher && len < 16) tinyFix(len);
  getBits(T_MSG, 0, nb, T_L);
  getBits(T_MSG, nb, nb, T_R);
  const nbytes = (nb + 7) >>> 3;
  let pl = T_L;
  let pr = T_R;
  let pn = T_N;
  for (let r = 0; r < rounds; r++) {
    const i = decipher ? rounds - 1 - r : r;
    // E^{0,jt}(Delta ^ R10* ^ [i]_128), truncated to nb bits, XORed into L.
    loadBlock(TINY, pr, 16, BLK, B_BLK);
    BLK[B_BLK + (nb >>> 5)] = BLK[B_BLK + (nb >>> 5)]! | ((0x80 >>> (nb & 7)) << (8 * ((nb >>> 3) & 3)));
    BLK[B_BLK + 3] = BLK[B_BLK + 3]! ^ (i << 24);
    xor3(BLK, B_BLK, BLK, B_DELTA, BLK, B_BLK);
    e0(jt, B_BLK, BLK, B_TMP);
    storeBlock(BLK, B_TMP, TINY, T_E, 16);
    for (let t = 0; t < nbytes; t++) TINY[pn + t] = TINY[pl + t]! ^ TINY[T_E + t]!;
    if ((nb & 7) !== 0) TINY[pn + nbytes - 1] = TINY[pn + nbytes - 1]! & 0xf0;
    // L <- R, R <- R'.
    const old = pl;
    pl = pr;
    pr = pn;
    pn = old;
  }
  // C = R || L.
  TINY.fill(0, T_MSG, T_MSG + 32);
  putBits(pr, nb, T_MSG, 0);
  putBits(pl, nb, T_MSG, nb);
  if (!decipher && len < 16) tinyFix(len);
  dst.set(TINY.subarray(T_MSG, T_MSG + len));
}

// ---------------------------------------------------------------------------------------------
// AEZ-core (inputs of 32 bytes or more)

function core(src: Uint8Array, dst: Uint8Array, decipher: boolean): number {
  const len = src.length;
  const m = (len - 32) >>> 5; // number of 32-byte pairs
  const pairBytes = m << 5;
  const words = pairBytes >>> 2;
  const d = len - 32 - pairBytes; // |X_uv| in bytes, 0..31
  if (WORK.length < words) {
    WORK = new Int32Array(Math.max(words, WORK.length * 2));
    WORK8 = new Uint8Array(WORK.buffer);
  }
  const w = WORK;
  // Read everything before anything is written: src and dst may be the same array.
  WORK8.set(src.subarray(0, pairBytes));
  if (!LITTLE_ENDIAN) for (let t = 0; t < words; t++) w[t] = bswap(w[t]!);
  const du = d < 16 ? d : 16;
  loadBlock(src, pairBytes, du, BLK, B_U);
  loadBlock(src, pairBytes + 16, d > 16 ? d - 16 : 0, BLK, B_V);
  loadBlock(src, pairBytes + d, 16, BLK, B_XX);
  loadBlock(src, pairBytes + d + 16, 16, BLK, B_XY);

  const k = KEY;
  const tmp = BLK;
  const j0 = k[K_J]!, j1 = k[K_J + 1]!, j2 = k[K_J + 2]!, j3 = k[K_J + 3]!;
  const i0 = k[K_I]!, i1 = k[K_I + 1]!, i2 = k[K_I + 2]!, i3 = k[K_I + 3]!;
  // J ^ 2J, which turns the offset of E^{1,i} into that of E^{2,i}.
  const q0 = j0 ^ k[K_J2]!, q1 = j1 ^ k[K_J2 + 1]!, q2 = j2 ^ k[K_J2 + 2]!, q3 = j3 ^ k[K_J2 + 3]!;

  // Pass 1: W_i = X_i ^ E^{1,i}(X'_i); X_i <- X'_i ^ E^{0,0}(W_i); X = sum of the new X_i.
  let x0 = 0, x1 = 0, x2 = 0, x3 = 0;
  let p0 = k[K_I2]!, p1 = k[K_I2 + 1]!, p2 = k[K_I2 + 2]!, p3 = k[K_I2 + 3]!;
  for (let i = 1, o = 0; i <= m; i++, o += 8) {
    if ((i & 7) === 1 && i > 1) {
      tmp[B_P] = p0; tmp[B_P + 1] = p1; tmp[B_P + 2] = p2; tmp[B_P + 3] = p3;
      dbl(tmp, B_P, tmp, B_P);
      p0 = tmp[B_P]!; p1 = tmp[B_P + 1]!; p2 = tmp[B_P + 2]!; p3 = tmp[B_P + 3]!;
    }
    const l = K_LMUL + ((i & 7) << 2);
    const o0 = j0 ^ p0 ^ k[l]!, o1 = j1 ^ p1 ^ k[l + 1]!, o2 = j2 ^ p2 ^ k[l + 2]!, o3 = j3 ^ p3 ^ k[l + 3]!;
    const r0 = w[o + 4]!, r1 = w[o + 5]!, r2 = w[o + 6]!, r3 = w[o + 7]!;
    aes4(k, r0 ^ o0, r1 ^ o1, r2 ^ o2, r3 ^ o3, tmp, B_TMP);
    const w0 = w[o]! ^ tmp[B_TMP]!, w1 = w[o + 1]! ^ tmp[B_TMP + 1]!;
    const w2 = w[o + 2]! ^ tmp[B_TMP + 2]!, w3 = w[o + 3]! ^ tmp[B_TMP + 3]!;
    w[o] = w0; w[o + 1] = w1; w[o + 2] = w2; w[o + 3] = w3;
    aes4(k, w0 ^ i0, w1 ^ i1, w2 ^ i2, w3 ^ i3, tmp, B_TMP);
    const n0 = r0 ^ tmp[B_TMP]!, n1 = r1 ^ tmp[B_TMP + 1]!, n2 = r2 ^ tmp[B_TMP + 2]!, n3 = r3 ^ tmp[B_TMP + 3]!;
    w[o + 4] = n0; w[o + 5] = n1; w[o + 6] = n2; w[o + 7] = n3;
    x0 ^= n0; x1 ^= n1; x2 ^= n2; x3 ^= n3;
  }
  // X ^= E^{0,4}(X_u 10*) when d < 16, E^{0,4}(X_u) ^ E^{0,5}(X_v 10*) when d >= 16.
  if (d > 0) {
    if (d < 16) truncPad(tmp, B_U, d);
    e0(4, B_U, tmp, B_TMP);
    x0 ^= tmp[B_TMP]!; x1 ^= tmp[B_TMP + 1]!; x2 ^= tmp[B_TMP + 2]!; x3 ^= tmp[B_TMP + 3]!;
    if (d >= 16) {
      truncPad(tmp, B_V, d - 16);
      e0(5, B_V, tmp, B_TMP);
      x0 ^= tmp[B_TMP]!; x1 ^= tmp[B_TMP + 1]!; x2 ^= tmp[B_TMP + 2]!; x3 ^= tmp[B_TMP + 3]!;
    }
  }
  // S_x = X_x ^ Delta ^ X ^ E^{0,1}(X_y); S_y = X_y ^ E^{-1,1}(S_x) (tweaks 2 when deciphering).
  const ta = decipher ? 2 : 1;
  const tb = decipher ? 1 : 2;
  e0(ta, B_XY, tmp, B_TMP);
  const sx0 = tmp[B_XX]! ^ tmp[B_DELTA]! ^ x0 ^ tmp[B_TMP]!;
  const sx1 = tmp[B_XX + 1]! ^ tmp[B_DELTA + 1]! ^ x1 ^ tmp[B_TMP + 1]!;
  const sx2 = tmp[B_XX + 2]! ^ tmp[B_DELTA + 2]! ^ x2 ^ tmp[B_TMP + 2]!;
  const sx3 = tmp[B_XX + 3]! ^ tmp[B_DELTA + 3]! ^ x3 ^ tmp[B_TMP + 3]!;
  tmp[B_XX] = sx0; tmp[B_XX + 1] = sx1; tmp[B_XX + 2] = sx2; tmp[B_XX + 3] = sx3;
  em1(ta, B_XX, tmp, B_TMP);
  const sy0 = tmp[B_XY]! ^ tmp[B_TMP]!, sy1 = tmp[B_XY + 1]! ^ tmp[B_TMP + 1]!;
  const sy2 = tmp[B_XY + 2]! ^ tmp[B_TMP + 2]!, sy3 = tmp[B_XY + 3]! ^ tmp[B_TMP + 3]!;
  tmp[B_XY] = sy0; tmp[B_XY + 1] = sy1; tmp[B_XY + 2] = sy2; tmp[B_XY + 3] = sy3;
  const s0 = sx0 ^ sy0, s1 = sx1 ^ sy1, s2 = sx2 ^ sy2, s3 = sx3 ^ sy3;

  // Pass 2: S' = E^{2,i}(S); Y_i = W_i ^ S', Y'_i = X_i ^ S'; C'_i = Y_i ^ E^{0,0}(Y'_i);
  // C_i = Y'_i ^ E^{1,i}(C'_i); Y = sum of the Y_i. (a* below is Y_i, b* is Y'_i.)
  let y0 = 0, y1 = 0, y2 = 0, y3 = 0;
  p0 = k[K_I2]!; p1 = k[K_I2 + 1]!; p2 = k[K_I2 + 2]!; p3 = k[K_I2 + 3]!;
  for (let i = 1, o = 0; i <= m; i++, o += 8) {
    if ((i & 7) === 1 && i > 1) {
      tmp[B_P] = p0; tmp[B_P + 1] = p1; tmp[B_P + 2] = p2; tmp[B_P + 3] = p3;
      dbl(tmp, B_P, tmp, B_P);
      p0 = tmp[B_P]!; p1 = tmp[B_P + 1]!; p2 = tmp[B_P + 2]!; p3 = tmp[B_P + 3]!;
    }
    const l = K_LMUL + ((i & 7) << 2);
    const o0 = j0 ^ p0 ^ k[l]!, o1 = j1 ^ p1 ^ k[l + 1]!, o2 = j2 ^ p2 ^ k[l + 2]!, o3 = j3 ^ p3 ^ k[l + 3]!;
    aes4(k, s0 ^ o0 ^ q0, s1 ^ o1 ^ q1, s2 ^ o2 ^ q2, s3 ^ o3 ^ q3, tmp, B_TMP);
    const e0w = tmp[B_TMP]!, e1w = tmp[B_TMP + 1]!, e2w = tmp[B_TMP + 2]!, e3w = tmp[B_TMP + 3]!;
    const a0 = w[o]! ^ e0w, a1 = w[o + 1]! ^ e1w, a2 = w[o + 2]! ^ e2w, a3 = w[o + 3]! ^ e3w;
    const b0 = w[o + 4]! ^ e0w, b1 = w[o + 5]! ^ e1w, b2 = w[o + 6]! ^ e2w, b3 = w[o + 7]! ^ e3w;
    y0 ^= a0; y1 ^= a1; y2 ^= a2; y3 ^= a3;
    aes4(k, b0 ^ i0, b1 ^ i1, b2 ^ i2, b3 ^ i3, tmp, B_TMP);
    const c0 = a0 ^ tmp[B_TMP]!, c1 = a1 ^ tmp[B_TMP + 1]!, c2 = a2 ^ tmp[B_TMP + 2]!, c3 = a3 ^ tmp[B_TMP + 3]!;
    w[o + 4] = c0; w[o + 5] = c1; w[o + 6] = c2; w[o + 7] = c3;
    aes4(k, c0 ^ o0, c1 ^ o1, c2 ^ o2, c3 ^ o3, tmp, B_TMP);
    w[o] = b0 ^ tmp[B_TMP]!; w[o + 1] = b1 ^ tmp[B_TMP + 1]!;
    w[o + 2] = b2 ^ tmp[B_TMP + 2]!; w[o + 3] = b3 ^ tmp[B_TMP + 3]!;
  }
  // C_u = X_u ^ E^{-1,4}(S), C_v = X_v ^ E^{-1,5}(S); Y ^= E^{0,4}(C_u 10*) or
  // E^{0,4}(C_u) ^ E^{0,5}(C_v 10*).
  tmp[B_BLK] = s0; tmp[B_BLK + 1] = s1; tmp[B_BLK + 2] = s2; tmp[B_BLK + 3] = s3;
  if (d > 0) {
    em1(4, B_BLK, tmp, B_TMP);
    xor3(tmp, B_U, tmp, B_TMP, tmp, B_U);
    if (d < 16) truncPad(tmp, B_U, d);
    storeBlock(tmp, B_U, dst, pairBytes, du);
    e0(4, B_U, tmp, B_TMP);
    y0 ^= tmp[B_TMP]!; y1 ^= tmp[B_TMP + 1]!; y2 ^= tmp[B_TMP + 2]!; y3 ^= tmp[B_TMP + 3]!;
    if (d >= 16) {
      em1(5, B_BLK, tmp, B_TMP);
      xor3(tmp, B_V, tmp, B_TMP, tmp, B_V);
      truncPad(tmp, B_V, d - 16);
      storeBlock(tmp, B_V, dst, pairBytes + 16, d - 16);
      e0(5, B_V, tmp, B_TMP);
      y0 ^= tmp[B_TMP]!; y1 ^= tmp[B_TMP + 1]!; y2 ^= tmp[B_TMP + 2]!; y3 ^= tmp[B_TMP + 3]!;
    }
  }
  // C_y = S_x ^ E^{-1,2}(S_y); C_x = S_y ^ Delta ^ Y ^ E^{0,2}(C_y) (tweaks 1 when deciphering).
  em1(tb, B_XY, tmp, B_TMP);
  xor3(tmp, B_XX, tmp, B_TMP, tmp, B_BLK); // C_y
  e0(tb, B_BLK, tmp, B_TMP);
  tmp[B_XX] = sy0 ^ tmp[B_DELTA]! ^ y0 ^ tmp[B_TMP]!;
  tmp[B_XX + 1] = sy1 ^ tmp[B_DELTA + 1]! ^ y1 ^ tmp[B_TMP + 1]!;
  tmp[B_XX + 2] = sy2 ^ tmp[B_DELTA + 2]! ^ y2 ^ tmp[B_TMP + 2]!;
  tmp[B_XX + 3] = sy3 ^ tmp[B_DELTA + 3]! ^ y3 ^ tmp[B_TMP + 3]!;
  storeBlock(tmp, B_XX, dst, pairBytes + d, 16);
  storeBlock(tmp, B_BLK, dst, pairBytes + d + 16, 16);
  if (!LITTLE_ENDIAN) for (let t = 0; t < words; t++) w[t] = bswap(w[t]!);
  dst.set(WORK8.subarray(0, pairBytes));
  return words;
}

/** Enciphers or deciphers src (1 byte or more) into dst (same length, may alias src); returns work words used. */
function encipher(src: Uint8Array, dst: Uint8Array, decipher: boolean): number {
  if (src.length < 32) {
    tiny(src, dst, decipher);
    return 0;
  }
  return core(src, dst, decipher);
}

// ---------------------------------------------------------------------------------------------
// Public API

function checkAd(ad: unknown): asserts ad is readonly Uint8Array[] {
  if (!Array.isArray(ad)) throw new TypeError(`"ad" expected an array of Uint8Array, got ${typeof ad}`);
  for (let i = 0; i < ad.length; i++) abytes(`ad[${i}]`, ad[i]);
}

function authError(): BackchannelError {
  return new BackchannelError('ERR_AEZ_AUTH', 'aez: ciphertext is not authentic');
}

/**
 * AEZ Extract: the 48 bytes I || J || L derived from a key of any length.
 * @throws {TypeError} when `key` is not a Uint8Array.
 */
export function aezExtract(key: Uint8Array): Uint8Array {
  abytes('key', key);
  return key.length === 48 ? key.slice() : blake2b(key, { dkLen: 48 });
}

/**
 * AEZ-hash of the tweak vector ([tauBits]_128, ...tweaks): a 16-byte Delta. `tauBits` is the
 * integer encoded in the first block, which AEZ sets to the authenticator length in bits.
 * @throws {TypeError} when `key` or a tweak is not a Uint8Array; {RangeError} when `tauBits` is
 * not an integer in [0, 2^32 - 1].
 */
export function aezHash(key: Uint8Array, tweaks: readonly Uint8Array[], tauBits: number): Uint8Array {
  abytes('key', key);
  checkAd(tweaks);
  aint('tauBits', tauBits, 0, 0xffffffff);
  setupKey(key);
  try {
    hashInto(tauBits, null, tweaks);
    const out = new Uint8Array(16);
    storeBlock(BLK, B_DELTA, out, 0, 16);
    return out;
  } finally {
    clearState(0);
  }
}

/**
 * AEZ-prf: `tau` bytes of E^{-1,3}(delta ^ [0]) || E^{-1,3}(delta ^ [1]) || ...
 * @throws {TypeError} when `key` or `delta` is not a Uint8Array; {RangeError} when `delta` is not
 * 16 bytes or `tau` is out of [0, AEZ_MAX_TAU].
 */
export function aezPrf(key: Uint8Array, delta: Uint8Array, tau: number): Uint8Array {
  abytes('key', key);
  abytes('delta', delta, 16);
  aint('tau', tau, 0, AEZ_MAX_TAU);
  setupKey(key);
  try {
    loadBlock(delta, 0, 16, BLK, B_DELTA);
    const out = new Uint8Array(tau);
    prfInto(out);
    return out;
  } finally {
    clearState(0);
  }
}

/**
 * AEZ authenticated encryption: enciphers plaintext || 0^tau under the tweak ([8 tau]_128, nonce,
 * ...ad); the ciphertext is `tau` bytes longer than the plaintext. `tau` is in bytes.
 * @throws {TypeError} when an argument has the wrong type; {RangeError} when `tau` is out of
 * [0, AEZ_MAX_TAU].
 */
export function aezEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: readonly Uint8Array[],
  tau: number,
  plaintext: Uint8Array,
): Uint8Array {
  abytes('key', key);
  abytes('nonce', nonce);
  checkAd(ad);
  aint('tau', tau, 0, AEZ_MAX_TAU);
  abytes('plaintext', plaintext);
  setupKey(key);
  let used = 0;
  try {
    hashInto(8 * tau, nonce, ad);
    const out = new Uint8Array(plaintext.length + tau);
    if (plaintext.length === 0) {
      prfInto(out);
      return out;
    }
    out.set(plaintext);
    used = encipher(out, out, false);
    return out;
  } finally {
    clearState(used);
  }
}

/**
 * AEZ authenticated decryption, the inverse of aezEncrypt.
 * @throws {BackchannelError} ERR_AEZ_AUTH when the ciphertext is not authentic (only possible
 * when tau > 0); {TypeError} when an argument has the wrong type; {RangeError} when `tau` is out
 * of range or the ciphertext is shorter than `tau`.
 */
export function aezDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: readonly Uint8Array[],
  tau: number,
  ciphertext: Uint8Array,
): Uint8Array {
  abytes('key', key);
  abytes('nonce', nonce);
  checkAd(ad);
  aint('tau', tau, 0, AEZ_MAX_TAU);
  abytes('ciphertext', ciphertext);
  if (ciphertext.length < tau) {
    throw new RangeError(`"ciphertext" expected at least ${tau} bytes, got length=${ciphertext.length}`);
  }
  setupKey(key);
  let used = 0;
  try {
    hashInto(8 * tau, nonce, ad);
    if (ciphertext.length === tau) {
      const expect = new Uint8Array(tau);
      prfInto(expect);
      const ok = equalBytes(expect, ciphertext);
      wipe(expect);
      if (!ok) throw authError();
      return new Uint8Array(0);
    }
    const x = new Uint8Array(ciphertext.length);
    used = encipher(ciphertext, x, true);
    if (tau === 0) return x;
    const mlen = ciphertext.length - tau;
    if (!isZero(x.subarray(mlen))) {
      wipe(x);
      throw authError();
    }
    const m = x.slice(0, mlen);
    wipe(x);
    return m;
  } finally {
    clearState(used);
  }
}

function sprp(key: Uint8Array, iv: Uint8Array, src: Uint8Array, dst: Uint8Array, decipher: boolean): void {
  if (src.length === 0) return;
  setupKey(key);
  let used = 0;
  try {
    hashInto(0, iv, EMPTY_LIST);
    used = encipher(src, dst, decipher);
  } finally {
    clearState(used);
  }
}

function checkSprp(key: unknown, iv: unknown, data: unknown): void {
  abytes('key', key, 48);
  abytes('iv', iv, 16);
  abytes('data', data);
}

/**
 * Sphinx's payload SPRP: AEZ encryption with tau = 0, nonce = iv and no additional data (the
 * length-preserving enciphering Katzenpost uses). Returns a new array.
 * @throws {TypeError} when an argument is not a Uint8Array; {RangeError} when `key` is not 48
 * bytes or `iv` is not 16 bytes.
 */
export function sprpEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkSprp(key, iv, data);
  const out = new Uint8Array(data.length);
  sprp(key, iv, data, out, false);
  return out;
}

/**
 * The inverse of sprpEncrypt. Returns a new array.
 * @throws {TypeError} when an argument is not a Uint8Array; {RangeError} when `key` is not 48
 * bytes or `iv` is not 16 bytes.
 */
export function sprpDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkSprp(key, iv, data);
  const out = new Uint8Array(data.length);
  sprp(key, iv, data, out, true);
  return out;
}

/**
 * sprpEncrypt that overwrites `data` with its encryption (same length).
 * @throws {TypeError} when an argument is not a Uint8Array; {RangeError} when `key` is not 48
 * bytes or `iv` is not 16 bytes.
 */
export function sprpEncryptInPlace(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  checkSprp(key, iv, data);
  sprp(key, iv, data, data, false);
}

/**
 * sprpDecrypt that overwrites `data` with its decryption (same length).
 * @throws {TypeError} when an argument is not a Uint8Array; {RangeError} when `key` is not 48
 * bytes or `iv` is not 16 bytes.
 */
export function sprpDecryptInPlace(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  checkSprp(key, iv, data);
  sprp(key, iv, data, data, true);
}
