/**
 * The primitives a Noise handshake needs, behind one interface so that the protocol code runs on
 * Node (native calls) and in a browser (@noble) alike. `nodeNoiseCrypto` and
 * `portableNoiseCrypto` implement it; the vector tests run both.
 */
import type { CryptoBackend } from '../crypto/types.js';
import type { CipherName, HashName } from './patterns.js';

/** An AEAD with a 32-byte key, a 12-byte nonce and a 16-byte tag appended to the ciphertext. */
export interface NoiseAead {
  readonly name: CipherName;
  /** Writes `plaintext.length + 16` bytes of ciphertext and tag into `out`. */
  encryptInto(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): void;
  /**
   * Writes `ciphertext.length - 16` bytes of plaintext into `out` and returns true, or returns
   * false (and writes nothing the caller may use) when the tag does not verify.
   */
  decryptInto(out: Uint8Array, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): boolean;
  /**
   * Puts the 64-bit counter `n` into the last 8 bytes of the 12-byte `nonce` in this cipher's
   * byte order (little-endian for ChaChaPoly, big-endian for AESGCM); the first 4 stay zero.
   */
  setNonce(nonce: Uint8Array, hi: number, lo: number): void;
}

/** A hash function with the lengths HMAC and HKDF need. */
export interface NoiseHash {
  readonly name: HashName;
  readonly hashLen: 32 | 64;
  readonly blockLen: 64 | 128;
  /** The hash of the concatenation of `parts`. */
  digest(...parts: Uint8Array[]): Uint8Array;
}

export interface NoiseCrypto {
  /** X25519, key generation and randomness. */
  readonly dh: Pick<CryptoBackend, 'x25519' | 'x25519Base' | 'randomBytes'>;
  aead(name: CipherName): NoiseAead;
  hash(name: HashName): NoiseHash;
}

export const TAG_LENGTH = 16;
export const KEY_LENGTH = 32;
export const NONCE_LENGTH = 12;

export function setNonceLE(nonce: Uint8Array, hi: number, lo: number): void {
  nonce[4] = lo & 0xff;
  nonce[5] = (lo >>> 8) & 0xff;
  nonce[6] = (lo >>> 16) & 0xff;
  nonce[7] = lo >>> 24;
  nonce[8] = hi & 0xff;
  nonce[9] = (hi >>> 8) & 0xff;
  nonce[10] = (hi >>> 16) & 0xff;
  nonce[11] = hi >>> 24;
}

export function setNonceBE(nonce: Uint8Array, hi: number, lo: number): void {
  nonce[4] = hi >>> 24;
  nonce[5] = (hi >>> 16) & 0xff;
  nonce[6] = (hi >>> 8) & 0xff;
  nonce[7] = hi & 0xff;
  nonce[8] = lo >>> 24;
  nonce[9] = (lo >>> 16) & 0xff;
  nonce[10] = (lo >>> 8) & 0xff;
  nonce[11] = lo & 0xff;
}

export const HASH_LENGTHS: Record<HashName, { hashLen: 32 | 64; blockLen: 64 | 128 }> = {
  SHA256: { hashLen: 32, blockLen: 64 },
  SHA512: { hashLen: 64, blockLen: 128 },
  BLAKE2s: { hashLen: 32, blockLen: 64 },
  BLAKE2b: { hashLen: 64, blockLen: 128 },
};
