/**
 * What a global passive observer learns from the frames it recorded on every link, given the
 * ground truth of when real activity happened (which only the experiment's driver knows): the
 * attacks of docs/anonymity.md. Pure functions over traces; the statistics are in stats.ts.
 *
 * Time is in milliseconds on the observer's clock; a trace is cut into one-second bins. A bin is
 * active for a subject (a client, or a gateway through its clients) when it overlaps one of the
 * subject's activities, idle when it lies at least `guardMs` away from every one of them, and
 * left out otherwise (the edges of an activity, whose effects spill by a mix delay or two).
 */
import { binomialTail, ksTwoSample, mannWhitney, mean, pearson, quantile, rankSumLowerTail, traceError } from './stats.js';
import type { KsResult, MannWhitneyResult } from './stats.js';

/** Frames one way on one link: parallel arrays of times (ms) and wire sizes (bytes). */
export interface FrameSeries {
  readonly times: readonly number[];
  readonly sizes: readonly number[];
}

/** One observed link (a TCP connection), named by its two ends. */
export interface ObservedLink {
  /** The connecting side (client, gateway or mix); null when it could not be told. */
  readonly initiator: string | null;
  /** The node whose listener it reached. */
  readonly responder: string;
  /** A label: the relay's name and the connection's index there. */
  readonly label: string;
  readonly forward: FrameSeries;
  readonly backward: FrameSeries;
}

export type Role = { readonly role: 'client'; readonly gateway: string } | { readonly role: 'gateway' } | { readonly role: 'mix'; readonly layer: number };

/** A stretch of real activity (sending or receiving real messages) and the clients it involves. */
export interface Activity {
  readonly startMs: number;
  readonly endMs: number;
  readonly clients: readonly string[];
}

export interface Trace {
  readonly links: readonly ObservedLink[];
  /** Every named party's role. */
  readonly roles: ReadonlyMap<string, Role>;
  readonly activities: readonly Activity[];
  /** The span analysed: [fromMs, toMs). */
  readonly fromMs: number;
  readonly toMs: number;
  /** For the pairing attack's score card only: each client's true correspondent. */
  readonly partners?: ReadonlyMap<string, string>;
  /**
   * Control stretches: nobody sends mail, and the machine is kept busy by a process that has
   * nothing to do with the network (bench/observer.ts). Their seconds are never "quiet".
   */
  readonly controls?: readonly Span[];
  /**
   * Where the control analysis ends (default toMs): control stretches may follow the schedule,
   * outside the span the other analyses read.
   */
  readonly controlsUntilMs?: number;
}

export interface Span {
  readonly startMs: number;
  readonly endMs: number;
}

export interface AnalysisOptions {
  /** Idle bins lie at least this far from any activity of their subject (default 5 000 ms). */
  readonly guardMs?: number;
  /** The data-frame size; measured as the commonest frame size when unset. */
  readonly dataFrameSize?: number;
  /** Lags, in bins either way, over which the pairing attack takes the best correlation (default 3). */
  readonly maxLagBins?: number;
  /** Answers slower than this quantile of a client's idle answer times are "slow" (default 0.9). */
  readonly slowQuantile?: number;
}

const BIN_MS = 1_000;
export const DEFAULT_GUARD_MS = 5_000;
export const DEFAULT_MAX_LAG_BINS = 3;
export const DEFAULT_SLOW_QUANTILE = 0.9;

/** A comparison of idle and active samples. */
export interface Comparison {
  readonly idleN: number;
  readonly activeN: number;
  readonly idleMean: number;
  readonly activeMean: number;
  /** Mann–Whitney on the samples; null when a side is empty. */
  readonly mannWhitney: MannWhitneyResult | null;
  /** Kolmogorov–Smirnov on the samples; null when a side is empty. */
  readonly ks: KsResult | null;
}

export function compare(idle: readonly number[], active: readonly number[]): Comparison {
  const both = idle.length > 0 && active.length > 0;
  return {
    idleN: idle.length,
    activeN: active.length,
    idleMean: mean(idle),
    activeMean: mean(active),
    mannWhitney: both ? mannWhitney(idle, active) : null,
    ks: both ? ksTwoSample(idle, active) : null,
  };
}

