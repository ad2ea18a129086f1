/**
 * Poisson clocks (Loopix): events whose gaps are independent exponential draws, so that an
 * observer learns nothing from when the next one comes. Randomness comes from the caller's CSPRNG.
 * Portable: no `node:` imports.
 */
import type { Clock } from '../ops/clock.js';

/** A uniform draw in (0, 1] with 53 random bits. */
export function uniform01(randomBytes: (n: number) => Uint8Array): () => number {
  return () => {
    const b = randomBytes(7);
    // 53 bits: 5 from the first byte, 48 from the other six.
    let v = b[0]! & 0x1f;
    for (let i = 1; i < 7; i++) v = v * 256 + b[i]!;
    return (v + 1) / 2 ** 53;
  };
}

/** An exponential draw with mean `meanMs` (inverse transform of a (0, 1] uniform). */
export function exponentialMs(u01: () => number, meanMs: number): number {
  return -Math.log(u01()) * meanMs;
}

/**
 * Calls `onTick` at the events of a Poisson process whose rate (per second) `rate()` gives; the
 * rate is read again for every gap, so a new consensus changes it from the next event on. A rate
 * of 0 pauses the clock (it looks again every second).
 */
export class PoissonClock {
  readonly #clock: Clock;
  readonly #rate: () => number;
  readonly #u01: () => number;
  readonly #onTick: () => void;
  #timer: unknown = null;

  constructor(clock: Clock, rate: () => number, u01: () => number, onTick: () => void) {
    this.#clock = clock;
    this.#rate = rate;
    this.#u01 = u01;
    this.#onTick = onTick;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  start(): void {
    if (this.#timer === null) this.#schedule();
  }

  stop(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    const r = this.#rate();
    const gap = r > 0 ? exponentialMs(this.#u01, 1000 / r) : 1000;
    const handle: { t: unknown } = { t: null };
    handle.t = this.#clock.setTimer(() => {
      if (this.#timer !== handle.t) return; // stopped (or restarted) meanwhile
      if (r > 0) this.#onTick();
      if (this.#timer === handle.t) this.#schedule();
    }, gap);
    this.#timer = handle.t;
  }
}
