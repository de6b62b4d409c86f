/**
 * Canary analysis: is the new version healthy enough to get more traffic? At a step of a rollout the canary
 * (v2, or blue) is compared with the baseline (v1, or green) that serves the same traffic at the same time, and
 * with the SLOs, by four tests:
 *
 * - error rate against the SLO: exact one-sided binomial test;
 * - error rate against the baseline's plus a margin: exact one-sided Clopper–Pearson bounds of both rates, each at
 *   half the level (Berger–Boos: the difference is past the margin only when the canary's lower bound minus the
 *   baseline's upper bound is);
 * - latency against the baseline's plus a margin: Mann–Whitney U of (canary − margin) against the baseline (the
 *   rank test Kayenta uses), so a canary whose distribution is shifted by more than the margin fails;
 * - p99 against the SLO: distribution-free bounds of the 99th percentile from order statistics.
 *
 * Every test is run in both directions. The canary fails a test when the data show, at level `alpha`, that it is
 * past the limit; it passes when they show, at level `beta`, that it is inside; otherwise the test is
 * inconclusive. So too little data is never a pass and never a failure: the result says how many more requests
 * would decide. The analysis passes when every test passes and fails when any test fails.
 *
 * Pure: no Node APIs, no dependencies (k6 can import it too).
 */

import { binomialCdf, binomialTestGreater } from './binomial.js';
import { clopperPearsonLower, clopperPearsonUpper } from './intervals.js';
import { mannWhitneyOneSided } from './mannwhitney.js';
import { MappingSyntaxError, parseMapping } from './mapping.js';
import {
  quantileLowerBound,
  quantileLowerRank,
  quantileSorted,
  quantileUpperBound,
  quantileUpperRank,
  sortedSample,
} from './quantile.js';
import { normalQuantile } from './special.js';
import { formatShare, formatTable } from './table.js';

/**
 * The limits and error rates of the analysis: what `analysis.yaml` at the repository root holds, their one
 * definition (there are no built-in values; read the file's text with readThresholds).
 */
export interface AnalysisThresholds {
  errorRate: {
    /** Largest acceptable error rate (5xx answers): 0.01 means a success rate of at least 99 %. */
    slo: number;
    /** How much higher than the baseline's the canary's error rate may be (0.01: one percentage point). */
    margin: number;
  };
  latency: {
    /** Largest acceptable 99th percentile of the canary's latency, ms. */
    p99SloMs: number;
    /** How much slower than the baseline's the canary's latency distribution may be (a shift), ms. */
    marginMs: number;
  };
  decision: {
    /** Probability of failing a canary inside every limit, over every analysed step of the stage matrix. */
    falseAbort: number;
    /** Probability of passing, at one step, a canary at or past a limit. */
    miss: number;
    /** Analyses at most per step, at canary requests fixed in advance (n0, 4·n0, 16·n0, ...). */
    looks: number;
    /** Requests at most per step (the split check's included) before an undecided analysis gives up. */
    maxRequestsPerStep: number;
  };
}

/** Bad thresholds: one line per problem. */
export class ThresholdsError extends Error {
  override readonly name = 'ThresholdsError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

interface FieldSpec {
  ok: (v: number) => boolean;
  words: string;
}

const FIELDS: Record<keyof AnalysisThresholds, Record<string, FieldSpec>> = {
  errorRate: {
    slo: { ok: (v) => v > 0 && v <= 0.5, words: 'a share in (0, 0.5], e.g. 0.01 for 1 %' },
    margin: { ok: (v) => v > 0 && v <= 0.5, words: 'a share in (0, 0.5], e.g. 0.01 for one point' },
  },
  latency: {
    p99SloMs: { ok: (v) => v > 0 && v <= 3_600_000, words: 'milliseconds, > 0, e.g. 500' },
    marginMs: { ok: (v) => v > 0 && v <= 3_600_000, words: 'milliseconds, > 0, e.g. 50' },
  },
  decision: {
    falseAbort: { ok: (v) => v > 0 && v <= 0.5, words: 'a probability in (0, 0.5], e.g. 0.001' },
    miss: { ok: (v) => v > 0 && v <= 0.5, words: 'a probability in (0, 0.5], e.g. 0.01' },
    looks: { ok: (v) => Number.isInteger(v) && v >= 1 && v <= 10, words: 'an integer from 1 to 10' },
    maxRequestsPerStep: {
      ok: (v) => Number.isInteger(v) && v >= 1000 && v <= 10_000_000,
      words: 'an integer from 1000 to 10000000',
    },
  },
};

/**
 * Validates parsed thresholds (e.g. analysis.yaml): every section and key must be present and in range, and
 * nothing else may be there (a misspelt key would otherwise be ignored). Throws ThresholdsError listing every
 * problem.
 */
export function parseThresholds(input: unknown, lines: Record<string, number> = {}): AnalysisThresholds {
  const problems: string[] = [];
  const at = (path: string) => (lines[path] !== undefined ? `line ${lines[path]}: ` : '');
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(input)) throw new ThresholdsError(['expected a mapping with errorRate, latency, decision']);
  const out: Record<string, Record<string, number>> = {};
  for (const key of Object.keys(input)) {
    if (!(key in FIELDS))
      problems.push(`${at(key)}unknown key ${key} (expected ${Object.keys(FIELDS).join(', ')})`);
  }
  for (const [section, fields] of Object.entries(FIELDS)) {
    const raw = input[section];
    if (!isObject(raw)) {
      problems.push(
        `${at(section)}${section}: ${raw === undefined ? 'missing, ' : ''}expected a mapping with ${Object.keys(fields).join(', ')}`,
      );
      continue;
    }
    out[section] = {};
    for (const key of Object.keys(raw)) {
      if (!(key in fields))
        problems.push(
          `${at(`${section}.${key}`)}unknown key ${section}.${key} (expected ${Object.keys(fields).join(', ')})`,
        );
    }
    for (const [key, spec] of Object.entries(fields)) {
      const value = raw[key];
      const path = `${section}.${key}`;
      if (value === undefined || value === null) problems.push(`${at(path)}${path}: missing (${spec.words})`);
      else if (typeof value !== 'number' || !Number.isFinite(value) || !spec.ok(value))
        problems.push(`${at(path)}${path} must be ${spec.words}; got ${JSON.stringify(value)}`);
      else (out[section] as Record<string, number>)[key] = value;
    }
  }
  if (problems.length > 0) throw new ThresholdsError(problems);
  return out as unknown as AnalysisThresholds;
}