/** The commonest frame size over every link: the data frame, since cover keeps data frames the bulk. */
export function measureDataFrameSize(links: readonly ObservedLink[]): number {
  const counts = new Map<number, number>();
  for (const l of links) for (const s of [l.forward, l.backward]) for (const size of s.sizes) counts.set(size, (counts.get(size) ?? 0) + 1);
  let best = -1;
  let bestCount = 0;
  for (const [size, c] of counts) if (c > bestCount || (c === bestCount && size > best)) [best, bestCount] = [size, c];
  if (best < 0) throw traceError('no frames recorded');
  return best;
}

/** Number of one-second bins in the trace. */
function binCount(trace: Trace): number {
  if (!(trace.toMs > trace.fromMs)) throw traceError('the trace spans no time');
  return Math.floor((trace.toMs - trace.fromMs) / BIN_MS);
}

/** Per-bin counts of data frames (size === dataSize) in `series`. */
export function binDataFrames(series: FrameSeries, dataSize: number, fromMs: number, bins: number): number[] {
  const out = new Array<number>(bins).fill(0);
  for (let k = 0; k < series.times.length; k++) {
    if (series.sizes[k] !== dataSize) continue;
    const b = Math.floor((series.times[k]! - fromMs) / BIN_MS);
    if (b >= 0 && b < bins) out[b]!++;
  }
  return out;
}

function addInto(total: number[], part: readonly number[]): void {
  for (let k = 0; k < total.length; k++) total[k]! += part[k]!;
}

export type BinKind = 'idle' | 'active' | 'edge';

/** Each bin's kind for the subject whose activities are `mine`. */
export function classifyBins(mine: readonly Activity[], fromMs: number, bins: number, guardMs: number): BinKind[] {
  const out: BinKind[] = [];
  for (let b = 0; b < bins; b++) {
    const lo = fromMs + b * BIN_MS;
    const hi = lo + BIN_MS;
    let kind: BinKind = 'idle';
    for (const a of mine) {
      if (lo < a.endMs && hi > a.startMs) {
        kind = 'active';
        break;
      }
      if (lo < a.endMs + guardMs && hi > a.startMs - guardMs) kind = 'edge';
    }
    out.push(kind);
  }
  return out;
}

/** Splits a per-bin series by kind. */
export function splitBins(series: readonly number[], kinds: readonly BinKind[]): { idle: number[]; active: number[] } {
  const idle: number[] = [];
  const active: number[] = [];
  series.forEach((v, k) => {
    if (kinds[k] === 'idle') idle.push(v);
    else if (kinds[k] === 'active') active.push(v);
  });
  return { idle, active };
}

function clientsOf(trace: Trace, gateway: string): string[] {
  return [...trace.roles].filter(([, r]) => r.role === 'client' && r.gateway === gateway).map(([n]) => n);
}

function activitiesOf(trace: Trace, clients: readonly string[]): Activity[] {
  return trace.activities.filter((a) => a.clients.some((c) => clients.includes(c)));
}

function roleOf(trace: Trace, name: string | null): Role | undefined {
  return name === null ? undefined : trace.roles.get(name);
}

export interface AckCountingResult {
  readonly gateway: string;
  /**
   * Per second: data frames the gateway sent to layer 1, minus its clients' packets (data frames
   * they sent it less the answers it sent them: each fetch gets exactly one answer).
   */
  readonly surplus: Comparison;
  /** Per second: data frames the gateway received from layer 3. */
  readonly fromLayer3: Comparison;
  /** Per second: data frames the gateway sent to layer 1. */
  readonly toLayer1: Comparison;
}

/**
 * Ack counting: a gateway forwards its clients' packets to layer 1 one for one, so whatever it
 * sends to layer 1 beyond them is its own (acknowledgements of packets stored in its mailboxes).
 * Fetches look like packets on the wire but stay at the gateway; each gets one answer, so the
 * clients' packets are their frames less the gateway's answers (which also keeps a fetch clock
 * that slows down from passing for acknowledgements). Compared between idle and active seconds
 * of the gateway's clients.
 */
