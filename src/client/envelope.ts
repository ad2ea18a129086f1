/**
 * The envelope: a frame sealed to the recipient's mailbox key, so that the recipient's gateway
 * (which removes the last Sphinx layer) sees neither the content nor the kind of what it stores:
 * a message fragment and a loop cover packet look alike.
 *
 *     ephemeral X25519 public key (32) ‖ ChaCha20-Poly1305 ciphertext of the frame ‖ tag (16)
 *
 * key = HKDF-SHA256(salt = "backchannel envelope v1", ikm = X25519(e, mailbox),
 *                   info = ephemeral ‖ mailbox), 32 bytes; nonce = 0 (every key is used once);
 * associated data = ephemeral ‖ mailbox. This is transport privacy only: messages are not
 * authenticated here (the messaging layer above adds deniable sessions). Portable.
 */
import type { CryptoBackend } from '../crypto/types.js';
import type { NoiseAead } from '../noise/crypto.js';
import { concatBytes, wipe } from '../util/bytes.js';

export const ENVELOPE_OVERHEAD = 32 + 16;
const SALT = new TextEncoder().encode('backchannel envelope v1');
const NONCE = new Uint8Array(12);

function envelopeKey(crypto: CryptoBackend, shared: Uint8Array, ephemeral: Uint8Array, mailbox: Uint8Array): Uint8Array {
  const prk = crypto.hmacSha256(SALT, shared);
  try {
    return crypto.hkdfSha256Expand(prk, concatBytes(ephemeral, mailbox), 32);
  } finally {
    wipe(prk);
  }
}

/** An envelope's ephemeral key pair made ahead of time (src/client/header-pool.ts). */
export interface EnvelopeKey {
  /** The 32-byte secret; seal wipes it. */
  readonly secret: Uint8Array;
  /** X25519(secret, 9). */
  readonly publicKey: Uint8Array;
}

/**
 * Seals `frame` to `mailbox` (an X25519 public key), with a fresh ephemeral key, or with
 * `ephemeralKey` made ahead (the same bytes as when its secret is drawn here; it is wiped).
 */
export function seal(crypto: CryptoBackend, aead: NoiseAead, mailbox: Uint8Array, frame: Uint8Array, ephemeralKey?: EnvelopeKey): Uint8Array {
  const e = ephemeralKey?.secret ?? crypto.randomBytes(32);
  const ephemeral = ephemeralKey?.publicKey ?? crypto.x25519Base(e);
  const shared = crypto.x25519(e, mailbox);
  const key = envelopeKey(crypto, shared, ephemeral, mailbox);
  const out = new Uint8Array(ENVELOPE_OVERHEAD + frame.length);
  out.set(ephemeral);
  aead.encryptInto(out.subarray(32), key, NONCE, concatBytes(ephemeral, mailbox), frame);
  wipe(e, shared, key);
  return out;
}

/** Opens an envelope with the mailbox's private key; null when it does not authenticate. */
export function open(crypto: CryptoBackend, aead: NoiseAead, mailboxPrivate: Uint8Array, mailbox: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.length < ENVELOPE_OVERHEAD) return null;
  const ephemeral = sealed.subarray(0, 32);
  let shared: Uint8Array;
  try {
    shared = crypto.x25519(mailboxPrivate, ephemeral);
  } catch {
    return null; // a low-order point
  }
  const key = envelopeKey(crypto, shared, ephemeral, mailbox);
  const out = new Uint8Array(sealed.length - ENVELOPE_OVERHEAD);
  const ok = aead.decryptInto(out, key, NONCE, concatBytes(ephemeral, mailbox), sealed.subarray(32));
  wipe(shared, key);
  return ok ? out : null;
}