/**
 * Reads the thresholds file's text (analysis.yaml: nested `key: value` lines, see mapping.ts) and validates it;
 * every problem is named with its line.
 */
export function readThresholds(text: string): AnalysisThresholds {
  let parsed: ReturnType<typeof parseMapping>;
  try {
    parsed = parseMapping(text);
  } catch (err) {
    if (err instanceof MappingSyntaxError) throw new ThresholdsError([err.message]);
    throw err;
  }
  return parseThresholds(parsed.value, parsed.lines);
}

/** An analysed step of the stage matrix: with a baseline (both versions get traffic) or against the SLOs only. */
export interface AnalysisStepSpec {
  stage: string;
  baseline: boolean;
}

/** Tests of a step: four with a baseline, the two SLO tests without one (canary-100, blue). */
export function testsOfStep(step: Pick<AnalysisStepSpec, 'baseline'>): number {
  return step.baseline ? 4 : 2;
}

/** The levels and sample sizes every analysis of a run uses. */
export interface AnalysisPlan {
  thresholds: AnalysisThresholds;
  steps: AnalysisStepSpec[];
  /** Tests over every analysed step of the stage matrix. */
  tests: number;
  /** Level of each test at each look: falseAbort / (tests · looks) (Bonferroni). */
  alpha: number;
  /** Level of each "inside the limit" decision at each look: miss / looks. */
  beta: number;
  looks: number;
  /**
   * Canary requests the first look waits for: the fewest with which a perfect canary (no error, no slower than
   * the baseline) can pass every test (`comparison`: with a baseline, `sloOnly`: without).
   */
  minCanary: { comparison: number; sloOnly: number };
}

/**
 * The plan of the analysis over a stage matrix. A healthy canary is failed by a test with probability at most
 * alpha at each look, so by any test of any step with probability at most falseAbort (Bonferroni over tests and
 * looks); a canary past one limit passes that test at a look with probability at most beta, so passes a step with
 * probability at most `miss`.
 */
export function planAnalysis(
  thresholds: AnalysisThresholds,
  steps: readonly AnalysisStepSpec[],
): AnalysisPlan {
  const tests = steps.reduce((s, step) => s + testsOfStep(step), 0);
  const { falseAbort, miss, looks } = thresholds.decision;
  const alpha = falseAbort / (Math.max(1, tests) * looks);
  const beta = miss / looks;
  const { slo, margin } = thresholds.errorRate;
  // A perfect canary's errors: 0 of n passes the SLO test once P(X = 0; slo) < beta; its p99's upper bound exists
  // once n ≥ ln(beta) / ln(0.99); the margin test needs the canary's upper bound (at beta / 2) under the margin.
  const smallest = (ok: (n: number) => boolean) => {
    let n = 1;
    while (!ok(n)) n++;
    return n;
  };
  const sloOnly = Math.max(
    smallest((n) => binomialCdf(0, n, slo) < beta),
    smallest((n) => quantileUpperRank(n, 0.99, 1 - beta) !== null),
  );
  const comparison = Math.max(
    sloOnly,
    smallest((n) => clopperPearsonUpper(0, n, 1 - beta / 2) < margin),
  );
  return {
    thresholds,
    steps: [...steps],
    tests,
    alpha,
    beta,
    looks,
    minCanary: { comparison, sloOnly },
  };
}

