/**
 * The little Curve25519 arithmetic that building a header needs besides X25519 itself: scalars
 * modulo the group order, and whether a u-coordinate lies on the curve or on its twist. Used by
 * header-keys.ts only; unwrapping needs none of it. BigInt, as in @noble/curves. Portable: no
 * `node:` imports.
 *
 * BigInt values, and the hex strings written from them, cannot be wiped. The ones made from
 * secrets here come from a packet's ephemeral scalars (x and the blinding factors), whose byte
 * arrays are still wiped; they are garbage once the header is built, as the BigInt field elements
 * of the portable backend's X25519 are.
 */

/** p = 2^255 - 19, the field prime (RFC 7748 §4.1). */
const P = (1n << 255n) - 19n;
/** The Montgomery coefficient A of curve25519, v^2 = u^3 + A u^2 + u (RFC 7748 §4.1). */
const A = 486662n;
/** ℓ, the order of the prime-order subgroup; the curve's group has order 8ℓ (RFC 7748 §4.1). */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** 8^-1 mod ℓ. ℓ is odd, so 2^-1 = (ℓ + 1) / 2. */
const INV8 = ((L + 1n) / 2n) ** 3n % L;
/** The scalars that X25519's clamping leaves as they are: 8w with W_MIN <= w < W_END (bit 254 set, bits 0-2 and 255 clear). */
const W_MIN = 1n << 251n;
const W_END = 1n << 252n;
const MASK_255 = (1n << 255n) - 1n;

/** The value of each lower-case hex digit by its character code. */
const HEX_DIGIT = new Uint8Array(128);
for (let i = 0; i < 16; i++) HEX_DIGIT['0123456789abcdef'.charCodeAt(i)] = i;

/** The little-endian integer of 32 bytes (RFC 7748's decodeLittleEndian). */
function fromLittleEndian32(bytes: Uint8Array): bigint {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 32);
  return v.getBigUint64(0, true) | (v.getBigUint64(8, true) << 64n) | (v.getBigUint64(16, true) << 128n) | (v.getBigUint64(24, true) << 192n);
}

/** `n` (0 <= n < 2^256) as 32 little-endian bytes. */
function toLittleEndian32(n: bigint): Uint8Array {
  const hex = n.toString(16).padStart(64, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (HEX_DIGIT[hex.charCodeAt(62 - 2 * i)]! << 4) | HEX_DIGIT[hex.charCodeAt(63 - 2 * i)]!;
  return out;
}

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = base % m;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

/** The scalar X25519 multiplies by for the 32 bytes `k` (RFC 7748's decodeScalar25519), modulo ℓ. */
export function clampedScalarModL(k: Uint8Array): bigint {
  const n = (fromLittleEndian32(k) & MASK_255 & ~7n) | (1n << 254n);
  return n % L;
}

/** a·b mod ℓ. */
export function mulModL(a: bigint, b: bigint): bigint {
  return (a * b) % L;
}

/**
 * A 32-byte scalar k that X25519 does not change when it clamps it, with k ≡ r or k ≡ -r
 * (mod ℓ); null when there is none, for about 2^-126 of the residues r.
 *
 * Why it exists: the scalars clamping leaves alone are k = 8w with 2^251 <= w < 2^252. For such a
 * k, k ≡ r (mod ℓ) exactly when w ≡ r/8 (mod ℓ), and as ℓ > 2^252 the only candidate is
 * w = r/8 mod ℓ itself. For -r the candidate is ℓ - w. At least one of w and ℓ - w is in range
 * unless w <= ℓ - 2^252 or w >= 2^252, two intervals of about 2^124.6 residues each.
 */
export function clampedRepresentative(r: bigint): Uint8Array | null {
  const w = (((r % L) + L) % L) * INV8 % L;
  if (w >= W_MIN && w < W_END) return toLittleEndian32(8n * w);
  const v = L - w;
  if (w !== 0n && v >= W_MIN && v < W_END) return toLittleEndian32(8n * v);
  return null;
}

/**
 * Whether the u-coordinate `u` (32 bytes, read as X25519 reads it: bit 255 ignored, reduced mod
 * p) is that of a point on curve25519 rather than on its quadratic twist: u^3 + A u^2 + u is a
 * square mod p (Euler's criterion), or zero.
 */
export function isOnCurve(u: Uint8Array): boolean {
  const x = (fromLittleEndian32(u) & MASK_255) % P;
  const rhs = (((x * x) % P) * x + A * ((x * x) % P) + x) % P;
  return rhs === 0n || modPow(rhs, (P - 1n) / 2n, P) === 1n;
}
