/**
 * The statistical verifier: sends real requests through the gateway and decides whether the observed split
 * matches the applied stage.
 *
 * Per request profile of the stage (the default one, and one per override header):
 * - one version expected (0 / 100 %, header routes): `deterministicN` requests (the n for which a 5-point leak
 *   shows with probability >= 0.999), every one must reach that version;
 * - two versions: split-check's sequential test (SPRT), updated with every response, truncated at twice the
 *   fixed-n sample size (the exact binomial test decides there);
 * - three or more: a fixed n (the largest per-version fixed n) and Pearson's chi-square at the per-stage alpha.
 * Any failed request (non-2xx, reset, timeout), a response from a version the profile never sends to, or an
 * answer without the response headers the matched route sets (`x-rollouts-stage: <stage>`: the gateway serves
 * another stage than the one verified) fails the stage at once. The alpha per stage comes from planVerification:
 * the family error over every stage with a random split stays <= familyAlpha.
 *
 * When a canary analysis follows (`serverErrorsAsAnswers`, rollout progress and demo), a 5xx answer the app gave
 * (it names its version and carries the stage's headers) proves where the request went like any other answer:
 * it counts for the split, and the analysis judges the version's errors. Resets, timeouts, the gateway's own
 * answers (no x-app-version) and answers of another stage still fail the split check. `onSample` sees every
 * request's status, version and latency, for the analysis.
 */
import { setMaxListeners } from 'node:events';
import {
  binomialAcceptanceBand,
  binomialTestTwoSided,
  chiSquareGoodnessOfFit,
  clopperPearson,
  createSprt,
  type ProfileOutcome,
  planCheck,
  type SprtState,
  type StepSamples,
  splitSupport,
  type VerificationPlan,
  type VersionRow,
  type VersionSample,
} from '@rollouts/split-check';
import {
  type LoadClient,
  NO_VERSION,
  type RequestFailure,
  type ResponseSample,
  summarizeFailures,
} from './load.js';

export interface ProfileExpectation {
  /** "default", or the override, e.g. "x-canary: always". */
  name: string;
  /** Headers every request of this profile carries. */
  headers: Record<string, string>;
  /** Expected share per version (x-app-version value); shares sum to 1, zero shares may be listed. */
  versions: Record<string, number>;
  /** Default GET. */
  method?: string;
  /** Default "/". */
  path?: string;
  /** No route matches: every request must be answered 404 (Istio's "no route"). */
  noRoute?: boolean;
  /**
   * Response headers every answer must carry (the matched route's `headers.response.set`, e.g.
   * `x-rollouts-stage: canary-25`): another value means the gateway serves another stage.
   */
  responseHeaders?: Record<string, string>;
}

/** How 404 answers are counted in a no-route profile. */
export const NO_ROUTE = '404 (no route)';

export interface StageExpectation {
  stage: string;
  profiles: ProfileExpectation[];
}

export type CheckKind = 'deterministic' | 'binomial' | 'chi-square' | 'no-route';

/** A version's row; its interval is Clopper-Pearson at 1 - alphaPerStage (null without responses). */
export type { VersionRow };

/** plannedN: deterministic n, the SPRT's truncation, or the fixed n of the chi-square test. */
export interface ProfileResult extends ProfileOutcome {
  kind: CheckKind;
  failures: { summary: string; sample: RequestFailure[] };
  /** Two versions: exact two-sided binomial p-value of the final counts; 3+: chi-square p-value. */
  pValue: number | null;
  /** Two versions: the version whose share the SPRT tracks, and the fixed-n acceptance band at the final n. */
  tested?: { version: string; p0: number; band: { lo: number; hi: number } | null };
  chiSquare?: { statistic: number; df: number };
  /** 5xx answers the app gave, by version, counted for the split (only with serverErrorsAsAnswers). */
  serverErrors: Record<string, number>;
  sprt?: Pick<SprtState, 'decision' | 'reason' | 'maxN'> & { llr: number[] };
  durationMs: number;
}

