/**
 * The canary analysis' latency tests on histogram buckets, as the cluster path has them from Prometheus
 * (istio_request_duration_milliseconds_bucket): the errors are exact counts and keep their exact tests, but a
 * latency is only known to lie in its bucket. So:
 *
 * - p99 against the SLO: the p99 is at most the SLO exactly when at most 1 % of answers are slower, so the test is
 *   an exact one-sided binomial test of the answers above the SLO against 1 %. Answers above the smallest bucket
 *   boundary at or above the SLO are surely slower ("past" counts those); answers above the largest boundary at or
 *   below it may be ("inside" counts those). With the SLO on a boundary (500 ms is one of Istio's), both are exact.
 * - shift against the baseline: Mann-Whitney U of (canary − margin) against the baseline with every answer put at
 *   a bucket edge, conservatively in each direction: "slower by more than the margin" with the canary's answers at
 *   their bucket's lower edge and the baseline's at the upper one; "within the margin" the other way round. Coarse
 *   buckets make it inconclusive (more data do not help then: the report says so), never a pass it did not earn.
 * - p50 / p90 / p99 for the report: linear interpolation inside the bucket, as PromQL's histogram_quantile.
 *
 * Pure: no Node APIs, no dependencies.
 */
import {
  type AnalysisCheck,
  type AnalysisInput,
  type AnalysisPlan,
  type AnalysisResult,
  analyse,
  decide,
  errorRateCheck,
  formatMs,
  formatP,
  formatSignedMs,
  type HistogramBucket,
  type LatencyJudge,
  noData,
  p99CheckHeader,
  pText,
  shiftCheckHeader,
  shiftNeededCanary,
  type VersionSample,
  type VersionStats,
  versionStats,
} from './analysis.js';
import { mannWhitneyOneSided } from './mannwhitney.js';

/** Bucket counts checked: ascending boundaries, non-decreasing counts, the last at Infinity holding every answer. */
export function checkBuckets(s: VersionSample): readonly HistogramBucket[] {
  const b = s.buckets;
  if (!b || b.length === 0) throw new RangeError(`${s.version}: no histogram buckets`);
  for (let i = 0; i < b.length; i++) {
    const cur = b[i] as HistogramBucket;
    const prev = b[i - 1];
    if (prev && (cur.le <= prev.le || cur.count < prev.count))
      throw new RangeError(`${s.version}: histogram buckets must rise (le ${prev.le} → ${cur.le})`);
  }
  const last = b.at(-1) as HistogramBucket;
  if (last.le !== Number.POSITIVE_INFINITY)
    throw new RangeError(`${s.version}: the last histogram bucket must be le="+Inf"`);
  return b;
}

/** Answers per bucket: [lower edge, upper edge, count], empty buckets left out. */
function bins(s: VersionSample): [number, number, number][] {
  const out: [number, number, number][] = [];
  let lower = 0;
  let below = 0;
  for (const { le, count } of checkBuckets(s)) {
    if (count > below) out.push([lower, le, count - below]);
    lower = le;
    below = count;
  }
  return out;
}

