/**
 * Confidence intervals for a proportion, for the "interval" column of a verification table.
 */

import { binomialCdf, binomialSf, checkConfidence, checkCount } from './binomial.js';

/** A closed interval of proportions. */
export interface ProportionInterval {
  lo: number;
  hi: number;
}

function checkSuccesses(k: number, n: number): void {
  checkCount('k', k);
  checkCount('n', n);
  if (k > n) throw new RangeError(`k must be <= n, got k=${k}, n=${n}`);
  if (n === 0) throw new RangeError('n must be > 0 for an interval');
}

/** Root of a monotone function on [0, 1] by bisection (increasing: f(0) < target ≤ f(1)). */
function bisect(f: (p: number) => number, target: number, increasing: boolean): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    const v = f(mid);
    if (v < target === increasing) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Clopper–Pearson ("exact") interval: the proportions p for which neither one-sided exact test rejects k
 * successes in n trials at (1 − confidence)/2. Conservative: coverage is at least `confidence`.
 */
export function clopperPearson(k: number, n: number, confidence: number): ProportionInterval {
  checkSuccesses(k, n);
  checkConfidence(confidence);
  const tail = (1 - confidence) / 2;
  // lo: P(X ≥ k; p) = tail, increasing in p.  hi: P(X ≤ k; p) = tail, decreasing in p.
  const lo = k === 0 ? 0 : bisect((p) => binomialSf(k - 1, n, p), tail, true);
  const hi = k === n ? 1 : bisect((p) => binomialCdf(k, n, p), tail, false);
  return { lo, hi };
}

/**
 * One-sided Clopper–Pearson upper bound: the largest p the exact test P(X ≤ k; p) ≥ 1 − confidence does not
 * reject; the true proportion lies below it with probability at least `confidence` (1 when k = n).
 */
export function clopperPearsonUpper(k: number, n: number, confidence: number): number {
  checkSuccesses(k, n);
  checkConfidence(confidence);
  if (k === n) return 1;
  return bisect((p) => binomialCdf(k, n, p), 1 - confidence, false);
}

/**
 * One-sided Clopper–Pearson lower bound: the smallest p the exact test P(X ≥ k; p) ≥ 1 − confidence does not
 * reject (0 when k = 0).
 */
export function clopperPearsonLower(k: number, n: number, confidence: number): number {
  checkSuccesses(k, n);
  checkConfidence(confidence);
  if (k === 0) return 0;
  return bisect((p) => binomialSf(k - 1, n, p), 1 - confidence, true);
}
