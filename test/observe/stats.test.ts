// The observer's statistics against values computed independently (SciPy 1.x, asymptotic
// methods, continuity correction on), and on seeded samples where the answer is known.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binomialTail,
  rankSumLowerTail,
  erfc,
  fisherP,
  kolmogorovTail,
  ksTwoSample,
  mannWhitney,
  pearson,
  pearsonPermutationP,
  quantile,
  seededRng,
} from '../../src/observe/stats.js';

const close = (actual: number, expected: number, tol: number, what: string): void => assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);

function exponential(rng: () => number, n: number, mean: number): number[] {
  return Array.from({ length: n }, () => -mean * Math.log(1 - rng()));
}

describe('statistics', () => {
  test('erfc and the Kolmogorov tail match tabulated values', () => {
    close(erfc(0), 1, 1e-7, 'erfc(0)');
    close(erfc(1), 0.157299207, 1e-7, 'erfc(1)');
    close(erfc(-1), 1.842700793, 1e-7, 'erfc(-1)');
    close(kolmogorovTail(1.0), 0.26999967, 1e-6, 'Q(1)');
    close(kolmogorovTail(1.36), 0.0494, 5e-4, 'Q(1.36)');
    assert.equal(kolmogorovTail(0.05), 1);
  });

  test('the two-sample KS statistic is the largest gap between the empirical distributions, ties handled once', () => {
    const a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const b = [3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5];
    close(ksTwoSample(a, b).d, 0.4166667, 1e-6, 'D');
    assert.equal(ksTwoSample([1, 1, 2], [1, 1, 2]).d, 0);
    assert.equal(ksTwoSample([1, 2, 3], [4, 5, 6]).d, 1);
  });

  test('KS tells apart samples from different distributions and not samples from one (seeded)', () => {
    const rng = seededRng(7);
    const same = ksTwoSample(exponential(rng, 400, 10), exponential(rng, 400, 10));
    assert.ok(same.p > 0.05, `same distribution gave p = ${same.p}`);
    const diff = ksTwoSample(exponential(rng, 400, 10), exponential(rng, 400, 14));
    assert.ok(diff.p < 0.01, `different distributions gave p = ${diff.p}`);
  });

  test('Mann–Whitney U and its p-value match SciPy, with and without ties', () => {
    const r1 = mannWhitney([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5]);
    assert.equal(r1.u, 28);
    close(r1.p, 0.0377971, 2e-5, 'p');
    assert.ok(r1.z < 0);
    const r2 = mannWhitney([1, 2, 2, 3, 3, 3, 4], [2, 3, 4, 4, 5, 5, 6, 7]);
    assert.equal(r2.u, 8.5);
    close(r2.p, 0.0252797, 2e-5, 'p with ties');
    assert.equal(mannWhitney([5, 5, 5], [5, 5]).p, 1);
  });

  test('Pearson r matches SciPy; Fisher and permutation p-values find a real correlation and not a shuffled one', () => {
    close(pearson([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 7, 5]), 0.7917947, 1e-6, 'r');
    assert.equal(pearson([1, 1, 1], [1, 2, 3]), 0);
    const rng = seededRng(11);
    const x = Array.from({ length: 200 }, () => rng());
    const y = x.map((v) => v + 0.5 * rng());
    const z = Array.from({ length: 200 }, () => rng());
    assert.ok(fisherP(pearson(x, y), 200) < 1e-6);
    assert.ok(fisherP(pearson(x, z), 200) > 0.05);
    assert.ok(pearsonPermutationP(x, y, seededRng(1), 199) <= 0.01);
    assert.ok(pearsonPermutationP(x, z, seededRng(2), 199) > 0.05);
  });

  test('quantiles, the binomial tail, and argument checks', () => {
    assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
    assert.equal(quantile([4, 1, 3, 2], 1), 4);
    close(binomialTail(2, 4, 1 / 3), 1 - (16 / 81 + 32 / 81), 1e-12, 'P(X ≥ 2)');
    assert.equal(binomialTail(0, 4, 0.3), 1);
    assert.equal(binomialTail(5, 4, 0.3), 0);
    assert.throws(() => ksTwoSample([], [1]), RangeError);
    assert.throws(() => mannWhitney([1, NaN], [1]), RangeError);
    assert.throws(() => pearson([1, 2], [1]), RangeError);
  });

  test('the rank-sum tail: exact over one run and several, against enumeration', () => {
    // Two true pairs among six pair scores: 15 equally likely placements.
    close(rankSumLowerTail(3, 2, 6), 1 / 15, 1e-12, 'both on top');
    close(rankSumLowerTail(4, 2, 6), 2 / 15, 1e-12, 'ranks 1 and 2, or 1 and 3');
    assert.equal(rankSumLowerTail(11, 2, 6), 1);
    assert.equal(rankSumLowerTail(2, 2, 6), 0);
    close(rankSumLowerTail(6, 2, 6, 2), 1 / 225, 1e-12, 'on top twice');
    close(rankSumLowerTail(7, 2, 6, 2), 3 / 225, 1e-12, 'sums 3+3, 3+4, 4+3');
    // Against brute force: every 3-subset of 1..7, over three runs.
    const one = new Map<number, number>();
    for (let a = 1; a <= 7; a++) for (let b = a + 1; b <= 7; b++) for (let c = b + 1; c <= 7; c++) one.set(a + b + c, (one.get(a + b + c) ?? 0) + 1);
    let below = 0;
    let all = 0;
    for (const [s1, n1] of one) for (const [s2, n2] of one) for (const [s3, n3] of one) {
      all += n1 * n2 * n3;
      if (s1 + s2 + s3 <= 25) below += n1 * n2 * n3;
    }
    close(rankSumLowerTail(25, 3, 7, 3), below / all, 1e-12, 'three runs');
    assert.throws(() => rankSumLowerTail(3, 7, 6), RangeError);
    assert.throws(() => rankSumLowerTail(3, 0, 6), RangeError);
  });

  test('the seeded generator repeats for a seed and differs between seeds', () => {
    const a = seededRng(3);
    const b = seededRng(3);
    const c = seededRng(4);
    const xs = Array.from({ length: 5 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b()));
    assert.notDeepEqual(xs, Array.from({ length: 5 }, () => c()));
    for (const x of xs) assert.ok(x >= 0 && x < 1);
  });
});