/** The q-quantile as PromQL's histogram_quantile estimates it (linear inside the bucket). */
export function histogramQuantile(buckets: readonly HistogramBucket[], q: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of buckets) {
    if (count >= rank && count > below) {
      if (le === Number.POSITIVE_INFINITY) return lower; // the highest finite boundary, as PromQL
      return lower + ((le - lower) * (rank - below)) / (count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

/** Answers slower than `ms` for sure (above the smallest boundary ≥ ms) and perhaps (above the largest ≤ ms). */
function slowerThan(buckets: readonly HistogramBucket[], ms: number): { surely: number; perhaps: number } {
  const total = (buckets.at(-1) as HistogramBucket).count;
  let atOrBelowLow = 0; // answers at or below the largest boundary ≤ ms
  let atOrBelowHigh = total; // answers at or below the smallest boundary ≥ ms
  for (const { le, count } of buckets) {
    if (le <= ms) atOrBelowLow = count;
    if (le >= ms) {
      atOrBelowHigh = count;
      break;
    }
  }
  return { surely: total - atOrBelowHigh, perhaps: total - atOrBelowLow };
}

/** The boundaries around `ms` in words: "on the bucket boundary 500 ms" or "between the boundaries 250 and 500 ms". */
function boundaryText(buckets: readonly HistogramBucket[], ms: number): string {
  const les = buckets.map((b) => b.le);
  if (les.includes(ms)) return `on the bucket boundary ${formatMs(ms)}`;
  const lo = [...les].reverse().find((le) => le < ms);
  const hi = les.find((le) => le > ms);
  return `between the bucket boundaries ${lo === undefined ? '0' : formatMs(lo)} and ${hi === undefined || hi === Number.POSITIVE_INFINITY ? '+Inf' : formatMs(hi)}`;
}

function histogramLatency(plan: AnalysisPlan, minCanary: number): LatencyJudge {
  const { alpha, beta } = plan;
  const { p99SloMs, marginMs } = plan.thresholds.latency;
  return {
    method:
      `latency from histogram buckets (istio_request_duration_milliseconds): p99 ≤ ${formatMs(p99SloMs)} by an exact binomial test ` +
      `of the answers above the SLO's bucket boundary against 1 %; the shift against the baseline by Mann-Whitney on bucket edges ` +
      `(each direction with the answers at the edges least favourable to it); p50/p90/p99 interpolated as histogram_quantile`,
    stats(s): VersionStats {
      const b = checkBuckets(s);
      return versionStats(s, (q) => histogramQuantile(b, q));
    },
    p99(s): AnalysisCheck {
      const buckets = checkBuckets(s);
      const n = (buckets.at(-1) as HistogramBucket).count;
      const base = p99CheckHeader(s.version, p99SloMs);
      if (n === 0) return noData(base, minCanary);
      const { surely, perhaps } = slowerThan(buckets, p99SloMs);
      // The binomial tests of the error rate, on "answers slower than the SLO" against a 1 % share.
      const past = errorRateCheck({ ...s, requests: n, errors: surely }, 0.01, alpha, beta, minCanary);
      const inside = errorRateCheck({ ...s, requests: n, errors: perhaps }, 0.01, alpha, beta, minCanary);
      const verdict = decide(past.verdict === 'fail', inside.verdict === 'pass');
      const p99 = histogramQuantile(buckets, 0.99);
      const where = boundaryText(buckets, p99SloMs);
      const shares = `${surely === perhaps ? surely : `${surely} to ${perhaps}`} of ${n} answers slower than ${formatMs(p99SloMs)}`;
      return {
        ...base,
        value: p99,
        valueText: `${formatMs(p99)} (buckets; ${shares})`,
        lower: null,
        upper: null,
        pPast: past.pPast,
        pInside: inside.pInside,
        verdict,
        excess: verdict === 'fail' ? p99 - p99SloMs : null,
        neededCanary:
          verdict === 'inconclusive'
            ? (surely === perhaps
                ? past.neededCanary
                : Math.max(past.neededCanary ?? 0, inside.neededCanary ?? 0)) || null
            : null,
        detail: `histogram buckets, SLO ${where}: exact binomial of ${shares} against 1 %: past if P(X ≥ ${surely}; 1 %) = ${formatP(past.pPast ?? 1)} < ${formatP(alpha)}, inside if P(X ≤ ${perhaps}; 1 %) = ${formatP(inside.pInside ?? 1)} < ${formatP(beta)}`,
        reason:
          verdict === 'fail'
            ? `${s.version} p99 ${formatMs(p99)} (histogram) is above the SLO of ${formatMs(p99SloMs)}: ${shares}, more than 1 % (${pText(past.pPast ?? 1)})`
            : verdict === 'pass'
              ? `${s.version} p99 is inside the SLO of ${formatMs(p99SloMs)} (${shares})`
              : `${s.version} p99 ${formatMs(p99)} (histogram): not yet shown inside or past the SLO of ${formatMs(p99SloMs)} (${shares}; the SLO lies ${where})`,
      };
    },
    shift(c, b): AnalysisCheck {
      const base = shiftCheckHeader(c, b, marginMs);
      const cb = bins(c);
      const bb = bins(b);
      if (cb.length === 0 || bb.length === 0) return noData(base, minCanary);
      const expand = (groups: [number, number, number][], edge: 0 | 1, less: number) => {
        const out: number[] = [];
        for (const g of groups) {
          const v = g[edge] - less;
          for (let i = 0; i < g[2]; i++) out.push(v);
        }
        return out;
      };
      // Slower by more than the margin, even with the canary at its lower edges and the baseline at its upper ones?
      const pastTest = mannWhitneyOneSided(expand(cb, 0, marginMs), expand(bb, 1, 0)).greater;
      // Within the margin, even with the canary at its upper edges and the baseline at its lower ones?
      const insideTest = mannWhitneyOneSided(expand(cb, 1, marginMs), expand(bb, 0, 0)).less;
      const verdict = decide(pastTest.pValue < alpha, insideTest.pValue < beta);
      const cq = checkBuckets(c);
      const bq = checkBuckets(b);
      const medianShift = histogramQuantile(cq, 0.5) - histogramQuantile(bq, 0.5);
      let neededCanary: number | null = null;
      if (verdict === 'inconclusive') {
        // From the closer test; bucket edges may keep both undecided.
        const effect = insideTest.effect < 0.5 ? 0.5 - insideTest.effect : pastTest.effect - 0.5;
        if (effect > 0) {
          const level = insideTest.effect < 0.5 ? beta : alpha;
          neededCanary = shiftNeededCanary(effect, pastTest.n1, pastTest.n2, level);
        }
      }
      return {
        ...base,
        value: medianShift,
        valueText: `median ${formatSignedMs(medianShift)} (buckets)`,
        lower: null,
        upper: null,
        pPast: pastTest.pValue,
        pInside: insideTest.pValue,
        verdict,
        excess: verdict === 'fail' ? medianShift - marginMs : null,
        neededCanary,
        detail: `Mann-Whitney U on histogram bucket edges of ${c.version} − ${formatMs(marginMs)} against ${b.version}: slower (canary at lower edges, baseline at upper) ${pText(pastTest.pValue)} (past if < ${formatP(alpha)}); within (canary at upper edges, baseline at lower) ${pText(insideTest.pValue)} (inside if < ${formatP(beta)})`,
        reason:
          verdict === 'fail'
            ? `${c.version} is slower than ${b.version} by more than ${formatMs(marginMs)} (histogram buckets, even at the edges most favourable to it): median ${formatSignedMs(medianShift)} (Mann-Whitney ${pText(pastTest.pValue)}, level ${formatP(alpha)})`
            : verdict === 'pass'
              ? `${c.version} latency is within ${formatMs(marginMs)} of ${b.version}'s (histogram buckets, at the edges least favourable to it; median ${formatSignedMs(medianShift)})`
              : `${c.version} latency vs ${b.version}: median ${formatSignedMs(medianShift)} (buckets), not yet shown within or past the margin of ${formatMs(marginMs)}${neededCanary === null ? ' (the buckets may be too coarse to decide)' : ''}`,
      };
    },
  };
}

/**
 * The analysis of a step from histogram buckets (every VersionSample carries `buckets`; `latenciesMs` is not
 * read): the same error tests and verdict rules as `analyse`, the latency tests of this module.
 */
export function analyseHistogram(plan: AnalysisPlan, input: AnalysisInput): AnalysisResult {
  checkBuckets(input.canary);
  if (input.baseline) checkBuckets(input.baseline);
  return analyse(plan, input, histogramLatency);
}
