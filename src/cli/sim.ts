/**
 * `backchannel sim`: runs a scenario file (or a shipped one, by name) and writes its results;
 * `backchannel sim single-mix`: one Poisson mix, its measured sender entropy against theory.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackchannelError } from '../errors.js';
import { parseScenario } from '../sim/scenario.js';
import type { Scenario } from '../sim/scenario.js';
import { runAll, summary, writeResults } from '../sim/runner.js';
import { parseOptions, usageError } from './args.js';
import { progressBar } from './progress.js';

const HELP = `Usage: backchannel sim SCENARIO [options]
       backchannel sim single-mix --lambda L --mu M [options]
       backchannel sim list

Runs the mix network in virtual time: the real mix, gateway and client code over in-memory links,
with labelled packets in place of Sphinx, and measures what an observer of every link learns.

SCENARIO is a JSON file, or the name of a shipped scenario (see 'backchannel sim list'):
  loopix-fig4      entropy of one Poisson mix against its input rate, for five delays
  loopix-fig5      epsilon against the mix delay rate mu (3 layers of 3 mixes)
  loopix-fig6      epsilon against the number of layers
  loopix-fig7      epsilon against the share of corrupt mixes
  single-mix-check sender entropy of one mix against log2(e*lambda/mu), lambda/mu from 10 to 500
  overhead         latency and cover traffic of the real client engine
  large            10 000 population clients through 3 layers of 10 mixes for 10 minutes

Options:
  --json           print one JSON object (a summary) instead of a table
  --out DIR        where results.json, results.csv and the plots go (default ./sim-results/NAME)
  --repetitions N  override the scenario's repetitions
  --seed S         override the scenario's seed
  --quiet          no progress bar

single-mix options (rates per second):
  --lambda L       arrival rate (required)
  --mu M           delay rate: each packet is held an exponential time of mean 1/M s (required)
  --outputs N      outputs to measure (default 20000)
`;

/** Where the shipped scenarios are: <package>/scenarios. */
function scenariosDir(): string {
  return fileURLToPath(new URL('../../../scenarios/', import.meta.url));
}

function loadScenario(arg: string): { scenario: Scenario; file: string } {
  const shipped = join(scenariosDir(), `${arg}.json`);
  const file = existsSync(arg) ? arg : existsSync(shipped) ? shipped : null;
  if (file === null) throw usageError(`no scenario file "${arg.slice(0, 80)}" and no shipped scenario of that name (see 'backchannel sim list')`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new BackchannelError('ERR_SIM_SCENARIO', `scenario: cannot read ${arg.slice(0, 80)}: ${e instanceof SyntaxError ? 'not valid JSON' : 'unreadable'}`);
  }
  return { scenario: parseScenario(json), file };
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(4);
  return String(v);
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!).filter((c) => rows.some((r) => r[c] !== null && r[c] !== undefined));
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (xs: string[]): string => xs.map((x, i) => x.padStart(widths[i]!)).join('  ');
  return [line(cols), ...cells.map(line)].join('\n');
}

export async function runSim(argv: string[]): Promise<string> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') return HELP;
  if (first === 'list') {
    const names = readdirSync(scenariosDir())
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5));
    return names.map((n) => `${n.padEnd(18)} ${loadScenario(n).scenario.description.split(/\.\s/)[0] ?? ''}`).join('\n');
  }
  const single = first === 'single-mix';
  const opts = parseOptions(rest, {
    json: { type: 'boolean' },
    out: { type: 'string' },
    repetitions: { type: 'string' },
    seed: { type: 'string' },
    quiet: { type: 'boolean' },
    ...(single ? { lambda: { type: 'string' }, mu: { type: 'string' }, outputs: { type: 'string' } } : {}),
  });
  if (opts['help'] === true) return HELP;
  const positive = (name: string, fallback?: number): number => {
    const v = opts[name];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string') throw usageError(`--${name} is required`);
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw usageError(`--${name} must be a positive number, got "${v.slice(0, 20)}"`);
    return n;
  };

  let scenario: Scenario;
  if (single) {
    const lambda = positive('lambda');
    const mu = positive('mu');
    const outputs = positive('outputs', 20_000);
    if (lambda / mu > 1e6) throw usageError('--lambda / --mu must be at most 1e6 (the mix would hold more packets than a run can measure)');
    // Time unit: one mean delay, so that delays in whole milliseconds lose nothing; rates per unit follow.
    const unitMs = 10_000;
    const perUnit = lambda / mu;
    scenario = parseScenario({
      name: 'single-mix',
      description: `One Poisson mix, lambda ${lambda}/s, mu ${mu}/s`,
      kind: 'single-mix',
      timeUnitMs: unitMs,
      lambda: perUnit,
      mu: 1,
      warmup: 20,
      duration: Math.max(20, outputs / perUnit),
      ...(typeof opts['seed'] === 'string' ? { seed: opts['seed'] } : {}),
    });
  } else {
    scenario = loadScenario(first).scenario;
    if (typeof opts['seed'] === 'string') scenario = { ...scenario, seed: opts['seed'] };
  }
  if (typeof opts['repetitions'] === 'string') {
    const n = Number(opts['repetitions']);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw usageError('--repetitions must be a whole number from 1 to 1000');
    scenario = { ...scenario, repetitions: n };
  }

  const bar = progressBar({ label: scenario.name, total: 1000, quiet: opts['quiet'] === true });
  const result = await runAll(scenario, { onProgress: (f, detail) => bar.update(Math.round(f * 1000), detail) });
  bar.finish();
  const out = typeof opts['out'] === 'string' ? opts['out'] : join('sim-results', scenario.name);
  const files = writeResults(result, out);
  const s = summary(result);

  if (single) {
    const run = result.points[0]!.runs[0]!;
    const e = run.entropy!;
    const json = {
      lambda: positive('lambda'),
      mu: positive('mu'),
      entropy_bits: e.mean,
      theory_bits: e.theory,
      relative_error: (e.mean - e.theory) / e.theory,
      outputs: e.count,
      events: run.events,
      events_per_s: run.eventsPerSecond,
      results: files,
    };
    if (opts['json'] === true) return JSON.stringify(json);
    return [
      `single Poisson mix, lambda ${json.lambda}/s, mu ${json.mu}/s (lambda/mu = ${fmt(json.lambda / json.mu)})`,
      `  measured sender entropy  ${e.mean.toFixed(3)} bits (mean over ${e.count} outputs)`,
      `  theory log2(e·lambda/mu) ${e.theory.toFixed(3)} bits (${(100 * json.relative_error).toFixed(2)}%)`,
      `  ${run.events} events, ${Math.round(run.eventsPerSecond)} events/s`,
      `results: ${files.join(', ')}`,
    ].join('\n');
  }
  if (opts['json'] === true) return JSON.stringify({ ...s, results: files });
  const pts = (s['points'] as Record<string, unknown>[]).map((p) => Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'events_per_s')));
  return [
    `${scenario.name}: ${scenario.description}`,
    table(pts),
    `${result.events} events in ${result.wallSeconds.toFixed(1)} s (${Math.round(result.eventsPerSecond)} events/s)`,
    `results: ${files.join(', ')}`,
  ].join('\n');
}
