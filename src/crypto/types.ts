/**
 * The one small interface behind which the platform's cryptography sits. Protocol code (Sphinx,
 * and later Noise and the messaging layer) receives a backend as an argument and never imports a
 * platform module itself, so the same code runs on Node (native calls) and in a browser (@noble).
 *
 * Every method checks its arguments (TypeError for a wrong type, RangeError for a wrong length)
 * and returns fresh arrays that the caller owns and may wipe.
 */
export interface CryptoBackend {
  /** Short name for benchmarks and diagnostics: 'node' or 'portable'. */
  readonly name: string;

  /** `length` bytes from the platform CSPRNG (or an injected generator in tests). */
  randomBytes(length: number): Uint8Array;

  /**
   * X25519(scalar, point) as RFC 7748 defines it (the scalar is clamped).
   * @throws {BackchannelError} ERR_CRYPTO_LOW_ORDER when the result is all zero, which is the
   *   case exactly when `point` has small order (clamping clears the cofactor).
   */
  x25519(scalar: Uint8Array, point: Uint8Array): Uint8Array;

  /** X25519(scalar, 9): the public key of a private scalar. */
  x25519Base(scalar: Uint8Array): Uint8Array;

  /** HMAC-SHA256(key, data), 32 bytes. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;

  /** HKDF-SHA256 Expand (RFC 5869 §2.3) with `prk` used directly as the pseudorandom key. */
  hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** AES-256-CTR: `data` XOR the key stream that starts at counter block `iv` (128-bit big-endian counter). */
  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;

  /** The first `length` bytes of the ChaCha20 key stream for `key`, zero nonce, block counter 0. */
  chacha20Keystream(key: Uint8Array, length: number): Uint8Array;

  /** SHA-512/256 (FIPS 180-4), 32 bytes. */
  sha512_256(data: Uint8Array): Uint8Array;

  /**
   * AEAD seal: ChaCha20-Poly1305 (RFC 8439) with a 12-byte `nonce`, XChaCha20-Poly1305
   * (draft-irtf-cfrg-xchacha) with a 24-byte one. Returns ciphertext ‖ 16-byte tag.
   */
  chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;

  /** AEAD open (see `chacha20Poly1305Seal`): the plaintext, or null when the tag does not verify (checked in constant time). */
  chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

/** Lengths the backends share. */
export const X25519_KEY_LENGTH = 32;
export const SHA256_LENGTH = 32;
export const AES256_KEY_LENGTH = 32;
export const AES_BLOCK_LENGTH = 16;
export const CHACHA20_KEY_LENGTH = 32;
/** ChaCha20-Poly1305 nonces (RFC 8439 and XChaCha20) and tag. */
export const CHACHA20POLY1305_NONCE_LENGTH = 12;
export const XCHACHA20POLY1305_NONCE_LENGTH = 24;
export const POLY1305_TAG_LENGTH = 16;
/** RFC 5869 §2.3: L <= 255 * HashLen. */
export const HKDF_SHA256_MAX_LENGTH = 255 * SHA256_LENGTH;
