/**
 * What a node needs from whatever opens its packets: keys by epoch, and one outcome per packet.
 * The UnwrapPool (worker threads, Sphinx) is what servers use; the InlineUnwrapper opens packets
 * on the calling thread, synchronously, with any PacketFormat: the simulator's labelled packets.
 */
import type { PacketFormat } from '../sphinx/format.js';
import { X25519_PRIVATE_KEY_LENGTH } from '../sphinx/constants.js';
import { abytes, aint, wipe } from '../util/bytes.js';
import type { UnwrapOutcome } from './unwrap-pool.js';
import { MAX_EPOCHS_PER_UNWRAP, unwrapWithKeys } from './unwrap-worker.js';

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