export interface StageResult {
  stage: string;
  verdict: 'pass' | 'fail';
  startedAt: string;
  durationMs: number;
  requests: number;
  failedRequests: number;
  confidence: number;
  plan: VerificationPlan;
  gatewayUrl: string;
  profiles: ProfileResult[];
  /** When the applied stage differs from the one verified (the caller fills it), or other notes. */
  notes: string[];
}

export interface VerifyOptions {
  client: LoadClient;
  expectation: StageExpectation;
  plan: VerificationPlan;
  /** Upper bound for each profile, ms (a hung gateway cannot hang the verifier). Default 60 000. */
  profileTimeoutMs?: number;
  /** Evaluate the SPRT every this many responses. Default 1 (the update is O(1)). */
  checkEvery?: number;
  path?: string;
  /**
   * Aborts the verification (Ctrl-C): requests in flight are cancelled, no new ones are sent, and verifyStage
   * rejects with {@link VerificationInterrupted} instead of returning a verdict measured on a stopped gateway.
   */
  signal?: AbortSignal;
  /** 5xx answers of the app count for the split; the canary analysis judges them (see the module's comment). */
  serverErrorsAsAnswers?: boolean;
  /** Every completed request of every profile: its status, version and latency. */
  onSample?: (profile: ProfileExpectation, sample: ResponseSample) => void;
}

/** The verification was aborted through `signal`: there is no verdict. */
export class VerificationInterrupted extends Error {
  override readonly name = 'VerificationInterrupted';
  constructor(
    readonly stage: string,
    readonly reason: unknown,
  ) {
    super(`verification of ${stage} interrupted${typeof reason === 'string' ? ` (${reason})` : ''}`);
  }
}

export async function verifyStage(options: VerifyOptions): Promise<StageResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const profiles: ProfileResult[] = [];
  const interrupted = () => new VerificationInterrupted(options.expectation.stage, options.signal?.reason);
  for (const profile of options.expectation.profiles) {
    if (options.signal?.aborted) throw interrupted();
    const result = await verifyProfile(options, profile);
    // Requests cut short by the abort are not a measurement of the stage: no verdict at all.
    if (options.signal?.aborted) throw interrupted();
    profiles.push(result);
  }
  const failedRequests = profiles.reduce((s, p) => s + p.failedRequests, 0);
  return {
    stage: options.expectation.stage,
    verdict: profiles.every((p) => p.verdict === 'pass') ? 'pass' : 'fail',
    startedAt,
    durationMs: performance.now() - started,
    requests: profiles.reduce((s, p) => s + p.requests, 0),
    failedRequests,
    confidence: 1 - options.plan.alphaPerStage,
    plan: options.plan,
    gatewayUrl: options.client.origin,
    profiles,
    notes: [],
  };
}

