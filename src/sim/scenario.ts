/**
 * Scenarios: what a simulation runs, as a JSON file (docs/simulator.md lists every field).
 * Times are in the scenario's time unit (`timeUnitMs`, a second by default) and rates are per
 * time unit, as in the Loopix paper. Validation is strict: an unknown field is an error that names
 * the closest known one.
 */
import { BackchannelError, isBackchannelError } from '../errors.js';
import { array, boolean, field, integer, number, object, oneOf, string } from '../config/_validate.js';
import type { JsonObject } from '../config/_validate.js';

export type ClientModel = 'engine' | 'population';

export interface Topology {
  readonly layers: number;
  readonly mixesPerLayer: number;
  readonly gateways: number;
  /** One-way latency of every link, in milliseconds of virtual time. */
  readonly latencyMs: number;
}

export interface Clients {
  readonly count: number;
  /**
   * `engine`: the real client (src/client/client.ts) with an in-memory SQLite store; `population`:
   * a light Loopix sender (src/sim/population.ts) for runs with thousands of clients.
   */
  readonly model: ClientModel;
  /** Loopix lambda: packets (real or drop cover) per time unit from each client. */
  readonly sendRate: number;
  /** Loop cover packets per time unit from each client. */
  readonly loopRate: number;
  /** Mailbox fetches per time unit from each client. */
  readonly fetchRate: number;
  /** Real messages each client writes per time unit (Poisson), to a random other client. */
  readonly messageRate: number;
  /** Bytes per real message. */
  readonly messageBytes: number;
}

export const SWEEP_PARAMETERS = ['lambda', 'mix.mu', 'topology.layers', 'topology.mixesPerLayer', 'corrupt.share', 'clients.count', 'clients.sendRate', 'clients.loopRate'] as const;
export type SweepParameter = (typeof SWEEP_PARAMETERS)[number];

export interface Sweep {
  readonly parameter: SweepParameter;
  readonly values: readonly number[];
}

export interface PlotSpec {
  /** A result metric, by path: e.g. "epsilon.mean", "entropy.mean", "senderEntropy.mean", "latency.p50". */
  readonly y: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logX: boolean;
  /** Draw the single-mix theory curve log2(e·lambda/mu) beside the measurements. */
  readonly theory: boolean;
}

export interface Failure {
  /** A node name, as "mix<layer>.<index>" or "gw<index>". */
  readonly node: string;
  /** When it fails, in time units from the start (warm-up included). */
  readonly at: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** `network`: clients, gateways and mix layers; `single-mix`: Poisson arrivals at one mix. */
  readonly kind: 'network' | 'single-mix';
  readonly seed: string;
  readonly timeUnitMs: number;
  /** Time before measuring, and time measured, in time units. */
  readonly warmup: number;
  readonly duration: number;
  /** The last time units of the run, in which clients write no new messages, so that those in flight arrive. */
  readonly drain: number;
  readonly repetitions: number;
  readonly topology: Topology;
  readonly clients: Clients;
  /** Mix delay rate mu: each hop holds a packet an exponential time of mean 1/mu time units. */
  readonly mu: number;
  /** Single mix: arrival rate lambda per time unit. */
  readonly lambda: number;
  /** User payload bytes per packet (the geometry; labelled packets have Sphinx's length). */
  readonly payloadBytes: number;
  /** Share of the mixes, chosen at random, that tell the adversary how they mix. */
  readonly corruptShare: number;
  readonly failures: readonly Failure[];
  /** Loopix's challenge: two senders each write one message per time unit after the warm-up; epsilon is measured at the end. */
  readonly challenge: boolean;
  /** Real packets whose sender entropy is computed, at most, per run. */
  readonly entropySamples: number;
  readonly sweep: Sweep | null;
  readonly series: Sweep | null;
  readonly plot: PlotSpec | null;
}

export const DEFAULT_SCENARIO: Scenario = {
  name: 'scenario',
  description: '',
  kind: 'network',
  seed: 'backchannel',
  timeUnitMs: 1000,
  warmup: 30,
  duration: 60,
  drain: 0,
  repetitions: 1,
  topology: { layers: 3, mixesPerLayer: 3, gateways: 2, latencyMs: 0 },
  clients: { count: 20, model: 'engine', sendRate: 2, loopRate: 0.5, fetchRate: 1, messageRate: 0.1, messageBytes: 100 },
  mu: 1,
  lambda: 10,
  payloadBytes: 256,
  corruptShare: 0,
  failures: [],
  challenge: false,
  entropySamples: 500,
  sweep: null,
  series: null,
  plot: null,
};

