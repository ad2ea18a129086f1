/**
 * The portable backend: @noble/* only, no `node:` imports, for the browser client. It passes the
 * same tests and vectors as the Node backend; it is slower (X25519 in pure JavaScript).
 */
import { chacha20, chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ctr } from '@noble/ciphers/aes.js';
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512_256 } from '@noble/hashes/sha2.js';
import { abytes, aint } from '../util/bytes.js';
import { checkAead, checkAesCtr, checkChacha, checkHkdf, checkX25519, rejectZeroSharedSecret } from './_checks.js';
import type { CryptoBackend } from './types.js';
import { X25519_KEY_LENGTH } from './types.js';

const ZERO_NONCE = new Uint8Array(12);

/** Fills from the platform CSPRNG (Web Crypto), in chunks of at most 65536 bytes as it requires. */
function webRandomBytes(length: number): Uint8Array {
  aint('length', length, 0, 1 << 30);
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += 65536) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
  return out;
}

/** The portable backend. */
export const portableBackend: CryptoBackend = {
  name: 'portable',

  randomBytes: webRandomBytes,

  x25519(scalar: Uint8Array, point: Uint8Array): Uint8Array {
    checkX25519(scalar, point);
    let out: Uint8Array;
    try {
      out = nobleX25519.scalarMult(scalar, point);
    } catch {
      // noble throws on an all-zero result; report it as the Node backend does.
      out = new Uint8Array(X25519_KEY_LENGTH);
    }
    return rejectZeroSharedSecret(out);
  },

  x25519Base(scalar: Uint8Array): Uint8Array {
    abytes('scalar', scalar, X25519_KEY_LENGTH);
    return nobleX25519.scalarMultBase(scalar);
  },

  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    abytes('key', key);
    abytes('data', data);
    return hmac(sha256, key, data);
  },

  hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    checkHkdf(prk, info, length);
    if (length === 0) return new Uint8Array(0);
    return expand(sha256, prk, info, length);
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
    checkAesCtr(key, iv, data);
    return ctr(key, iv).encrypt(data);
  },

  chacha20Keystream(key: Uint8Array, length: number): Uint8Array {
    checkChacha(key, length);
    return chacha20(key, ZERO_NONCE, new Uint8Array(length));
  },

  sha512_256(data: Uint8Array): Uint8Array {
    abytes('data', data);
    return sha512_256(data);
  },

  chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const x = checkAead(key, nonce, ad, plaintext);
    return (x ? xchacha20poly1305 : chacha20poly1305)(key, nonce, ad).encrypt(plaintext);
  },

  chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    const x = checkAead(key, nonce, ad, sealed);
    try {
      return (x ? xchacha20poly1305 : chacha20poly1305)(key, nonce, ad).decrypt(sealed);
    } catch {
      return null;
    }
  },
};
