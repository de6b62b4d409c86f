/**
 * Pearson's chi-square goodness-of-fit test, for splits across more than two destinations.
 */

import { checkCount } from './binomial.js';
import { gammaQ } from './special.js';

/** Result of a goodness-of-fit test. */
export interface ChiSquareResult {
  /** Σ (observed − expected)² / expected over the categories with a non-zero expected probability. */
  statistic: number;
  /** Degrees of freedom: categories with a non-zero expected probability, minus one. */
  df: number;
  pValue: number;
}

/** Upper tail P(χ²_df > x). */
export function chiSquareSf(x: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`df must be > 0, got ${df}`);
  if (!(x >= 0)) return 1;
  return gammaQ(df / 2, x / 2);
}

/**
 * Chi-square goodness of fit of observed counts to expected probabilities (same order, same length, summing
 * to 1). A category with probability 0 cannot be observed: any count there gives pValue 0 (and statistic
 * Infinity). With fewer than two possible categories the split is deterministic: pValue is 1 when every count
 * falls in the one possible category.
 */
export function chiSquareGoodnessOfFit(
  observed: readonly number[],
  expected: readonly number[],
): ChiSquareResult {
  if (observed.length !== expected.length) {
    throw new RangeError(
      `observed and expected must have the same length, got ${observed.length} and ${expected.length}`,
    );
  }
  if (observed.length === 0) throw new RangeError('at least one category is needed');
  let total = 0;
  for (const [i, o] of observed.entries()) {
    checkCount(`observed[${i}]`, o);
    total += o;
  }
  let sum = 0;
  for (const [i, p] of expected.entries()) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`expected[${i}] must be a probability in [0, 1], got ${p}`);
    sum += p;
  }
  if (Math.abs(sum - 1) > 1e-9) throw new RangeError(`expected probabilities must sum to 1, got ${sum}`);
  if (total === 0) throw new RangeError('no observations');

  let statistic = 0;
  let possible = 0;
  let impossibleSeen = false;
  for (const [i, p] of expected.entries()) {
    const o = observed[i] as number;
    if (p === 0) {
      if (o > 0) impossibleSeen = true;
      continue;
    }
    possible++;
    const e = total * p;
    statistic += ((o - e) * (o - e)) / e;
  }
  const df = Math.max(0, possible - 1);
  if (impossibleSeen) return { statistic: Number.POSITIVE_INFINITY, df, pValue: 0 };
  if (df === 0) return { statistic: 0, df, pValue: 1 };
  return { statistic, df, pValue: chiSquareSf(statistic, df) };
}
