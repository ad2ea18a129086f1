/**
 * Runs a scenario: every point of its sweep (and series), each repeated, and writes what came out
 * as JSON (every run), CSV (one row per run) and SVG (the scenario's plot, and the latency
 * distribution of network runs).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cdfChartSvg, lineChartSvg } from './plot.js';
import type { Series } from './plot.js';
import { withParameter } from './scenario.js';
import type { Scenario } from './scenario.js';
import { runScenario } from './simulation.js';
import type { RunResult } from './simulation.js';
import { toCsv } from './table.js';
import type { Cell } from './table.js';

export interface PointResult {
  /** The sweep value (the x axis), or null without a sweep. */
  readonly x: number | null;
  /** The series value, or null without series. */
  readonly series: number | null;
  readonly runs: readonly RunResult[];
  /** Mean and standard deviation over the repetitions of the plotted metric (NaN without a plot). */
  readonly y: { readonly mean: number; readonly std: number };
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly points: readonly PointResult[];
  readonly events: number;
  readonly wallSeconds: number;
  readonly eventsPerSecond: number;
}

/** A metric of a run by path, e.g. "epsilon.mean"; NaN when absent. */
export function metric(run: RunResult, path: string): number {
  let v: unknown = run;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, k)) return NaN;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'number' ? v : NaN;
}

function meanStd(values: readonly number[]): { mean: number; std: number } {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { mean: NaN, std: NaN };
  const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
  const variance = finite.reduce((a, b) => a + (b - mean) ** 2, 0) / finite.length;
  return { mean, std: Math.sqrt(variance) };
}

/** The scenario of each point: series outer, sweep inner. */
export function points(s: Scenario): { x: number | null; series: number | null; scenario: Scenario }[] {
  const xs: (number | null)[] = s.sweep === null ? [null] : [...s.sweep.values];
  const ss: (number | null)[] = s.series === null ? [null] : [...s.series.values];
  const out: { x: number | null; series: number | null; scenario: Scenario }[] = [];
  for (const sv of ss) {
    for (const xv of xs) {
      let sc = s;
      if (s.series !== null && sv !== null) sc = withParameter(sc, s.series.parameter, sv);
      if (s.sweep !== null && xv !== null) sc = withParameter(sc, s.sweep.parameter, xv);
      out.push({ x: xv, series: sv, scenario: sc });
    }
  }
  return out;
}

export interface RunAllOptions {
  /** Progress over the whole scenario, in [0, 1], with a short description of the current run. */
  readonly onProgress?: (fraction: number, detail: string) => void;
}

/** Runs every point and repetition of a scenario, one after the other. */
export async function runAll(s: Scenario, options: RunAllOptions = {}): Promise<ScenarioResult> {
  const start = performance.now();
  const ps = points(s);
  const total = ps.length * s.repetitions;
  let done = 0;
  const results: PointResult[] = [];
  let events = 0;
  for (const p of ps) {
    const runs: RunResult[] = [];
    for (let r = 0; r < s.repetitions; r++) {
      const detail = [p.series !== null && s.series ? `${s.series.parameter}=${p.series}` : '', p.x !== null && s.sweep ? `${s.sweep.parameter}=${p.x}` : '', s.repetitions > 1 ? `run ${r + 1}/${s.repetitions}` : '']
        .filter((x) => x !== '')
        .join(' ');
      const run = await runScenario(p.scenario, r, { onProgress: (f) => options.onProgress?.((done + f) / total, detail) });
      events += run.events;
      runs.push(run);
      done++;
    }
    const y = s.plot === null ? { mean: NaN, std: NaN } : meanStd(runs.map((r) => metric(r, s.plot!.y)));
    results.push({ x: p.x, series: p.series, runs, y });
  }
  const wallSeconds = (performance.now() - start) / 1000;
  return { scenario: s, points: results, events, wallSeconds, eventsPerSecond: events / Math.max(wallSeconds, 1e-9) };
}

/** The columns of the CSV: one row per run. */
const CSV_METRICS = [
  'simulated',
  'wallSeconds',
  'events',
  'eventsPerSecond',
  'packets.real',
  'packets.drop',
  'packets.loop',
  'packets.fetch',
  'coverShare',
  'overhead',
  'latency.count',
  'latency.mean',
  'latency.p50',
  'latency.p90',
  'latency.p99',
  'messageLatency.p50',
  'messageLatency.p99',
  'messages.written',
  'messages.delivered',
  'entropy.mean',
  'entropy.theory',
  'senderEntropy.mean',
  'senderEntropy.p10',
  'senderEntropy.truncated',
  'clientSenderEntropy.mean',
  'epsilon.mean',
  'epsilon.messages',
  'epsilon.linked',
  'corruptMixes',
] as const;

