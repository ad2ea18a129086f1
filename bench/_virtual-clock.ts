/**
 * Virtual time for the benchmarks that run the client engine as fast as the CPU allows
 * (`bench client` in Node, `bench web`'s page in Chromium): timers run in time order, one per
 * `step()` (or all those due by a time, `advance()`; test/client/timed-link.test.ts). Portable:
 * no `node:` imports.
 */
import type { Clock } from '../src/ops/clock.js';

export class VirtualClock implements Clock {
  t: number;
  #id = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  constructor(t: number) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.#timers.delete(h as number);
  }
  /** Runs the next timer; false when none is left. */
  step(): boolean {
    return this.#runNext(Infinity);
  }
  /** Runs every timer due by `to`, in time order, then stands at `to`. */
  advance(to: number): void {
    while (this.#runNext(to));
    this.t = Math.max(this.t, to);
  }
  /** Runs the earliest timer due by `limit`; false when there is none. */
  #runNext(limit: number): boolean {
    let best: [number, { at: number; fn: () => void }] | null = null;
    for (const e of this.#timers) if (e[1].at <= limit && (best === null || e[1].at < best[1].at)) best = e;
    if (best === null) return false;
    this.#timers.delete(best[0]);
    this.t = Math.max(this.t, best[1].at);
    best[1].fn();
    return true;
  }
}
