/** A crypto backend whose randomness is a deterministic ChaCha20 stream, for reproducible property tests. */
import type { CryptoBackend } from '../../src/crypto/types.js';

export function seededBackend(base: CryptoBackend, seed: Uint8Array): CryptoBackend {
  const key = base.hkdfSha256Expand(seed, new TextEncoder().encode('test rng'), 32);
  let buffer: Uint8Array = new Uint8Array(0);
  let used = 0;
  let calls = 0;
  return {
    ...base,
    randomBytes(length: number): Uint8Array {
      if (used + length > buffer.length) {
        // A fresh key per refill keeps the stream simple: key_{n} = HKDF(key, n).
        const k = base.hkdfSha256Expand(key, Uint8Array.of(calls++ & 0xff, calls >> 8), 32);
        buffer = base.chacha20Keystream(k, Math.max(4096, length));
        used = 0;
      }
      const out = buffer.slice(used, used + length);
      used += length;
      return out;
    },
  };
}
