/**
 * Reproducible randomness for simulations: a ChaCha20 keystream keyed by the scenario's seed. A
 * simulation is an experiment, not a deployment, so its "CSPRNG" is seeded on purpose: the same
 * scenario gives the same run. Nothing outside src/sim uses this.
 */
import type { CryptoBackend } from '../crypto/types.js';

/** One seeded stream, read as bytes or as integers. */
export interface SeededStream {
  /** The next `n` bytes, in a fresh array. */
  bytes(n: number): Uint8Array;
  /**
   * A uniform integer in [0, n), as randomIntFrom(bytes) (src/pki/route.ts) gives it, from the
   * same bytes of the stream (4 a try, big-endian, the same rejection): the same numbers, without
   * an array per draw. The simulator draws several per packet.
   */
  int(n: number): number;
}

export function seededStream(crypto: CryptoBackend, seed: string): SeededStream {
  const root = crypto.sha512_256(new TextEncoder().encode(`backchannel sim ${seed}`));
  let buffer: Uint8Array = new Uint8Array(0);
  let used = 0;
  let block = 0;
  const refill = (n: number): void => {
    const info = new Uint8Array(8);
    new DataView(info.buffer).setFloat64(0, block++);
    buffer = crypto.chacha20Keystream(crypto.hkdfSha256Expand(root, info, 32), Math.max(1 << 16, n));
    used = 0;
  };
  return {
    bytes(n: number): Uint8Array {
      if (used + n > buffer.length) refill(n);
      const out = buffer.slice(used, used + n);
      used += n;
      return out;
    },
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError('"n" expected an integer in [1, 2^32]');
      const limit = Math.floor(2 ** 32 / n) * n;
      for (;;) {
        if (used + 4 > buffer.length) refill(4);
        const b = buffer;
        const v = ((b[used]! << 24) | (b[used + 1]! << 16) | (b[used + 2]! << 8) | b[used + 3]!) >>> 0;
        used += 4;
        if (v < limit) return v % n;
      }
    },
  };
}

/** The stream's bytes alone (see seededStream). */
export function seededRandomBytes(crypto: CryptoBackend, seed: string): (n: number) => Uint8Array {
  return seededStream(crypto, seed).bytes;
}

/** A uniform float in (0, 1] from 53 random bits, drawn from a 64 KiB buffer of the stream (fast path for the simulator's own choices). */
export function seededUniform(randomBytes: (n: number) => Uint8Array): () => number {
  let buf: Uint8Array = new Uint8Array(0);
  let view = new DataView(buf.buffer);
  let off = 0;
  return () => {
    if (off + 8 > buf.length) {
      buf = randomBytes(1 << 16);
      view = new DataView(buf.buffer, buf.byteOffset, buf.length);
      off = 0;
    }
    const hi = view.getUint32(off) >>> 11; // 21 bits
    const lo = view.getUint32(off + 4); // 32 bits
    off += 8;
    return (hi * 4294967296 + lo + 1) / 9007199254740992;
  };
}