/** What was seen of one version at a step: every answer it gave, 5xx included, and their latencies. */
export interface VersionSample {
  version: string;
  /** Answers (each has a latency). */
  requests: number;
  /** 5xx answers among them. */
  errors: number;
  latenciesMs: readonly number[];
  /**
   * Instead of latencies (the cluster path): cumulative counts of answers at or below each bucket boundary `le`
   * (ms, ascending, the last Infinity: every answer), as a Prometheus histogram has them.
   */
  buckets?: readonly HistogramBucket[];
}

/** A cumulative histogram bucket: `count` answers took at most `le` ms. */
export interface HistogramBucket {
  le: number;
  count: number;
}

/** What was measured of a version, for the report. */
export interface VersionStats {
  version: string;
  requests: number;
  errors: number;
  errorRate: number;
  p50: number;
  p90: number;
  p99: number;
}

export type AnalysisVerdict = 'pass' | 'fail' | 'inconclusive';
export type CheckId = 'traffic' | 'error-rate' | 'error-margin' | 'latency-shift' | 'latency-p99';

export interface AnalysisCheck {
  id: CheckId;
  /** "v2 error rate", "v2 − v1 error rate", "v2 latency vs v1", "v2 p99". */
  metric: string;
  /** "≤ 1 %", "≤ +1 point", "≤ +50 ms (shift)", "≤ 500 ms". */
  limitText: string;
  limit: number;
  unit: 'share' | 'ms' | 'requests';
  /** The point estimate: a rate, a difference of rates, the difference of medians (ms), the p99 (ms). */
  value: number;
  valueText: string;
  /** Bounds the decision rests on: lower at 1 − alpha (past the limit?), upper at 1 − beta (inside it?). */
  lower: number | null;
  upper: number | null;
  /** One-sided p-values: of "past the limit" (compared with alpha) and of "inside" (compared with beta). */
  pPast: number | null;
  pInside: number | null;
  verdict: AnalysisVerdict;
  /** A failure: how far the estimate is past the limit (same unit). */
  excess: number | null;
  /** Inconclusive: canary requests in all this test would need to decide, if the canary keeps behaving as seen. */
  neededCanary: number | null;
  /** The test, its levels and the bounds in words. */
  detail: string;
  /** One sentence: what was found. */
  reason: string;
  /**
   * latency-p99 with a baseline: the baseline breaches the SLO too (shown past it), so the canary's breach is not
   * counted against it (the machine's, not the release's); the latency comparison with the baseline still judges.
   */
  shared?: boolean;
}

export interface AnalysisInput {
  stage: string;
  canary: VersionSample;
  /** Null at a step without baseline traffic (canary-100, blue): the SLO tests only. */
  baseline: VersionSample | null;
  /** The canary's expected share of the step's requests (to count missing requests of the whole step). */
  share: number;
  /** Requests of the analysis traffic that reached no version (resets, the gateway's own 5xx, another stage). */
  unattributed?: number;
}

export interface AnalysisResult {
  stage: string;
  verdict: AnalysisVerdict;
  canary: VersionStats;
  baseline: VersionStats | null;
  checks: AnalysisCheck[];
  alpha: number;
  beta: number;
  /** Inconclusive: requests still needed (canary's, and of the whole step at its share); null: too close to call. */
  missing: { canary: number; total: number } | null;
  /** "v2 errors 0.10 % vs v1 0.00 % (SLO 1 %), p99 12 ms vs 11 ms (SLO 500 ms): pass". */
  summary: string;
  /** Why, in a sentence per failed (or undecided) test. */
  reasons: string[];
  /** Said plainly besides the verdict: an SLO breach shared with the baseline (not counted against the canary). */
  notes: string[];
  /** How latency was judged when not from every answer's latency (histogram buckets), else null. */
  latencyMethod: string | null;
}

export const NEEDED_LIMIT = 10_000_000;

/**
 * The latency side of an analysis: the shift against the baseline (null without one), the p99 against the SLO
 * of the canary and of the baseline, and per-version statistics. From the answers' latencies (`analyse`), or from
 * histogram buckets (histogram.ts: the cluster path's Prometheus).
 */
export interface LatencyJudge {
  shift(c: VersionSample, b: VersionSample): AnalysisCheck;
  p99(s: VersionSample): AnalysisCheck;
  stats(s: VersionSample): VersionStats;
  /** How latency was judged, said with the result (null: from every answer's latency, the default). */
  method: string | null;
}

/** The latency tests on every answer's latency: Mann-Whitney of the samples, order-statistic bounds of the p99. */
function exactLatency(plan: AnalysisPlan, minCanary: number): LatencyJudge {
  const { alpha, beta } = plan;
  const t = plan.thresholds;
  const sorted = new Map<VersionSample, Float64Array>();
  const sortedOf = (s: VersionSample) => {
    let v = sorted.get(s);
    if (!v) {
      v = sortedSample(s.latenciesMs);
      sorted.set(s, v);
    }
    return v;
  };
  return {
    shift: (c, b) => shiftCheck(c, b, sortedOf(c), sortedOf(b), t.latency.marginMs, alpha, beta, minCanary),
    p99: (s) => p99Check(s.version, sortedOf(s), t.latency.p99SloMs, alpha, beta, minCanary),
    stats: (s) => versionStats(s, (q) => quantileSorted(sortedOf(s), q)),
    method: null,
  };
}

