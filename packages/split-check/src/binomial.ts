/**
 * The binomial distribution: probability mass (Loader's saddle-point form, accurate for n up to 1e6 and
 * beyond), tails summed outward from the requested point, the exact two-sided test with R's "minlike" rule,
 * and the exact acceptance band a fixed-n check compares counts with.
 */

const LN_2PI = Math.log(2 * Math.PI);
const LN_SQRT_2PI = 0.5 * LN_2PI;

/** Range of a probability, checked everywhere a caller passes one. */
export function checkProbability(name: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${name} must be a probability in [0, 1], got ${p}`);
}

export function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
}

export function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  }
}

// ln(n!) for the small n where Stirling's series is not yet accurate.
const SMALL_LOG_FACTORIAL: number[] = [0];
for (let i = 1; i <= 16; i++) SMALL_LOG_FACTORIAL.push((SMALL_LOG_FACTORIAL[i - 1] as number) + Math.log(i));

/** Stirling's error term: ln(n!) − [(n + ½) ln n − n + ln √(2π)], for integer n ≥ 1. */
function stirlingError(n: number): number {
  if (n <= 15) {
    return (SMALL_LOG_FACTORIAL[n] as number) - (n + 0.5) * Math.log(n) + n - LN_SQRT_2PI;
  }
  const nn = n * n;
  return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / 1188 / nn) / nn) / nn) / nn) / n;
}

/** Deviance term x ln(x/np) + np − x, computed without cancellation when x is close to np. */
function deviance(x: number, np: number): number {
  if (Math.abs(x - np) < 0.1 * (x + np)) {
    let v = (x - np) / (x + np);
    let s = (x - np) * v;
    let ej = 2 * x * v;
    v *= v;
    for (let j = 1; j < 1000; j++) {
      ej *= v;
      const s1 = s + ej / (2 * j + 1);
      if (s1 === s) return s1;
      s = s1;
    }
    return s;
  }
  return x * Math.log(x / np) + np - x;
}

/** P(X = k) for X ~ Binomial(n, p). Non-integer or out-of-range k gives 0. */
export function binomialPmf(k: number, n: number, p: number): number {
  checkCount('n', n);
  checkProbability('p', p);
  if (!Number.isInteger(k) || k < 0 || k > n) return 0;
  return pmfUnchecked(k, n, p);
}

function pmfUnchecked(k: number, n: number, p: number): number {
  const q = 1 - p;
  if (p === 0) return k === 0 ? 1 : 0;
  if (q === 0) return k === n ? 1 : 0;
  if (k === 0) {
    if (n === 0) return 1;
    return Math.exp(p < 0.1 ? -deviance(n, n * q) - n * p : n * Math.log(q));
  }
  if (k === n) {
    return Math.exp(q < 0.1 ? -deviance(n, n * p) - n * q : n * Math.log(p));
  }
  const lc =
    stirlingError(n) - stirlingError(k) - stirlingError(n - k) - deviance(k, n * p) - deviance(n - k, n * q);
  const lf = LN_2PI + Math.log(k) + Math.log1p(-k / n);
  return Math.exp(lc - 0.5 * lf);
}

const TAIL_EPS = 1e-17;

// Σ_{j ≤ k} P(X = j) for k below the mean: terms shrink monotonically going down, so the sum stops early.
function lowerTailBelowMean(k: number, n: number, p: number): number {
  const ratio = (1 - p) / p;
  let term = pmfUnchecked(k, n, p);
  let sum = term;
  for (let j = k; j > 0 && term > sum * TAIL_EPS; j--) {
    term *= (j / (n - j + 1)) * ratio;
    sum += term;
  }
  return sum;
}

// Σ_{j ≥ k} P(X = j) for k above the mean: terms shrink monotonically going up.
function upperTailAboveMean(k: number, n: number, p: number): number {
  const ratio = p / (1 - p);
  let term = pmfUnchecked(k, n, p);
  let sum = term;
  for (let j = k; j < n && term > sum * TAIL_EPS; j++) {
    term *= ((n - j) / (j + 1)) * ratio;
    sum += term;
  }
  return sum;
}

/** P(X ≤ k) for X ~ Binomial(n, p); k is floored. */
export function binomialCdf(k: number, n: number, p: number): number {
  checkCount('n', n);
  checkProbability('p', p);
  const kk = Math.floor(k);
  if (kk < 0) return 0;
  if (kk >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  return kk < n * p ? lowerTailBelowMean(kk, n, p) : 1 - upperTailAboveMean(kk + 1, n, p);
}

/** P(X > k) for X ~ Binomial(n, p) (the survival function), computed in the tail for precision. */
export function binomialSf(k: number, n: number, p: number): number {
  checkCount('n', n);
  checkProbability('p', p);
  const kk = Math.floor(k);
  if (kk < 0) return 1;
  if (kk >= n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  return kk < n * p ? 1 - lowerTailBelowMean(kk, n, p) : upperTailAboveMean(kk + 1, n, p);
}

/**
 * Exact two-sided binomial test of H0: p = p0 for k successes in n trials, with the "minlike" rule of R's
 * `binom.test`: the p-value is the total probability of every outcome no more likely than the observed one
 * (with R's relative tolerance of 1e-7).
 */
export function binomialTestTwoSided(k: number, n: number, p: number): number {
  checkCount('n', n);
  checkCount('k', k);
  checkProbability('p', p);
  if (k > n) throw new RangeError(`k must be <= n, got k=${k}, n=${n}`);
  const m = n * p;
  if (k === m) return 1;
  const threshold = pmfUnchecked(k, n, p) * (1 + 1e-7);
  if (k < m) {
    // Outcomes in [ceil(m), n] no more likely than k; the mass is non-increasing there.
    const first = firstIndex(Math.ceil(m), n, (i) => pmfUnchecked(i, n, p) <= threshold);
    const y = first === null ? 0 : n - first + 1;
    return Math.min(1, binomialCdf(k, n, p) + binomialSf(n - y, n, p));
  }
  // Outcomes in [0, floor(m)] no more likely than k; the mass is non-decreasing there.
  const last = lastIndex(0, Math.floor(m), (i) => pmfUnchecked(i, n, p) <= threshold);
  const y = last === null ? 0 : last + 1;
  return Math.min(1, binomialCdf(y - 1, n, p) + binomialSf(k - 1, n, p));
}

/** Smallest i in [lo, hi] with pred(i), for a predicate false then true; null if none. */
function firstIndex(lo: number, hi: number, pred: (i: number) => boolean): number | null {
  if (lo > hi || !pred(hi)) return null;
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    if (pred(mid)) b = mid;
    else a = mid + 1;
  }
  return a;
}

/** Largest i in [lo, hi] with pred(i), for a predicate true then false; null if none. */
function lastIndex(lo: number, hi: number, pred: (i: number) => boolean): number | null {
  if (lo > hi || !pred(lo)) return null;
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = Math.ceil((a + b) / 2);
    if (pred(mid)) a = mid;
    else b = mid - 1;
  }
  return a;
}

/** An inclusive range of counts. */
export interface CountBand {
  lo: number;
  hi: number;
}

/**
 * The exact two-sided acceptance band for a count X ~ Binomial(n, p): the narrowest [lo, hi] such that
 * P(X < lo) ≤ (1 − confidence)/2 and P(X > hi) ≤ (1 − confidence)/2. A count outside the band rejects
 * "the split is p" at level 1 − confidence (or less).
 *
 * Example: n = 2000, p = 0.10, confidence 0.999 gives 157..245.
 */
export function binomialAcceptanceBand(n: number, p: number, confidence: number): CountBand {
  checkCount('n', n);
  checkProbability('p', p);
  checkConfidence(confidence);
  const tail = (1 - confidence) / 2;
  const belowLo = lastIndex(0, n, (j) => binomialCdf(j, n, p) <= tail);
  const hi = firstIndex(0, n, (j) => binomialSf(j, n, p) <= tail);
  return { lo: belowLo === null ? 0 : belowLo + 1, hi: hi === null ? n : hi };
}

/**
 * Exact one-sided binomial test of H0: p ≤ p0 against H1: p > p0 for k successes in n trials: the p-value
 * P(X ≥ k) under p0 (SciPy's `binomtest(k, n, p0, alternative='greater')`).
 */
export function binomialTestGreater(k: number, n: number, p0: number): number {
  checkTestArgs(k, n, p0);
  return k === 0 ? 1 : binomialSf(k - 1, n, p0);
}

/**
 * Exact one-sided binomial test of H0: p ≥ p0 against H1: p < p0: the p-value P(X ≤ k) under p0 (SciPy's
 * `binomtest(k, n, p0, alternative='less')`).
 */
export function binomialTestLess(k: number, n: number, p0: number): number {
  checkTestArgs(k, n, p0);
  return binomialCdf(k, n, p0);
}

function checkTestArgs(k: number, n: number, p0: number): void {
  checkCount('n', n);
  checkCount('k', k);
  checkProbability('p0', p0);
  if (k > n) throw new RangeError(`k must be <= n, got k=${k}, n=${n}`);
}

/**
 * The smallest k in [0, n] with P(X ≤ k) ≥ q for X ~ Binomial(n, p): the binomial quantile (SciPy's
 * `binom.ppf(q, n, p)`).
 */
export function binomialQuantile(q: number, n: number, p: number): number {
  checkCount('n', n);
  checkProbability('p', p);
  checkProbability('q', q);
  // R's qbinom fuzz: a CDF that equals q up to rounding (e.g. P(X ≤ 5) = 0.5 for n = 11, p = 0.5) reaches it.
  const target = q * (1 - 64 * Number.EPSILON);
  return firstIndex(0, n, (k) => binomialCdf(k, n, p) >= target) ?? n;
}
