/**
 * The statistics the observer's attacks use, written out here so that each p-value can be read
 * and checked: the two-sample Kolmogorov–Smirnov test (asymptotic distribution), the Mann–Whitney
 * U test (normal approximation with the tie correction), Pearson's correlation (Fisher's z, or a
 * permutation test), and a binomial tail. Pure functions over arrays of numbers; randomness only
 * through an injected `Rng`.
 */
import { BackchannelError } from '../errors.js';

/** A uniform draw in [0, 1). Tests pass a seeded one; the bench one from the CSPRNG. */
export type Rng = () => number;

/** Terms of the Kolmogorov series summed at most (they fall as exp(-2 j² λ²)). */
const KS_SERIES_TERMS = 100;
/** Below this λ the Kolmogorov distribution's tail is 1 to double precision. */
const KS_LAMBDA_FLOOR = 0.2;

function finiteArray(name: string, xs: readonly number[], min: number): void {
  if (!Array.isArray(xs)) throw new TypeError(`stats: "${name}" expected an array of numbers`);
  if (xs.length < min) throw new RangeError(`stats: "${name}" expected at least ${min} values, got ${xs.length}`);
  for (const x of xs) if (typeof x !== 'number' || !Number.isFinite(x)) throw new RangeError(`stats: "${name}" holds a value that is not a finite number`);
}

/**
 * A seeded generator for tests and reproducible runs: Marsaglia's xorshift on 32 bits, seeded
 * through a multiplicative hash so that nearby seeds do not start alike. Not for secrets.
 */
export function seededRng(seed: number): Rng {
  let x = Math.imul((seed | 0) ^ 0x5bd1e995, 0x9e3779b1) | 0;
  if (x === 0) x = 0x6d2b79f5;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** The complementary error function, to about 1e-7 relative error (a Chebyshev fit of exp(-z²)·erfc). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z -
    1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(poly);
  return x >= 0 ? r : 2 - r;
}

/** Two-sided p-value of a standard normal statistic. */
export function normalTwoSided(z: number): number {
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/** The mean of `xs` (NaN when empty). */
export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length === 0 ? NaN : s / xs.length;
}

/** The q-quantile (0..1) of `xs`, linear between order statistics; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError('stats: "q" expected a number from 0 to 1');
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/**
 * The Kolmogorov distribution's tail, Q(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²): the chance that
 * √n·D exceeds λ for large samples.
 */
export function kolmogorovTail(lambda: number): number {
  if (lambda < KS_LAMBDA_FLOOR) return 1;
  let sum = 0;
  for (let j = 1; j <= KS_SERIES_TERMS; j++) {
    const term = Math.exp(-2 * j * j * lambda * lambda);
    sum += j % 2 === 1 ? term : -term;
    if (term < 1e-16) break;
  }
  return Math.max(0, Math.min(1, 2 * sum));
}

export interface KsResult {
  /** The largest distance between the two empirical distribution functions. */
  readonly d: number;
  /** Asymptotic two-sided p-value, with Stephens' small-sample correction of λ. */
  readonly p: number;
  readonly n: number;
  readonly m: number;
}

/**
 * The two-sample Kolmogorov–Smirnov test: do `a` and `b` come from one distribution?
 * @throws {RangeError} when either sample is empty or holds a value that is not finite.
 * @example ksTwoSample([1, 2, 3], [4, 5, 6]).d  // 1
 */
export function ksTwoSample(a: readonly number[], b: readonly number[]): KsResult {
  finiteArray('a', a, 1);
  finiteArray('b', b, 1);
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  const n = x.length;
  const m = y.length;
  let i = 0;
  let j = 0;
  let d = 0;
  // Step over each distinct value once, on both sides, so that ties do not inflate D.
  while (i < n && j < m) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < n && x[i]! <= v) i++;
    while (j < m && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const en = Math.sqrt((n * m) / (n + m));
  const p = kolmogorovTail((en + 0.12 + 0.11 / en) * d);
  return { d, p, n, m };
}

/** Ranks of `values` from 1, ties given their mean rank; also Σ(t³ − t) over tie groups. */
function ranks(values: readonly number[]): { ranks: number[]; tieTerm: number } {
  const order = values.map((v, k) => [v, k] as const).sort((p, q) => p[0] - q[0]);
  const out = new Array<number>(values.length);
  let tieTerm = 0;
  for (let s = 0; s < order.length; ) {
    let e = s + 1;
    while (e < order.length && order[e]![0] === order[s]![0]) e++;
    const r = (s + 1 + e) / 2;
    for (let k = s; k < e; k++) out[order[k]![1]] = r;
    const t = e - s;
    tieTerm += t * t * t - t;
    s = e;
  }
  return { ranks: out, tieTerm };
}

export interface MannWhitneyResult {
  /** U of the first sample: pairs (a_i, b_j) with a_i > b_j, ties counted one half. */
  readonly u: number;
  /** The normal statistic, with tie and continuity corrections; positive when `a` tends larger. */
  readonly z: number;
  /** Two-sided p-value. */
  readonly p: number;
}

/**
 * The Mann–Whitney U test (Wilcoxon rank-sum) with the normal approximation: does one sample
 * tend to be larger than the other?
 * @throws {RangeError} when either sample is empty or holds a value that is not finite.
 */