/** Judges a step's samples with the plan's levels (see the module's comment). */
export function analyse(
  plan: AnalysisPlan,
  input: AnalysisInput,
  latency?: (plan: AnalysisPlan, minCanary: number) => LatencyJudge,
): AnalysisResult {
  const { alpha, beta } = plan;
  const t = plan.thresholds;
  const c = input.canary;
  const b = input.baseline;
  const cName = c.version;
  const bName = b?.version ?? 'baseline';
  const checks: AnalysisCheck[] = [];
  const minCanary = b ? plan.minCanary.comparison : plan.minCanary.sloOnly;
  const judge = (latency ?? exactLatency)(plan, minCanary);

  const unattributed = input.unattributed ?? 0;
  if (unattributed > 0) {
    checks.push({
      id: 'traffic',
      metric: 'requests that reached no version',
      limitText: '0',
      limit: 0,
      unit: 'requests',
      value: unattributed,
      valueText: String(unattributed),
      lower: null,
      upper: null,
      pPast: null,
      pInside: null,
      verdict: 'fail',
      excess: unattributed,
      neededCanary: null,
      detail: 'resets, timeouts, the gateway’s own 5xx or answers of another stage: the mesh, not the canary',
      reason: `${unattributed} request(s) reached no version (resets, timeouts, the gateway's own answers, another stage)`,
    });
  }

  checks.push(errorRateCheck(c, t.errorRate.slo, alpha, beta, minCanary));
  if (b) checks.push(errorMarginCheck(c, b, t.errorRate.margin, alpha, beta, minCanary));
  if (b) checks.push(judge.shift(c, b));
  const canaryP99 = judge.p99(c);
  checks.push(
    b ? p99AgainstBaseline(canaryP99, judge.p99(b), c.requests / Math.max(1, b.requests)) : canaryP99,
  );

  const verdict: AnalysisVerdict = checks.some((x) => x.verdict === 'fail')
    ? 'fail'
    : checks.every((x) => x.verdict === 'pass')
      ? 'pass'
      : 'inconclusive';
  let missing: AnalysisResult['missing'] = null;
  if (verdict === 'inconclusive') {
    const needs = checks.filter((x) => x.verdict === 'inconclusive').map((x) => x.neededCanary);
    if (needs.every((n): n is number => n !== null)) {
      const canary = Math.max(1, Math.max(...needs) - c.requests);
      missing = { canary, total: Math.ceil(canary / Math.max(input.share, 1e-9)) };
    }
  }
  const canaryStats = judge.stats(c);
  const baselineStats = b ? judge.stats(b) : null;
  const reasons = checks.filter((x) => x.verdict !== 'pass').map((x) => x.reason);
  if (verdict === 'inconclusive') {
    reasons.push(
      missing
        ? `inconclusive: about ${missing.total} more requests at this step (${missing.canary} more for ${cName}) would decide`
        : `inconclusive: ${cName} is too close to a limit to decide with fewer than ${NEEDED_LIMIT} of its requests`,
    );
  }
  const notes = checks.filter((x) => x.shared).map((x) => x.reason);
  const pctText = (x: number) => formatShare(x);
  const summary =
    `${cName} errors ${pctText(canaryStats.errorRate)}` +
    (baselineStats ? ` vs ${bName} ${pctText(baselineStats.errorRate)}` : '') +
    ` (SLO ${formatShare(t.errorRate.slo)}), p99 ${formatMs(canaryStats.p99)}` +
    (baselineStats ? ` vs ${formatMs(baselineStats.p99)}` : '') +
    ` (SLO ${formatMs(t.latency.p99SloMs)})` +
    (baselineStats ? `, median ${formatSignedMs(canaryStats.p50 - baselineStats.p50)}` : '') +
    (notes.length > 0 ? `; p99 SLO breached by ${bName} too (the machine's, not the release's)` : '') +
    `: ${verdict === 'pass' ? 'pass' : verdict === 'fail' ? 'FAIL' : 'inconclusive'}`;
  return {
    stage: input.stage,
    verdict,
    canary: canaryStats,
    baseline: baselineStats,
    checks,
    alpha,
    beta,
    missing,
    summary,
    reasons,
    notes,
    latencyMethod: judge.method,
  };
}

/**
 * The absolute p99 SLO is the canary's failure only when the baseline, serving the same traffic on the same
 * machine at the same time, meets it. A breach the baseline shares (the baseline's p99 shown past the SLO at the
 * same level) is the machine's, not the release's: the canary's p99 check is then not counted against it (its
 * verdict is pass, marked `shared`), and the Mann-Whitney comparison with the baseline still catches a slower
 * canary. A canary past the SLO while the baseline is not yet shown inside it is inconclusive (more data decide
 * whose breach it is). `ratio`: canary requests per baseline request, to express the baseline's missing requests in
 * canary requests.
 */
