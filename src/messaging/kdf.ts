/**
 * The key derivations of the handshake and the ratchets, named after the Double Ratchet
 * specification (section 5.2 and, for header encryption, 4.2): KDF_RK_HE, KDF_CK, and the X3DH
 * KDF (X3DH spec section 2.2). HKDF-SHA256 (RFC 5869) and HMAC-SHA256 come from the crypto
 * backend, so that Node uses its native calls and a browser @noble.
 */
import type { CryptoBackend } from '../crypto/types.js';
import { abytes, aint, concatBytes, wipe } from '../util/bytes.js';
import {
  CHAIN_MESSAGE_CONSTANT,
  CHAIN_NEXT_CONSTANT,
  INFO_ROOT,
  INFO_X3DH,
  KEY_LENGTH,
  X3DH_PREFIX,
} from './constants.js';

/**
 * HKDF-SHA256 (RFC 5869 §2): Extract with `salt` (HMAC-SHA256(salt, ikm)), then Expand.
 * @throws {RangeError} when `length` exceeds 255 × 32.
 */
export function hkdf(c: CryptoBackend, salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  abytes('salt', salt);
  abytes('ikm', ikm);
  // RFC 5869 §2.2: an absent salt is HashLen zeros.
  const prk = c.hmacSha256(salt.length === 0 ? new Uint8Array(32) : salt, ikm);
  try {
    return c.hkdfSha256Expand(prk, info, length);
  } finally {
    wipe(prk);
  }
}

/** What X3DH hands to the ratchet: the shared secret SK and the two initial header keys (spec section 4.2, "shared_hka" and "shared_nhkb"). */
export interface X3dhKeys {
  sk: Uint8Array;
  /** The initiator's first sending header key (the responder's first next-header key for receiving). */
  hka: Uint8Array;
  /** The responder's first next-header key for sending (the initiator's first next-header key for receiving). */
  nhkb: Uint8Array;
}

/**
 * X3DH's KDF with the post-quantum secret mixed in: HKDF(salt = 32 zero bytes,
 * ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ DH4 ‖ SS_kem, info = INFO_X3DH), 96 bytes.
 */
export function kdfX3dh(c: CryptoBackend, dhs: readonly Uint8Array[], kemSecret: Uint8Array): X3dhKeys {
  const ikm = concatBytes(X3DH_PREFIX, ...dhs, kemSecret);
  const out = hkdf(c, new Uint8Array(32), ikm, INFO_X3DH, 3 * KEY_LENGTH);
  try {
    return { sk: out.slice(0, 32), hka: out.slice(32, 64), nhkb: out.slice(64, 96) };
  } finally {
    wipe(ikm, out);
  }
}

/** KDF_RK_HE's three outputs: the next root key, a chain key, the next header key. */
export interface RootStep {
  rk: Uint8Array;
  ck: Uint8Array;
  nhk: Uint8Array;
}

/**
 * KDF_RK_HE(rk, dh_out), with the post-quantum ratchet's ML-KEM shared secret appended to the
 * DH output when this step carries one: HKDF(salt = rk, ikm = dh ‖ [ss], info = INFO_ROOT), 96
 * bytes. The input lengths (32 or 64 bytes) keep the two forms apart.
 */
export function kdfRoot(c: CryptoBackend, rk: Uint8Array, dhOut: Uint8Array, pqSecret?: Uint8Array): RootStep {
  abytes('rk', rk, KEY_LENGTH);
  abytes('dhOut', dhOut, KEY_LENGTH);
  const ikm = pqSecret === undefined ? dhOut : concatBytes(dhOut, pqSecret);
  const out = hkdf(c, rk, ikm, INFO_ROOT, 3 * KEY_LENGTH);
  try {
    return { rk: out.slice(0, 32), ck: out.slice(32, 64), nhk: out.slice(64, 96) };
  } finally {
    wipe(out);
    if (ikm !== dhOut) wipe(ikm);
  }
}

/** KDF_CK(ck): next chain key HMAC(ck, 0x02) and message key HMAC(ck, 0x01) (spec section 5.2). */
export function kdfChain(c: CryptoBackend, ck: Uint8Array): { ck: Uint8Array; mk: Uint8Array } {
  abytes('ck', ck, KEY_LENGTH);
  return { ck: c.hmacSha256(ck, CHAIN_NEXT_CONSTANT), mk: c.hmacSha256(ck, CHAIN_MESSAGE_CONSTANT) };
}

/** Advances `ck` by `n` steps without keeping the message keys (tests and vector generation). */
export function chainAt(c: CryptoBackend, ck: Uint8Array, n: number): { ck: Uint8Array; mk: Uint8Array } {
  aint('n', n, 0, 1 << 20);
  let cur: Uint8Array = ck.slice();
  for (let i = 0; i < n; i++) {
    const next = kdfChain(c, cur);
    wipe(cur, next.mk);
    cur = next.ck;
  }
  const last = kdfChain(c, cur);
  wipe(cur);
  return last;
}
