/**
 * k6 split check of the cluster path: sends real requests through the Istio ingress gateway and fails (k6 exit 99)
 * when the observed split does not match the stage applied to the cluster.
 *
 *   k6 run -e EXPECT_FILE=expect.json [-e ANALYSIS_FILE=analysis.yaml] [-e GATEWAY_URL=http://localhost:8080]
 *     [-e SUMMARY_FILE=out.json] split.ts
 *
 * scripts/verify.sh (`make verify`, and every `make <stage>`) writes EXPECT_FILE with `rollout expect <stage>
 * --json`: per request profile (no header, `x-canary: always`, `x-preview: blue`) the expected share of each
 * version and the sample size n the plan gives. For every profile this script runs one shared-iterations
 * scenario of n requests and counts the responses by their `x-app-version` (counter `responses`, tags
 * {profile, version}). Pass/fail lives in `options.thresholds`, all derived here from the expected split and n:
 *   - the count of each version inside its exact binomial acceptance band at the plan's per-stage alpha
 *     (binomialAcceptanceBand of @rollouts/split-check, the statistics the local path uses too): a share that is
 *     0 or 1 gives the band [0, 0] or [n, n], so a header route is checked deterministically;
 *   - `checks{profile}` rate == 1: every answer comes from an expected version (header routes: from their
 *     target), or is the 404 a profile without a route expects, and carries the response headers the matched
 *     route sets (`x-rollouts-stage: <stage>`; `checks{profile,assert:headers}` counts those alone): an answer
 *     naming another stage means the gateway does not serve the stage being measured;
 *   - `http_req_failed` rate == 0: any non-2xx answer or connection error fails the stage;
 *   - per version, with ANALYSIS_FILE (scripts/verify.sh passes analysis.yaml, the canary analysis' thresholds,
 *     read with split-check's readThresholds: never retyped here): the 5xx share of its answers at most the error
 *     SLO (`server_errors{version:v}` rate<=errorRate.slo) and the p99 of its answers' durations at most the
 *     latency SLO (`version_duration{version:v}` p(99)<=latency.p99SloMs). These are k6 thresholds on what was
 *     observed in this fixed-n run, not the analysis' tests (those are `make progress`'s, from Prometheus).
 * handleSummary prints the same table as the local path (profile, version, expected, observed, interval,
 * verdict) and writes a JSON summary to SUMMARY_FILE.
 *
 * GATEWAY_HOST: the Host header every request carries (none when empty). Istio's gateway routes by Host and
 * answers 404 to a host the VirtualService does not list (webapp.rollouts.svc.cluster.local, localhost,
 * 127.0.0.1), so scripts/verify.sh passes one of them when GATEWAY_URL names the gateway otherwise.
 *
 * Other knobs: VUS (10) virtual users per profile, MAX_DURATION ('5m') per profile.
 *
 * k6 only strips the types of this file; `tsc --noEmit -p loadtest` checks them against @types/k6. The
 * statistics come from the built package by relative path: k6 resolves relative imports, not package names.
 */
import { check } from 'k6';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import {
  type AnalysisThresholds,
  type VersionRow as BaseVersionRow,
  clopperPearson,
  compareVersions,
  countBands,
  formatSplitTable,
  indent,
  type ProfileOutcome,
  readThresholds,
  splitSupport,
  ThresholdsError,
} from '../packages/split-check/dist/index.js';

// ---------------------------------------------------------------------------------------------------------------
// The expect document (`rollout expect <stage> --json`), as far as this script reads it.

export type CheckKind = 'deterministic' | 'binomial' | 'chi-square' | 'no-route';

export interface ExpectCheck {
  kind: CheckKind;
  /** Two versions: the version whose share is tested (the newer one). */
  version: string | null;
  /** Requests of a fixed-n check. */
  n: number;
  /** Per-check significance (the plan's alpha per stage). */
  alpha: number;
  /** The status every answer must have (404 when no route matches), else null: any 2xx. */
  status: number | null;
}

export interface ExpectProfile {
  name: string;
  headers: Record<string, string>;
  method: string;
  path: string;
  /** Expected probability per version (x-app-version). */
  versions: Record<string, number>;
  /** Response headers every answer must carry (the matched route's headers.response.set); may be absent. */
  responseHeaders?: Record<string, string>;
  check: ExpectCheck;
}

