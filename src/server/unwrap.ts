/**
 * What a node needs from whatever opens its packets: keys by epoch, and one outcome per packet.
 * The UnwrapPool (worker threads, Sphinx) is what servers use; the InlineUnwrapper opens packets
 * on the calling thread, synchronously, with any PacketFormat: the simulator's labelled packets.
 */
import type { PacketFormat } from '../sphinx/format.js';
import { X25519_PRIVATE_KEY_LENGTH } from '../sphinx/constants.js';
import { abytes, aint, wipe } from '../util/bytes.js';
import { BackchannelError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { UnwrapResult } from '../sphinx/sphinx.js';

/** Keys tried per packet at most: current, previous and next epoch, and one to spare. */
export const MAX_EPOCHS_PER_UNWRAP = 4;
/** What unwrapping one packet gave: a closed sum, switch over `kind`. */
export type UnwrapOutcome =
  /** What Sphinx.unwrap returns, with the epoch whose key opened the packet (the caller checks that epoch's replay cache). */
  | (UnwrapResult & { readonly epoch: number })
  | {
      readonly kind: 'error';
      /**
       * An ERR_SPHINX_* code from Sphinx.unwrap (ERR_SPHINX_MAC when every key tried failed the
       * MAC); ERR_SERVER when the worker holding the packet died (or for an unexpected
       * exception); ERR_LINK_CLOSED when the pool was closed first.
       */
      readonly code: ErrorCode;
    }
  | {
      /** No key is set for any of the epochs asked for. */
      readonly kind: 'no_key';
    };

/**
 * The codes an outcome can carry, by index in a record. ERR_SERVER stands for anything that is not
 * a Sphinx error (a bug, or a worker that died with the packet).
 */
export const OUTCOME_CODES = [
  'ERR_SERVER',
  'ERR_SPHINX_LENGTH',
  'ERR_SPHINX_VERSION',
  'ERR_SPHINX_MAC',
  'ERR_SPHINX_POINT',
  'ERR_SPHINX_COMMAND',
  'ERR_SPHINX_TAG',
  'ERR_SPHINX_GEOMETRY',
  'ERR_LINK_CLOSED',
] as const satisfies readonly ErrorCode[];
export type OutcomeCode = (typeof OUTCOME_CODES)[number];

function outcomeCode(e: unknown): OutcomeCode {
  if (e instanceof BackchannelError) {
    const i = (OUTCOME_CODES as readonly string[]).indexOf(e.code);
    if (i > 0) return OUTCOME_CODES[i]!;
  }
  return 'ERR_SERVER';
}

/**
 * Unwraps `packet` with the keys of `epochs` (the first `count` entries from `offset`), in order.
 * A MAC mismatch under one key moves on to the next; any other error is final (it does not depend
 * on the key, or comes after the MAC matched). No key for any epoch gives 'no_key'. With
 * `inPlace`, the packet is opened where it is (a forward packet is `packet` itself, a final
 * payload a view into it); a MAC mismatch leaves it intact for the next key.
 */
export function unwrapWithKeys(
  sphinx: Pick<PacketFormat, 'unwrap'>,
  keys: ReadonlyMap<number, Uint8Array>,
  packet: Uint8Array,
  epochs: ArrayLike<number>,
  offset: number,
  count: number,
  inPlace = false,
): UnwrapOutcome {
  let tried = false;
  for (let e = 0; e < count; e++) {
    const epoch = epochs[offset + e]!;
    const key = keys.get(epoch);
    if (key === undefined) continue;
    tried = true;
    try {
      const r = inPlace ? sphinx.unwrap(key, packet, packet) : sphinx.unwrap(key, packet);
      return r.kind === 'forward'
        ? { kind: 'forward', epoch, nextHop: r.nextHop, delayMs: r.delayMs, packet: r.packet, replayTag: r.replayTag }
        : { kind: 'final', epoch, recipient: r.recipient, surbId: r.surbId, payload: r.payload, replayTag: r.replayTag };
    } catch (err) {
      const code = outcomeCode(err);
      if (code !== 'ERR_SPHINX_MAC') return { kind: 'error', code };
    }
  }
  return tried ? { kind: 'error', code: 'ERR_SPHINX_MAC' } : { kind: 'no_key' };
}

export interface Unwrapper {
  /** Packets accepted and not yet answered. */
  readonly inFlight: number;
  /** Sets the mix private key for an epoch; the unwrapper keeps (and later zeroes) its own copy. */
  setKey(epoch: number, privateKey: Uint8Array): void;
  /** Forgets (and zeroes) the key for an epoch. */
  deleteKey(epoch: number): void;
  /**
   * Opens `packet` with the key of the first of `epochs` that fits: an outcome now, an outcome
   * later, or null when too many packets are in flight (nothing accepted).
   */
  unwrap(packet: Uint8Array, epochs: readonly number[]): UnwrapOutcome | Promise<UnwrapOutcome> | null;
  close(): Promise<void>;
}

/** Opens packets synchronously on the calling thread. */
export class InlineUnwrapper implements Unwrapper {
  readonly #format: PacketFormat;
  readonly #keys = new Map<number, Uint8Array>();
  #closed = false;

  constructor(format: PacketFormat) {
    this.#format = format;
  }

  get inFlight(): number {
    return 0;
  }

  setKey(epoch: number, privateKey: Uint8Array): void {
    aint('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
    abytes('privateKey', privateKey, X25519_PRIVATE_KEY_LENGTH);
    if (this.#closed) return;
    wipe(this.#keys.get(epoch));
    this.#keys.set(epoch, privateKey.slice());
  }

  deleteKey(epoch: number): void {
    wipe(this.#keys.get(epoch));
    this.#keys.delete(epoch);
  }

  unwrap(packet: Uint8Array, epochs: readonly number[]): UnwrapOutcome {
    if (this.#closed) return { kind: 'error', code: 'ERR_LINK_CLOSED' };
    if (packet.length !== this.#format.geometry.packetLength) return { kind: 'error', code: 'ERR_SPHINX_LENGTH' };
    return unwrapWithKeys(this.#format, this.#keys, packet, epochs, 0, Math.min(epochs.length, MAX_EPOCHS_PER_UNWRAP));
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const k of this.#keys.values()) wipe(k);
    this.#keys.clear();
    return Promise.resolve();
  }
}
