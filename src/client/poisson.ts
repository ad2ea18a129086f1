/**
 * Poisson clocks (Loopix): events whose gaps are independent exponential draws, so that an
 * observer learns nothing from when the next one comes; and the constant-rate clock of mailbox
 * fetches. Both schedule every event at an ideal time on the injected Clock, not relative to when
 * the previous timer fired. Randomness comes from the caller's CSPRNG.
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
 * The delays a sender puts in a route's `hops` hops that hold the packet (Loopix): exponential at
 * `meanMs`, in whole milliseconds as the routing command carries them (uint32). The first hop, a
 * sender's own gateway, holds none when `firstIsGateway`.
 */
export function hopDelaysMs(u01: () => number, meanMs: number, hops: number, firstIsGateway: boolean): number[] {
  return Array.from({ length: hops }, (_, i) => (i === 0 && firstIsGateway ? 0 : Math.min(0xffffffff, Math.round(exponentialMs(u01, meanMs)))));
}

/**
 * An event more overdue than this when its timer callback finally runs is never sent: the
 * schedule restarts from `now − CATCH_UP_MS` instead. Ordinary lateness (a timer's 1 ms
 * granularity, garbage collection, a slow commit, a loaded machine's scheduler: milliseconds to a
 * few hundred) stays inside it, so the rate holds; after a long stall (a suspended laptop, an event
 * loop blocked for seconds, a wall clock set forward) the missed events are not caught up, which
 * would be a burst of hundreds that no Poisson process makes. Restarting is exact for a Poisson
 * process: it is memoryless, so the time to the next event does not depend on how long the last
 * gap ran.
 */
export const CATCH_UP_MS = 1000;
/**
 * One timer callback of a clock emits at most `max(MIN_BURST, ceil(rate × BURST_WINDOW_MS))`
 * overdue events (their ideal time already past): 8 for each clock at the default rates (send
 * 20/s, loop 5/s, fetch 30/s). The send clock's events overdue after a 100 ms stall exceed it with
 * probability 0.0002, after 200 ms 0.02; the fetch clock's 0.004 and 0.15. When more are overdue,
 * the rest are dropped and the schedule restarts from now: what follows any stall is at most this
 * burst per clock. Events emitted ahead of their time (within the lead) do not count: they leave at
 * their ideal times, not in a burst, so a stall shorter than the lead drops nothing.
 */
export const MIN_BURST = 8;
const BURST_WINDOW_MS = 200;
/** While the rate is 0 the clock looks again this often. */
const PAUSED_RECHECK_MS = 1000;
/**
 * A timer that fires at most this long before its event's ideal time waits for the rest; one that
 * fires earlier still means the clock stepped backwards (a wall clock set back), and the event is
 * taken as due now rather than waiting out the step.
 */
const EARLY_SLACK_MS = 50;
/** Float slack when comparing an ideal time with the clock (virtual clocks fire exactly on it). */
const DUE_EPSILON_MS = 1e-6;

/** The largest number of events one timer callback emits at `ratePerS`. */
export function burstCap(ratePerS: number): number {
  return Math.max(MIN_BURST, Math.ceil((ratePerS * BURST_WINDOW_MS) / 1000));
}

/**
 * Events at ideal times `t₀ + g₁ + g₂ + …` on an injected Clock, whatever the timers' lateness.
 * Each timer callback emits every event whose ideal time has come, in order, one `onTick` each;
 * the next timer is set for the next ideal time, so a late timer delays events without moving
 * later ones, the achieved rate is the configured rate, and gaps shorter than the timers'
 * resolution happen (several events in one callback) as often as the gap distribution says.
 * The rate (per second) is read again for every gap; 0 pauses the clock (it looks again every
 * second). See CATCH_UP_MS and MIN_BURST for what happens after a stall.
 *
 * With a lead (`lead()` > 0 milliseconds), each event is emitted that long before its ideal time,
 * which `onTick` receives: the caller prepares the event's frame ahead and hands it to something
 * that sends it at that time on a thread of its own (the client's link worker), so that work on
 * this thread (a commit, a message being opened) no longer moves when frames leave. Lateness up to
 * the lead then does not show at all.
 */
abstract class ScheduledClock {
  readonly #clock: Clock;
  readonly #rate: () => number;
  readonly #onTick: (idealAt: number) => void;
  readonly #lead: () => number;
  #timer: unknown = null;
  /** The ideal time of the next event (or of the next look at the rate, while paused). */
  #next = 0;
  #paused = true;
  #ticks = 0;
  #restarts = 0;

