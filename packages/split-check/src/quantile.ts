/**
 * Quantiles of a sample and distribution-free confidence bounds for a quantile from order statistics: with n
 * values, the k-th smallest X_(k) lies above the q-quantile ξ_q exactly when fewer than k values fall below ξ_q,
 * so P(X_(k) ≥ ξ_q) = P(Binomial(n, q) ≤ k − 1) for any continuous distribution. No assumption about the shape of
 * a latency distribution is needed.
 */

import { binomialCdf, binomialSf, checkConfidence, checkProbability } from './binomial.js';

/** Sorted copy (ascending) of a sample. */
export function sortedSample(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The q-quantile of a sorted sample by linear interpolation between order statistics (NumPy's default
 * `np.quantile(x, q)`, Hyndman–Fan type 7). NaN for an empty sample.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  checkProbability('q', q);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const a = sorted[lo] as number;
  if (lo + 1 >= n) return a;
  return a + (h - lo) * ((sorted[lo + 1] as number) - a);
}

/** An order statistic: its 1-based rank in the sorted sample and its value. */
export interface OrderStatistic {
  rank: number;
  value: number;
}

/**
 * One-sided upper confidence bound for the q-quantile: X_(k) with the smallest k such that
 * P(Binomial(n, q) ≤ k − 1) ≥ confidence, i.e. k = binom.ppf(confidence, n, q) + 1. The quantile lies at or below
 * it with probability at least `confidence`. Null when even the largest value is not enough (n too small).
 */
export function quantileUpperBound(
  sorted: ArrayLike<number>,
  q: number,
  confidence: number,
): OrderStatistic | null {
  const rank = quantileUpperRank(sorted.length, q, confidence);
  return rank === null ? null : { rank, value: sorted[rank - 1] as number };
}

/**
 * One-sided lower confidence bound for the q-quantile: X_(j) with the largest j such that
 * P(Binomial(n, q) ≥ j) ≥ confidence. The quantile lies at or above it with probability at least `confidence`.
 * Null when even the smallest value is not enough.
 */
export function quantileLowerBound(
  sorted: ArrayLike<number>,
  q: number,
  confidence: number,
): OrderStatistic | null {
  const rank = quantileLowerRank(sorted.length, q, confidence);
  return rank === null ? null : { rank, value: sorted[rank - 1] as number };
}

/** The rank k of {@link quantileUpperBound} among n values, or null. */
export function quantileUpperRank(n: number, q: number, confidence: number): number | null {
  checkArgs(n, q, confidence);
  if (n === 0 || binomialCdf(n - 1, n, q) < confidence) return null;
  // Smallest k in [1, n] with P(B ≤ k − 1) ≥ confidence (the CDF rises with k).
  let lo = 1;
  let hi = n;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (binomialCdf(mid - 1, n, q) >= confidence) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The rank j of {@link quantileLowerBound} among n values, or null. */
export function quantileLowerRank(n: number, q: number, confidence: number): number | null {
  checkArgs(n, q, confidence);
  // P(B ≥ j) = P(B > j − 1) falls as j grows: the largest j in [1, n] where it is still ≥ confidence.
  if (n === 0 || binomialSf(0, n, q) < confidence) return null;
  let lo = 1;
  let hi = n;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (binomialSf(mid - 1, n, q) >= confidence) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function checkArgs(n: number, q: number, confidence: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  checkProbability('q', q);
  checkConfidence(confidence);
}
