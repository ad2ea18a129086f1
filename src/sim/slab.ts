/**
 * Zeroed byte arrays carved out of larger buffers, for the packets a simulation makes by the
 * million. A fresh ArrayBuffer costs a native allocation and work for the garbage collector (about
 * as much as the rest of a simulated hop); a view into a slab costs a small object. A slab lives
 * as long as any array carved from it, which is fine for packets that live for seconds of a run,
 * and is why servers, whose packets can wait in a delay queue, do not do this.
 */

/** Bytes per slab: about a hundred packets of the simulator's default geometry. */
export const SLAB_BYTES = 1 << 16;

export class Slab {
  readonly #size: number;
  #buffer: ArrayBuffer;
  #used = 0;

  constructor(size = SLAB_BYTES) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`"size" expected a positive integer, got ${size}`);
    this.#size = size;
    this.#buffer = new ArrayBuffer(size);
  }

  /** `length` zero bytes that nothing else uses; larger than a slab, a fresh array. */
  take(length: number): Uint8Array {
    if (length > this.#size) return new Uint8Array(length);
    if (this.#used + length > this.#size) {
      this.#buffer = new ArrayBuffer(this.#size);
      this.#used = 0;
    }
    const out = new Uint8Array(this.#buffer, this.#used, length);
    // Keep arrays 8-byte aligned, so that a view of another element type fits on any of them.
    this.#used += (length + 7) & ~7;
    return out;
  }
}