export function ackCounting(trace: Trace, opts: AnalysisOptions = {}): AckCountingResult[] {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const out: AckCountingResult[] = [];
  for (const [gateway, role] of trace.roles) {
    if (role.role !== 'gateway') continue;
    const toL1 = new Array<number>(bins).fill(0);
    const fromClients = new Array<number>(bins).fill(0);
    const toClients = new Array<number>(bins).fill(0);
    const fromL3 = new Array<number>(bins).fill(0);
    for (const l of trace.links) {
      const r = roleOf(trace, l.responder);
      const i = roleOf(trace, l.initiator);
      if (l.initiator === gateway && r?.role === 'mix' && r.layer === 1) addInto(toL1, binDataFrames(l.forward, dataSize, trace.fromMs, bins));
      if (l.responder === gateway && i?.role === 'client') {
        addInto(fromClients, binDataFrames(l.forward, dataSize, trace.fromMs, bins));
        addInto(toClients, binDataFrames(l.backward, dataSize, trace.fromMs, bins));
      }
      if (l.responder === gateway && i?.role === 'mix') addInto(fromL3, binDataFrames(l.forward, dataSize, trace.fromMs, bins));
    }
    const kinds = classifyBins(activitiesOf(trace, clientsOf(trace, gateway)), trace.fromMs, bins, opts.guardMs ?? DEFAULT_GUARD_MS);
    const surplus = toL1.map((v, k) => v - (fromClients[k]! - toClients[k]!));
    const s = splitBins(surplus, kinds);
    const a = splitBins(fromL3, kinds);
    const b = splitBins(toL1, kinds);
    out.push({ gateway, surplus: compare(s.idle, s.active), fromLayer3: compare(a.idle, a.active), toLayer1: compare(b.idle, b.active) });
  }
  return out;
}

/** A fetch answer: when the gateway's frame passed, and how long after the client's last frame. */
export interface Answer {
  readonly t: number;
  readonly latencyMs: number;
}

/**
 * Answer times on a client's link: for each data frame from the gateway, the time since the
 * client's last data frame before it (the fetch it answers, as far as the wire tells).
 */
export function answerTimes(link: ObservedLink, dataSize: number): Answer[] {
  const out: Answer[] = [];
  const up = link.forward;
  const down = link.backward;
  let j = -1;
  let lastUp = NaN;
  for (let k = 0; k < down.times.length; k++) {
    if (down.sizes[k] !== dataSize) continue;
    const t = down.times[k]!;
    while (j + 1 < up.times.length && up.times[j + 1]! <= t) {
      j++;
      if (up.sizes[j] === dataSize) lastUp = up.times[j]!;
    }
    if (!Number.isNaN(lastUp)) out.push({ t, latencyMs: t - lastUp });
  }
  return out;
}

function clientLinks(trace: Trace, client: string): ObservedLink[] {
  return trace.links.filter((l) => l.initiator === client);
}

function binOf(trace: Trace, t: number): number {
  return Math.floor((t - trace.fromMs) / BIN_MS);
}

export interface FetchTimingResult {
  readonly client: string;
  /** Answer times (ms) in idle and active seconds, compared (KS is the test of record). */
  readonly latency: Comparison;
  /**
   * Per second, this client's mean answer time less the other clients' mean answer time in the
   * same second, idle against active seconds of this client (Mann–Whitney: the test of record).
   * What the whole machine or network does to every answer that second (a busier CPU, an epoch's
   * votes) cancels; what this client's own mail does remains. Seconds, not answers, are the
   * samples: answers a few milliseconds apart share the machine's state, and a test over 7,000
   * of them as if independent flags any drift of the machine as a difference.
   */
  readonly relative: Comparison;
  /** The idle quantile above which an answer is slow (ms). */
  readonly slowThresholdMs: number;
  readonly slowShareIdle: number;
  readonly slowShareActive: number;
}

/** Each client's answers, and per second the sum and count of every client's answer times. */
interface AnswerTable {
  readonly byClient: Map<string, Answer[]>;
  readonly sum: Map<string, number[]>;
  readonly count: Map<string, number[]>;
}

