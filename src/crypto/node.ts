/**
 * The Node backend: the fastest native call for each primitive, as measured by
 * `npm run bench -- crypto` (X25519: sodium-native beats KeyObjects imported from JWK and
 * @noble/curves; HMAC and HKDF: SHA-256 through sodium-native with the pad states reused, which
 * avoids an OpenSSL object per call; AES-CTR and SHA-512/256: node:crypto).
 */
import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { abytes, aint } from '../util/bytes.js';
import { checkAesCtr, checkChacha, checkHkdf, checkX25519, rejectZeroSharedSecret } from './_checks.js';
import type { CryptoBackend } from './types.js';
import { SHA256_LENGTH, X25519_KEY_LENGTH } from './types.js';

interface Sodium {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_hash_sha256(out: Uint8Array, data: Uint8Array): void;
  crypto_hash_sha256_init(state: Uint8Array): void;
  crypto_hash_sha256_update(state: Uint8Array, data: Uint8Array): void;
  crypto_hash_sha256_final(state: Uint8Array, out: Uint8Array): void;
  crypto_hash_sha256_STATEBYTES: number;
  crypto_stream_chacha20(out: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  crypto_stream_chacha20_NONCEBYTES: number;
}

// sodium-native is CommonJS and ships its prebuilt binaries inside the package.
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;

const STATE_BYTES = sodium.crypto_hash_sha256_STATEBYTES;
const BLOCK = 64; // SHA-256 block length, the HMAC pad length (RFC 2104)
const CHACHA_ZERO_NONCE = new Uint8Array(sodium.crypto_stream_chacha20_NONCEBYTES);

/**
 * Keys HMAC-SHA256: the states after absorbing key^ipad and key^opad, so that every further MAC
 * under the same key (HKDF's blocks) costs two short hashes.
 */
function hmacStates(key: Uint8Array): { inner: Uint8Array; outer: Uint8Array } {
  const k = new Uint8Array(BLOCK);
  if (key.length > BLOCK) sodium.crypto_hash_sha256(k.subarray(0, SHA256_LENGTH), key);
  else k.set(key);
  const inner = new Uint8Array(STATE_BYTES);
  const outer = new Uint8Array(STATE_BYTES);
  for (let i = 0; i < BLOCK; i++) k[i]! ^= 0x36;
  sodium.crypto_hash_sha256_init(inner);
  sodium.crypto_hash_sha256_update(inner, k);
  for (let i = 0; i < BLOCK; i++) k[i]! ^= 0x36 ^ 0x5c;
  sodium.crypto_hash_sha256_init(outer);
  sodium.crypto_hash_sha256_update(outer, k);
  k.fill(0);
  return { inner, outer };
}

/** One HMAC from keyed states; the states are left untouched. `parts` are absorbed in order. */
function hmacFrom(states: { inner: Uint8Array; outer: Uint8Array }, out: Uint8Array, ...parts: Uint8Array[]): void {
  const st = states.inner.slice();
  for (const p of parts) sodium.crypto_hash_sha256_update(st, p);
  sodium.crypto_hash_sha256_final(st, out);
  st.set(states.outer);
  sodium.crypto_hash_sha256_update(st, out);
  sodium.crypto_hash_sha256_final(st, out);
  st.fill(0);
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
    const states = hmacStates(key);
    const out = new Uint8Array(SHA256_LENGTH);
    hmacFrom(states, out, data);
    states.inner.fill(0);
    states.outer.fill(0);
    return out;
  },

  hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    checkHkdf(prk, info, length);
    const states = hmacStates(prk);
    const okm = new Uint8Array(length);
    const t = new Uint8Array(SHA256_LENGTH);
    const counter = new Uint8Array(1);
    for (let off = 0, i = 1; off < length; off += SHA256_LENGTH, i++) {
      counter[0] = i;
      // T(i) = HMAC(PRK, T(i-1) | info | i), T(0) empty.
      if (i === 1) hmacFrom(states, t, info, counter);
      else hmacFrom(states, t, t, info, counter);
      okm.set(t.subarray(0, Math.min(SHA256_LENGTH, length - off)), off);
    }
    t.fill(0);
    states.inner.fill(0);
    states.outer.fill(0);
    return okm;
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
    checkAesCtr(key, iv, data);
    const c = createCipheriv('aes-256-ctr', key, iv);
    const out = c.update(data);
    c.final();
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
    const d = createHash('sha512-256').update(data).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  },
};
