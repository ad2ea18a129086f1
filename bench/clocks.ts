/**
 * `npm run bench -- clocks`: the client's traffic clocks on the system clock, as a link observer
 * would time them.
 *
 * For `BENCH_CLOCKS_SECONDS` (25 by default) it runs, side by side in one event loop, the clocks
 * of src/client/poisson.ts ("new": events on ideal times, every due event per timer callback) and
 * a copy of the clocks they replaced ("old": each gap timed from when the previous timer fired),
 * each at the default rates: send 20/s and loop 5/s, whose merged departures are what an observer
 * of the client's link sees (25/s), and fetch 30/s. Each send or loop tick spends
 * `BENCH_CLOCKS_WORK_US` (1500 by default, about the CPU a real packet costs: docs/client.md) and
 * each fetch tick 50 µs, busy, as the real callbacks do. Both sets share the loop, so each sees the
 * other's work as timer lateness, alike.
 *
 * Figures per set: the departure rate and fetch rate achieved (against 25 and 30); the
 * Kolmogorov-Smirnov statistic of the departure gaps against Exp(25/s) and its asymptotic
 * p-value; the share of departure gaps under 1 ms against the exponential's 1 - e^(-0.025); for
 * the new clocks, how many timer callbacks dropped events (`new_restarts`: a stall beyond the
 * bounds of poisson.ts); and old_over_new_departures, which the common draws make the old clock's
 * own loss.
 * Times are taken with performance.now() inside the callbacks. First, the timer resolution of this
 * machine: the delays setTimeout(0) and setTimeout(1) actually give (median and 99th percentile).
 */
import { DEFAULT_PARAMS } from '../src/config/params.js';
import { nodeBackend } from '../src/crypto/node.js';
import { PeriodicClock, PoissonClock, exponentialMs, uniform01 } from '../src/client/poisson.js';
import type { Clock } from '../src/ops/clock.js';
import { systemClock } from '../src/ops/clock.js';
import { percentile, round } from './_timing.js';

/**
 * The clocks as they were: each gap timed from when the previous timer fired; `gap()` draws it
 * (exponential for the Poisson clocks, 1000 / rate for the fetch clock).
 */