function answerTable(trace: Trace, dataSize: number, bins: number): AnswerTable {
  const byClient = new Map<string, Answer[]>();
  const sum = new Map<string, number[]>();
  const count = new Map<string, number[]>();
  for (const [client, role] of trace.roles) {
    if (role.role !== 'client') continue;
    const answers = clientLinks(trace, client).flatMap((l) => answerTimes(l, dataSize));
    const s = new Array<number>(bins).fill(0);
    const n = new Array<number>(bins).fill(0);
    for (const a of answers) {
      const b = binOf(trace, a.t);
      if (b < 0 || b >= bins) continue;
      s[b]! += a.latencyMs;
      n[b]!++;
    }
    byClient.set(client, answers);
    sum.set(client, s);
    count.set(client, n);
  }
  return { byClient, sum, count };
}

/** The mean answer time of every client but `client` in bin `b`, or NaN when they had none. */
function othersMean(table: AnswerTable, client: string, b: number): number {
  let s = 0;
  let n = 0;
  for (const [other, sums] of table.sum) {
    if (other === client) continue;
    s += sums[b]!;
    n += table.count.get(other)![b]!;
  }
  return n === 0 ? NaN : s / n;
}

/**
 * Fetch answer time: does the gateway answer a fetch more slowly when the client has mail (or
 * acknowledgements) waiting? Answer times in idle against active seconds of the client, raw and
 * relative to the other clients' answers in the same second.
 */
export function fetchTiming(trace: Trace, opts: AnalysisOptions = {}): FetchTimingResult[] {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const table = answerTable(trace, dataSize, bins);
  const out: FetchTimingResult[] = [];
  for (const [client, answers] of table.byClient) {
    const kinds = classifyBins(activitiesOf(trace, [client]), trace.fromMs, bins, opts.guardMs ?? DEFAULT_GUARD_MS);
    const idle: number[] = [];
    const active: number[] = [];
    for (const a of answers) {
      const kind = kinds[binOf(trace, a.t)];
      if (kind === 'idle') idle.push(a.latencyMs);
      else if (kind === 'active') active.push(a.latencyMs);
    }
    const relIdle: number[] = [];
    const relActive: number[] = [];
    const sums = table.sum.get(client)!;
    const counts = table.count.get(client)!;
    for (let b = 0; b < bins; b++) {
      const kind = kinds[b];
      if ((kind !== 'idle' && kind !== 'active') || counts[b] === 0) continue;
      const others = othersMean(table, client, b);
      if (!Number.isNaN(others)) (kind === 'idle' ? relIdle : relActive).push(sums[b]! / counts[b]! - others);
    }
    const threshold = quantile(idle, opts.slowQuantile ?? DEFAULT_SLOW_QUANTILE);
    const share = (xs: number[]): number => (xs.length === 0 ? NaN : xs.filter((x) => x > threshold).length / xs.length);
    out.push({
      client,
      latency: compare(idle, active),
      relative: compare(relIdle, relActive),
      slowThresholdMs: threshold,
      slowShareIdle: share(idle),
      slowShareActive: share(active),
    });
  }
  return out;
}

/**
 * Per second, the mean answer time of the clients that are idle themselves, in seconds when no
 * client is active against seconds when another client is (Mann–Whitney over seconds): whether
 * mail anywhere moves everyone's answers, which says "someone is writing now" though not who. On
 * one machine this also measures the machine: every process shares its CPUs.
 */
export function bystanderTiming(trace: Trace, opts: AnalysisOptions = {}): Comparison {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const guard = opts.guardMs ?? DEFAULT_GUARD_MS;
  const table = answerTable(trace, dataSize, bins);
  const anyone = classifyBins(trace.activities, trace.fromMs, bins, guard);
  const control = controlKinds(trace, bins, guard);
  const mine = new Map([...table.byClient.keys()].map((c) => [c, classifyBins(activitiesOf(trace, [c]), trace.fromMs, bins, guard)]));
  const quiet: number[] = [];
  const busy: number[] = [];
  for (let b = 0; b < bins; b++) {
    if ((anyone[b] !== 'idle' && anyone[b] !== 'active') || control[b] !== 'idle') continue;
    let s = 0;
    let n = 0;
    for (const [client, kinds] of mine) {
      if (kinds[b] !== 'idle') continue;
      s += table.sum.get(client)![b]!;
      n += table.count.get(client)![b]!;
    }
    if (n > 0) (anyone[b] === 'idle' ? quiet : busy).push(s / n);
  }
  return compare(quiet, busy);
}

