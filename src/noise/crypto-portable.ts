/** Noise primitives from @noble/* only (no `node:` imports), for the browser build. */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { portableBackend } from '../crypto/portable.js';
import type { NoiseAead, NoiseCrypto, NoiseHash } from './crypto.js';
import { HASH_LENGTHS, TAG_LENGTH, setNonceBE, setNonceLE } from './crypto.js';
import type { CipherName, HashName } from './patterns.js';

type AeadFactory = (key: Uint8Array, nonce: Uint8Array, ad?: Uint8Array) => {
  encrypt(plaintext: Uint8Array, output?: Uint8Array): Uint8Array;
  decrypt(ciphertext: Uint8Array, output?: Uint8Array): Uint8Array;
};

function nobleAead(name: CipherName, factory: AeadFactory, setNonce: NoiseAead['setNonce']): NoiseAead {
  return {
    name,
    setNonce,
    encryptInto(out, key, nonce, ad, plaintext) {
      out.set(factory(key, nonce, ad).encrypt(plaintext), 0);
    },
    decryptInto(out, key, nonce, ad, ciphertext) {
      let plain: Uint8Array;
      try {
        plain = factory(key, nonce, ad).decrypt(ciphertext);
      } catch {
        return false;
      }
      out.set(plain.subarray(0, ciphertext.length - TAG_LENGTH), 0);
      plain.fill(0);
      return true;
    },
  };
}

const chachaPoly = nobleAead('ChaChaPoly', chacha20poly1305, setNonceLE);
const aesGcm = nobleAead('AESGCM', gcm, setNonceBE);

interface IncrementalHash {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}

function nobleHash(name: HashName, fn: { create(): IncrementalHash }): NoiseHash {
  return {
    name,
    ...HASH_LENGTHS[name],
    digest(...parts) {
      const h = fn.create();
      for (const p of parts) h.update(p);
      return h.digest();
    },
  };
}

const HASHES: Record<HashName, NoiseHash> = {
  SHA256: nobleHash('SHA256', sha256),
  SHA512: nobleHash('SHA512', sha512),
  BLAKE2s: nobleHash('BLAKE2s', blake2s),
  BLAKE2b: nobleHash('BLAKE2b', blake2b),
};

export const portableNoiseCrypto: NoiseCrypto = {
  dh: portableBackend,
  aead: (name: CipherName) => (name === 'ChaChaPoly' ? chachaPoly : aesGcm),
  hash: (name: HashName) => HASHES[name],
};