function p99AgainstBaseline(canary: AnalysisCheck, baseline: AnalysisCheck, ratio: number): AnalysisCheck {
  if (canary.verdict === 'pass') return canary;
  const slo = formatMs(canary.limit);
  const name = baseline.metric.replace(/ p99$/, '');
  const cName = canary.metric.replace(/ p99$/, '');
  if (baseline.verdict === 'fail') {
    return {
      ...canary,
      verdict: 'pass',
      excess: null,
      neededCanary: null,
      shared: true,
      valueText: `${canary.valueText} (${name} ${baseline.valueText}: both past the SLO)`,
      detail: `${canary.detail}; ${name}'s p99: ${baseline.detail}`,
      reason: `${cName} p99 ${formatMs(canary.value)} is ${canary.value > canary.limit ? 'above' : 'near'} the SLO of ${slo}, but so is ${name}'s (${formatMs(baseline.value)}, at least ${formatMs(baseline.lower ?? baseline.value)}): the machine is slow for both versions, not the release; not counted against ${cName} (the comparison with ${name} judges its latency)`,
    };
  }
  if (canary.verdict === 'fail' && baseline.verdict === 'inconclusive') {
    return {
      ...canary,
      verdict: 'inconclusive',
      excess: null,
      neededCanary:
        baseline.neededCanary === null ? null : Math.max(1, Math.ceil(baseline.neededCanary * ratio)),
      detail: `${canary.detail}; ${name}'s p99: ${baseline.detail}`,
      reason: `${cName} p99 ${formatMs(canary.value)} is above the SLO of ${slo}, but ${name}'s p99 ${formatMs(baseline.value)} is not yet shown inside it: whether the breach is the release's or the machine's is not yet decided`,
    };
  }
  if (canary.verdict === 'fail') {
    return {
      ...canary,
      reason: `${canary.reason}, while ${name}'s p99 ${formatMs(baseline.value)} is inside it`,
    };
  }
  return canary;
}

/** A version's statistics, its latency quantiles from `quantile` (of the answers, or of histogram buckets). */
export function versionStats(s: VersionSample, quantile: (q: number) => number): VersionStats {
  return {
    version: s.version,
    requests: s.requests,
    errors: s.errors,
    errorRate: s.requests > 0 ? s.errors / s.requests : 0,
    p50: quantile(0.5),
    p90: quantile(0.9),
    p99: quantile(0.99),
  };
}

export const confidenceText = (level: number) => `${+((1 - level) * 100).toPrecision(6)} %`;

export const pText = (p: number) => (p === 0 ? 'p < 1e-300' : `p = ${formatP(p)}`);

export function decide(past: boolean, inside: boolean): AnalysisVerdict {
  return past ? 'fail' : inside ? 'pass' : 'inconclusive';
}

/**
 * The smallest n in (from, NEEDED_LIMIT] for which `decided(n)` holds, assuming it stays true once it holds
 * (doubling, then bisection); null when even the limit is not enough.
 */
