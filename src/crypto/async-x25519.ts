/**
 * X25519 that may answer later: beside the synchronous CryptoBackend, for work that can be done
 * ahead of time (the header keys of packets not yet sent, src/client/header-pool.ts). In a browser
 * WebCrypto's X25519 is about ten times faster than @noble's but returns promises, which Sphinx's
 * synchronous packet building cannot take; the pool awaits them between ticks instead.
 *
 * Two implementations: `webCryptoX25519()` (feature-detected: null where the platform has no
 * X25519 in `crypto.subtle`, as in Chromium before 133) and `syncX25519(backend)`, a backend's
 * own X25519 behind promises, for Node and tests. Both compute RFC 7748's X25519 and report an
 * all-zero result as the backends do (ERR_CRYPTO_LOW_ORDER). Portable: no `node:` imports.
 */
import { BackchannelError } from '../errors.js';
import { equalBytes, fromHex, wipe } from '../util/bytes.js';
import { checkX25519, rejectZeroSharedSecret } from './_checks.js';
import type { CryptoBackend } from './types.js';
import { X25519_KEY_LENGTH } from './types.js';

export interface AsyncX25519 {
  /** 'webcrypto' or 'sync' (a backend's X25519 behind promises), for diagnostics and benchmarks. */
  readonly name: string;
  /**
   * X25519(scalar, point), RFC 7748 (the scalar is clamped). The arrays are read before the first
   * await, so the caller may wipe them once the call has returned its promise.
   * @throws {BackchannelError} (rejects) ERR_CRYPTO_LOW_ORDER when the result is all zero.
   */
  x25519(scalar: Uint8Array, point: Uint8Array): Promise<Uint8Array>;
  /** X25519(scalar, 9). */
  x25519Base(scalar: Uint8Array): Promise<Uint8Array>;
}

/** A backend's synchronous X25519 behind promises (Node, tests): the same bytes, no gain in time. */
export function syncX25519(backend: CryptoBackend): AsyncX25519 {
  return {
    name: 'sync',
    x25519: (scalar, point) => {
      try {
        return Promise.resolve(backend.x25519(scalar, point));
      } catch (e) {
        return Promise.reject(e);
      }
    },
    x25519Base: (scalar) => {
      try {
        return Promise.resolve(backend.x25519Base(scalar));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

/** The DER of a PKCS #8 PrivateKeyInfo for X25519 (RFC 8410) up to the 32 key bytes. */
const PKCS8_PREFIX = fromHex('302e020100300506032b656e04220420');
const BASE_POINT = (() => {
  const u = new Uint8Array(X25519_KEY_LENGTH);
  u[0] = 9;
  return u;
})();
const ALGORITHM = { name: 'X25519' } as const;

/** RFC 7748 §5.2's first test vector: detection runs it, so a platform that gets it wrong is not used. */
const VECTOR = {
  scalar: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
  point: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
  result: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
};

interface Subtle {
  importKey(format: 'raw' | 'pkcs8', keyData: Uint8Array, algorithm: typeof ALGORITHM, extractable: boolean, usages: string[]): Promise<unknown>;
  deriveBits(algorithm: { name: 'X25519'; public: unknown }, baseKey: unknown, length: number): Promise<ArrayBuffer>;
}

function subtleOf(): Subtle | null {
  const c = (globalThis as { crypto?: { subtle?: unknown } }).crypto;
  return c?.subtle === undefined || c.subtle === null ? null : (c.subtle as Subtle);
}

/** WebCrypto's X25519 over `subtle`: each call imports its scalar (PKCS #8, wiped once imported) and point. */
function overSubtle(subtle: Subtle): AsyncX25519 {
  const x25519 = async (scalar: Uint8Array, point: Uint8Array): Promise<Uint8Array> => {
    checkX25519(scalar, point);
    const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + X25519_KEY_LENGTH);
    pkcs8.set(PKCS8_PREFIX);
    pkcs8.set(scalar, PKCS8_PREFIX.length);
    const pub = point.slice();
    let priv: unknown;
    let pubKey: unknown;
    try {
      [priv, pubKey] = await Promise.all([subtle.importKey('pkcs8', pkcs8, ALGORITHM, false, ['deriveBits']), subtle.importKey('raw', pub, ALGORITHM, false, [])]);
    } finally {
      wipe(pkcs8);
    }
    let bits: ArrayBuffer;
    try {
      bits = await subtle.deriveBits({ name: 'X25519', public: pubKey }, priv, 256);
    } catch (e) {
      // WebCrypto refuses an all-zero result (a small-order point) with an OperationError.
      if (e instanceof Error && e.name === 'OperationError') {
        throw new BackchannelError('ERR_CRYPTO_LOW_ORDER', 'crypto: X25519 produced the all-zero value (small-order point)');
      }
      throw e;
    }
    return rejectZeroSharedSecret(new Uint8Array(bits));
  };
  return { name: 'webcrypto', x25519, x25519Base: (scalar) => x25519(scalar, BASE_POINT) };
}

/**
 * WebCrypto's X25519 when the platform has it and it computes RFC 7748's test vector; null
 * otherwise (everything then stays on the synchronous backend). Never rejects.
 */
export async function webCryptoX25519(): Promise<AsyncX25519 | null> {
  const subtle = subtleOf();
  if (subtle === null) return null;
  const impl = overSubtle(subtle);
  try {
    const out = await impl.x25519(fromHex(VECTOR.scalar), fromHex(VECTOR.point));
    return equalBytes(out, fromHex(VECTOR.result)) ? impl : null;
  } catch {
    return null;
  }
}