async function verifyProfile(options: VerifyOptions, profile: ProfileExpectation): Promise<ProfileResult> {
  const { plan, client } = options;
  const expected = profile.noRoute ? { [NO_ROUTE]: 1 } : normalise(profile.versions);
  const possible = Object.entries(expected).filter(([, p]) => p > 0);
  const timeoutMs = options.profileTimeoutMs ?? 60_000;
  const checkEvery = options.checkEvery ?? 1;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  setMaxListeners(0, signal); // one listener per request in flight
  const isExpected = (v: string) => (expected[v] ?? 0) > 0;

  let kind: CheckKind;
  let plannedN: number;
  let decide: (counts: Record<string, number>, completed: number) => boolean;
  let sprt: ReturnType<typeof createSprt> | null = null;
  let tested: { version: string; p0: number } | null = null;

  if (possible.length === 0)
    throw new Error(`profile ${profile.name} of ${options.expectation.stage} expects no version`);
  if (profile.noRoute) {
    kind = 'no-route';
    plannedN = plan.deterministicN;
    decide = (_c, completed) => completed >= plannedN;
  } else if (possible.length === 1) {
    kind = 'deterministic';
    plannedN = plan.deterministicN;
    decide = (_c, completed) => completed >= plannedN;
  } else if (possible.length === 2) {
    kind = 'binomial';
    // Track the newer version's share (v2 over v1, as k6 and `rollout expect` do); the test is symmetric.
    const shape = splitSupport(expected).tested as { version: string; p0: number; other: string };
    tested = { version: shape.version, p0: shape.p0 };
    const check = planCheck(plan, tested.p0);
    sprt = createSprt(check.sprt);
    plannedN = check.sprt.maxN;
    const other = shape.other;
    const t = tested;
    const s = sprt;
    decide = (counts, completed) => {
      if (completed % checkEvery !== 0 && completed < plannedN) return false;
      const k = counts[t.version] ?? 0;
      return s.update(k, k + (counts[other] ?? 0)) !== 'continue';
    };
  } else {
    kind = 'chi-square';
    plannedN = Math.max(...possible.map(([, p]) => planCheck(plan, p).fixedN));
    decide = (_c, completed) => completed >= plannedN;
  }

  let contrary = false;
  const serverErrors: Record<string, number> = {};
  const result = await client.run({
    serverErrorsAsAnswers: options.serverErrorsAsAnswers ?? false,
    onSample: (sample) => {
      if (typeof sample.outcome === 'string' && sample.status !== null && sample.status >= 500)
        serverErrors[sample.outcome] = (serverErrors[sample.outcome] ?? 0) + 1;
      options.onSample?.(profile, sample);
    },
    maxCount: plannedN,
    headers: profile.headers,
    path: profile.path ?? options.path ?? '/',
    method: profile.method ?? 'GET',
    signal,
    ordered: true,
    ...(profile.responseHeaders ? { expectHeaders: profile.responseHeaders } : {}),
    countAs: profile.noRoute ? (f) => (f.kind === 'status' && f.status === 404 ? NO_ROUTE : null) : undefined,
    onOutcome: (outcome, totals) => {
      if (typeof outcome !== 'string') return true; // a failed request fails the stage: stop now
      if (!isExpected(outcome)) {
        contrary = true;
        return true;
      }
      return decide(totals.counts, totals.completed);
    },
  });

  const counts = result.counts;
  const answered = Object.values(counts).reduce((s, n) => s + n, 0);
  const versions = [...new Set([...Object.keys(expected), ...Object.keys(counts)])].sort();
  const confidence = 1 - plan.alphaPerStage;

  let verdict: 'pass' | 'fail' = 'pass';
  let reason = '';
  let pValue: number | null = null;
  let chi: { statistic: number; df: number } | undefined;
  const wrongHeaders = result.failures.filter((f) => f.kind === 'header');
  const failedRequests = result.failures.length - wrongHeaders.length;
  const timedOut = timeout.aborted;
  const unexpected = versions.filter((v) => !isExpected(v) && (counts[v] ?? 0) > 0);

  if (failedRequests > 0) {
    verdict = 'fail';
    reason = `${failedRequests} failed request(s): ${summarizeFailures(result.failures)}`;
  } else if (wrongHeaders.length > 0) {
    verdict = 'fail';
    reason =
      `${wrongHeaders.length} answer(s) with ${summarizeFailures(wrongHeaders)}: the gateway does not serve ` +
      `stage ${options.expectation.stage} (another stage, or a switch that has not reached it)`;
  } else if (contrary || unexpected.length > 0) {
    verdict = 'fail';
    const names = unexpected
      .map((v) => (v === NO_VERSION ? 'a response without x-app-version' : v))
      .join(', ');
    reason = `got ${names}, which this profile never routes to (${answered} requests)`;
  } else if (timedOut) {
    verdict = 'fail';
    reason = `no decision within ${timeoutMs} ms (${result.completed} requests)`;
  } else if (kind === 'deterministic' || kind === 'no-route') {
    if (answered < plannedN) {
      verdict = 'fail';
      reason = `only ${answered} of ${plannedN} requests answered`;
    } else {
      reason =
        kind === 'no-route'
          ? `all ${answered} requests answered 404: no route matches, as the manifest says`
          : `all ${answered} requests reached ${possible[0]?.[0]}`;
    }
  } else if (kind === 'binomial' && sprt && tested) {
    const k = counts[tested.version] ?? 0;
    pValue = answered > 0 ? binomialTestTwoSided(k, answered, tested.p0) : null;
    // The SPRT may still say 'continue' if the last check fell between evaluations: decide on the totals.
    if (sprt.state.decision === 'continue') sprt.update(k, answered);
    const d = sprt.state.decision;
    verdict = d === 'accept' ? 'pass' : 'fail';
    reason = d === 'continue' ? `undecided after ${answered} requests` : `SPRT ${d}ed: ${sprt.state.reason}`;
  } else {
    const observed = Object.keys(expected).map((v) => counts[v] ?? 0);
    const r = chiSquareGoodnessOfFit(observed, Object.values(expected));
    pValue = r.pValue;
    chi = { statistic: r.statistic, df: r.df };
    if (answered < plannedN) {
      verdict = 'fail';
      reason = `only ${answered} of ${plannedN} requests answered`;
    } else if (r.pValue < plan.alphaPerStage) {
      verdict = 'fail';
      reason = `chi-square ${r.statistic.toFixed(2)} (df ${r.df}): p-value ${r.pValue.toPrecision(3)} < ${plan.alphaPerStage}`;
    } else {
      reason = `chi-square ${r.statistic.toFixed(2)} (df ${r.df}): p-value ${r.pValue.toPrecision(3)} >= ${plan.alphaPerStage}`;
    }
  }

  const countsDecide =
    failedRequests === 0 && wrongHeaders.length === 0 && !contrary && unexpected.length === 0 && !timedOut;
  const rows: VersionRow[] = versions.map((version) => {
    const count = counts[version] ?? 0;
    const exp = expected[version] ?? 0;
    const interval = answered > 0 ? clopperPearson(count, answered, confidence) : null;
    const inside = interval !== null && exp >= interval.lo - 1e-12 && exp <= interval.hi + 1e-12;
    const deterministicOk = exp === 0 ? count === 0 : exp === 1 ? count === answered : true;
    return {
      version,
      expected: exp,
      observed: answered > 0 ? count / answered : 0,
      count,
      interval,
      // A profile that failed for any reason other than its counts (failed requests, answers of another stage,
      // a version it never routes to, no decision in time) fails every row; otherwise a row passes when its
      // interval holds the expected share.
      verdict:
        verdict === 'pass' || (countsDecide && inside && deterministicOk && answered > 0) ? 'pass' : 'fail',
    };
  });

  const errorAnswers = Object.entries(serverErrors).sort(([a], [b]) => a.localeCompare(b));
  if (errorAnswers.length > 0) {
    reason += `; ${errorAnswers.map(([v, n]) => `${n} × 5xx from ${v}`).join(', ')} counted for the split, left to the analysis`;
  }
  const out: ProfileResult = {
    name: profile.name,
    headers: profile.headers,
    kind,
    verdict,
    reason,
    requests: result.completed,
    plannedN,
    counts,
    rows,
    failedRequests,
    wrongHeaders: wrongHeaders.length,
    failures: { summary: summarizeFailures(result.failures), sample: result.failures.slice(0, 5) },
    pValue,
    serverErrors,
    durationMs: result.durationMs,
  };
  if (tested) {
    out.tested = {
      ...tested,
      band: answered > 0 ? binomialAcceptanceBand(answered, tested.p0, confidence) : null,
    };
  }
  if (chi) out.chiSquare = chi;
  if (sprt) {
    const s = sprt.state;
    out.sprt = { decision: s.decision, reason: s.reason, maxN: s.maxN, llr: s.sides.map((x) => x.llr) };
  }
  return out;
}

