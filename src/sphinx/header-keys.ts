/**
 * The sender's half of Sphinx's key agreement: every hop's group element alpha_i and keys, from
 * the ephemeral secret x and the hops' public keys y_i. Portable: no `node:` imports.
 *
 * With b_j the blinding factor of hop j, Katzenpost computes
 *
 *     alpha_0 = X25519(x, 9)          alpha_i = X25519(b_{i-1}, alpha_{i-1})
 *     s_i     = X25519(b_{i-1}, … X25519(b_0, X25519(x, y_i)))
 *
 * which costs hop i an X25519 per factor: 15 for the secrets of a 5-hop header, 20 in all. X25519
 * clamps every scalar to a multiple of 8 and the curve's group has order 8ℓ, so both are [c_i]Q
 * for the integer c_i = clamp(x)·clamp(b_0)⋯clamp(b_{i-1}), and for a point Q on the curve the
 * result depends only on c_i mod ℓ, and (a u-coordinate being the same for Q and -Q) not on its
 * sign. Hop i >= 1 therefore takes one scalar k_i that clamping leaves as it is, with
 * k_i ≡ ±c_i (mod ℓ) (_curve25519.ts), and
 *
 *     alpha_i = X25519(k_i, 9)        a fixed-base multiplication
 *     s_i     = X25519(k_i, y_i)
 *
 * with the same bytes as the chain, for 2n X25519s per n-hop header, n of them fixed-base. The
 * chain remains for what the shortcut does not cover: a public key on the twist, whose group has
 * another order (no honest key is there), and the ~2^-126 of residues c_i that no clamped scalar
 * represents.
 */
import type { AsyncX25519 } from '../crypto/async-x25519.js';
import type { CryptoBackend } from '../crypto/types.js';
import { BackchannelError, isBackchannelError } from '../errors.js';
import { idKey, wipe } from '../util/bytes.js';
import { clampedRepresentative, clampedScalarModL, isOnCurve, mulModL } from './_curve25519.js';
import { blindingFactor, copyKeys, deriveKeys } from './kdf.js';
import type { PacketKeys } from './kdf.js';

/** alpha_i and the keys of every hop of a path. */
export interface HopKeys {
  /** alpha_0 (in the header) to alpha_{n-1}: what each hop will find in the header it receives. */
  readonly alphas: Uint8Array[];
  /** Every hop's keys; the caller wipes them. */
  readonly keys: PacketKeys[];
}

