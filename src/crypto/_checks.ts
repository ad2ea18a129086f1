import { BackchannelError } from '../errors.js';
import { abytes, aint, isZero } from '../util/bytes.js';
import {
  AES256_KEY_LENGTH,
  AES_BLOCK_LENGTH,
  CHACHA20_KEY_LENGTH,
  CHACHA20POLY1305_NONCE_LENGTH,
  HKDF_SHA256_MAX_LENGTH,
  X25519_KEY_LENGTH,
  XCHACHA20POLY1305_NONCE_LENGTH,
} from './types.js';

// Argument checks shared by every backend, so that both give the same errors for the same input.

export function checkX25519(scalar: unknown, point: unknown): void {
  abytes('scalar', scalar, X25519_KEY_LENGTH);
  abytes('point', point, X25519_KEY_LENGTH);
}

/** Rejects an all-zero X25519 output (a small-order input point). */
export function rejectZeroSharedSecret(out: Uint8Array): Uint8Array {
  if (isZero(out)) {
    out.fill(0);
    throw new BackchannelError('ERR_CRYPTO_LOW_ORDER', 'crypto: X25519 produced the all-zero value (small-order point)');
  }
  return out;
}

export function checkHkdf(prk: unknown, info: unknown, length: unknown): void {
  abytes('prk', prk);
  abytes('info', info);
  aint('length', length, 0, HKDF_SHA256_MAX_LENGTH);
}

export function checkAesCtr(key: unknown, iv: unknown, data: unknown): void {
  abytes('key', key, AES256_KEY_LENGTH);
  abytes('iv', iv, AES_BLOCK_LENGTH);
  abytes('data', data);
}

export function checkChacha(key: unknown, length: unknown): void {
  abytes('key', key, CHACHA20_KEY_LENGTH);
  aint('length', length, 0, 1 << 30);
}

/** Checks AEAD arguments; true for a 24-byte (XChaCha20) nonce, false for a 12-byte one. */
export function checkAead(key: unknown, nonce: unknown, ad: unknown, data: unknown): boolean {
  abytes('key', key, CHACHA20_KEY_LENGTH);
  abytes('nonce', nonce, CHACHA20POLY1305_NONCE_LENGTH, XCHACHA20POLY1305_NONCE_LENGTH);
  abytes('ad', ad);
  abytes('data', data);
  return nonce.length === XCHACHA20POLY1305_NONCE_LENGTH;
}
