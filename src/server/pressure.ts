/**
 * What a server shows of the pressure it is under: per listener, its handshakes (by result), its
 * connections refused at the gate (by reason), its open links and pending handshakes; the process's
 * resident memory and event-loop lag; and a health verdict of "degraded", with its reasons, while
 * a limit is being hit. Node only (process memory, the event-loop monitor).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { LinkServerStats } from '../link/acceptor.js';
import { GATE_REFUSALS } from '../util/gate.js';
import type { GateStats } from '../util/gate.js';

/** A listener as this module reads it: counts that only grow, and two levels. */
export interface ListenerView {
  /** `link` (TCP) or `websocket`. */
  readonly name: string;
  readonly stats?: LinkServerStats;
  readonly gate?: GateStats | null;
  readonly pending?: number;
  readonly links?: ReadonlySet<unknown>;
}

/** How long after the last refusal or overload a server still says it is degraded. */
export const DEGRADED_HOLD_MS = 60_000;
/** Event-loop lag (the 99th percentile over the last sampling window) above which a server is degraded. */
export const LAG_DEGRADED_S = 0.5;
/** How often lag and refusals are sampled for the health verdict. */
const SAMPLE_INTERVAL_MS = 5_000;

const HANDSHAKE_RESULTS = ['accepted', 'rejected', 'failed', 'overloaded', 'source_overloaded', 'evicted'] as const;
type HandshakeResult = (typeof HANDSHAKE_RESULTS)[number];

function handshakeCount(s: LinkServerStats, r: HandshakeResult): number {
  return r === 'source_overloaded' ? s.sourceOverloaded : s[r];
}

export interface Pressure {
  /** Reasons the server is degraded now (empty when it is not). */
  degraded(): string[];
  stop(): void;
}

/**
 * Registers the metrics on `registry` and starts sampling; `listeners` is read at each scrape and
 * sample (a listener may come and go). `limits` gives counts of other limits hit (packets dropped
 * by a rate limit or a full queue), by the reason health names: one that grows makes the server
 * degraded for DEGRADED_HOLD_MS, as a refused connection does.
 */
export function watchPressure(
  registry: Registry,
  listeners: () => readonly ListenerView[],
  now: () => number = () => performance.now(),
  limits: () => ReadonlyMap<string, number> = () => new Map(),
): Pressure {
  // Counters take in the growth of the listeners' own counts since the last read.
  const seen = new Map<string, number>();
  const growth = (key: string, value: number): number => {
    const before = seen.get(key) ?? 0;
    seen.set(key, value);
    return Math.max(0, value - before);
  };
  new Counter({
    name: 'backchannel_link_handshakes_total',
    help: 'Incoming link handshakes, by listener and result (overloaded, source_overloaded: dropped for want of a slot; evicted: dropped for a source holding fewer)',
    labelNames: ['listener', 'result'] as const,
    registers: [registry],
    collect() {
      for (const l of listeners()) {
        if (l.stats === undefined) continue;
        for (const r of HANDSHAKE_RESULTS) this.inc({ listener: l.name, result: r }, growth(`hs ${l.name} ${r}`, handshakeCount(l.stats, r)));
      }
    },
  });
  new Counter({
    name: 'backchannel_connections_refused_total',
    help: 'Connections refused before a byte was read, by listener and reason (per-source open, per-source rate, total, sources tracked)',
    labelNames: ['listener', 'reason'] as const,
    registers: [registry],
    collect() {
      for (const l of listeners()) {
        if (l.gate === undefined || l.gate === null) continue;
        for (const r of GATE_REFUSALS) this.inc({ listener: l.name, reason: r }, growth(`gate ${l.name} ${r}`, l.gate.refused[r]));
      }
    },
  });
  new Gauge({
    name: 'backchannel_links_open',
    help: 'Links open now, by listener',
    labelNames: ['listener'] as const,
    registers: [registry],
    collect() {
      for (const l of listeners()) if (l.links !== undefined) this.set({ listener: l.name }, l.links.size);
    },
  });
  new Gauge({
    name: 'backchannel_link_handshakes_pending',
    help: 'Incoming handshakes under way now, by listener',
    labelNames: ['listener'] as const,
    registers: [registry],
    collect() {
      for (const l of listeners()) if (l.pending !== undefined) this.set({ listener: l.name }, l.pending);
    },
  });
  new Gauge({
    name: 'backchannel_process_resident_bytes',
    help: 'Resident memory of the process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  const lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  /** The last sampling window's lag (seconds), for the gauge and the verdict. */
  let window = { p50: 0, p99: 0, max: 0 };
  new Gauge({
    name: 'backchannel_event_loop_lag_seconds',
    help: 'Event-loop delay over the last sampling window (5 s), by quantile',
    labelNames: ['quantile'] as const,
    registers: [registry],
    collect() {
      this.set({ quantile: '0.5' }, window.p50);
      this.set({ quantile: '0.99' }, window.p99);
      this.set({ quantile: '1' }, window.max);
    },
  });

  // The verdict: when anything was refused or dropped for want of room, and the last lag.
  let lastPressureAt = -Infinity;
  let lastReason = '';
  let totals = new Map<string, number>();
  const sample = (): void => {
    window = { p50: lag.percentile(50) / 1e9, p99: lag.percentile(99) / 1e9, max: lag.max / 1e9 };
    lag.reset();
    const next = new Map<string, number>();
    for (const l of listeners()) {
      if (l.stats !== undefined) next.set(`${l.name} handshakes dropped for want of a slot`, l.stats.overloaded + l.stats.sourceOverloaded + l.stats.evicted);
      if (l.gate !== undefined && l.gate !== null) next.set(`${l.name} connections refused at the gate`, GATE_REFUSALS.reduce((a, r) => a + l.gate!.refused[r], 0));
    }
    for (const [k, v] of limits()) next.set(k, v);
    for (const [k, v] of next) {
      if (v > (totals.get(k) ?? 0)) {
        lastPressureAt = now();
        lastReason = k;
      }
    }
    totals = next;
  };
  const timer = setInterval(sample, SAMPLE_INTERVAL_MS);
  timer.unref();
  return {
    degraded() {
      const reasons: string[] = [];
      if (now() - lastPressureAt < DEGRADED_HOLD_MS) reasons.push(lastReason);
      if (window.p99 > LAG_DEGRADED_S) reasons.push(`event-loop lag p99 ${window.p99.toFixed(2)} s`);
      return reasons;
    },
    stop() {
      clearInterval(timer);
      lag.disable();
    },
  };
}
