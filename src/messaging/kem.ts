/**
 * ML-KEM-768 (FIPS 203) through @noble/post-quantum, with every bit of randomness drawn from the
 * injected crypto backend: key generation from a 64-byte seed (d ‖ z) and encapsulation with an
 * explicit 32-byte message, both FIPS 203's deterministic internal forms.
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError } from '../errors.js';
import { abytes, wipe } from '../util/bytes.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_ENCAPS_RANDOM_LENGTH, KEM_PUBLIC_LENGTH, KEM_SECRET_LENGTH, KEM_SEED_LENGTH } from './constants.js';

/** An ML-KEM-768 key pair: encapsulation key (public) and decapsulation key (secret). */
export interface KemKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** ML-KEM.KeyGen from a 64-byte seed (FIPS 203 §6.1, d ‖ z). */
export function kemKeyPairFromSeed(seed: Uint8Array): KemKeyPair {
  abytes('seed', seed, KEM_SEED_LENGTH);
  const { publicKey, secretKey } = ml_kem768.keygen(seed);
  return { publicKey, secretKey };
}

/** A fresh key pair from the backend's randomness; the seed is wiped. */
export function kemGenerate(c: CryptoBackend): KemKeyPair {
  const seed = c.randomBytes(KEM_SEED_LENGTH);
  try {
    return kemKeyPairFromSeed(seed);
  } finally {
    wipe(seed);
  }
}

/**
 * ML-KEM.Encaps to `publicKey` with the backend's randomness.
 * @throws {BackchannelError} ERR_MSG_KEY when `publicKey` is not a valid encapsulation key
 *   (FIPS 203 §7.2's modulus check).
 */
export function kemEncapsulate(c: CryptoBackend, publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  abytes('publicKey', publicKey, KEM_PUBLIC_LENGTH);
  const m = c.randomBytes(KEM_ENCAPS_RANDOM_LENGTH);
  try {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, m);
    return { ciphertext: cipherText, sharedSecret };
  } catch (cause) {
    throw new BackchannelError('ERR_MSG_KEY', 'messaging: invalid ML-KEM-768 encapsulation key', { cause });
  } finally {
    wipe(m);
  }
}

/**
 * ML-KEM.Decaps. A ciphertext that was tampered with yields an unrelated secret (implicit
 * rejection, FIPS 203 §6.3), which the AEAD that follows then refuses.
 */
export function kemDecapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  abytes('secretKey', secretKey, KEM_SECRET_LENGTH);
  abytes('ciphertext', ciphertext, KEM_CIPHERTEXT_LENGTH);
  return ml_kem768.decapsulate(ciphertext, secretKey);
}