/** Shares summing to 1 (tolerates percentages). */
function normalise(versions: Record<string, number>): Record<string, number> {
  const total = Object.values(versions).reduce((s, v) => s + v, 0);
  if (!(total > 0)) throw new Error(`expected split ${JSON.stringify(versions)} has no positive share`);
  return Object.fromEntries(Object.entries(versions).map(([v, p]) => [v, p / total]));
}

/** A version's answers at a step, as the canary analysis reads them. */
interface MutableSample extends VersionSample {
  requests: number;
  errors: number;
  latenciesMs: number[];
}

/**
 * The canary analysis' traffic at one step: the answers of the canary and of the baseline to requests of the
 * stage's default profile (what users send), from the split check (`record` as its `onSample`) and from more
 * requests the analysis asks for (`collect`). A 5xx answer of the app is an error of its version; a request that
 * reached neither (reset, timeout, the gateway's own answer, another stage or version) is unattributed.
 */
export class StepTraffic {
  readonly canary: MutableSample;
  readonly baseline: MutableSample | null;
  unattributed = 0;
  /** The first few unattributed requests, for the report. */
  readonly failures: RequestFailure[] = [];
  /** Requests collected by `collect` (the split check's are not counted here). */
  sent = 0;

  constructor(
    readonly options: {
      client: LoadClient;
      profile: ProfileExpectation;
      canary: string;
      baseline: string | null;
      signal?: AbortSignal;
    },
  ) {
    this.canary = { version: options.canary, requests: 0, errors: 0, latenciesMs: [] };
    this.baseline = options.baseline
      ? { version: options.baseline, requests: 0, errors: 0, latenciesMs: [] }
      : null;
  }

