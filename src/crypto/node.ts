/**
 * The Node backend: the fastest native call for each primitive, as measured by
 * `npm run bench -- crypto` (X25519: sodium-native beats KeyObjects imported from JWK and
 * @noble/curves; HMAC and HKDF: SHA-256 through sodium-native, which avoids an OpenSSL object per
 * call; AES-CTR and SHA-512/256: node:crypto; ChaCha20-Poly1305 and XChaCha20-Poly1305:
 * sodium-native, many times faster than @noble/ciphers for the short messages of the messaging layer).
 */
import { createCipheriv, hash, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { abytes, aint } from '../util/bytes.js';
import { checkAead, checkAesCtr, checkChacha, checkHkdf, checkX25519, rejectZeroSharedSecret } from './_checks.js';
import type { CryptoBackend } from './types.js';
import { POLY1305_TAG_LENGTH, SHA256_LENGTH, X25519_KEY_LENGTH } from './types.js';

interface Sodium {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_hash_sha256(out: Uint8Array, data: Uint8Array): void;
  crypto_stream_chacha20(out: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  crypto_stream_chacha20_NONCEBYTES: number;
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}

// sodium-native is CommonJS and ships its prebuilt binaries inside the package.
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;

const BLOCK = 64; // SHA-256 block length, the HMAC pad length (RFC 2104)
const CHACHA_ZERO_NONCE = new Uint8Array(sodium.crypto_stream_chacha20_NONCEBYTES);

/**
 * SHA-256 into `out`. OpenSSL (SHA-NI where the CPU has it) wins on long inputs; libsodium's
 * lighter native call wins on short ones. The threshold comes from `npm run bench -- crypto`.
 */
const LONG_SHA256_INPUT = 256;
function sha256Into(out: Uint8Array, data: Uint8Array): void {
  if (data.length >= LONG_SHA256_INPUT) out.set(hash('sha256', data, 'buffer'));
  else sodium.crypto_hash_sha256(out, data);
}

/**
 * Scratch for HMAC: key^ipad ‖ message, and key^opad ‖ inner hash. Reused across calls (every
 * call is synchronous and wipes it before returning) because allocating a fresh backing store
 * costs more than the hashing for the sizes Sphinx uses.
 */
let hmacInner = new Uint8Array(BLOCK + 1024);
const hmacOuter = new Uint8Array(BLOCK + SHA256_LENGTH);

/** Prepares the pads for `key` with room for `maxMessageLength` bytes; returns the message area. */
function hmacKey(key: Uint8Array, maxMessageLength: number): Uint8Array {
  if (hmacInner.length < BLOCK + maxMessageLength) hmacInner = new Uint8Array(BLOCK + maxMessageLength);
  const k = hmacOuter.subarray(0, BLOCK);
  k.fill(0);
  if (key.length > BLOCK) sodium.crypto_hash_sha256(k.subarray(0, SHA256_LENGTH), key);
  else k.set(key);
  for (let i = 0; i < BLOCK; i++) {
    hmacInner[i] = k[i]! ^ 0x36;
    k[i]! ^= 0x5c;
  }
  return hmacInner.subarray(BLOCK);
}

/** HMAC (RFC 2104) of the first `length` message bytes under the prepared key, into `out`. */
function hmacMac(length: number, out: Uint8Array): void {
  sha256Into(hmacOuter.subarray(BLOCK), hmacInner.subarray(0, BLOCK + length));
  sodium.crypto_hash_sha256(out, hmacOuter);
}

function hmacWipe(messageLength: number): void {
  hmacInner.fill(0, 0, BLOCK + messageLength);
  hmacOuter.fill(0);
}

/** The Node backend. */
export const nodeBackend: CryptoBackend = {
  name: 'node',

  randomBytes(length: number): Uint8Array {
    aint('length', length, 0, 1 << 30);
    return randomFillSync(new Uint8Array(length));
  },

  x25519(scalar: Uint8Array, point: Uint8Array): Uint8Array {
    checkX25519(scalar, point);
    const out = new Uint8Array(X25519_KEY_LENGTH);
    try {
      sodium.crypto_scalarmult(out, scalar, point);
    } catch {
      // libsodium refuses an all-zero result itself; report it the same way as the portable backend.
    }
    return rejectZeroSharedSecret(out);
  },

  x25519Base(scalar: Uint8Array): Uint8Array {
    abytes('scalar', scalar, X25519_KEY_LENGTH);
    const out = new Uint8Array(X25519_KEY_LENGTH);
    sodium.crypto_scalarmult_base(out, scalar);
    return out;
  },

  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    abytes('key', key);
    abytes('data', data);
    const out = new Uint8Array(SHA256_LENGTH);
    try {
      hmacKey(key, data.length).set(data);
      hmacMac(data.length, out);
    } finally {
      hmacWipe(data.length);
    }
    return out;
  },

  hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    checkHkdf(prk, info, length);
    const okm = new Uint8Array(length);
    const t = new Uint8Array(SHA256_LENGTH);
    const max = SHA256_LENGTH + info.length + 1;
    try {
      const m = hmacKey(prk, max);
      for (let off = 0, i = 1; off < length; off += SHA256_LENGTH, i++) {
        // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), with T(0) empty.
        const prev = i === 1 ? 0 : SHA256_LENGTH;
        if (prev > 0) m.set(t);
        m.set(info, prev);
        m[prev + info.length] = i;
        hmacMac(prev + info.length + 1, t);
        okm.set(t.subarray(0, Math.min(SHA256_LENGTH, length - off)), off);
      }
    } finally {
      t.fill(0);
      hmacWipe(max);
    }
    return okm;
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
    checkAesCtr(key, iv, data);
    // CTR mode has no final block: update() returns every byte, and final() would add nothing.
    const out = createCipheriv('aes-256-ctr', key, iv).update(data);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  },

  chacha20Keystream(key: Uint8Array, length: number): Uint8Array {
    checkChacha(key, length);
    const out = new Uint8Array(length);
    // The original ChaCha20 (64-bit nonce) and RFC 8439 agree on the key stream for a zero nonce
    // and counter 0 for the first 256 GiB, far beyond any length used here.
    sodium.crypto_stream_chacha20(out, CHACHA_ZERO_NONCE, key);
    return out;
  },

  sha512_256(data: Uint8Array): Uint8Array {
    abytes('data', data);
    const d = hash('sha512-256', data, 'buffer');
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  },

  chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const x = checkAead(key, nonce, ad, plaintext);
    const out = new Uint8Array(plaintext.length + POLY1305_TAG_LENGTH);
    if (x) sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key);
    else sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key);
    return out;
  },

  chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    const x = checkAead(key, nonce, ad, sealed);
    if (sealed.length < POLY1305_TAG_LENGTH) return null;
    const out = new Uint8Array(sealed.length - POLY1305_TAG_LENGTH);
    try {
      // libsodium verifies the tag in constant time before it decrypts, and throws on a mismatch.
      if (x) sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed, ad, nonce, key);
      else sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, sealed, ad, nonce, key);
      return out;
    } catch {
      return null;
    }
  },
};