export function mannWhitney(a: readonly number[], b: readonly number[]): MannWhitneyResult {
  finiteArray('a', a, 1);
  finiteArray('b', b, 1);
  const n1 = a.length;
  const n2 = b.length;
  const n = n1 + n2;
  const { ranks: r, tieTerm } = ranks([...a, ...b]);
  let r1 = 0;
  for (let k = 0; k < n1; k++) r1 += r[k]!;
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const mu = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1) || 1));
  if (!(variance > 0)) return { u, z: 0, p: 1 };
  const diff = u - mu;
  const corrected = Math.sign(diff) * Math.max(0, Math.abs(diff) - 0.5);
  const z = corrected / Math.sqrt(variance);
  return { u, z, p: normalTwoSided(z) };
}

/**
 * Pearson's correlation of two series of one length; 0 when either is constant.
 * @throws {RangeError} when the lengths differ or a value is not finite.
 */
export function pearson(x: readonly number[], y: readonly number[]): number {
  finiteArray('x', x, 0);
  finiteArray('y', y, 0);
  if (x.length !== y.length) throw new RangeError(`stats: "x" and "y" expected one length, got ${x.length} and ${y.length}`);
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let k = 0; k < x.length; k++) {
    const dx = x[k]! - mx;
    const dy = y[k]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return 0;
  return sxy / Math.sqrt(sxx * syy);
}

/** Two-sided p-value of a Pearson correlation `r` over `n` pairs, by Fisher's z transform. */
export function fisherP(r: number, n: number): number {
  if (n <= 3) return 1;
  const clipped = Math.max(-0.999999, Math.min(0.999999, r));
  return normalTwoSided(Math.atanh(clipped) * Math.sqrt(n - 3));
}

/**
 * Two-sided permutation p-value of Pearson's r: the share of `rounds` shuffles of `y` whose |r|
 * reaches the observed one (counting the observed arrangement, so never 0).
 */
export function pearsonPermutationP(x: readonly number[], y: readonly number[], rng: Rng, rounds = 999): number {
  const observed = Math.abs(pearson(x, y));
  const shuffled = [...y];
  let reached = 0;
  for (let k = 0; k < rounds; k++) {
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = shuffled[i]!;
      shuffled[i] = shuffled[j]!;
      shuffled[j] = t;
    }
    if (Math.abs(pearson(x, shuffled)) >= observed - 1e-12) reached++;
  }
  return (reached + 1) / (rounds + 1);
}

/** P(X ≥ k) for X binomial with `n` trials of probability `p`. */
export function binomialTail(k: number, n: number, p: number): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0) throw new RangeError('stats: "k" and "n" expected integers, n ≥ 0');
  if (k <= 0) return 1;
  if (k > n) return 0;
  let total = 0;
  // C(n, i) p^i (1−p)^(n−i), built term by term.
  let term = Math.pow(1 - p, n);
  for (let i = 0; i <= n; i++) {
    if (i >= k) total += term;
    term = (term * (n - i) * p) / ((i + 1) * (1 - p) || 1);
  }
  return Math.min(1, total);
}

/**
 * The number of ways to choose `m` of the ranks 1..`total` with each rank sum, as an array
 * indexed by the sum (ways[s] = subsets summing to s).
 */
function subsetSumCounts(m: number, total: number): number[] {
  const maxSum = (m * (2 * total - m + 1)) / 2;
  // ways[k][s]: k ranks chosen among those seen so far, summing to s.
  let ways = Array.from({ length: m + 1 }, () => new Array<number>(maxSum + 1).fill(0));
  ways[0]![0] = 1;
  for (let r = 1; r <= total; r++) {
    const next = ways.map((row) => row.slice());
    for (let k = 1; k <= m; k++) {
      for (let s = r; s <= maxSum; s++) next[k]![s]! += ways[k - 1]![s - r]!;
    }
    ways = next;
  }
  return ways[m]!;
}

/**
 * P(S ≤ `observed`) where S is the sum over `runs` independent runs of the ranks (1 = best) that
 * `m` items take among `total` when each run's ranking is a uniform random order: the exact
 * lower tail of a rank-sum statistic, for a pairing attack that should put the true pairs on top
 * no more often than chance.
 */
export function rankSumLowerTail(observed: number, m: number, total: number, runs = 1): number {
  for (const [name, v] of [['m', m], ['total', total], ['runs', runs]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`stats: "${name}" expected a positive integer`);
  }
  if (m > total) throw new RangeError('stats: "m" exceeds "total"');
  const counts = subsetSumCounts(m, total);
  const subsets = counts.reduce((a, b) => a + b, 0);
  const one = counts.map((c) => c / subsets);
  let dist = [1];
  for (let k = 0; k < runs; k++) {
    const next = new Array<number>(dist.length + one.length - 1).fill(0);
    for (let i = 0; i < dist.length; i++) {
      if (dist[i] === 0) continue;
      for (let j = 0; j < one.length; j++) next[i + j]! += dist[i]! * one[j]!;
    }
    dist = next;
  }
  let p = 0;
  for (let s = 0; s < dist.length && s <= observed; s++) p += dist[s]!;
  return Math.min(1, p);
}

/** An error for a trace the analysis cannot use. */
export function traceError(message: string): BackchannelError {
  return new BackchannelError('ERR_OBSERVE_TRACE', `observe: ${message}`);
}
