/**
 * Noise primitives on Node: ChaCha20-Poly1305 through libsodium (sodium-native), which writes
 * into the caller's buffer without a cipher object per message; AES-256-GCM, SHA-2 and BLAKE2
 * through node:crypto (OpenSSL).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { nodeBackend } from '../crypto/node.js';
import type { NoiseAead, NoiseCrypto, NoiseHash } from './crypto.js';
import { HASH_LENGTHS, TAG_LENGTH, setNonceBE, setNonceLE } from './crypto.js';
import type { CipherName, HashName } from './patterns.js';

interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}

const sodium = createRequire(import.meta.url)('sodium-native') as SodiumAead;

const chachaPoly: NoiseAead = {
  name: 'ChaChaPoly',
  setNonce: setNonceLE,
  encryptInto(out, key, nonce, ad, plaintext) {
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out.subarray(0, plaintext.length + TAG_LENGTH), plaintext, ad, null, nonce, key);
  },
  decryptInto(out, key, nonce, ad, ciphertext) {
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out.subarray(0, ciphertext.length - TAG_LENGTH), null, ciphertext, ad, nonce, key);
      return true;
    } catch {
      return false;
    }
  },
};

const aesGcm: NoiseAead = {
  name: 'AESGCM',
  setNonce: setNonceBE,
  encryptInto(out, key, nonce, ad, plaintext) {
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    c.setAAD(ad);
    const body = c.update(plaintext);
    c.final();
    out.set(body, 0);
    out.set(c.getAuthTag(), plaintext.length);
  },
  decryptInto(out, key, nonce, ad, ciphertext) {
    const n = ciphertext.length - TAG_LENGTH;
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    d.setAAD(ad);
    d.setAuthTag(ciphertext.subarray(n));
    const body = d.update(ciphertext.subarray(0, n));
    try {
      d.final();
    } catch {
      body.fill(0);
      return false;
    }
    out.set(body, 0);
    body.fill(0);
    return true;
  },
};

const OPENSSL_HASH: Record<HashName, string> = {
  SHA256: 'sha256',
  SHA512: 'sha512',
  BLAKE2s: 'blake2s256',
  BLAKE2b: 'blake2b512',
};

function nodeHash(name: HashName): NoiseHash {
  const algorithm = OPENSSL_HASH[name];
  return {
    name,
    ...HASH_LENGTHS[name],
    digest(...parts) {
      const h = createHash(algorithm);
      for (const p of parts) h.update(p);
      const d = h.digest();
      return new Uint8Array(d.buffer, d.byteOffset, d.length);
    },
  };
}

const HASHES: Record<HashName, NoiseHash> = {
  SHA256: nodeHash('SHA256'),
  SHA512: nodeHash('SHA512'),
  BLAKE2s: nodeHash('BLAKE2s'),
  BLAKE2b: nodeHash('BLAKE2b'),
};

export const nodeNoiseCrypto: NoiseCrypto = {
  dh: nodeBackend,
  aead: (name: CipherName) => (name === 'ChaChaPoly' ? chachaPoly : aesGcm),
  hash: (name: HashName) => HASHES[name],
};