function sweep(path: string, v: unknown): Sweep | null {
  if (v === undefined || v === null) return null;
  const o = object(path, v, ['parameter', 'values']);
  const values = array(`${path}.values`, field(o, 'values'), 1, 1000).map((x, i) => number(`${path}.values[${i}]`, x, -1e12, 1e12));
  return { parameter: oneOf(`${path}.parameter`, field(o, 'parameter'), SWEEP_PARAMETERS), values };
}

function opt<T>(o: JsonObject, key: string, parse: (v: unknown) => T, fallback: T): T {
  const v = field(o, key);
  return v === undefined ? fallback : parse(v);
}

/** Checks a parsed JSON scenario and fills in the defaults. @throws {BackchannelError} ERR_SIM_SCENARIO naming the field. */
export function parseScenario(json: unknown): Scenario {
  try {
    return parse(json);
  } catch (err) {
    if (isBackchannelError(err, 'ERR_CONFIG')) throw new BackchannelError('ERR_SIM_SCENARIO', err.message.replace(/^config: /, 'scenario: '));
    throw err;
  }
}

function parse(json: unknown): Scenario {
  const d = DEFAULT_SCENARIO;
  const o = object('scenario', json, [
    'name', 'description', 'kind', 'seed', 'timeUnitMs', 'warmup', 'duration', 'drain', 'repetitions', 'topology', 'clients', 'mu', 'lambda',
    'payloadBytes', 'corruptShare', 'failures', 'challenge', 'entropySamples', 'sweep', 'series', 'plot',
  ]);
  const t = opt(o, 'topology', (v) => object('scenario.topology', v, ['layers', 'mixesPerLayer', 'gateways', 'latencyMs']), {} as JsonObject);
  const c = opt(o, 'clients', (v) => object('scenario.clients', v, ['count', 'model', 'sendRate', 'loopRate', 'fetchRate', 'messageRate', 'messageBytes']), {} as JsonObject);
  const topology: Topology = {
    layers: opt(t, 'layers', (v) => integer('scenario.topology.layers', v, 1, 20), d.topology.layers),
    mixesPerLayer: opt(t, 'mixesPerLayer', (v) => integer('scenario.topology.mixesPerLayer', v, 1, 1000), d.topology.mixesPerLayer),
    gateways: opt(t, 'gateways', (v) => integer('scenario.topology.gateways', v, 1, 1000), d.topology.gateways),
    latencyMs: opt(t, 'latencyMs', (v) => number('scenario.topology.latencyMs', v, 0, 60_000), d.topology.latencyMs),
  };
  const clients: Clients = {
    count: opt(c, 'count', (v) => integer('scenario.clients.count', v, 2, 1_000_000), d.clients.count),
    model: opt(c, 'model', (v) => oneOf('scenario.clients.model', v, ['engine', 'population'] as const), d.clients.model),
    sendRate: opt(c, 'sendRate', (v) => number('scenario.clients.sendRate', v, 0, 1e6), d.clients.sendRate),
    loopRate: opt(c, 'loopRate', (v) => number('scenario.clients.loopRate', v, 0, 1e6), d.clients.loopRate),
    fetchRate: opt(c, 'fetchRate', (v) => number('scenario.clients.fetchRate', v, 0, 1e6), d.clients.fetchRate),
    messageRate: opt(c, 'messageRate', (v) => number('scenario.clients.messageRate', v, 0, 1e6), d.clients.messageRate),
    messageBytes: opt(c, 'messageBytes', (v) => integer('scenario.clients.messageBytes', v, 1, 1 << 20), d.clients.messageBytes),
  };
  const failures = opt(o, 'failures', (v) => array('scenario.failures', v, 0, 1000), [] as unknown[]).map((f, i) => {
    const fo = object(`scenario.failures[${i}]`, f, ['node', 'at']);
    const node = string(`scenario.failures[${i}].node`, field(fo, 'node'), 32);
    if (!/^(mix\d+\.\d+|gw\d+)$/.test(node)) throw new BackchannelError('ERR_CONFIG', `config: scenario.failures[${i}].node must name a node as "mix<layer>.<index>" or "gw<index>"`);
    return { node, at: number(`scenario.failures[${i}].at`, field(fo, 'at'), 0, 1e9) };
  });
  const plot = opt(
    o,
    'plot',
    (v) => {
      const p = object('scenario.plot', v, ['y', 'title', 'xLabel', 'yLabel', 'logX', 'theory']);
      return {
        y: string('scenario.plot.y', field(p, 'y'), 64),
        title: opt(p, 'title', (x) => string('scenario.plot.title', x, 200), ''),
        xLabel: opt(p, 'xLabel', (x) => string('scenario.plot.xLabel', x, 100), ''),
        yLabel: opt(p, 'yLabel', (x) => string('scenario.plot.yLabel', x, 100), ''),
        logX: opt(p, 'logX', (x) => boolean('scenario.plot.logX', x), false),
        theory: opt(p, 'theory', (x) => boolean('scenario.plot.theory', x), false),
      } as PlotSpec;
    },
    null as PlotSpec | null,
  );
  const s: Scenario = {
    name: opt(o, 'name', (v) => string('scenario.name', v, 100), d.name),
    description: opt(o, 'description', (v) => string('scenario.description', v, 2000), d.description),
    kind: opt(o, 'kind', (v) => oneOf('scenario.kind', v, ['network', 'single-mix'] as const), d.kind),
    seed: opt(o, 'seed', (v) => string('scenario.seed', v, 200), d.seed),
    timeUnitMs: opt(o, 'timeUnitMs', (v) => number('scenario.timeUnitMs', v, 0, 1e9, true), d.timeUnitMs),
    warmup: opt(o, 'warmup', (v) => number('scenario.warmup', v, 0, 1e9), d.warmup),
    duration: opt(o, 'duration', (v) => number('scenario.duration', v, 0, 1e9, true), d.duration),
    drain: opt(o, 'drain', (v) => number('scenario.drain', v, 0, 1e9), d.drain),
    repetitions: opt(o, 'repetitions', (v) => integer('scenario.repetitions', v, 1, 1000), d.repetitions),
    topology,
    clients,
    mu: opt(o, 'mu', (v) => number('scenario.mu', v, 0, 1e9, true), d.mu),
    lambda: opt(o, 'lambda', (v) => number('scenario.lambda', v, 0, 1e9, true), d.lambda),
    payloadBytes: opt(o, 'payloadBytes', (v) => integer('scenario.payloadBytes', v, 64, 65_536), d.payloadBytes),
    corruptShare: opt(o, 'corruptShare', (v) => number('scenario.corruptShare', v, 0, 1), d.corruptShare),
    failures,
    challenge: opt(o, 'challenge', (v) => boolean('scenario.challenge', v), d.challenge),
    entropySamples: opt(o, 'entropySamples', (v) => integer('scenario.entropySamples', v, 0, 1_000_000), d.entropySamples),
    sweep: sweep('scenario.sweep', field(o, 'sweep')),
    series: sweep('scenario.series', field(o, 'series')),
    plot,
  };
  if (s.drain >= s.duration) throw new BackchannelError('ERR_CONFIG', 'config: scenario.drain must be shorter than scenario.duration');
  if (s.series !== null && s.sweep === null) throw new BackchannelError('ERR_CONFIG', 'config: scenario.series needs a scenario.sweep (the x axis)');
  return s;
}

