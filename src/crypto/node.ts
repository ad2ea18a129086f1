/**
 * The Node backend: the fastest native call for each primitive, as measured by
 * `npm run bench -- crypto` (X25519: sodium-native beats KeyObjects imported from JWK and
 * @noble/curves; HMAC and HKDF: SHA-256 through sodium-native, which avoids an OpenSSL object per
 * call; AES-CTR and SHA-512/256: node:crypto).
 */
import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { abytes, aint } from '../util/bytes.js';
import { checkAesCtr, checkChacha, checkHkdf, checkX25519, rejectZeroSharedSecret } from './_checks.js';
import type { CryptoBackend } from './types.js';
import { SHA256_LENGTH, X25519_KEY_LENGTH } from './types.js';

interface Sodium {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_hash_sha256(out: Uint8Array, data: Uint8Array): void;
  crypto_stream_chacha20(out: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  crypto_stream_chacha20_NONCEBYTES: number;
}

// sodium-native is CommonJS and ships its prebuilt binaries inside the package.
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;

const BLOCK = 64; // SHA-256 block length, the HMAC pad length (RFC 2104)
const CHACHA_ZERO_NONCE = new Uint8Array(sodium.crypto_stream_chacha20_NONCEBYTES);

/**
 * HMAC-SHA256 (RFC 2104) as two one-shot SHA-256 calls over key^ipad ‖ message and
 * key^opad ‖ inner. Each native call costs more than the compressions it saves, so reusing hash
 * states (four calls per MAC) is slower here than hashing the pad again (two calls).
 */
class Hmac {
  /** key^ipad, followed by room for the message. */
  #inner: Uint8Array;
  /** key^opad ‖ inner hash. */
  readonly #outer = new Uint8Array(BLOCK + SHA256_LENGTH);

  constructor(key: Uint8Array, maxMessageLength: number) {
    this.#inner = new Uint8Array(BLOCK + maxMessageLength);
    const k = this.#outer.subarray(0, BLOCK);
    if (key.length > BLOCK) sodium.crypto_hash_sha256(k.subarray(0, SHA256_LENGTH), key);
    else k.set(key);
    for (let i = 0; i < BLOCK; i++) {
      this.#inner[i] = k[i]! ^ 0x36;
      k[i]! ^= 0x5c;
    }
  }

  /** Room for the message after the inner pad: write it here, then call mac(length). */
  get message(): Uint8Array {
    return this.#inner.subarray(BLOCK);
  }

  /** HMAC of the first `length` bytes of `message`, written into `out`. */
  mac(length: number, out: Uint8Array): void {
    sodium.crypto_hash_sha256(this.#outer.subarray(BLOCK), this.#inner.subarray(0, BLOCK + length));
    sodium.crypto_hash_sha256(out, this.#outer);
  }

  wipe(): void {
    this.#inner.fill(0);
    this.#outer.fill(0);
  }
}

/** The Node backend. */
export const nodeBackend: CryptoBackend = {
  name: 'node',

  randomBytes(length: number): Uint8Array {
    aint('length', length, 0, 1 << 30);
    return randomFillSync(new Uint8Array(length));
  },

  x25519(scalar: Uint8Array, point: Uint8Array): Uint8Array {
    checkX25519(scalar, point);
    const out = new Uint8Array(X25519_KEY_LENGTH);
    try {
      sodium.crypto_scalarmult(out, scalar, point);
    } catch {
      // libsodium refuses an all-zero result itself; report it the same way as the portable backend.
    }
    return rejectZeroSharedSecret(out);
  },

  x25519Base(scalar: Uint8Array): Uint8Array {
    abytes('scalar', scalar, X25519_KEY_LENGTH);
    const out = new Uint8Array(X25519_KEY_LENGTH);
    sodium.crypto_scalarmult_base(out, scalar);
    return out;
  },

  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    abytes('key', key);
    abytes('data', data);
    const h = new Hmac(key, data.length);
    h.message.set(data);
    const out = new Uint8Array(SHA256_LENGTH);
    h.mac(data.length, out);
    h.wipe();
    return out;
  },

  hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    checkHkdf(prk, info, length);
    const h = new Hmac(prk, SHA256_LENGTH + info.length + 1);
    const m = h.message;
    const okm = new Uint8Array(length);
    const t = new Uint8Array(SHA256_LENGTH);
    for (let off = 0, i = 1; off < length; off += SHA256_LENGTH, i++) {
      // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), with T(0) empty.
      const prev = i === 1 ? 0 : SHA256_LENGTH;
      if (prev > 0) m.set(t);
      m.set(info, prev);
      m[prev + info.length] = i;
      h.mac(prev + info.length + 1, t);
      okm.set(t.subarray(0, Math.min(SHA256_LENGTH, length - off)), off);
    }
    t.fill(0);
    h.wipe();
    return okm;
  },

  aes256Ctr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
    checkAesCtr(key, iv, data);
    const c = createCipheriv('aes-256-ctr', key, iv);
    const out = c.update(data);
    c.final();
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  },

  chacha20Keystream(key: Uint8Array, length: number): Uint8Array {
    checkChacha(key, length);
    const out = new Uint8Array(length);
    // The original ChaCha20 (64-bit nonce) and RFC 8439 agree on the key stream for a zero nonce
    // and counter 0 for the first 256 GiB, far beyond any length used here.
    sodium.crypto_stream_chacha20(out, CHACHA_ZERO_NONCE, key);
    return out;
  },

  sha512_256(data: Uint8Array): Uint8Array {
    abytes('data', data);
    const d = createHash('sha512-256').update(data).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  },
};
