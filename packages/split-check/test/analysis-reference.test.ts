// Reference values of the canary analysis' statistics, computed once with SciPy 1.17.1 / NumPy 2.4.6:
//
//   import numpy as np
//   from scipy import stats
//   fx = lambda n, a, m, d, off=0: [((i * a) % m) / d + off for i in range(n)]
//   stats.mannwhitneyu(x, y, alternative=alt, method=...)          # U of x and the p-value
//   stats.binomtest(k, n, p, alternative='greater' | 'less').pvalue
//   stats.binomtest(k, n, alternative='less').proportion_ci(confidence_level=c, method='exact').high
//   stats.binomtest(k, n, alternative='greater').proportion_ci(confidence_level=c, method='exact').low
//   stats.binom.ppf(q, n, p)
//   stats.binom.ppf(c, n, 0.99) + 1                                 # upper rank of p99 (None when > n)
//   max(j for j in range(1, n + 1) if stats.binom.sf(j - 1, n, 0.99) >= c)   # lower rank
//   stats.quantile_test(np.arange(1, n + 1.0), q=0, p=0.99, alternative='less').confidence_interval(c).high
//   np.quantile(x, q)
//   # the analysis plan's first look for 24 tests and 3 looks (alpha = 0.001 / 72, beta = 0.01 / 3):
//   next(n for n in range(1, 10**5) if stats.binom.cdf(0, n, 0.01) < beta)                          # 568
//   next(n for n in range(1, 10**5) if stats.binom.ppf(1 - beta, n, 0.99) + 1 <= n)                  # 568
//   next(n for n in range(1, 10**5) if stats.binomtest(0, n, alternative='less').proportion_ci(
//        confidence_level=1 - beta / 2, method='exact').high < 0.01)                                  # 637
import { describe, expect, it } from 'vitest';
import {
  binomialQuantile,
  binomialTestGreater,
  binomialTestLess,
  clopperPearsonLower,
  clopperPearsonUpper,
  mannWhitneyOneSided,
  mannWhitneyU,
  planAnalysis,
  quantileLowerRank,
  quantileSorted,
  quantileUpperRank,
} from '../src/index.js';
import { FIXTURE_THRESHOLDS } from './fixtures.js';

function close(actual: number, expected: number, relative = 1e-9, absolute = 1e-300): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(absolute, Math.abs(expected) * relative));
}

/** The samples the SciPy snippet builds with fx(n, a, m, d, off). */
const fx = (n: number, a: number, m: number, d: number, off = 0) =>
  Array.from({ length: n }, (_, i) => ((i * a) % m) / d + off);

describe('Mann-Whitney U (scipy.stats.mannwhitneyu)', () => {
  it.each([
    ['two-sided', 0.13752913752913754],
    ['greater', 0.06876456876456877],
    ['less', 0.9493006993006993],
  ] as const)('small samples, exact, %s', (alternative, p) => {
    const x = [1.2, 3.4, 0.5, 2.2, 7.1, 4.4];
    const y = [0.9, 1.1, 2.0, 0.3, 1.7, 2.5, 0.8];
    const r = mannWhitneyU(x, y, { alternative, method: 'exact' });
    expect(r.u).toBe(32);
    expect(r.method).toBe('exact');
    close(r.pValue, p, 1e-12);
  });

  it.each([
    ['two-sided', true, 0.593108647846539],
    ['two-sided', false, 0.570216498762648],
    ['greater', true, 0.2965543239232695],
    ['greater', false, 0.285108249381324],
    ['less', true, 0.726122871502976],
    ['less', false, 0.714891750618676],
  ] as const)(
    'ties, normal approximation with the tie correction, %s, continuity %s',
    (alternative, continuity, p) => {
      const x = [1, 2, 2, 3, 3, 3, 4, 5, 5, 9];
      const y = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 6, 7];
      const r = mannWhitneyU(x, y, { alternative, continuity });
      expect(r.u).toBe(68.5);
      expect(r.method).toBe('asymptotic');
      expect(r.ties).toBe(true);
      close(r.pValue, p, 1e-9);
    },
  );

  it.each([
    ['two-sided', 0.43638168395791366],
    ['greater', 0.21819084197895683],
    ['less', 0.7823134712797545],
  ] as const)('40 against 300 with ties (auto: asymptotic), %s', (alternative, p) => {
    const r = mannWhitneyU(fx(40, 7919, 1000, 100, 0.3), fx(300, 104729, 997, 100), { alternative });
    expect(r.u).toBe(6455);
    expect(r.method).toBe('asymptotic');
    close(r.pValue, p, 1e-9);
  });

  it.each([
    ['two-sided', 0.010723446906409055],
    ['greater', 0.005361723453204527],
    ['less', 0.9952335510110403],
  ] as const)('8 against 30 without ties (auto: exact), %s', (alternative, p) => {
    const r = mannWhitneyU(fx(8, 7919, 1000, 100, 1.5), fx(30, 104729, 997, 100), { alternative });
    expect(r.u).toBe(190);
    expect(r.method).toBe('exact');
    close(r.pValue, p, 1e-10);
  });

  it('both one-sided tests from one ranking agree with two calls', () => {
    const x = fx(40, 7919, 1000, 100, 0.3);
    const y = fx(300, 104729, 997, 100);
    const both = mannWhitneyOneSided(x, y);
    expect(both.greater).toEqual(mannWhitneyU(x, y, { alternative: 'greater' }));
    expect(both.less).toEqual(mannWhitneyU(x, y, { alternative: 'less' }));
  });

  it('complete separation, exact: 1 / C(10, 5)', () => {
    const r = mannWhitneyU([10, 11, 12, 13, 14], [1, 2, 3, 4, 5], {
      alternative: 'greater',
      method: 'exact',
    });
    expect(r.u).toBe(25);
    close(r.pValue, 0.003968253968253968, 1e-12);
  });

  it.each([
    ['greater', 0.21664090118830542],
    ['less', 0.7833601825344413],
  ] as const)('2000 against 20000 (the size of a canary-10 step), %s', (alternative, p) => {
    const r = mannWhitneyU(fx(2000, 7919, 10007, 1000, 0.05), fx(20000, 104729, 10009, 1000), {
      alternative,
    });
    expect(r.u).toBe(20212202);
    close(r.pValue, p, 1e-8);
  });
});

