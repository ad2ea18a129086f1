/**
 * Ed25519 through libsodium (sodium-native): the implementation servers use. It accepts exactly
 * the signatures the portable implementation accepts (see ./ed25519.ts).
 */
import { createRequire } from 'node:module';
import { abytes, wipe } from '../util/bytes.js';
import type { Ed25519 } from './ed25519.js';
import { ED25519_PUBLIC_KEY_LENGTH, ED25519_SEED_LENGTH, ED25519_SIGNATURE_LENGTH } from './ed25519.js';

interface SodiumSign {
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean;
  crypto_sign_SECRETKEYBYTES: number;
}

// sodium-native is CommonJS and ships its prebuilt binaries inside the package.
const sodium = createRequire(import.meta.url)('sodium-native') as SodiumSign;

/** The Node implementation (libsodium). The expanded secret key is wiped after every call. */
export const nodeEd25519: Ed25519 = {
  name: 'node',

  publicKeyFromSeed(seed: Uint8Array): Uint8Array {
    abytes('seed', seed, ED25519_SEED_LENGTH);
    const pk = new Uint8Array(ED25519_PUBLIC_KEY_LENGTH);
    const sk = new Uint8Array(sodium.crypto_sign_SECRETKEYBYTES);
    try {
      sodium.crypto_sign_seed_keypair(pk, sk, seed);
      return pk;
    } finally {
      wipe(sk);
    }
  },

  sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
    abytes('seed', seed, ED25519_SEED_LENGTH);
    abytes('message', message);
    const pk = new Uint8Array(ED25519_PUBLIC_KEY_LENGTH);
    const sk = new Uint8Array(sodium.crypto_sign_SECRETKEYBYTES);
    const sig = new Uint8Array(ED25519_SIGNATURE_LENGTH);
    try {
      sodium.crypto_sign_seed_keypair(pk, sk, seed);
      sodium.crypto_sign_detached(sig, message, sk);
      return sig;
    } finally {
      wipe(sk);
    }
  },

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    abytes('publicKey', publicKey);
    abytes('message', message);
    abytes('signature', signature);
    // sodium-native asserts on lengths (and would accept a longer signature); answer false instead.
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  },
};