/** Each bin's kind with respect to the trace's control stretches ('active' inside one). */
function controlKinds(trace: Trace, bins: number, guard: number): BinKind[] {
  return classifyBins(
    (trace.controls ?? []).map((c) => ({ startMs: c.startMs, endMs: c.endMs, clients: [] })),
    trace.fromMs,
    bins,
    guard,
  );
}

/**
 * The machine as a control: per second, the mean answer time of all clients, in quiet seconds
 * (nobody active, no control) against seconds of a control stretch (nobody sends mail; a process
 * outside the network keeps the machine busy). When the control moves answers as the bystander
 * test's busy seconds do, what the bystanders see is the machine, not the network's mail. Null
 * when the trace has no control stretch.
 */
export function controlTiming(whole: Trace, opts: AnalysisOptions = {}): Comparison | null {
  if (whole.controls === undefined || whole.controls.length === 0) return null;
  const trace = { ...whole, toMs: Math.max(whole.toMs, whole.controlsUntilMs ?? whole.toMs) };
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const guard = opts.guardMs ?? DEFAULT_GUARD_MS;
  const table = answerTable(trace, dataSize, bins);
  const anyone = classifyBins(trace.activities, trace.fromMs, bins, guard);
  const control = controlKinds(trace, bins, guard);
  const quiet: number[] = [];
  const busy: number[] = [];
  for (let b = 0; b < bins; b++) {
    if (anyone[b] !== 'idle') continue;
    if (control[b] !== 'idle' && control[b] !== 'active') continue;
    let s = 0;
    let n = 0;
    for (const client of table.byClient.keys()) {
      s += table.sum.get(client)![b]!;
      n += table.count.get(client)![b]!;
    }
    if (n > 0) (control[b] === 'idle' ? quiet : busy).push(s / n);
  }
  return compare(quiet, busy);
}

export interface ClientLinkResult {
  readonly client: string;
  /** Data frames per second the client sent, idle against active (Mann–Whitney). */
  readonly sentPerS: Comparison;
  /** Data frames per second the client received. */
  readonly receivedPerS: Comparison;
  /** Times between the client's consecutive data frames (ms), by the second the later one left in (KS). */
  readonly interDeparture: Comparison;
  /**
   * Per second, the frames this client sent less the other clients' mean that second, idle
   * against active seconds of this client (Mann–Whitney over seconds: a test of record). What the
   * machine does to every client's clocks that second (a load that delays all timers) cancels.
   */
  readonly relativeSentPerS: Comparison;
  /**
   * Per second, this client's mean gap between frames less the other clients' mean gap that
   * second, idle against active (Mann–Whitney over seconds: the test of record for timing). The
   * KS over single gaps above treats 20,000 gaps as independent, and flags any drift of the
   * machine that happens to fall in active seconds.
   */
  readonly relativeGap: Comparison;
}

/** A client's data frames per second (sent, received) and, per second, the sum and count of the gaps between its sent frames. */
interface LinkTable {
  readonly sent: number[];
  readonly received: number[];
  readonly gapSum: number[];
  readonly gapCount: number[];
  readonly gapsIdle: number[];
  readonly gapsActive: number[];
}

/** Per second, the mean of `value(other, b)` over every client but `client` that has one. */
function othersPerSecond(tables: ReadonlyMap<string, LinkTable>, client: string, b: number, value: (t: LinkTable, b: number) => number): number {
  let s = 0;
  let n = 0;
  for (const [other, t] of tables) {
    if (other === client) continue;
    const v = value(t, b);
    if (Number.isNaN(v)) continue;
    s += v;
    n++;
  }
  return n === 0 ? NaN : s / n;
}