/** X25519 that reports a public key of small order (an all-zero result) as a Sphinx error. */
function dh(crypto: CryptoBackend, scalar: Uint8Array, point: Uint8Array): Uint8Array {
  try {
    return crypto.x25519(scalar, point);
  } catch (e) {
    if (isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER')) throw new BackchannelError('ERR_SPHINX_POINT', 'sphinx: invalid path, a public key has small order');
    throw e;
  }
}

/** s = X25519(b_{i-1}, … X25519(b_0, X25519(x, y))) for the blinding factors so far, as Katzenpost computes it. */
function chainedSecret(crypto: CryptoBackend, x: Uint8Array, blinds: readonly Uint8Array[], y: Uint8Array): Uint8Array {
  let s = dh(crypto, x, y);
  for (const b of blinds) {
    const t = dh(crypto, b, s);
    wipe(s);
    s = t;
  }
  return s;
}

/**
 * alpha_i and the keys of every hop, for the ephemeral secret `x` and the hops' public keys.
 * `onCurve` says whether a public key is on curve25519 (see onCurveCache).
 * @throws {BackchannelError} ERR_SPHINX_POINT when a public key has small order.
 */
export function hopKeys(crypto: CryptoBackend, x: Uint8Array, publicKeys: readonly Uint8Array[], onCurve: (publicKey: Uint8Array) => boolean): HopKeys {
  const alphas: Uint8Array[] = [crypto.x25519Base(x)];
  const keys: PacketKeys[] = [];
  const blinds: Uint8Array[] = [];
  let c = clampedScalarModL(x);
  try {
    for (let i = 0; i < publicKeys.length; i++) {
      const y = publicKeys[i]!;
      let s: Uint8Array;
      if (i === 0) {
        s = dh(crypto, x, y);
      } else {
        c = mulModL(c, clampedScalarModL(blinds[i - 1]!));
        const k = clampedRepresentative(c);
        try {
          alphas.push(k !== null ? crypto.x25519Base(k) : dh(crypto, blinds[i - 1]!, alphas[i - 1]!));
          s = k !== null && onCurve(y) ? dh(crypto, k, y) : chainedSecret(crypto, x, blinds, y);
        } finally {
          wipe(k ?? undefined);
        }
      }
      keys.push(deriveKeys(crypto, s));
      wipe(s);
      if (i < publicKeys.length - 1) blinds.push(blindingFactor(crypto, keys[i]!));
    }
    return { alphas, keys };
  } catch (e) {
    for (const k of keys) k.wipe();
    throw e;
  } finally {
    wipe(...blinds);
  }
}

/**
 * isOnCurve, remembered per public key (public data): a hop's mix key lasts an epoch and paths
 * reuse the same few nodes, while the test costs a modular exponentiation. The memory is cleared
 * when it holds `maxKeys` keys.
 */
export function onCurveCache(maxKeys: number): (publicKey: Uint8Array) => boolean {
  const known = new Map<string, boolean>();
  return (publicKey) => {
    const id = idKey(publicKey);
    let on = known.get(id);
    if (on === undefined) {
      if (known.size >= maxKeys) known.clear();
      on = isOnCurve(publicKey);
      known.set(id, on);
    }
    return on;
  };
}

/**
 * The hop keys of a header made ahead of time (docs/browser.md, "WebCrypto against @noble"): for
 * the ephemeral secret x and every hop of the path but the last, alpha_i and the keys; for the
 * last hop, its alpha and the scalar k whose product with that hop's public key is its secret.
 * The last hop's key is not needed until the packet is built (a forward packet's last hop is the
 * destination's gateway, known only then), and costs one X25519 at that time.
 *
 * Secret: `wipe()` clears every array; an entry is used once (Sphinx.createPacket / createSurb
 * wipe it).
 */
export interface PreparedHeader {
  /** The public keys of the hops whose keys are made (all but the last), in path order. */
  readonly publicKeys: readonly Uint8Array[];
  /** x, the ephemeral secret. */
  readonly x: Uint8Array;
  /** alpha_0 to alpha_m, one more than `keys` (the last hop's is made too). */
  readonly alphas: readonly Uint8Array[];
  /** The keys of hops 0 to m-1. */
  readonly keys: readonly PacketKeys[];
  /** b_0 to b_{m-1}: the blinding factors, for the chain (twist keys, see hopKeys). */
  readonly blinds: readonly Uint8Array[];
  /** The last hop's scalar: x itself when it is the first hop, else k_m (null: the chain is needed). */
  readonly lastScalar: Uint8Array | null;
  /** Whether `wipe()` ran (an entry is used once). */
  readonly wiped: boolean;
  wipe(): void;
}

/**
 * alpha_i and the keys of every hop in `publicKeys` (a path without its last hop, possibly empty)
 * and the last hop's alpha and scalar, for the ephemeral secret `x` (copied; the caller keeps and
 * wipes its own). The X25519s go to `async`, the two of each hop at once; the rest (HKDF, the
 * blinding factors, scalars mod ℓ) to `crypto`. The bytes are hopKeys's for the same x and path.
 * @throws {BackchannelError} (rejects) ERR_SPHINX_POINT when a public key has small order.
 */
export async function prepareHeaderKeys(
  crypto: CryptoBackend,
  async: AsyncX25519,
  x: Uint8Array,
  publicKeys: readonly Uint8Array[],
  onCurve: (publicKey: Uint8Array) => boolean,
): Promise<PreparedHeader> {
  const own = x.slice();
  const alphas: Uint8Array[] = [];
  const keys: PacketKeys[] = [];
  const blinds: Uint8Array[] = [];
  const ys = publicKeys.map((y) => y.slice());
  let lastScalar: Uint8Array | null = null;
  let wiped = false;
  const wipeAll = (): void => {
    wiped = true;
    for (const k of keys) k.wipe();
    wipe(own, lastScalar ?? undefined, ...blinds, ...alphas);
  };
  const adh = async (scalar: Uint8Array, point: Uint8Array): Promise<Uint8Array> => {
    try {
      return await async.x25519(scalar, point);
    } catch (e) {
      if (isBackchannelError(e, 'ERR_CRYPTO_LOW_ORDER')) throw new BackchannelError('ERR_SPHINX_POINT', 'sphinx: invalid path, a public key has small order');
      throw e;
    }
  };
  try {
    let c = clampedScalarModL(own);
    for (let i = 0; i <= ys.length; i++) {
      // The scalar of hop i: x for the first, else k_i ≡ ±x·b_0⋯b_{i-1} (mod ℓ), or null.
      let k: Uint8Array | null;
      if (i === 0) {
        k = own.slice();
      } else {
        c = mulModL(c, clampedScalarModL(blinds[i - 1]!));
        k = clampedRepresentative(c);
      }
      const y = ys[i];
      const alphaP = k !== null ? async.x25519Base(k) : adh(blinds[i - 1]!, alphas[i - 1]!);
      if (y === undefined) {
        lastScalar = k; // wiped with the rest should the alpha fail
        alphas.push(await alphaP);
        break;
      }
      let s: Uint8Array;
      try {
        const direct = k !== null && (i === 0 || onCurve(y));
        // The chain (rare: a key on the twist, or no clamped representative) on the synchronous backend.
        const [a, secret] = await Promise.all([alphaP, direct ? adh(k!, y) : Promise.resolve(chainedSecret(crypto, own, blinds, y))]);
        alphas.push(a);
        s = secret;
      } finally {
        wipe(k ?? undefined);
      }
      keys.push(deriveKeys(crypto, s));
      wipe(s);
      blinds.push(blindingFactor(crypto, keys[i]!));
    }
  } catch (e) {
    wipeAll();
    throw e;
  }
  return {
    publicKeys: ys,
    x: own,
    alphas,
    keys,
    blinds,
    lastScalar,
    get wiped() {
      return wiped;
    },
    wipe: wipeAll,
  };
}

/**
 * The HopKeys of a whole path from a prepared header and the last hop's public key `lastKey`, in
 * arrays of their own (the caller wipes the keys; the entry is wiped apart, by its owner). One
 * X25519 on `crypto` when the last hop's key is on the curve, else the chain.
 * @throws {BackchannelError} ERR_SPHINX_POINT when `lastKey` has small order.
 */
export function completeHopKeys(crypto: CryptoBackend, prepared: PreparedHeader, lastKey: Uint8Array, onCurve: (publicKey: Uint8Array) => boolean): HopKeys {
  const k = prepared.lastScalar;
  const s = k !== null && (prepared.keys.length === 0 || onCurve(lastKey)) ? dh(crypto, k, lastKey) : chainedSecret(crypto, prepared.x, prepared.blinds, lastKey);
  const last = deriveKeys(crypto, s);
  wipe(s);
  return { alphas: prepared.alphas.map((a) => a.slice()), keys: [...prepared.keys.map(copyKeys), last] };
}