export function smallestDeciding(from: number, decided: (n: number) => boolean): number | null {
  let lo = Math.max(1, from);
  let hi = lo;
  for (;;) {
    hi = Math.min(NEEDED_LIMIT, Math.max(hi * 2, hi + 1));
    if (decided(hi)) break;
    if (hi >= NEEDED_LIMIT) return null;
    lo = hi;
  }
  while (hi - lo > Math.max(1, Math.floor(lo / 200))) {
    const mid = Math.floor((lo + hi) / 2);
    if (decided(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export function errorRateCheck(
  c: VersionSample,
  slo: number,
  alpha: number,
  beta: number,
  minCanary: number,
): AnalysisCheck {
  const { errors: k, requests: n } = c;
  const base = {
    id: 'error-rate' as const,
    metric: `${c.version} error rate`,
    limitText: `≤ ${formatShare(slo)}`,
    limit: slo,
    unit: 'share' as const,
  };
  if (n === 0) return noData(base, minCanary);
  const rate = k / n;
  // Past the SLO: P(X ≥ k; slo) < alpha (the lower Clopper–Pearson bound at 1 − alpha is above the SLO).
  // Inside: P(X ≤ k; slo) < beta (the upper bound at 1 − beta is below it).
  const pPast = binomialTestGreater(k, n, slo);
  const pInside = binomialCdf(k, n, slo);
  const lower = clopperPearsonLower(k, n, 1 - alpha);
  const upper = clopperPearsonUpper(k, n, 1 - beta);
  const verdict = decide(pPast < alpha, pInside < beta);
  let neededCanary: number | null = null;
  if (verdict === 'inconclusive' && rate !== slo) {
    neededCanary = smallestDeciding(n, (m) => {
      const km = Math.round(rate * m);
      return rate < slo ? binomialCdf(km, m, slo) < beta : binomialTestGreater(km, m, slo) < alpha;
    });
  }
  const valueText = `${formatShare(rate)} (${k} of ${n})`;
  const reason =
    verdict === 'fail'
      ? `${c.version} error rate ${formatShare(rate)} is above the SLO of ${formatShare(slo)} by ${formatPoints(rate - slo)} (at least ${formatShare(lower)} with ${confidenceText(alpha)} confidence)`
      : verdict === 'pass'
        ? `${c.version} error rate ${formatShare(rate)} is inside the SLO of ${formatShare(slo)} (at most ${formatShare(upper)})`
        : `${c.version} error rate ${formatShare(rate)}: not yet shown inside or past the SLO of ${formatShare(slo)} (between ${formatShare(lower)} and ${formatShare(upper)})`;
  return {
    ...base,
    value: rate,
    valueText,
    lower,
    upper,
    pPast,
    pInside,
    verdict,
    excess: verdict === 'fail' ? rate - slo : null,
    neededCanary,
    detail: `exact binomial: P(X ≥ ${k}; ${slo}) = ${formatP(pPast)} (past if < ${formatP(alpha)}), P(X ≤ ${k}; ${slo}) = ${formatP(pInside)} (inside if < ${formatP(beta)})`,
    reason,
  };
}

function marginBounds(
  kc: number,
  nc: number,
  kb: number,
  nb: number,
  level: number,
): { lower: number; upper: number } {
  // Each rate's bound at level / 2: both hold together with probability at least 1 − level.
  return {
    lower: clopperPearsonLower(kc, nc, 1 - level / 2) - clopperPearsonUpper(kb, nb, 1 - level / 2),
    upper: clopperPearsonUpper(kc, nc, 1 - level / 2) - clopperPearsonLower(kb, nb, 1 - level / 2),
  };
}

function errorMarginCheck(
  c: VersionSample,
  b: VersionSample,
  margin: number,
  alpha: number,
  beta: number,
  minCanary: number,
): AnalysisCheck {
  const base = {
    id: 'error-margin' as const,
    metric: `${c.version} − ${b.version} error rate`,
    limitText: `≤ +${formatPoints(margin)}`,
    limit: margin,
    unit: 'share' as const,
  };
  if (c.requests === 0 || b.requests === 0) return noData(base, minCanary);
  const rc = c.errors / c.requests;
  const rb = b.errors / b.requests;
  const diff = rc - rb;
  const lower = marginBounds(c.errors, c.requests, b.errors, b.requests, alpha).lower;
  const upper = marginBounds(c.errors, c.requests, b.errors, b.requests, beta).upper;
  const verdict = decide(lower > margin, upper < margin);
  let neededCanary: number | null = null;
  if (verdict === 'inconclusive' && diff !== margin) {
    const ratio = b.requests / c.requests;
    neededCanary = smallestDeciding(c.requests, (m) => {
      const nb = Math.max(1, Math.round(ratio * m));
      const kc = Math.min(m, Math.round(rc * m));
      const kb = Math.min(nb, Math.round(rb * nb));
      return diff < margin
        ? marginBounds(kc, m, kb, nb, beta).upper < margin
        : marginBounds(kc, m, kb, nb, alpha).lower > margin;
    });
  }
  const reason =
    verdict === 'fail'
      ? `${c.version} error rate ${formatShare(rc)} is ${formatPoints(diff)} above ${b.version}'s ${formatShare(rb)}, past the margin of ${formatPoints(margin)} by ${formatPoints(diff - margin)} (at least ${formatPoints(lower)} above, ${confidenceText(alpha)} confidence)`
      : verdict === 'pass'
        ? `${c.version} error rate is at most ${formatPoints(upper)} above ${b.version}'s, inside the margin of ${formatPoints(margin)}`
        : `${c.version} − ${b.version} error rate ${formatSignedPoints(diff)}: not yet shown inside or past the margin of ${formatPoints(margin)} (between ${formatSignedPoints(lower)} and ${formatSignedPoints(upper)})`;
  return {
    ...base,
    value: diff,
    valueText: `${formatSignedPoints(diff)} (${formatShare(rc)} vs ${formatShare(rb)})`,
    lower,
    upper,
    pPast: null,
    pInside: null,
    verdict,
    excess: verdict === 'fail' ? diff - margin : null,
    neededCanary,
    detail: `Clopper–Pearson bounds of both rates at half the level: past if the difference's lower bound (${confidenceText(alpha)}) ${formatSignedPoints(lower)} > ${formatPoints(margin)}, inside if its upper bound (${confidenceText(beta)}) ${formatSignedPoints(upper)} < ${formatPoints(margin)}`,
    reason,
  };
}

/** What a check is about, before any data: its id, metric, limit and unit (as `noData` reports it too). */
export type CheckHeader = Pick<AnalysisCheck, 'id' | 'metric' | 'limitText' | 'limit' | 'unit'>;

/** The header of the latency shift check of canary `c` against baseline `b`. */
export function shiftCheckHeader(c: VersionSample, b: VersionSample, marginMs: number): CheckHeader {
  return {
    id: 'latency-shift',
    metric: `${c.version} latency vs ${b.version}`,
    limitText: `≤ +${formatMs(marginMs)} (shift)`,
    limit: marginMs,
    unit: 'ms',
  };
}

/** The header of the p99 check of `version` against the SLO. */
export function p99CheckHeader(version: string, sloMs: number): CheckHeader {
  return {
    id: 'latency-p99',
    metric: `${version} p99`,
    limitText: `≤ ${formatMs(sloMs)}`,
    limit: sloMs,
    unit: 'ms',
  };
}

/**
 * The canary requests a Mann-Whitney test needs to decide at `level`, its effect `distance` (> 0) from 0.5 with
 * n1 canary and n2 baseline answers now: z grows with the square root of the sample (both samples grow together
 * at a fixed split), with 5 % to spare; null past NEEDED_LIMIT.
 */
export function shiftNeededCanary(distance: number, n1: number, n2: number, level: number): number | null {
  const zNow = distance * Math.sqrt((12 * n1 * n2) / (n1 + n2 + 1));
  const scale = (normalQuantile(1 - level) / zNow) ** 2;
  return scale * n1 > NEEDED_LIMIT ? null : Math.max(n1 + 1, Math.ceil(scale * n1 * 1.05));
}

function shiftCheck(
  c: VersionSample,
  b: VersionSample,
  cSorted: Float64Array,
  bSorted: Float64Array,
  marginMs: number,
  alpha: number,
  beta: number,
  minCanary: number,
): AnalysisCheck {
  const base = shiftCheckHeader(c, b, marginMs);
  if (cSorted.length === 0 || bSorted.length === 0) return noData(base, minCanary);
  // The canary's latencies less the margin against the baseline's: 'greater' is "slower by more than the
  // margin", 'less' is "slower by less than the margin" (both one-sided, from the same ranks).
  const shifted = Array.from(cSorted, (v) => v - marginMs);
  const baseline = Array.from(bSorted);
  const { greater: past, less: inside } = mannWhitneyOneSided(shifted, baseline);
  const verdict = decide(past.pValue < alpha, inside.pValue < beta);
  const medianShift = quantileSorted(cSorted, 0.5) - quantileSorted(bSorted, 0.5);
  let neededCanary: number | null = null;
  const effect = past.effect - 0.5;
  if (verdict === 'inconclusive' && effect !== 0) {
    neededCanary = shiftNeededCanary(Math.abs(effect), past.n1, past.n2, effect > 0 ? alpha : beta);
  }
  const probability = `P(${c.version} − ${formatMs(marginMs)} > ${b.version}) = ${past.effect.toFixed(3)}`;
  const reason =
    verdict === 'fail'
      ? `${c.version} is slower than ${b.version} by more than ${formatMs(marginMs)}: median ${formatSignedMs(medianShift)}, past the margin by ${formatMs(medianShift - marginMs)} (Mann-Whitney ${pText(past.pValue)}, level ${formatP(alpha)})`
      : verdict === 'pass'
        ? `${c.version} latency is within ${formatMs(marginMs)} of ${b.version}'s (median ${formatSignedMs(medianShift)})`
        : `${c.version} latency vs ${b.version}: median ${formatSignedMs(medianShift)}, not yet shown within or past the margin of ${formatMs(marginMs)}`;
  return {
    ...base,
    value: medianShift,
    valueText: `median ${formatSignedMs(medianShift)}`,
    lower: null,
    upper: null,
    pPast: past.pValue,
    pInside: inside.pValue,
    verdict,
    excess: verdict === 'fail' ? medianShift - marginMs : null,
    neededCanary,
    detail: `Mann-Whitney U (${past.method}) of ${c.version} − ${formatMs(marginMs)} against ${b.version}, ${probability}: slower ${pText(past.pValue)} (past if < ${formatP(alpha)}), faster ${pText(inside.pValue)} (inside if < ${formatP(beta)})`,
    reason,
  };
}

function p99Check(
  version: string,
  sorted: Float64Array,
  sloMs: number,
  alpha: number,
  beta: number,
  minCanary: number,
): AnalysisCheck {
  const base = p99CheckHeader(version, sloMs);
  const n = sorted.length;
  if (n === 0) return noData(base, minCanary);
  const p99 = quantileSorted(sorted, 0.99);
  const lowerBound = quantileLowerBound(sorted, 0.99, 1 - alpha);
  const upperBound = quantileUpperBound(sorted, 0.99, 1 - beta);
  const past = lowerBound !== null && lowerBound.value > sloMs;
  const inside = upperBound !== null && upperBound.value <= sloMs;
  const verdict = decide(past, inside);
  let neededCanary: number | null = null;
  if (verdict === 'inconclusive') {
    let atMost = 0; // answers no slower than the SLO
    while (atMost < n && (sorted[atMost] as number) <= sloMs) atMost++;
    const share = atMost / n;
    if (share !== 0.99) {
      neededCanary = smallestDeciding(n, (m) => {
        const within = Math.floor(share * m);
        if (share > 0.99) {
          const k = quantileUpperRank(m, 0.99, 1 - beta);
          return k !== null && k <= within;
        }
        const j = quantileLowerRank(m, 0.99, 1 - alpha);
        return j !== null && within < j;
      });
    }
  }
  const reason =
    verdict === 'fail'
      ? `${version} p99 ${formatMs(p99)} is above the SLO of ${formatMs(sloMs)} by ${formatMs(p99 - sloMs)} (at least ${formatMs(lowerBound?.value ?? p99)} with ${confidenceText(alpha)} confidence)`
      : verdict === 'pass'
        ? `${version} p99 ${formatMs(p99)} is inside the SLO of ${formatMs(sloMs)} (at most ${formatMs(upperBound?.value ?? p99)})`
        : `${version} p99 ${formatMs(p99)}: not yet shown inside or past the SLO of ${formatMs(sloMs)}${upperBound ? '' : ` (${n} answers are too few for an upper bound)`}`;
  return {
    ...base,
    value: p99,
    valueText: formatMs(p99),
    lower: lowerBound?.value ?? null,
    upper: upperBound?.value ?? null,
    pPast: null,
    pInside: null,
    verdict,
    excess: verdict === 'fail' ? p99 - sloMs : null,
    neededCanary,
    detail: `order statistics (distribution-free): past if the lower bound (${confidenceText(alpha)}) ${lowerBound ? formatMs(lowerBound.value) : 'none'} > ${formatMs(sloMs)}, inside if the upper bound (${confidenceText(beta)}) ${upperBound ? formatMs(upperBound.value) : 'none'} ≤ ${formatMs(sloMs)}`,
    reason,
  };
}

export function noData(base: CheckHeader, minCanary: number): AnalysisCheck {
  return {
    ...base,
    value: Number.NaN,
    valueText: 'no answers',
    lower: null,
    upper: null,
    pPast: null,
    pInside: null,
    verdict: 'inconclusive',
    excess: null,
    neededCanary: minCanary,
    detail: 'no answers yet',
    reason: `${base.metric}: no answers yet`,
  };
}

/** Percentage points: "1 point", "0.35 points". */
export function formatPoints(share: number): string {
  const pts = Math.abs(share * 100);
  const text = Number.isInteger(pts) ? String(pts) : pts.toFixed(2);
  return `${share < 0 ? '−' : ''}${text} ${pts === 1 ? 'point' : 'points'}`;
}

function formatSignedPoints(share: number): string {
  return share >= 0 ? `+${formatPoints(share)}` : formatPoints(share);
}

/** "0.93 ms", "12.4 ms", "152 ms". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const a = Math.abs(ms);
  return `${ms.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0)} ms`;
}

export function formatSignedMs(ms: number): string {
  return ms >= 0 ? `+${formatMs(ms)}` : `−${formatMs(-ms)}`;
}

/** A p-value or level: "0.00139", "1.39e-5". */
export function formatP(p: number): string {
  if (p === 0) return '0';
  return p >= 1e-3 ? String(+p.toPrecision(3)) : p.toExponential(2);
}

const verdictCell = (v: AnalysisVerdict) => (v === 'pass' ? 'pass' : v === 'fail' ? 'FAIL' : 'inconclusive');
const checkCell = (c: AnalysisCheck) => (c.shared ? 'not counted (baseline too)' : verdictCell(c.verdict));

/**
 * The analysis as two tables, not indented: per version (requests, 5xx, p50 / p90 / p99), then per test (limit,
 * measured, verdict).
 */
export function formatAnalysisTables(result: AnalysisResult): string {
  const versions: string[][] = [['version', 'requests', '5xx', 'p50', 'p90', 'p99']];
  for (const v of [result.baseline, result.canary]) {
    if (!v) continue;
    versions.push([
      v.version,
      String(v.requests),
      `${v.errors} (${formatShare(v.errorRate)})`,
      formatMs(v.p50),
      formatMs(v.p90),
      formatMs(v.p99),
    ]);
  }
  const checks: string[][] = [['check', 'limit', 'measured', 'verdict']];
  for (const c of result.checks) checks.push([c.metric, c.limitText, c.valueText, checkCell(c)]);
  return `${formatTable(versions, new Set([1, 3, 4, 5]))}\n${formatTable(checks)}`;
}

/** The thresholds in one line, as printed before a run: "error rate ≤ 1.00 % and ≤ baseline +1 point, ...". */
export function formatThresholds(plan: AnalysisPlan): string {
  const t = plan.thresholds;
  return (
    `error rate ≤ ${formatShare(t.errorRate.slo)} and ≤ baseline +${formatPoints(t.errorRate.margin)}; ` +
    `latency ≤ baseline +${formatMs(t.latency.marginMs)} (Mann-Whitney), p99 ≤ ${formatMs(t.latency.p99SloMs)}; ` +
    `false aborts ≤ ${formatShare(t.decision.falseAbort)} over ${plan.steps.length} analysed steps ` +
    `(${plan.tests} tests × ${plan.looks} looks: level ${formatP(plan.alpha)} each), ` +
    `misses ≤ ${formatShare(t.decision.miss)} per step; at most ${t.decision.maxRequestsPerStep} requests per step`
  );
}