/** Idle against active on a client's own link: frame rates and inter-departure times, raw and relative to the other clients. */
export function clientLinkTests(trace: Trace, opts: AnalysisOptions = {}): ClientLinkResult[] {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const guard = opts.guardMs ?? DEFAULT_GUARD_MS;
  const kindsOf = new Map<string, BinKind[]>();
  const tables = new Map<string, LinkTable>();
  for (const [client, role] of trace.roles) {
    if (role.role !== 'client') continue;
    const kinds = classifyBins(activitiesOf(trace, [client]), trace.fromMs, bins, guard);
    const t: LinkTable = {
      sent: new Array<number>(bins).fill(0),
      received: new Array<number>(bins).fill(0),
      gapSum: new Array<number>(bins).fill(0),
      gapCount: new Array<number>(bins).fill(0),
      gapsIdle: [],
      gapsActive: [],
    };
    for (const l of clientLinks(trace, client)) {
      addInto(t.sent, binDataFrames(l.forward, dataSize, trace.fromMs, bins));
      addInto(t.received, binDataFrames(l.backward, dataSize, trace.fromMs, bins));
      let last = NaN;
      for (let k = 0; k < l.forward.times.length; k++) {
        if (l.forward.sizes[k] !== dataSize) continue;
        const at = l.forward.times[k]!;
        if (!Number.isNaN(last)) {
          const b = binOf(trace, at);
          const kind = kinds[b];
          if (kind === 'idle') t.gapsIdle.push(at - last);
          else if (kind === 'active') t.gapsActive.push(at - last);
          if (b >= 0 && b < bins) {
            t.gapSum[b]! += at - last;
            t.gapCount[b]!++;
          }
        }
        last = at;
      }
    }
    kindsOf.set(client, kinds);
    tables.set(client, t);
  }
  const meanGap = (t: LinkTable, b: number): number => (t.gapCount[b] === 0 ? NaN : t.gapSum[b]! / t.gapCount[b]!);
  const out: ClientLinkResult[] = [];
  for (const [client, t] of tables) {
    const kinds = kindsOf.get(client)!;
    const relSent = { idle: [] as number[], active: [] as number[] };
    const relGap = { idle: [] as number[], active: [] as number[] };
    for (let b = 0; b < bins; b++) {
      const kind = kinds[b];
      if (kind !== 'idle' && kind !== 'active') continue;
      const othersSent = othersPerSecond(tables, client, b, (o, i) => o.sent[i]!);
      if (!Number.isNaN(othersSent)) relSent[kind].push(t.sent[b]! - othersSent);
      const mine = meanGap(t, b);
      const othersGap = othersPerSecond(tables, client, b, meanGap);
      if (!Number.isNaN(mine) && !Number.isNaN(othersGap)) relGap[kind].push(mine - othersGap);
    }
    const sent = splitBins(t.sent, kinds);
    const received = splitBins(t.received, kinds);
    out.push({
      client,
      sentPerS: compare(sent.idle, sent.active),
      receivedPerS: compare(received.idle, received.active),
      interDeparture: compare(t.gapsIdle, t.gapsActive),
      relativeSentPerS: compare(relSent.idle, relSent.active),
      relativeGap: compare(relGap.idle, relGap.active),
    });
  }
  return out;
}

/** What the wire gives per client per second, for the pairing attack. */
export interface ClientSeries {
  readonly sent: number[];
  readonly received: number[];
  /** Share of that second's answers slower than the client's own 90th percentile (0 without answers). */
  readonly slowShare: number[];
  /** Mean answer time that second (the client's overall mean without answers). */
  readonly meanAnswerMs: number[];
}

/** The per-second series of every client, from its own link only. */
export function clientSeries(trace: Trace, opts: AnalysisOptions = {}): Map<string, ClientSeries> {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const out = new Map<string, ClientSeries>();
  for (const [client, role] of trace.roles) {
    if (role.role !== 'client') continue;
    const sent = new Array<number>(bins).fill(0);
    const received = new Array<number>(bins).fill(0);
    const answers: Answer[] = [];
    for (const l of clientLinks(trace, client)) {
      addInto(sent, binDataFrames(l.forward, dataSize, trace.fromMs, bins));
      addInto(received, binDataFrames(l.backward, dataSize, trace.fromMs, bins));
      answers.push(...answerTimes(l, dataSize));
    }
    // The observer knows no idle period here: "slow" is against the client's whole trace.
    const threshold = quantile(
      answers.map((a) => a.latencyMs),
      opts.slowQuantile ?? DEFAULT_SLOW_QUANTILE,
    );
    const overall = mean(answers.map((a) => a.latencyMs));
    const slow = new Array<number>(bins).fill(0);
    const count = new Array<number>(bins).fill(0);
    const total = new Array<number>(bins).fill(0);
    for (const a of answers) {
      const b = binOf(trace, a.t);
      if (b < 0 || b >= bins) continue;
      count[b]!++;
      total[b]! += a.latencyMs;
      if (a.latencyMs > threshold) slow[b]!++;
    }
    out.set(client, {
      sent,
      received,
      slowShare: slow.map((s, k) => (count[k]! === 0 ? 0 : s / count[k]!)),
      meanAnswerMs: total.map((s, k) => (count[k]! === 0 ? (Number.isNaN(overall) ? 0 : overall) : s / count[k]!)),
    });
  }
  return out;
}