/** The scenario with one sweep parameter set. @throws {BackchannelError} ERR_SIM_SCENARIO for a value out of range. */
export function withParameter(s: Scenario, p: SweepParameter, v: number): Scenario {
  const bad = (what: string): never => {
    throw new BackchannelError('ERR_SIM_SCENARIO', `scenario: ${p} must be ${what}, got ${v}`);
  };
  const positive = v > 0 && Number.isFinite(v);
  switch (p) {
    case 'lambda':
      return positive ? { ...s, lambda: v } : bad('a positive number');
    case 'mix.mu':
      return positive ? { ...s, mu: v } : bad('a positive number');
    case 'topology.layers':
      return Number.isInteger(v) && v >= 1 && v <= 20 ? { ...s, topology: { ...s.topology, layers: v } } : bad('an integer in [1, 20]');
    case 'topology.mixesPerLayer':
      return Number.isInteger(v) && v >= 1 ? { ...s, topology: { ...s.topology, mixesPerLayer: v } } : bad('a positive integer');
    case 'corrupt.share':
      return v >= 0 && v <= 1 ? { ...s, corruptShare: v } : bad('a number in [0, 1]');
    case 'clients.count':
      return Number.isInteger(v) && v >= 2 ? { ...s, clients: { ...s.clients, count: v } } : bad('an integer >= 2');
    case 'clients.sendRate':
      return v >= 0 ? { ...s, clients: { ...s.clients, sendRate: v } } : bad('a number >= 0');
    case 'clients.loopRate':
      return v >= 0 ? { ...s, clients: { ...s.clients, loopRate: v } } : bad('a number >= 0');
  }
}
