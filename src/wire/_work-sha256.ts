/**
 * SHA-256 (FIPS 180-4, section 6.2) cut down to what the admission proof of work needs: the state
 * after a constant first block is computed once, then each attempt compresses only the last block,
 * in place, without an object per attempt: about 3× the rate of a hash object per attempt on the
 * development machine (`npm run bench -- admission`). The verifier uses the ordinary SHA-256
 * (@noble/hashes), and the tests check that both agree. Portable.
 */

/** K: the first 32 bits of the fractional parts of the cube roots of the first 64 primes (4.2.2). */
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
  0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
/** H(0): the initial hash value (5.3.3). */
const H0 = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** Compresses one 64-byte block (`w[0..16]` big-endian words, `w` 64 words of scratch) into `out` from `state`. */
function compress(state: Uint32Array, w: Uint32Array, out: Uint32Array): void {
  for (let t = 16; t < 64; t++) {
    const a = w[t - 15]!;
    const b = w[t - 2]!;
    const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
    const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!; // prettier-ignore
  for (let t = 0; t < 64; t++) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  out[0] = (state[0]! + a) | 0;
  out[1] = (state[1]! + b) | 0;
  out[2] = (state[2]! + c) | 0;
  out[3] = (state[3]! + d) | 0;
  out[4] = (state[4]! + e) | 0;
  out[5] = (state[5]! + f) | 0;
  out[6] = (state[6]! + g) | 0;
  out[7] = (state[7]! + h) | 0;
}

function loadWords(bytes: Uint8Array, w: Uint32Array): void {
  for (let i = 0; i < 16; i++) w[i] = (bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!;
}

/**
 * SHA-256 of a 128-byte-or-shorter message whose first 64 bytes are fixed and whose bytes
 * `[64 + at, 64 + at + 8)` hold a counter that `set` changes: `first` is the first block, `rest`
 * the bytes after it (at most 55, so that the padding fits in the second block).
 */
export class TwoBlockSha256 {
  readonly #mid = new Uint32Array(8);
  readonly #last = new Uint8Array(64);
  readonly #w = new Uint32Array(64);
  readonly #out = new Uint32Array(8);

  constructor(first: Uint8Array, rest: Uint8Array) {
    if (first.length !== 64 || rest.length > 55) throw new RangeError('work: a 64-byte first block and at most 55 bytes after it');
    loadWords(first, this.#w);
    compress(H0, this.#w, this.#mid);
    this.#last.set(rest, 0);
    this.#last[rest.length] = 0x80;
    const bits = (64 + rest.length) * 8;
    this.#last[62] = bits >>> 8;
    this.#last[63] = bits & 0xff;
  }

  /** Writes `value` (< 2^48) big-endian into the 6 bytes of the last block from `at`. */
  set(at: number, value: number): void {
    let n = value;
    for (let i = at + 5; i >= at; i--) {
      this.#last[i] = n & 0xff;
      n = Math.floor(n / 256);
    }
  }

  /** Leading zero bits of the digest of the message as it stands. */
  leadingZeros(): number {
    loadWords(this.#last, this.#w);
    compress(this.#mid, this.#w, this.#out);
    let bits = 0;
    for (const word of this.#out) {
      if (word === 0) {
        bits += 32;
        continue;
      }
      return bits + Math.clz32(word);
    }
    return bits;
  }

  /** The digest of the message as it stands (tests compare it with SHA-256). */
  digest(): Uint8Array {
    this.leadingZeros();
    const d = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      const v = this.#out[i]!;
      d[4 * i] = v >>> 24;
      d[4 * i + 1] = (v >>> 16) & 0xff;
      d[4 * i + 2] = (v >>> 8) & 0xff;
      d[4 * i + 3] = v & 0xff;
    }
    return d;
  }
}
