import type { CryptoBackend } from '../crypto/types.js';
import { wipe } from '../util/bytes.js';
import {
  BLINDING_SEED_LENGTH,
  GROUP_ELEMENT_LENGTH,
  KDF_INFO,
  KDF_OUTPUT_LENGTH,
  MAC_KEY_LENGTH,
  SPRP_KEY_LENGTH,
  STREAM_IV_LENGTH,
  STREAM_KEY_LENGTH,
} from './constants.js';

/** The per-hop keys that one shared secret yields. Views into one buffer; `wipe()` clears them all. */
export interface PacketKeys {
  /** mu in the Sphinx paper. */
  readonly headerMac: Uint8Array;
  /** rho: the AES-256-CTR key over beta. */
  readonly headerKey: Uint8Array;
  /** The AES-CTR initial counter block, reused as the AEZ nonce. */
  readonly headerIv: Uint8Array;
  /** pi: the AEZ key over the payload. */
  readonly payloadKey: Uint8Array;
  /** The ChaCha20 key from which the blinding factor b is drawn. */
  readonly blindingSeed: Uint8Array;
  wipe(): void;
}

/**
 * HKDF-SHA256 Expand (no Extract: the X25519 output is the PRK) with info
 * "katzenpost-kdf-v0-hkdf-sha256", split in the order Katzenpost uses.
 */
export function deriveKeys(crypto: CryptoBackend, sharedSecret: Uint8Array): PacketKeys {
  return splitKeys(crypto.hkdfSha256Expand(sharedSecret, KDF_INFO, KDF_OUTPUT_LENGTH));
}

/** A copy of `keys` in a buffer of its own (for keys made ahead of time, header-keys.ts). */
export function copyKeys(keys: PacketKeys): PacketKeys {
  const h = keys.headerMac;
  return splitKeys(new Uint8Array(h.buffer, h.byteOffset, KDF_OUTPUT_LENGTH).slice());
}

/** The keys as views into `okm` (KDF_OUTPUT_LENGTH bytes), in the order Katzenpost uses. */
function splitKeys(okm: Uint8Array): PacketKeys {
  let off = 0;
  const take = (n: number): Uint8Array => okm.subarray(off, (off += n));
  return {
    headerMac: take(MAC_KEY_LENGTH),
    headerKey: take(STREAM_KEY_LENGTH),
    headerIv: take(STREAM_IV_LENGTH),
    payloadKey: take(SPRP_KEY_LENGTH),
    blindingSeed: take(BLINDING_SEED_LENGTH),
    wipe: () => wipe(okm),
  };
}

/** b in the Sphinx paper: the first 32 bytes of ChaCha20 keyed by the blinding seed, zero nonce. */
export function blindingFactor(crypto: CryptoBackend, keys: PacketKeys): Uint8Array {
  return crypto.chacha20Keystream(keys.blindingSeed, GROUP_ELEMENT_LENGTH);
}