class OldClock {
  readonly #clock: Clock;
  readonly #gap: () => number;
  readonly #onTick: () => void;
  #timer: unknown = null;
  constructor(clock: Clock, gap: () => number, onTick: () => void) {
    this.#clock = clock;
    this.#gap = gap;
    this.#onTick = onTick;
  }
  start(): void {
    this.#timer = this.#clock.setTimer(() => {
      this.#onTick();
      if (this.#timer !== null) this.start();
    }, this.#gap());
  }
  stop(): void {
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}

/** A random-bytes function that replays the same ChaCha20 stream for the same key. */
function replayable(key: Uint8Array): (n: number) => Uint8Array {
  let buffer: Uint8Array = new Uint8Array(0);
  let used = 0;
  let block = 0;
  return (n) => {
    if (used + n > buffer.length) {
      const k = nodeBackend.hkdfSha256Expand(key, Uint8Array.of(block >>> 8, block & 0xff), 32);
      block++;
      buffer = nodeBackend.chacha20Keystream(k, 1 << 16);
      used = 0;
    }
    used += n;
    return buffer.slice(used - n, used);
  };
}

function busy(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

async function timerDelays(ms: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

/** The one-sample Kolmogorov-Smirnov statistic of `xs` (ms) against Exp(ratePerS). */
function ksExponential(xs: number[], ratePerS: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = 1 - Math.exp((-ratePerS * s[i]!) / 1000);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  return d;
}

/** Asymptotic p-value of a KS statistic for n samples (Kolmogorov's series, Stephens' correction). */
function ksPValue(d: number, n: number): number {
  const sq = Math.sqrt(n);
  const lambda = (sq + 0.12 + 0.11 / sq) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (k % 2 === 1 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
  return Math.min(1, Math.max(0, p));
}

interface Recorded {
  departures: number[];
  fetches: number;
}

export async function benchClocks(): Promise<Record<string, number>> {
  const seconds = Number(process.env.BENCH_CLOCKS_SECONDS ?? 25);
  const workUs = Number(process.env.BENCH_CLOCKS_WORK_US ?? 1500);
  const fetchWorkUs = 50;
  const send = DEFAULT_PARAMS.sendRatePerS;
  const loop = DEFAULT_PARAMS.loopRatePerS;
  const fetch = DEFAULT_PARAMS.fetchRatePerS;
  const departureRate = send + loop;

  const t0s = await timerDelays(0, 200);
  const t1s = await timerDelays(1, 200);

  // Common random numbers: the old and the new clock of each kind draw the same gaps (one stream
  // per kind, keyed from the CSPRNG), so that the difference of their counts is the clocks' own.
  const streams = [0, 1].map(() => nodeBackend.randomBytes(32));
  const u01s = (i: number): (() => number) => uniform01(replayable(streams[i]!));
  const rec = { old: { departures: [], fetches: 0 } as Recorded, new: { departures: [], fetches: 0 } as Recorded };
  // A packet leaves when the event loop turn that put it on the link ends: the TCP transport
  // corks at the first write and uncorks on process.nextTick (src/link/tcp.ts), so packets put in
  // one timer callback leave together in one writev, however long each took to build.
  const depart = (r: Recorded) => {
    let waiting = 0;
    const flush = (): void => {
      const t = performance.now();
      for (; waiting > 0; waiting--) r.departures.push(t);
    };
    return (): void => {
      busy(workUs);
      if (waiting++ === 0) process.nextTick(flush);
    };
  };
  const fetched = (r: Recorded) => (): void => {
    r.fetches++;
    busy(fetchWorkUs);
  };
  const departOld = depart(rec.old);
  const departNew = depart(rec.new);
  const clocks = [
    new OldClock(systemClock, ((u) => () => exponentialMs(u, 1000 / send))(u01s(0)), departOld),
    new OldClock(systemClock, ((u) => () => exponentialMs(u, 1000 / loop))(u01s(1)), departOld),
    new OldClock(systemClock, () => 1000 / fetch, fetched(rec.old)),
    new PoissonClock(systemClock, () => send, u01s(0), departNew),
    new PoissonClock(systemClock, () => loop, u01s(1), departNew),
    new PeriodicClock(systemClock, () => fetch, fetched(rec.new)),
  ];
  // A referenced timer keeps the process up: the clocks' own timers are unref'd.
  const start = performance.now();
  for (const c of clocks) c.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const c of clocks) c.stop();
  const elapsedS = (performance.now() - start) / 1000;

  const out: Record<string, number> = {
    seconds: round(elapsedS, 1),
    work_us_per_packet: workUs,
    timeout0_p50_ms: round(percentile(t0s, 50), 3),
    timeout0_p99_ms: round(percentile(t0s, 99), 3),
    timeout1_p50_ms: round(percentile(t1s, 50), 3),
    timeout1_p99_ms: round(percentile(t1s, 99), 3),
    departure_rate_configured: departureRate,
    fetch_rate_configured: fetch,
    share_under_1ms_expected: round(1 - Math.exp(-departureRate / 1000), 4),
  };
  for (const name of ['old', 'new'] as const) {
    const r = rec[name];
    const d = r.departures;
    const gaps = d.slice(1).map((t, i) => t - d[i]!);
    const ks = ksExponential(gaps, departureRate);
    out[`${name}_departures`] = d.length;
    out[`${name}_departure_rate`] = round(d.length / elapsedS, 2);
    out[`${name}_fetch_rate`] = round(r.fetches / elapsedS, 2);
    out[`${name}_ks_d`] = round(ks, 4);
    out[`${name}_ks_p`] = round(ksPValue(ks, gaps.length), 4);
    out[`${name}_share_under_1ms`] = round(gaps.filter((g) => g < 1).length / Math.max(1, gaps.length), 4);
  }
  // Timer callbacks of the new clocks that dropped events (a stall past the bounds of poisson.ts).
  out.new_restarts = clocks.reduce((n, c) => n + (c instanceof OldClock ? 0 : c.restarts), 0);
  // The same draws on both sides: what the old clock lost to lateness and callback time.
  out.old_over_new_departures = round(rec.old.departures.length / Math.max(1, rec.new.departures.length), 4);
  return out;
}
