/**
 * The Mann–Whitney U test (Wilcoxon rank-sum), the rank test Kayenta judges canary metrics with: does one sample
 * tend to be larger than the other? Distribution-free, so a latency distribution's long tail or odd shape does not
 * matter. Computed as SciPy's `scipy.stats.mannwhitneyu` does: midranks for ties; the normal approximation with the
 * tie correction and a continuity correction of 0.5; the exact distribution of U when a sample is small and there
 * are no ties.
 */

import { normalCdf } from './special.js';

export type Alternative = 'two-sided' | 'greater' | 'less';

export interface MannWhitneyOptions {
  /** 'greater': x tends to be larger than y. Default 'two-sided'. */
  alternative?: Alternative;
  /**
   * 'auto' (default) as SciPy chooses: 'exact' when one sample has at most 8 values and there are no ties, else
   * 'asymptotic'.
   */
  method?: 'auto' | 'exact' | 'asymptotic';
  /** Continuity correction of the normal approximation. Default true. */
  continuity?: boolean;
}

export interface MannWhitneyResult {
  /** U of x: the number of pairs (x_i, y_j) with x_i > y_j, ties counted ½ (SciPy's `statistic`). */
  u: number;
  pValue: number;
  method: 'exact' | 'asymptotic';
  /** The standardised statistic of the alternative's tail (asymptotic only). */
  z: number | null;
  /** U / (n1 · n2): the estimated probability that an x exceeds a y (ties ½). */
  effect: number;
  n1: number;
  n2: number;
  ties: boolean;
}

/** Midranks of x and y together: the rank sum of x and the tie term Σ (t³ − t) over groups of tied values. */
export function rankSum(x: readonly number[], y: readonly number[]): { r1: number; tieTerm: number } {
  const n1 = x.length;
  const n = n1 + y.length;
  const values = new Float64Array(n);
  for (let i = 0; i < n1; i++) values[i] = x[i] as number;
  for (let j = 0; j < y.length; j++) values[n1 + j] = y[j] as number;
  for (const v of values) if (Number.isNaN(v)) throw new RangeError('mannWhitneyU: a sample holds NaN');
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (values[a] as number) - (values[b] as number),
  );
  let r1 = 0;
  let tieTerm = 0;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && values[order[j] as number] === values[order[i] as number]) j++;
    const t = j - i;
    const midrank = (i + 1 + j) / 2; // ranks i+1 .. j
    for (let k = i; k < j; k++) if ((order[k] as number) < n1) r1 += midrank;
    if (t > 1) tieTerm += t * t * t - t;
    i = j;
  }
  return { r1, tieTerm };
}

/** Mann–Whitney U test of x against y (see the module's comment). */
export function mannWhitneyU(
  x: readonly number[],
  y: readonly number[],
  options: MannWhitneyOptions = {},
): MannWhitneyResult {
  if (x.length === 0 || y.length === 0)
    throw new RangeError('mannWhitneyU: both samples need at least one value');
  return fromRanks(rankSum(x, y), x.length, y.length, options);
}

/** Both one-sided tests of x against y from one ranking (half the work of two mannWhitneyU calls). */
export function mannWhitneyOneSided(
  x: readonly number[],
  y: readonly number[],
  options: Omit<MannWhitneyOptions, 'alternative'> = {},
): { greater: MannWhitneyResult; less: MannWhitneyResult } {
  if (x.length === 0 || y.length === 0)
    throw new RangeError('mannWhitneyU: both samples need at least one value');
  const ranks = rankSum(x, y);
  return {
    greater: fromRanks(ranks, x.length, y.length, { ...options, alternative: 'greater' }),
    less: fromRanks(ranks, x.length, y.length, { ...options, alternative: 'less' }),
  };
}

function fromRanks(
  { r1, tieTerm }: { r1: number; tieTerm: number },
  n1: number,
  n2: number,
  options: MannWhitneyOptions,
): MannWhitneyResult {
  const alternative = options.alternative ?? 'two-sided';
  const continuity = options.continuity ?? true;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const ties = tieTerm > 0;
  let method = options.method ?? 'auto';
  if (method === 'auto') method = (n1 > 8 && n2 > 8) || ties ? 'asymptotic' : 'exact';
  // The p-value is always an upper tail: of U1 ('greater'), of U2 ('less'), of the larger one ('two-sided').
  const u = alternative === 'greater' ? u1 : alternative === 'less' ? u2 : Math.max(u1, u2);
  const factor = alternative === 'two-sided' ? 2 : 1;
  let p: number;
  let z: number | null = null;
  if (method === 'exact') {
    p = exactUpperTail(Math.round(u), n1, n2);
  } else {
    const n = n1 + n2;
    const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
    const numerator = u - (n1 * n2) / 2 - (continuity ? 0.5 : 0);
    z = sigma > 0 ? numerator / sigma : numerator > 0 ? Infinity : numerator < 0 ? -Infinity : Number.NaN;
    p = Number.isNaN(z) ? 1 : normalCdf(-z);
  }
  return {
    u: u1,
    pValue: Math.min(1, Math.max(0, p * factor)),
    method,
    z,
    effect: u1 / (n1 * n2),
    n1,
    n2,
    ties,
  };
}

/**
 * P(U ≥ u) for U of samples of sizes n1 and n2 without ties, from the counts of the rank sum's distribution: the
 * coefficients of the Gaussian binomial ∏_{i=1..m} (1 − q^(n+i)) / (1 − q^i), m = min(n1, n2), n = max. The lower
 * tail P(U ≤ n1·n2 − u) is summed instead (U is symmetric), so small p-values keep their precision.
 */
function exactUpperTail(u: number, n1: number, n2: number): number {
  const m = Math.min(n1, n2);
  const n = Math.max(n1, n2);
  const top = m * n;
  if (u <= 0) return 1;
  if (u > top) return 0;
  const counts = gaussianBinomial(m, n);
  const k = top - u; // P(U ≥ u) = P(U ≤ top − u)
  let below = 0;
  let total = 0;
  for (let i = 0; i <= top; i++) {
    const c = counts[i] as number;
    total += c;
    if (i <= k) below += c;
  }
  return below / total;
}

/** Coefficients of the Gaussian binomial [m + n choose m] in q (the number of ways each U value arises). */
function gaussianBinomial(m: number, n: number): Float64Array {
  const top = m * n;
  const c = new Float64Array(top + n + m + 2);
  c[0] = 1;
  let degree = 0;
  for (let i = 1; i <= m; i++) {
    // Multiply by (1 − q^(n+i)), then divide by (1 − q^i): the quotient stays a polynomial with integer
    // coefficients (the Gaussian binomial [n + i choose i]).
    const shift = n + i;
    for (let d = degree + shift; d >= shift; d--) c[d] = (c[d] as number) - (c[d - shift] as number);
    degree += shift;
    const quotient = degree - i;
    for (let d = i; d <= quotient; d++) c[d] = (c[d] as number) + (c[d - i] as number);
    c.fill(0, quotient + 1, degree + 1);
    degree = quotient;
  }
  return c.subarray(0, top + 1);
}
