/**
 * Time as a component: servers read the clock and set timers only through this, so that tests
 * and the simulator can drive them in virtual time.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` after `ms` milliseconds; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The wall clock and Node's timers. Timers are unref'd: they never keep a process alive alone. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t: unknown = setTimeout(fn, Math.max(0, ms));
    // Node's timers have unref(); a browser's are numbers.
    if (typeof t === 'object' && t !== null && 'unref' in t && typeof t.unref === 'function') (t as { unref(): void }).unref();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as Parameters<typeof clearTimeout>[0]);
  },
};
