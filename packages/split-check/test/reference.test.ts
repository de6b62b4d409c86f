// Reference values computed with SciPy 1.17 (scipy.stats binom/binomtest/chisquare/chi2/norm) and statsmodels
// proportion_confint; binomtest uses the same "minlike" two-sided rule as R's binom.test.
import { describe, expect, it } from 'vitest';
import {
  binomialAcceptanceBand,
  binomialCdf,
  binomialPmf,
  binomialSf,
  binomialTestTwoSided,
  chiSquareGoodnessOfFit,
  chiSquareSf,
  clopperPearson,
  normalQuantile,
} from '../src/index.js';

function close(actual: number, expected: number, relative = 1e-9, absolute = 1e-300): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.max(absolute, Math.abs(expected) * relative));
}

describe('binomial distribution', () => {
  it.each([
    [5, 10, 0.5, 0.623046875, 0.376953125, 0.24609375],
    [0, 10, 0.1, 0.34867844009999993, 0.6513215599000001, 0.34867844009999993],
    [150, 2000, 0.1, 6.377916599140854e-5, 0.9999362208340086, 1.806334659509475e-5],
    [499000, 1000000, 0.5, 0.0228041499326948, 0.9771958500673052, 0.00010798197801891438],
    [250500, 1000000, 0.25, 0.8761166126363811, 0.12388338736361897, 0.0004728453264160451],
    [100, 1000000, 0.0001, 0.5265621985632194, 0.47343780143678066, 0.03986299000814659],
    [10, 1000000, 0.0001, 1.133083781309057e-30, 1.0, 1.0210145533833648e-30],
  ])('k=%d n=%d p=%d: cdf, sf and pmf match SciPy', (k, n, p, cdf, sf, pmf) => {
    close(binomialCdf(k, n, p), cdf, 1e-9);
    close(binomialSf(k, n, p), sf, 1e-9);
    close(binomialPmf(k, n, p), pmf, 1e-9);
  });

  it('handles the edges: p of 0 or 1, k outside 0..n', () => {
    expect(binomialPmf(0, 10, 0)).toBe(1);
    expect(binomialPmf(1, 10, 0)).toBe(0);
    expect(binomialPmf(10, 10, 1)).toBe(1);
    expect(binomialPmf(11, 10, 0.5)).toBe(0);
    expect(binomialPmf(2.5, 10, 0.5)).toBe(0);
    expect(binomialCdf(-1, 10, 0.5)).toBe(0);
    expect(binomialCdf(10, 10, 0.5)).toBe(1);
    expect(binomialCdf(3, 10, 1)).toBe(0);
    expect(binomialSf(3, 10, 0)).toBe(0);
  });

  it('is fast for n = 1e6 (tails summed from the requested point, not from 0)', () => {
    const start = performance.now();
    for (let i = 0; i < 200; i++) binomialCdf(499000 + i, 1000000, 0.5);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('rejects bad input with a clear message', () => {
    expect(() => binomialCdf(1, -1, 0.5)).toThrow(/n must be a non-negative integer/);
    expect(() => binomialPmf(1, 10, 1.5)).toThrow(/p must be a probability/);
    expect(() => binomialTestTwoSided(11, 10, 0.5)).toThrow(/k must be <= n/);
  });
});

describe('exact two-sided binomial test (minlike, as R binom.test)', () => {
  it.each([
    [3, 10, 0.5, 0.34375],
    [180, 2000, 0.1, 0.14593565616233095],
    [230, 2000, 0.1, 0.027809393629052066],
    [0, 20, 0.1, 0.25452997802490435],
    [7, 20, 0.3, 0.6294979666766769],
    [682, 925, 0.75, 0.3824915595748517],
    [9, 10, 0.3, 0.00014368589999999996],
    [500, 1000, 0.5, 1],
    [480, 1000, 0.5, 0.2174482932041415],
    [5100, 10000, 0.5, 0.04658552770494645],
    [1, 100, 0, 0],
    [0, 100, 0, 1],
    [100, 100, 1, 1],
    [240, 1000, 0.25, 0.48783683920490084],
    [499000, 1000000, 0.5, 0.0456082998653896],
    [248800, 1000000, 0.25, 0.005583579843847101],
  ])('k=%d n=%d p=%d: p-value %d', (k, n, p, expected) => {
    close(binomialTestTwoSided(k, n, p), expected, 1e-8, 1e-15);
  });
});

describe('acceptance band', () => {
  it('n=2000, p=0.10, confidence 0.999 is 157..245', () => {
    expect(binomialAcceptanceBand(2000, 0.1, 0.999)).toEqual({ lo: 157, hi: 245 });
  });

  it('each tail outside the band is at most (1 - confidence)/2, and the band is the narrowest such', () => {
    for (const [n, p] of [
      [1999, 0.1],
      [3690, 0.25],
      [4624, 0.5],
      [500, 0.9],
    ] as const) {
      const { lo, hi } = binomialAcceptanceBand(n, p, 0.9998);
      expect(binomialCdf(lo - 1, n, p)).toBeLessThanOrEqual(0.0001);
      expect(binomialCdf(lo, n, p)).toBeGreaterThan(0.0001);
      expect(binomialSf(hi, n, p)).toBeLessThanOrEqual(0.0001);
      expect(binomialSf(hi - 1, n, p)).toBeGreaterThan(0.0001);
    }
  });

  it('is the single point for a deterministic share', () => {
    expect(binomialAcceptanceBand(135, 1, 0.999)).toEqual({ lo: 135, hi: 135 });
    expect(binomialAcceptanceBand(135, 0, 0.999)).toEqual({ lo: 0, hi: 0 });
  });
});

describe('proportion intervals', () => {
  it.each([
    [7, 20, 0.95, 0.15390920478454118, 0.5921885345328282],
    [7, 20, 0.999, 0.07685409351387507, 0.7256695456326641],
    [0, 20, 0.95, 0, 0.16843347098308534],
    [20, 20, 0.999, 0.6838305520458344, 1],
    [180, 2000, 0.95, 0.07781577715467887, 0.10340103460035346],
    [180, 2000, 0.999, 0.07026505018233761, 0.11287610105664707],
    [1, 1, 0.95, 0.025, 1],
  ])('Clopper-Pearson %d/%d at %d', (k, n, conf, lo, hi) => {
    const ci = clopperPearson(k, n, conf);
    close(ci.lo, lo, 1e-9, 1e-12);
    close(ci.hi, hi, 1e-9, 1e-12);
  });

  it('refuses an empty sample', () => {
    expect(() => clopperPearson(0, 0, 0.95)).toThrow(/n must be > 0/);
    expect(() => clopperPearson(1, 10, 1)).toThrow(/confidence must be in \(0, 1\)/);
  });
});

describe('chi-square goodness of fit', () => {
  it.each([
    [[30, 50, 20], [0.25, 0.5, 0.25], 2.0, 0.36787944117144245],
    [[100, 210, 90], [0.25, 0.5, 0.25], 1.5, 0.4723665527410149],
    [[10, 20, 30, 40], [0.1, 0.2, 0.3, 0.4], 0, 1],
    [[480, 520], [0.5, 0.5], 1.6, 0.20590321073206466],
    [[5, 3, 2, 0, 8, 12], [0.1, 0.1, 0.1, 0.2, 0.2, 0.3], 9.333333333333332, 0.09648475947119867],
  ])('%j against %j', (observed, expected, statistic, pValue) => {
    const r = chiSquareGoodnessOfFit(observed, expected);
    close(r.statistic, statistic, 1e-12, 1e-12);
    close(r.pValue, pValue, 1e-9);
    expect(r.df).toBe(observed.length - 1);
  });

  it('an observation in a zero-probability category gives p-value 0', () => {
    const r = chiSquareGoodnessOfFit([60, 40, 1], [0.6, 0.4, 0]);
    expect(r.pValue).toBe(0);
    expect(r.df).toBe(1);
  });

  it('zero-probability categories left empty do not count as degrees of freedom', () => {
    const with0 = chiSquareGoodnessOfFit([480, 520, 0], [0.5, 0.5, 0]);
    close(with0.pValue, 0.20590321073206466, 1e-9);
    expect(with0.df).toBe(1);
    expect(chiSquareGoodnessOfFit([100, 0], [1, 0]).pValue).toBe(1);
  });

  it.each([
    [3.84, 1, 0.05004352124870519],
    [10, 3, 0.01856613546304325],
    [200, 150, 0.003973185970821635],
    [0.5, 10, 0.999993388289439],
    [30, 4, 4.894437128029217e-6],
  ])('chi-square survival function at %d, df %d', (x, df, expected) => {
    close(chiSquareSf(x, df), expected, 1e-9);
  });

  it('rejects probabilities that do not sum to 1 and mismatched lengths', () => {
    expect(() => chiSquareGoodnessOfFit([1, 2], [0.5, 0.6])).toThrow(/sum to 1/);
    expect(() => chiSquareGoodnessOfFit([1, 2, 3], [0.5, 0.5])).toThrow(/same length/);
  });
});

describe('normal quantile', () => {
  it.each([
    [0.975, 1.959963984540054],
    [0.5, 0],
    [1e-10, -6.361340902404056],
    [0.9999, 3.719016485455709],
    [0.999, 3.090232306167813],
    [0.0001, -3.7190164854556804],
    [0.02425, -1.972961051311885],
    [0.3, -0.5244005127080409],
  ])('Φ⁻¹(%d)', (p, z) => {
    close(normalQuantile(p), z, 1e-12, 1e-14);
  });
});