describe('one-sided exact binomial tests and Clopper-Pearson bounds (scipy.stats.binomtest)', () => {
  it.each([
    [3, 100, 0.01, 0.07937320225218046, 0.9816259635553504],
    [0, 640, 0.01, 1.0, 0.0016088832949847933],
    [12, 600, 0.01, 0.01952967823902654, 0.9915083602734465],
    [97, 1866, 0.01, 3.6167762369365644e-38, 1.0],
    [5, 2000, 0.01, 0.9999841271649688, 6.787349452355955e-5],
    [40, 2000, 0.01, 4.811531715232038e-5, 0.9999772380198402],
  ])('k=%d n=%d p0=%d: greater %d, less %d', (k, n, p0, greater, less) => {
    close(binomialTestGreater(k, n, p0), greater, 1e-9);
    close(binomialTestLess(k, n, p0), less, 1e-9);
  });

  it.each([
    [0, 640, 0.99, 0, 0.007169752223163],
    [3, 100, 0.95, 0.0082258291078652, 0.07571079374983007],
    [12, 600, 0.999986, 0.004242175245625512, 0.05544077745094442],
    [97, 1866, 0.9999, 0.034899663878502865, 0.07372798515044744],
    [600, 600, 0.99, 0.9923540961320998, 1],
    [1, 1, 0.9, 0.09999999999999998, 1],
  ])('%d of %d at %d: lower %d, upper %d', (k, n, c, lo, hi) => {
    close(clopperPearsonLower(k, n, c), lo, 1e-9, 1e-15);
    close(clopperPearsonUpper(k, n, c), hi, 1e-9, 1e-15);
  });

  it.each([
    [0.99, 100, 0.3, 41],
    [0.5, 11, 0.5, 5],
    [0.99667, 637, 0.99, 636],
    [0.999986, 60000, 0.01, 705],
  ])('binom.ppf(%d, %d, %d) = %d', (q, n, p, k) => {
    expect(binomialQuantile(q, n, p)).toBe(k);
  });
});

describe('p99 bounds from order statistics', () => {
  it.each([
    [100, 0.95, null, 97],
    [637, 0.99667, 637, 623],
    [637, 0.999986, null, 618],
    [5000, 0.99667, 4969, 4930],
    [5000, 0.999986, 4978, 4918],
    [459, 0.99, 459, 449],
    [458, 0.99, null, 448],
  ])('n=%d at %d: upper rank %s, lower rank %s (as scipy.stats.quantile_test)', (n, c, upper, lower) => {
    expect(quantileUpperRank(n, 0.99, c)).toBe(upper);
    expect(quantileLowerRank(n, 0.99, c)).toBe(lower);
  });

  it('sample quantiles interpolate as np.quantile', () => {
    const data = Float64Array.from(fx(1000, 7919, 1000, 10)).sort();
    close(quantileSorted(data, 0.5), 49.95, 1e-12);
    close(quantileSorted(data, 0.9), 89.91000000000001, 1e-12);
    close(quantileSorted(data, 0.99), 98.90100000000001, 1e-12);
    expect(quantileSorted([3], 0.99)).toBe(3);
    close(quantileSorted([1, 2], 0.99), 1.99, 1e-12);
  });
});

describe('the analysis plan', () => {
  it('splits the false-abort rate over 24 tests and 3 looks; the first look needs 637 / 568 canary requests', () => {
    const steps = [
      ...['canary-10', 'canary-25', 'canary-50', 'canary-75', 'blue-preview'].map((stage) => ({
        stage,
        baseline: true,
      })),
      { stage: 'canary-100', baseline: false },
      { stage: 'blue', baseline: false },
    ];
    const plan = planAnalysis(FIXTURE_THRESHOLDS, steps);
    expect(plan.tests).toBe(24);
    close(plan.alpha, 1.388888888888889e-5, 1e-12);
    close(plan.beta, 0.0033333333333333335, 1e-12);
    expect(plan.minCanary).toEqual({ comparison: 637, sloOnly: 568 });
  });
});