/**
 * The series the pairing attack correlates. Not `received`: a gateway answers the constant-rate
 * fetches one for one, so that count takes two or three values a second set by the fetch clock's
 * phase, and two such series correlate by the accident of a few seconds; the answer times carry
 * what the gateway's side of the link shows.
 */
const FEATURES = ['sent', 'slowShare', 'meanAnswerMs'] as const;

/**
 * Each feature minus its mean over all clients in the same second. What every client shares (the
 * machine or the network slowing down for everyone) would otherwise correlate every pair alike
 * and hide what two correspondents share.
 */
export function removeCommonMode(series: ReadonlyMap<string, ClientSeries>): Map<string, ClientSeries> {
  const all = [...series.values()];
  const out = new Map<string, ClientSeries>();
  if (all.length < 2) return new Map(series);
  const bins = all[0]!.sent.length;
  const common = Object.fromEntries(FEATURES.map((f) => [f, Array.from({ length: bins }, (_, k) => mean(all.map((c) => c[f][k]!)))])) as Record<(typeof FEATURES)[number], number[]>;
  for (const [name, c] of series) {
    const residual = (f: (typeof FEATURES)[number]): number[] => c[f].map((v, k) => v - common[f][k]!);
    out.set(name, { sent: residual('sent'), received: c.received, slowShare: residual('slowShare'), meanAnswerMs: residual('meanAnswerMs') });
  }
  return out;
}

/** The best correlation of `x` against `y` shifted by −maxLag..maxLag bins. */
export function maxLaggedCorrelation(x: readonly number[], y: readonly number[], maxLag: number): number {
  let best = -Infinity;
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    const a: number[] = [];
    const b: number[] = [];
    for (let k = 0; k < x.length; k++) {
      const j = k + lag;
      if (j < 0 || j >= y.length) continue;
      a.push(x[k]!);
      b.push(y[j]!);
    }
    if (a.length < 3) continue;
    best = Math.max(best, pearson(a, b));
  }
  return best === -Infinity ? 0 : best;
}

export interface PairingCandidate {
  readonly client: string;
  readonly score: number;
}

export interface PairingResult {
  readonly client: string;
  /** Every other client, best first. */
  readonly ranking: readonly PairingCandidate[];
  /** The true partner, when known, and whether it came first. */
  readonly partner: string | null;
  readonly partnerFirst: boolean | null;
}

export interface PairingSummary {
  readonly results: readonly PairingResult[];
  /** Clients whose true partner was ranked first, of those with a known partner. */
  readonly correct: number;
  readonly scored: number;
  /**
   * P(at least `correct` right) if each ranking were a uniform guess among the other clients.
   * Rankings share their pair scores (a pair's score is the same from either end), so this
   * overstates the evidence; `pairRankP` is the test of record.
   */
  readonly p: number;
  /** Every pair's score ranked, best first (rank 1), and which pairs are true partners. */
  readonly pairs: readonly { readonly a: string; readonly b: string; readonly score: number; readonly rank: number; readonly partners: boolean }[];
  /** The sum of the true pairs' ranks (small: true pairs on top), and how many true pairs. */
  readonly pairRankSum: number;
  readonly truePairs: number;
  /** P(rank sum ≤ pairRankSum) if the pairs' order were a uniform random one (rankSumLowerTail). */
  readonly pairRankP: number;
}

function pairScore(a: ClientSeries, b: ClientSeries, maxLag: number): number {
  return Math.max(...FEATURES.map((f) => maxLaggedCorrelation(a[f], b[f], maxLag)));
}

/**
 * Pairing: for each client, every other client scored by the best lagged correlation of their
 * per-second series (any feature against the same feature, after removing what all clients
 * share that second), ranked. Uses only each client's own link, no ground truth; the truth only
 * scores the ranking: per client (is the partner first?) and over all pairs (the true pairs'
 * ranks among every pair's score, against a random order).
 */