  constructor(clock: Clock, rate: () => number, onTick: (idealAt: number) => void, lead: () => number = () => 0) {
    this.#clock = clock;
    this.#rate = rate;
    this.#onTick = onTick;
    this.#lead = lead;
  }

  /** The gap to the next event, in milliseconds, at `ratePerS` (> 0). */
  protected abstract gapMs(ratePerS: number): number;

  get running(): boolean {
    return this.#timer !== null;
  }

  /** Events emitted since construction. */
  get ticks(): number {
    return this.#ticks;
  }

  /** Timer callbacks that dropped overdue events and restarted the schedule (a stall, or the burst bound reached). */
  get restarts(): number {
    return this.#restarts;
  }

  start(): void {
    if (this.#timer !== null) return;
    const now = this.#clock.now();
    this.#restartFrom(now);
    this.#arm(now);
  }

  /** The lead now: finite, at least 0. */
  #leadMs(): number {
    const l = this.#lead();
    return Number.isFinite(l) && l > 0 ? l : 0;
  }

  stop(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** Draws the next event's ideal time from `from`, or pauses while the rate is 0. */
  #restartFrom(from: number): void {
    const r = this.#rate();
    this.#paused = !(r > 0);
    this.#next = from + (this.#paused ? PAUSED_RECHECK_MS : this.gapMs(r));
  }

  #arm(now: number): void {
    const handle: { t: unknown } = { t: null };
    handle.t = this.#clock.setTimer(() => {
      if (this.#timer === handle.t) this.#fire(handle.t);
    }, this.#next - this.#leadMs() - now);
    this.#timer = handle.t;
  }

  #fire(handle: unknown): void {
    // Events are emitted `lead` early: what is due is measured against that point; what is
    // overdue (its ideal time already past, so it would leave late, in a burst) against the clock.
    const lead = this.#leadMs();
    const real = this.#clock.now();
    const now = real + lead;
    const early = this.#next - now;
    if (early > DUE_EPSILON_MS) {
      if (early <= EARLY_SLACK_MS) {
        this.#arm(now - lead);
        return;
      }
      this.#next = now; // the clock stepped backwards: do not wait the step out
    }
    if (this.#paused) {
      this.#restartFrom(now);
      this.#arm(now - lead);
      return;
    }
    let restarted = false;
    if (real - this.#next > CATCH_UP_MS) {
      restarted = true;
      this.#restartFrom(real - CATCH_UP_MS);
    }
    const cap = burstCap(this.#rate());
    let overdue = 0;
    while (!this.#paused && this.#next <= now + DUE_EPSILON_MS) {
      if (this.#next < real - DUE_EPSILON_MS) {
        if (overdue >= cap) {
          // From the present, not from the lead's point: what is drawn next is emitted ahead as
          // usual, so the restart leaves no lead-long hole in the schedule.
          restarted = true;
          this.#restartFrom(real);
          break;
        }
        overdue++;
      }
      this.#ticks++;
      this.#onTick(this.#next);
      if (this.#timer !== handle) return; // stopped (or restarted) by onTick
      const r = this.#rate();
      if (r > 0) this.#next += this.gapMs(r);
      else this.#restartFrom(now);
    }
    if (restarted) this.#restarts++;
    this.#arm(this.#clock.now());
  }
}

/**
 * Calls `onTick` at the events of a Poisson process whose rate (per second) `rate()` gives, on
 * ideal times (ScheduledClock); the rate is read again for every gap, so a new consensus changes
 * it from the next event on. A rate of 0 pauses the clock (it looks again every second).
 */
export class PoissonClock extends ScheduledClock {
  readonly #u01: () => number;

  constructor(clock: Clock, rate: () => number, u01: () => number, onTick: (idealAt: number) => void, lead?: () => number) {
    super(clock, rate, onTick, lead);
    this.#u01 = u01;
  }

  protected gapMs(ratePerS: number): number {
    return exponentialMs(this.#u01, 1000 / ratePerS);
  }
}

/**
 * Calls `onTick` at a constant rate (per second) on ideal times `t₀ + k / rate`, so that the
 * achieved rate is the configured one whatever the timers' lateness (ScheduledClock).
 */
export class PeriodicClock extends ScheduledClock {
  protected gapMs(ratePerS: number): number {
    return 1000 / ratePerS;
  }
}