  /** Takes one request's outcome (the verifier's onSample of the default profile, or collect's). */
  record(sample: ResponseSample): void {
    const v = typeof sample.outcome === 'string' ? sample.outcome : null;
    const target =
      v === this.canary.version ? this.canary : v === this.baseline?.version ? this.baseline : null;
    if (!target) {
      this.unattributed++;
      if (this.failures.length < 5)
        this.failures.push(
          typeof sample.outcome === 'string'
            ? {
                kind: 'status',
                ...(sample.status !== null ? { status: sample.status } : {}),
                version: sample.outcome,
              }
            : sample.outcome,
        );
      return;
    }
    target.requests++;
    if (sample.status !== null && sample.status >= 500) target.errors++;
    target.latenciesMs.push(sample.latencyMs);
  }

  samples(): StepSamples {
    return { canary: this.canary, baseline: this.baseline, unattributed: this.unattributed };
  }

  /** Sends `requests` more requests of the profile (at least for `minMs` when given: a bake). */
  async collect(requests: number, minMs = 0): Promise<void> {
    const { client, profile } = this.options;
    const deadline = performance.now() + minMs;
    // One listener per request in flight on the caller's signal: a signal of our own that follows it.
    const signal = this.options.signal ? AbortSignal.any([this.options.signal]) : undefined;
    if (signal) setMaxListeners(0, signal);
    const result = await client.run({
      maxCount: minMs > 0 ? Number.POSITIVE_INFINITY : requests,
      headers: profile.headers,
      path: profile.path ?? '/',
      method: profile.method ?? 'GET',
      ...(signal ? { signal } : {}),
      ...(profile.responseHeaders ? { expectHeaders: profile.responseHeaders } : {}),
      serverErrorsAsAnswers: true,
      onSample: (sample) => this.record(sample),
      onOutcome: (_outcome, totals) =>
        minMs > 0 && totals.completed >= requests && performance.now() >= deadline,
    });
    this.sent += result.completed;
  }
}