export function pairing(trace: Trace, opts: AnalysisOptions = {}): PairingSummary {
  const series = removeCommonMode(clientSeries(trace, opts));
  const maxLag = opts.maxLagBins ?? DEFAULT_MAX_LAG_BINS;
  const names = [...series.keys()];
  const scores = new Map<string, number>();
  const key = (a: string, b: string): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) scores.set(key(names[i]!, names[j]!), pairScore(series.get(names[i]!)!, series.get(names[j]!)!, maxLag));
  }
  const results: PairingResult[] = [];
  let correct = 0;
  let scored = 0;
  for (const a of names) {
    const ranking = names
      .filter((b) => b !== a)
      .map((b) => ({ client: b, score: scores.get(key(a, b))! }))
      .sort((p, q) => q.score - p.score || p.client.localeCompare(q.client));
    const partner = trace.partners?.get(a) ?? null;
    const first = partner === null ? null : ranking[0]?.client === partner;
    if (first !== null) {
      scored++;
      if (first) correct++;
    }
    results.push({ client: a, ranking, partner, partnerFirst: first });
  }
  const pairs = [...scores]
    .map(([k, score]) => {
      const [a, b] = k.split('\u0000') as [string, string];
      return { a, b, score, partners: trace.partners?.get(a) === b };
    })
    .sort((p, q) => q.score - p.score || p.a.localeCompare(q.a) || p.b.localeCompare(q.b))
    .map((p, k) => ({ ...p, rank: k + 1 }));
  const truePairs = pairs.filter((p) => p.partners);
  const pairRankSum = truePairs.reduce((s, p) => s + p.rank, 0);
  const chance = names.length > 1 ? 1 / (names.length - 1) : 1;
  return {
    results,
    correct,
    scored,
    p: binomialTail(correct, scored, chance),
    pairs,
    pairRankSum,
    truePairs: truePairs.length,
    pairRankP: truePairs.length === 0 ? 1 : rankSumLowerTail(pairRankSum, truePairs.length, pairs.length),
  };
}

export interface OtherFramesResult {
  readonly label: string;
  readonly initiator: string | null;
  readonly responder: string;
  /** Frames of a size other than the data frame's, by size, in idle, active and edge seconds of the link's subject. */
  readonly idle: Record<string, number>;
  readonly active: Record<string, number>;
  readonly total: number;
}

/**
 * Frames that are not data frames (handshake, keepalive, rekey, close: shorter), counted per link
 * and period: an observer sees them too. The subject of a link is its client, or for a link between
 * nodes the gateway at one end (mix to mix links: no subject, every second counts as idle).
 */
export function otherFrames(trace: Trace, opts: AnalysisOptions = {}): OtherFramesResult[] {
  const dataSize = opts.dataFrameSize ?? measureDataFrameSize(trace.links);
  const bins = binCount(trace);
  const guard = opts.guardMs ?? DEFAULT_GUARD_MS;
  const out: OtherFramesResult[] = [];
  for (const l of trace.links) {
    const ri = roleOf(trace, l.initiator);
    const rr = roleOf(trace, l.responder);
    const subject = ri?.role === 'client' ? [l.initiator!] : ri?.role === 'gateway' ? clientsOf(trace, l.initiator!) : rr?.role === 'gateway' ? clientsOf(trace, l.responder) : [];
    const kinds = classifyBins(activitiesOf(trace, subject), trace.fromMs, bins, guard);
    const idle: Record<string, number> = {};
    const active: Record<string, number> = {};
    let total = 0;
    for (const [dir, s] of [['fwd', l.forward], ['back', l.backward]] as const) {
      for (let k = 0; k < s.times.length; k++) {
        if (s.sizes[k] === dataSize) continue;
        total++;
        const kind = kinds[binOf(trace, s.times[k]!)];
        const key = `${dir} ${s.sizes[k]}`;
        if (kind === 'idle') idle[key] = (idle[key] ?? 0) + 1;
        else if (kind === 'active') active[key] = (active[key] ?? 0) + 1;
      }
    }
    out.push({ label: l.label, initiator: l.initiator, responder: l.responder, idle, active, total });
  }
  return out;
}
