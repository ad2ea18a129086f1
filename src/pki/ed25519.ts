/**
 * Ed25519 (RFC 8032) behind one small interface, and its portable implementation over
 * @noble/curves. The Node implementation (sodium-native) is in ./ed25519-node.ts.
 *
 * Both implementations accept exactly the same signatures, those libsodium's
 * crypto_sign_verify_detached accepts: the public key and R are canonical encodings of points
 * that are not of small order, S < L, and the cofactorless equation [S]B - [k]A = R holds, checked
 * by encoding the left side and comparing it with R's bytes. Agreeing on this matters: authorities
 * on different backends must reach the same verdict on every descriptor, or their votes differ.
 *
 * Portable: no `node:` imports.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { abytes, equalBytes } from '../util/bytes.js';

/** Ed25519 seed (the RFC 8032 private key) length. */
export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

/** Ed25519 signing and verification. Secrets are 32-byte seeds; implementations never keep them. */
export interface Ed25519 {
  /** Short name for diagnostics: 'node' or 'portable'. */
  readonly name: string;
  /**
   * The public key of a seed.
   * @throws {TypeError|RangeError} when `seed` is not 32 bytes.
   */
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  /**
   * A 64-byte signature of `message`.
   * @throws {TypeError|RangeError} when `seed` is not 32 bytes or `message` not bytes.
   */
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * True when `signature` is valid for `message` under `publicKey`. Never throws for a bad key or
   * signature of any length: the answer is false.
   * @throws {TypeError} only when an argument is not a Uint8Array.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

const Point = ed25519.Point;
const L = Point.Fn.ORDER;

function scalarFromLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** The portable implementation (@noble/curves). */
export const portableEd25519: Ed25519 = {
  name: 'portable',

  publicKeyFromSeed(seed: Uint8Array): Uint8Array {
    abytes('seed', seed, ED25519_SEED_LENGTH);
    return ed25519.getPublicKey(seed);
  },

  sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
    abytes('seed', seed, ED25519_SEED_LENGTH);
    abytes('message', message);
    return ed25519.sign(message, seed);
  },

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    abytes('publicKey', publicKey);
    abytes('message', message);
    abytes('signature', signature);
    if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
    try {
      const rBytes = signature.subarray(0, 32);
      const s = scalarFromLE(signature.subarray(32));
      if (s >= L) return false;
      // zip215 = false: only canonical encodings (y < p) decode.
      const A = Point.fromBytes(publicKey, false);
      const R = Point.fromBytes(rBytes, false);
      if (A.isSmallOrder() || R.isSmallOrder()) return false;
      const k = scalarFromLE(sha512.create().update(rBytes).update(publicKey).update(message).digest()) % L;
      const check = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
      return equalBytes(check.toBytes(), rBytes);
    } catch {
      return false;
    }
  },
};