export interface ExpectDocument {
  stage: string;
  strategy: string;
  file?: string;
  plan: { alphaPerStage: number; familyAlpha?: number; delta?: number; power?: number };
  profiles: ExpectProfile[];
}

const KINDS: readonly CheckKind[] = ['deterministic', 'binomial', 'chi-square', 'no-route'];

function fail(source: string, field: string, message: string): never {
  throw new Error(`${source}: ${field}: ${message} (expected the output of 'rollout expect <stage> --json')`);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Parses and checks an expect document; every problem names the field. */
export function parseExpect(text: string, source: string): ExpectDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(source, '(file)', `not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(doc)) return fail(source, '(file)', 'not an object');
  if (typeof doc.stage !== 'string' || doc.stage === '') fail(source, 'stage', 'missing');
  if (!isRecord(doc.plan) || typeof doc.plan.alphaPerStage !== 'number')
    fail(source, 'plan.alphaPerStage', 'missing');
  if (!Array.isArray(doc.profiles) || doc.profiles.length === 0) fail(source, 'profiles', 'missing or empty');
  for (const [i, p] of (doc.profiles as unknown[]).entries()) {
    const at = `profiles[${i}]`;
    if (!isRecord(p)) fail(source, at, 'not an object');
    if (typeof p.name !== 'string') fail(source, `${at}.name`, 'missing');
    if (!isRecord(p.headers)) fail(source, `${at}.headers`, 'missing');
    if (!isRecord(p.versions)) fail(source, `${at}.versions`, 'missing');
    if (p.responseHeaders !== undefined) {
      if (!isRecord(p.responseHeaders)) fail(source, `${at}.responseHeaders`, 'must be an object');
      for (const [h, v] of Object.entries(p.responseHeaders)) {
        if (typeof v !== 'string')
          fail(source, `${at}.responseHeaders.${h}`, `must be a string, got ${JSON.stringify(v)}`);
      }
    }
    for (const [v, share] of Object.entries(p.versions as Record<string, unknown>)) {
      if (typeof share !== 'number' || !(share >= 0 && share <= 1))
        fail(source, `${at}.versions.${v}`, `must be a probability, got ${JSON.stringify(share)}`);
    }
    const c = p.check;
    if (!isRecord(c)) fail(source, `${at}.check`, 'missing');
    if (!KINDS.includes(c.kind as CheckKind)) fail(source, `${at}.check.kind`, `one of ${KINDS.join(', ')}`);
    if (typeof c.n !== 'number' || !Number.isInteger(c.n) || c.n < 1)
      fail(source, `${at}.check.n`, `must be a positive integer, got ${JSON.stringify(c.n)}`);
  }
  return doc as unknown as ExpectDocument;
}

// ---------------------------------------------------------------------------------------------------------------
// What each profile checks: derived from the expected split and n.

export interface Band {
  lo: number;
  hi: number;
}

export interface ProfilePlan {
  /** Tag value and scenario name: p0, p1, … (profile names hold spaces and colons, which k6 tags cannot). */
  id: string;
  name: string;
  headers: Record<string, string>;
  method: string;
  path: string;
  kind: CheckKind;
  n: number;
  alpha: number;
  /** The status every answer must have: 404 for a profile without a route, else null (any 2xx). */
  status: number | null;
  /** Expected share per counted version (versions with a share of 0 are counted too: they must stay at 0). */
  expected: Record<string, number>;
  /** Response headers (lower case) every answer must carry with these values, e.g. x-rollouts-stage. */
  responseHeaders: Record<string, string>;
  /** Acceptance band of each counted version's count. */
  bands: Record<string, Band>;
  /** Two versions: the version whose share is tested. */
  tested: string | null;
}

/**
 * Per-profile plan: the acceptance band of every version's count at the profile's alpha (split-check's
 * countBands: 0 for a share of 0, n for a lone version, the exact two-sided band of the tested version and its
 * complement, or with three or more versions one band each at alpha / k, a conservative stand-in for the local
 * path's chi-square test).
 */
export function planProfiles(doc: ExpectDocument): ProfilePlan[] {
  return doc.profiles.map((p, i) => {
    const n = p.check.n;
    const alpha = typeof p.check.alpha === 'number' ? p.check.alpha : doc.plan.alphaPerStage;
    const status = p.check.kind === 'no-route' ? (p.check.status ?? 404) : null;
    const expected: Record<string, number> = {};
    let bands: Record<string, Band> = {};
    let tested: string | null = null;
    if (status === null) {
      const shape = splitSupport(p.versions);
      for (const v of shape.versions) expected[v] = p.versions[v] ?? 0;
      bands = countBands(p.versions, n, alpha, p.check.version);
      if (shape.tested) {
        const named = shape.support.some((s) => s.version === p.check.version);
        tested = named ? (p.check.version as string) : shape.tested.version;
      }
    }
    const responseHeaders: Record<string, string> = {};
    for (const [h, v] of Object.entries(p.responseHeaders ?? {})) responseHeaders[h.toLowerCase()] = v;
    return {
      id: `p${i}`,
      name: p.name,
      headers: p.headers,
      method: p.method || 'GET',
      path: p.path || '/',
      kind: p.check.kind,
      n,
      alpha,
      status,
      expected,
      responseHeaders,
      bands,
      tested,
    };
  });
}

/** The submetric of `checks` holding the response header checks of one profile. */
export const headerChecks = (plan: ProfilePlan) => `checks{profile:${plan.id},assert:headers}`;

/** The submetric of `responses` counting one version's answers in one profile. */
export const countMetric = (plan: ProfilePlan, version: string) =>
  `responses{profile:${plan.id},version:${version}}`;

/** Thresholds: the whole pass/fail decision (a crossed threshold is k6's exit code 99). */
export function thresholdsFor(plans: ProfilePlan[]): Record<string, string[]> {
  const t: Record<string, string[]> = { http_req_failed: ['rate==0'] };
  for (const plan of plans) {
    for (const [version, band] of Object.entries(plan.bands)) {
      t[countMetric(plan, version)] = [`count>=${band.lo}`, `count<=${band.hi}`];
    }
    t[`checks{profile:${plan.id}}`] = ['rate==1'];
    if (Object.keys(plan.responseHeaders).length > 0) t[headerChecks(plan)] = ['rate==1'];
    t[`http_req_failed{profile:${plan.id}}`] = ['rate==0'];
  }
  return t;
}

/** The versions answering this stage's requests (a positive expected share in a profile with a route). */
export function answeringVersions(plans: ProfilePlan[]): string[] {
  const out = new Set<string>();
  for (const plan of plans) {
    if (plan.status !== null) continue;
    for (const [v, share] of Object.entries(plan.expected)) if (share > 0) out.add(v);
  }
  return [...out].sort(compareVersions);
}

/** The submetrics of one version's answers: its 5xx (rate) and its durations (trend, ms). */
export const errorMetric = (version: string) => `server_errors{version:${version}}`;
export const durationMetric = (version: string) => `version_duration{version:${version}}`;

/** Per-version thresholds from the canary analysis' SLOs (analysis.yaml): error rate and p99 latency. */
export function versionThresholdsFor(plans: ProfilePlan[], t: AnalysisThresholds): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of answeringVersions(plans)) {
    out[errorMetric(v)] = [`rate<=${t.errorRate.slo}`];
    out[durationMetric(v)] = [`p(99)<=${t.latency.p99SloMs}`];
  }
  return out;
}

/** analysis.yaml's text, validated; a bad file stops the run naming each problem with its line. */
export function parseAnalysis(text: string, file: string): AnalysisThresholds {
  try {
    return readThresholds(text);
  } catch (err) {
    if (err instanceof ThresholdsError)
      throw new Error(`bad analysis thresholds in ${file}: ${err.problems.join('; ')}`);
    throw err;
  }
}

export interface ScenarioKnobs {
  vus: number;
  maxDuration: string;
}

/** One shared-iterations scenario of n requests per profile, all running `probe`. */
export function scenariosFor(plans: ProfilePlan[], knobs: ScenarioKnobs): NonNullable<Options['scenarios']> {
  const scenarios: NonNullable<Options['scenarios']> = {};
  plans.forEach((plan, i) => {
    scenarios[plan.id] = {
      executor: 'shared-iterations',
      vus: Math.max(1, Math.min(knobs.vus, plan.n)),
      iterations: plan.n,
      maxDuration: knobs.maxDuration,
      exec: 'probe',
      env: { PROFILE_INDEX: String(i) },
      tags: { profile: plan.id },
    };
  });
  return scenarios;
}

// ---------------------------------------------------------------------------------------------------------------
// Init context: read the expectation and derive the options.

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return v;
}

const EXPECT_FILE = __ENV.EXPECT_FILE;
if (!EXPECT_FILE) {
  throw new Error(
    'EXPECT_FILE is not set: run this through scripts/verify.sh (make verify), or k6 run -e EXPECT_FILE=<file of rollout expect <stage> --json>',
  );
}
const GATEWAY_URL = (__ENV.GATEWAY_URL || 'http://localhost:8080').replace(/\/+$/, '');
const SUMMARY_FILE = __ENV.SUMMARY_FILE || '';
const GATEWAY_HOST = (__ENV.GATEWAY_HOST || '').trim();

/** The headers of one request: the profile's, and Host when GATEWAY_HOST is set. */
export function requestHeaders(plan: ProfilePlan, host: string = GATEWAY_HOST): Record<string, string> {
  return host === '' ? plan.headers : { Host: host, ...plan.headers };
}

export const expectation: ExpectDocument = parseExpect(open(EXPECT_FILE), EXPECT_FILE);
export const plans: ProfilePlan[] = planProfiles(expectation);
/** The canary analysis' thresholds (ANALYSIS_FILE: analysis.yaml), or null without the file. */
const ANALYSIS_FILE = (__ENV.ANALYSIS_FILE || '').trim();
export const analysisThresholds: AnalysisThresholds | null = ANALYSIS_FILE
  ? parseAnalysis(open(ANALYSIS_FILE), ANALYSIS_FILE)
  : null;

export const options: Options = {
  scenarios: scenariosFor(plans, {
    vus: positiveInt('VUS', __ENV.VUS, 10),
    maxDuration: __ENV.MAX_DURATION || '5m',
  }),
  thresholds: {
    ...thresholdsFor(plans),
    ...(analysisThresholds ? versionThresholdsFor(plans, analysisThresholds) : {}),
  },
  // Counts are what is judged; the progress bar and per-request details would only hide the table.
  summaryTrendStats: ['avg', 'p(95)', 'p(99)', 'max'],
};

const responses = new Counter('responses');
const serverErrors = new Rate('server_errors');
const versionDuration = new Trend('version_duration', true);
const answering = new Set(answeringVersions(plans));
const okStatuses = http.expectedStatuses({ min: 200, max: 299 });

/** A response header's value, whatever the case of its name (k6 canonicalises names); '' when absent. */
export function headerValue(headers: Record<string, string>, name: string): string {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return '';
}

/** The x-app-version of a response ('' when absent). */
export const appVersion = (headers: Record<string, string>) => headerValue(headers, 'x-app-version');

/** One request of the profile this scenario runs (PROFILE_INDEX), counted by the version that answered. */
export function probe(): void {
  const plan = plans[Number(__ENV.PROFILE_INDEX)];
  if (plan === undefined) throw new Error(`PROFILE_INDEX ${__ENV.PROFILE_INDEX} names no profile`);
  const tags = { profile: plan.id };
  const res = http.request(plan.method, `${GATEWAY_URL}${plan.path}`, null, {
    headers: requestHeaders(plan),
    tags,
    responseCallback: plan.status === null ? okStatuses : http.expectedStatuses(plan.status),
  });
  const version = appVersion(res.headers);
  // Every counted version gets a sample (0 or 1) so its threshold is evaluated even when it never answers.
  for (const v of Object.keys(plan.bands)) responses.add(version === v ? 1 : 0, { ...tags, version: v });
  if (answering.has(version)) {
    serverErrors.add(res.status >= 500, { ...tags, version });
    versionDuration.add(res.timings.duration, { ...tags, version });
  }
  if (plan.status !== null) {
    check(res, { [`answered ${plan.status} (no route)`]: (r) => r.status === plan.status }, tags);
  } else if (Object.keys(plan.expected).filter((v) => (plan.expected[v] ?? 0) > 0).length === 1) {
    const target = Object.keys(plan.expected).find((v) => plan.expected[v] === 1) as string;
    check(res, { [`every request reaches ${target}`]: () => version === target }, tags);
  } else {
    const allowed = Object.keys(plan.expected).filter((v) => (plan.expected[v] ?? 0) > 0);
    check(res, { [`answered by ${allowed.join(' or ')}`]: () => allowed.includes(version) }, tags);
  }
  // What the matched route sets on every answer (x-rollouts-stage: <stage>): another value means the gateway
  // serves another stage, e.g. a `kubectl apply` that has not reached Envoy yet.
  const headerSets: Record<string, (r: typeof res) => boolean> = {};
  for (const [name, want] of Object.entries(plan.responseHeaders)) {
    headerSets[`${name} is ${want}`] = (r) => headerValue(r.headers, name) === want;
  }
  if (Object.keys(headerSets).length > 0) check(res, headerSets, { ...tags, assert: 'headers' });
}

// ---------------------------------------------------------------------------------------------------------------
// Summary: the table of the local path, and a JSON artefact.

/** The part of k6's summary data this script reads. */
export interface SummaryData {
  metrics: Record<string, { type?: string; values: Record<string, number> } | undefined>;
  state?: { testRunDurationMs?: number };
}

/** The local path's row (split-check's), with the exact acceptance band of the count. */
export interface VersionRow extends BaseVersionRow {
  band: Band;
}

/** A profile's outcome, in the local verifier's shape (split-check's ProfileOutcome). */
export interface ProfileSummary extends ProfileOutcome<VersionRow> {
  kind: CheckKind;
  tested: { version: string; band: Band } | null;
}

export interface StageSummary {
  tool: 'k6';
  stage: string;
  verdict: 'pass' | 'fail';
  gatewayUrl: string;
  confidence: number;
  requests: number;
  failedRequests: number;
  durationMs: number | null;
  plan: ExpectDocument['plan'];
  profiles: ProfileSummary[];
  /** Per version, with ANALYSIS_FILE: its 5xx share and p99 against the analysis' SLOs. */
  versions: VersionHealth[];
}

export interface VersionHealth {
  version: string;
  errorRate: number;
  errorSlo: number;
  p99Ms: number;
  p99SloMs: number;
  verdict: 'pass' | 'fail';
}

const value = (data: SummaryData, metric: string, key: string) => data.metrics[metric]?.values[key] ?? 0;

/** Verdicts from the counts, with the same rules as the thresholds (which decide k6's exit code). */
export function summarize(
  data: SummaryData,
  doc: ExpectDocument,
  profilePlans: ProfilePlan[],
  gatewayUrl: string,
  analysis: AnalysisThresholds | null = null,
): StageSummary {
  const versions: VersionHealth[] = analysis
    ? answeringVersions(profilePlans).map((version) => {
        const errorRate = value(data, errorMetric(version), 'rate');
        const p99Ms = value(data, durationMetric(version), 'p(99)');
        const ok = errorRate <= analysis.errorRate.slo && p99Ms <= analysis.latency.p99SloMs;
        return {
          version,
          errorRate,
          errorSlo: analysis.errorRate.slo,
          p99Ms,
          p99SloMs: analysis.latency.p99SloMs,
          verdict: ok ? 'pass' : 'fail',
        };
      })
    : [];
  const profiles = profilePlans.map((plan): ProfileSummary => {
    const checks = `checks{profile:${plan.id}}`;
    // One http_req_failed sample per request (checks may be several per request).
    const failedMetric = `http_req_failed{profile:${plan.id}}`;
    const requests = value(data, failedMetric, 'passes') + value(data, failedMetric, 'fails');
    const failedRequests = value(data, failedMetric, 'passes');
    const wrongHeaders = value(data, headerChecks(plan), 'fails');
    const wrongVersions = value(data, checks, 'fails') - wrongHeaders;
    const confidence = 1 - plan.alpha;
    const counts: Record<string, number> = {};
    const versions = Object.keys(plan.bands).sort(compareVersions);
    const rows: VersionRow[] = versions.map((version) => {
      const band = plan.bands[version] as Band;
      const count = value(data, countMetric(plan, version), 'count');
      counts[version] = count;
      return {
        version,
        expected: plan.expected[version] ?? 0,
        observed: requests > 0 ? count / requests : 0,
        count,
        band,
        interval: requests > 0 && count <= requests ? clopperPearson(count, requests, confidence) : null,
        verdict: count >= band.lo && count <= band.hi ? 'pass' : 'fail',
      };
    });
    const reasons: string[] = [];
    if (requests < plan.n) reasons.push(`${requests} of ${plan.n} requests completed`);
    if (failedRequests > 0) reasons.push(`${failedRequests} failed request(s)`);
    if (wrongVersions > 0) reasons.push(`${wrongVersions} answer(s) from an unexpected version`);
    if (wrongHeaders > 0) {
      const want = Object.entries(plan.responseHeaders)
        .map(([h, v]) => `${h}: ${v}`)
        .join(', ');
      reasons.push(
        `${wrongHeaders} answer(s) without ${want}: the gateway does not serve stage ${doc.stage} (another stage, or a switch that has not reached it)`,
      );
    }
    for (const r of rows) {
      if (r.verdict === 'fail')
        reasons.push(`${r.version}: ${r.count} answers, outside ${r.band.lo}..${r.band.hi}`);
    }
    const verdict = reasons.length === 0 ? 'pass' : 'fail';
    let reason: string;
    if (verdict === 'fail') reason = reasons.join('; ');
    else if (plan.status !== null) reason = `every request answered ${plan.status} (no route)`;
    else if (plan.tested !== null) {
      const b = plan.bands[plan.tested] as Band;
      reason = `${plan.tested} count ${counts[plan.tested]} inside the exact band ${b.lo}..${b.hi} (alpha ${plan.alpha.toPrecision(3)})`;
    } else if (rows.length > 0 && rows.every((r) => r.band.lo === r.band.hi))
      reason = 'every request reached its target';
    else reason = 'every version count inside its band';
    return {
      name: plan.name,
      headers: plan.headers,
      kind: plan.kind,
      verdict,
      reason,
      requests,
      plannedN: plan.n,
      failedRequests,
      wrongHeaders,
      counts,
      rows,
      tested: plan.tested !== null ? { version: plan.tested, band: plan.bands[plan.tested] as Band } : null,
    };
  });
  return {
    tool: 'k6',
    stage: doc.stage,
    verdict:
      profiles.every((p) => p.verdict === 'pass') && versions.every((v) => v.verdict === 'pass')
        ? 'pass'
        : 'fail',
    gatewayUrl,
    confidence: 1 - doc.plan.alphaPerStage,
    requests: profiles.reduce((s, p) => s + p.requests, 0),
    failedRequests: profiles.reduce((s, p) => s + p.failedRequests, 0),
    durationMs: data.state?.testRunDurationMs ?? null,
    plan: doc.plan,
    profiles,
    versions,
  };
}

/** The local path's table (split-check's formatSplitTable), then one line per check. */
export function formatSummary(s: StageSummary): string {
  const took = s.durationMs !== null ? ` in ${(s.durationMs / 1000).toFixed(2)} s` : '';
  const lines = [
    `stage ${s.stage} (k6, ${s.gatewayUrl}): ${s.verdict === 'pass' ? 'PASS' : 'FAIL'} — ${s.requests} requests${took}` +
      (s.failedRequests > 0 ? `, ${s.failedRequests} failed` : ''),
    indent(formatSplitTable(s.profiles, s.confidence)),
  ];
  for (const p of s.profiles) {
    const test =
      p.kind === 'binomial'
        ? 'exact binomial, fixed n'
        : p.kind === 'chi-square'
          ? 'binomial per version, fixed n'
          : p.kind;
    lines.push(`  ${p.name}: ${test}, ${p.requests} requests (plan ${p.plannedN}): ${p.reason}`);
  }
  for (const v of s.versions) {
    lines.push(
      `  ${v.version}: 5xx ${(v.errorRate * 100).toFixed(2)} % (SLO ≤ ${+(v.errorSlo * 100).toPrecision(6)} %), p99 ${v.p99Ms.toFixed(1)} ms (SLO ≤ ${v.p99SloMs} ms): ${v.verdict === 'pass' ? 'pass' : 'FAIL'} (k6 thresholds from analysis.yaml)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function handleSummary(data: SummaryData): Record<string, string> {
  const summary = summarize(data, expectation, plans, GATEWAY_URL, analysisThresholds);
  const out: Record<string, string> = { stdout: formatSummary(summary) };
  if (SUMMARY_FILE) out[SUMMARY_FILE] = `${JSON.stringify(summary, null, 2)}\n`;
  return out;
}
