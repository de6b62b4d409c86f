/**
 * The canary analysis on the local path: the thresholds file, the plan over the stage matrix, and one step of a
 * rollout (apply, split check, bake, analysis) as `rollout progress` and `rollout demo` run it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import {
  LoadClient,
  type PlanRequest,
  type ProfileExpectation,
  type ResponseSample,
  type StageResult,
  StepTraffic,
  stageExpectation,
} from '@rollouts/local-mesh';
import {
  type AnalysisPlan,
  formatAnalysisTables,
  formatThresholds,
  indent,
  planAnalysis,
  readThresholds,
  runStepAnalysis,
  type StepAnalysis,
  ThresholdsError,
} from '@rollouts/split-check';
import {
  analysisSteps,
  listStages,
  paths,
  type StageApi,
  type StageRoles,
  stageRoles,
} from '@rollouts/stages';
import { measure } from './commands/stage.js';
import { adminCall, type Io } from './context.js';
import { CliError, EXIT_USAGE, UsageError } from './errors.js';

export interface LoadedAnalysis {
  plan: AnalysisPlan;
  /** The file, as users should read it (relative to the repository when inside it). */
  file: string;
}

/** A path as users should read it: relative to the repository when inside it, else absolute. */
export function shownPath(root: string, file: string): string {
  const rel = relative(root, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/**
 * Reads the thresholds (--analysis FILE, else $ROLLOUT_ANALYSIS, else analysis.yaml at the root) and plans the
 * analysis over the stage matrix. The file is the thresholds' one definition (there are no built-in ones): a
 * missing, unreadable or bad file is bad input (exit 2) naming the file, where it came from and what to do, every
 * problem with its line.
 */
export function loadAnalysis(root: string, fileOption?: string): LoadedAnalysis {
  const given = fileOption ?? (process.env.ROLLOUT_ANALYSIS || undefined);
  const file = given ? resolve(given) : paths.analysis(root);
  const shown = shownPath(root, file);
  const origin = given ? ` (given by ${fileOption !== undefined ? '--analysis' : 'ROLLOUT_ANALYSIS'})` : '';
  if (!existsSync(file)) {
    throw new CliError(
      given
        ? `the analysis thresholds file ${shown} does not exist${origin}`
        : `the analysis thresholds file ${shown} does not exist: the canary analysis has no other thresholds (it ships with the repository: git checkout ${shown}; or pass --analysis FILE)`,
      EXIT_USAGE,
    );
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `the analysis thresholds file ${shown}${origin} cannot be read: ${(err as Error).message}`,
    );
  }
  try {
    const thresholds = readThresholds(text);
    return { plan: planAnalysis(thresholds, analysisSteps(listStages(root))), file: shown };
  } catch (err) {
    if (err instanceof ThresholdsError)
      throw new UsageError(`bad analysis thresholds in ${shown}:\n  ${err.problems.join('\n  ')}`);
    throw err;
  }
}

/** The thresholds as printed before a run. */
export function thresholdsLine(analysis: LoadedAnalysis): string {
  return `analysis thresholds (${analysis.file}): ${formatThresholds(analysis.plan)}`;
}

/**
 * Who a step's analysis judges and what its traffic sends, both from the file the gateway serves (`api`): the
 * roles at the stage (null where the new version gets no traffic), and its default profile (requests without
 * header, as users send them).
 */
export function analysisTraffic(
  root: string,
  stage: string,
  api: StageApi,
): { roles: StageRoles | null; profile: ProfileExpectation | undefined } {
  return { roles: stageRoles(root, stage, api), profile: stageExpectation(root, stage, api).profiles[0] };
}

export interface StepOutcome {
  stage: string;
  split: StageResult;
  splitFile: string;
  /** Null at a stage without canary traffic, or when the split check failed (no analysis then). */
  analysis: StepAnalysis | null;
  verdict: 'pass' | 'fail' | 'inconclusive';
  /** Requests of the step: the split check's and the analysis' (bake included). */
  requests: number;
  /**
   * Answers per version (their x-app-version, any status) of every request the step sent, split check and analysis:
   * what the gateway's and the apps' counters must show for the step (the three-way check). Local path only.
   */
  answered?: Record<string, number>;
  durationMs: number;
}

/** A step's outcome once its split check ran: the split's verdict and requests, no analysis yet. */
export function splitOutcome(stage: string, split: StageResult, splitFile: string): StepOutcome {
  return {
    stage,
    split,
    splitFile,
    analysis: null,
    verdict: split.verdict,
    requests: split.requests,
    durationMs: 0,
  };
}

/**
 * One step: switch the gateway to `stage`, run the split check (5xx answers of the app count for the split and go
 * to the analysis), then, where the canary gets traffic, bake for `bakeMs` and run the analysis.
 */
export async function runStep(
  root: string,
  io: Io,
  options: {
    stage: string;
    adminUrl: string;
    gatewayUrl: string;
    analysis: LoadedAnalysis;
    bakeMs: number;
    signal: AbortSignal;
    jsonFile?: string;
    plan?: PlanRequest;
    notes?: string[];
    /** Which file the stage's expectation comes from (the gateway serves the same API). */
    api?: StageApi;
  },
): Promise<StepOutcome> {
  const started = performance.now();
  const { status, json } = await adminCall(options.adminUrl, 'PUT', '/stage', { stage: options.stage });
  if (status !== 200)
    throw new CliError(`the gateway refused stage ${options.stage}: ${JSON.stringify(json)}`);
  const api = options.api ?? 'virtualservice';
  const { roles, profile: defaultProfile } = analysisTraffic(root, options.stage, api);
  const client = new LoadClient({ origin: options.gatewayUrl, concurrency: 32, timeoutMs: 5000 });
  const answered: Record<string, number> = {};
  const tally = (s: ResponseSample) => {
    if (s.version !== null) answered[s.version] = (answered[s.version] ?? 0) + 1;
  };
  try {
    const traffic =
      roles && defaultProfile
        ? new StepTraffic({
            client,
            profile: defaultProfile,
            canary: roles.canary,
            baseline: roles.baseline,
            signal: options.signal,
          })
        : null;
    if (traffic) {
      // Every request of the analysis (the split check's default profile and collect's) is tallied as well.
      const record = traffic.record.bind(traffic);
      traffic.record = (s: ResponseSample) => {
        tally(s);
        record(s);
      };
    }
    const { result: split, file } = await measure(root, io, {
      stage: options.stage,
      origin: options.gatewayUrl,
      target: 'local',
      signal: options.signal,
      serverErrorsAsAnswers: true,
      // The split check's own expectation is built afresh (measure), so its default profile is matched by name.
      onSample: (p, s) => (traffic && p.name === defaultProfile?.name ? traffic.record(s) : tally(s)),
      ...(options.jsonFile ? { jsonFile: options.jsonFile } : {}),
      ...(options.plan ? { plan: options.plan } : {}),
      ...(options.notes ? { notes: options.notes } : {}),
      api,
    });
    const outcome: StepOutcome = { ...splitOutcome(options.stage, split, file), answered };
    if (split.verdict === 'pass' && traffic && roles) {
      if (options.bakeMs > 0) {
        io.out(`baking ${options.stage} for ${(options.bakeMs / 1000).toFixed(1)} s with traffic ...`);
        await traffic.collect(0, options.bakeMs);
      }
      const analysis = await runStepAnalysis({
        plan: options.analysis.plan,
        stage: options.stage,
        share: roles.share,
        baseline: roles.baseline !== null,
        samples: () => traffic.samples(),
        collect: (n) => traffic.collect(n),
        signal: options.signal,
      });
      outcome.analysis = analysis;
      outcome.verdict = analysis.result.verdict;
      outcome.requests += traffic.sent;
      printAnalysis(io, analysis, roles, traffic.failures);
    }
    outcome.durationMs = performance.now() - started;
    return outcome;
  } finally {
    await client.close();
  }
}

/** A step's analysis as printed: the looks, the tables, the reasons, how latency was judged, the verdict. */
export function printAnalysis(
  io: Io,
  analysis: StepAnalysis,
  roles: StageRoles,
  failures: readonly unknown[],
): void {
  const r = analysis.result;
  const look = analysis.looks.at(-1);
  const against = roles.baseline
    ? `against ${roles.baseline}`
    : 'against the SLOs only (no baseline traffic here)';
  io.out(
    `analysis of ${r.stage}: ${roles.canary} ${against}; look ${analysis.looks.length} of ${analysis.schedule.length} at ${look?.totalRequests ?? 0} requests (looks at ${analysis.schedule.join(' / ')} ${roles.canary} requests)`,
  );
  for (const [i, l] of analysis.looks.slice(0, -1).entries())
    io.out(
      `  look ${i + 1} at ${l.totalRequests} requests (${l.canaryRequests} ${roles.canary}): ${l.verdict}: ${l.reasons.join('; ')}`,
    );
  io.out(indent(formatAnalysisTables(r)));
  for (const reason of r.reasons) io.out(`  ${reason}`);
  for (const note of r.notes) io.out(`  note: ${note}`);
  if (r.latencyMethod) io.out(`  ${r.latencyMethod}`);
  if (analysis.stopped) io.out(`  stopped: ${analysis.stopped}`);
  if (failures.length > 0)
    io.out(`  unattributed requests (first ${failures.length}): ${JSON.stringify(failures)}`);
  io.out(`analysis: ${r.summary}`);
}

/** The JSON of a step's analysis: the result and the looks, without the samples. */
export function analysisJson(analysis: StepAnalysis | null): unknown {
  if (!analysis) return null;
  return {
    verdict: analysis.result.verdict,
    summary: analysis.result.summary,
    reasons: analysis.result.reasons,
    notes: analysis.result.notes,
    latencyMethod: analysis.result.latencyMethod,
    canary: analysis.result.canary,
    baseline: analysis.result.baseline,
    checks: analysis.result.checks,
    alpha: analysis.result.alpha,
    beta: analysis.result.beta,
    missing: analysis.result.missing,
    looks: analysis.looks,
    schedule: analysis.schedule,
    stopped: analysis.stopped,
  };
}

/** "v2 error rate 5.20 % is above the SLO ..." for the first failed (or undecided) test of a step. */
export function failureReport(outcome: StepOutcome): string {
  if (outcome.split.verdict === 'fail') {
    const p = outcome.split.profiles.find((x) => x.verdict === 'fail');
    return `split check failed${p ? ` (${p.name}: ${p.reason})` : ''}`;
  }
  const r = outcome.analysis?.result;
  if (!r) return 'no analysis';
  const failed = r.checks.filter((c) => c.verdict === 'fail');
  if (failed.length > 0) return `analysis failed: ${failed.map((c) => c.reason).join('; ')}`;
  return `analysis inconclusive: ${[...r.reasons, outcome.analysis?.stopped ?? ''].filter(Boolean).join('; ')}`;
}