export function resultsCsv(r: ScenarioResult): string {
  const rows: Record<string, Cell>[] = [];
  for (const p of r.points) {
    for (const run of p.runs) {
      const row: Record<string, Cell> = {
        [r.scenario.sweep?.parameter ?? 'x']: p.x,
        [r.scenario.series?.parameter ?? 'series']: p.series,
        repetition: run.repetition,
      };
      for (const m of CSV_METRICS) row[m] = metric(run, m);
      rows.push(row);
    }
  }
  return toCsv(rows);
}

/** The scenario's plot: its metric against the sweep, one line per series, error bars of one standard deviation. */
export function resultsSvg(r: ScenarioResult): string | null {
  const s = r.scenario;
  if (s.plot === null || s.sweep === null) return null;
  const bySeries = new Map<number | null, PointResult[]>();
  for (const p of r.points) bySeries.set(p.series, [...(bySeries.get(p.series) ?? []), p]);
  const series: Series[] = [];
  for (const [sv, ps] of bySeries) {
    const name = sv === null ? s.plot.y : `${s.series!.parameter} = ${sv}`;
    series.push({ name, points: ps.map((p) => ({ x: p.x!, y: p.y.mean, ...(s.repetitions > 1 && Number.isFinite(p.y.std) ? { yErr: p.y.std } : {}) })) });
    if (s.plot.theory) {
      const theory = ps.map((p) => ({ x: p.x!, y: p.runs[0]?.entropy?.theory ?? NaN }));
      series.push({ name: `theory log2(e·λ/μ)${sv === null ? '' : `, ${s.series!.parameter} = ${sv}`}`, points: theory, dashed: true });
    }
  }
  return lineChartSvg({
    title: s.plot.title || `${s.name}: ${s.plot.y}`,
    xLabel: s.plot.xLabel || s.sweep.parameter,
    yLabel: s.plot.yLabel || s.plot.y,
    series,
    logX: s.plot.logX,
  });
}

/** The distribution of real packets' latency through the mixes, one curve per point (network runs). */
export function latencySvg(r: ScenarioResult): string | null {
  const samples = r.points
    .map((p) => ({
      name: p.x === null ? r.scenario.name : `${r.scenario.sweep!.parameter} = ${p.x}${p.series === null ? '' : `, ${r.scenario.series!.parameter} = ${p.series}`}`,
      values: p.runs.flatMap((run) => run.latencySamples),
    }))
    .filter((x) => x.values.length > 0);
  if (samples.length === 0) return null;
  return cdfChartSvg({ title: `${r.scenario.name}: latency of real packets through the mixes`, xLabel: `time units (${r.scenario.timeUnitMs} ms)`, samples: samples.slice(0, 8) });
}

/** Writes results.json, results.csv and the plots under `dir`; returns the paths written. */
export function writeResults(r: ScenarioResult, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const put = (name: string, text: string): void => {
    const p = join(dir, name);
    writeFileSync(p, text);
    written.push(p);
  };
  put('results.json', `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  put('results.csv', resultsCsv(r));
  const plot = resultsSvg(r);
  if (plot !== null) put('plot.svg', plot);
  const lat = latencySvg(r);
  if (lat !== null) put('latency.svg', lat);
  return written;
}

/** A summary of a scenario's result: per point, the plotted metric and the main figures, averaged over repetitions. */
export function summary(r: ScenarioResult): Record<string, unknown> {
  const avg = (p: PointResult, path: string): number | null => {
    const v = meanStd(p.runs.map((run) => metric(run, path))).mean;
    return Number.isFinite(v) ? v : null;
  };
  return {
    scenario: r.scenario.name,
    events: r.events,
    wall_s: r.wallSeconds,
    events_per_s: r.eventsPerSecond,
    points: r.points.map((p) => ({
      ...(r.scenario.sweep ? { [r.scenario.sweep.parameter]: p.x } : {}),
      ...(r.scenario.series ? { [r.scenario.series.parameter]: p.series } : {}),
      ...(r.scenario.plot ? { [r.scenario.plot.y]: Number.isFinite(p.y.mean) ? p.y.mean : null, std: Number.isFinite(p.y.std) ? p.y.std : null } : {}),
      entropy_bits: avg(p, 'entropy.mean'),
      theory_bits: avg(p, 'entropy.theory'),
      sender_entropy_bits: avg(p, 'senderEntropy.mean'),
      client_sender_entropy_bits: avg(p, 'clientSenderEntropy.mean'),
      epsilon: avg(p, 'epsilon.mean'),
      epsilon_linked: avg(p, 'epsilon.linked'),
      latency_p50: avg(p, 'latency.p50'),
      latency_p99: avg(p, 'latency.p99'),
      cover_share: avg(p, 'coverShare'),
      overhead: avg(p, 'overhead'),
      events_per_s: avg(p, 'eventsPerSecond'),
    })),
  };
}
