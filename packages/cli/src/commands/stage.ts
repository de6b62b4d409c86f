/** Commands on the applied stage: apply, rollback, verify, status (the local gateway itself: local-mesh's gateway.ts). */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import {
  formatStageResult,
  LoadClient,
  type PlanRequest,
  type ProfileExpectation,
  type ResponseSample,
  type StageResult,
  stageExpectation,
  VerificationInterrupted,
  verificationPlan,
  verifyStage,
  type WorkloadHealth,
} from '@rollouts/local-mesh';
import { expectedSplit, formatSplit, NAMESPACE, paths, profiles, type StageApi } from '@rollouts/stages';
import {
  abortOnSignals,
  adminCall,
  adminUrl,
  appliedStage,
  clusterGatewayUrl,
  GatewayDownError,
  type Io,
  kubeContext,
  requireStageName,
  resolveApi,
  resolveTarget,
  seconds,
  stageByName,
} from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, InterruptedError, UsageError } from '../errors.js';
import { describeScenario, SCENARIOS } from '../scenarios.js';
import { readLocalState, verifyFile, writeJson } from '../state.js';
import { ROUTE_RESOURCE, rollbackTargetOf } from './info.js';

export interface VerifyRun {
  result: StageResult;
  file: string;
}

/** Measures `stage` through `origin`, prints the table and writes the JSON summary. */
export async function measure(
  root: string,
  io: Io,
  options: {
    stage: string;
    origin: string;
    target: string;
    jsonFile?: string;
    notes?: string[];
    plan?: PlanRequest;
    /** Aborts the verification (the demo's Ctrl-C); without it SIGINT / SIGTERM abort it. */
    signal?: AbortSignal;
    /** 5xx answers of the app count for the split; the canary analysis judges them (progress, demo). */
    serverErrorsAsAnswers?: boolean;
    /** Every request's outcome, for the canary analysis. */
    onSample?: (profile: ProfileExpectation, sample: ResponseSample) => void;
    /** Which file the expectation comes from; default: the local path's (local), else API (cluster). */
    api?: StageApi;
    /** Print how each check was decided (default: ROLLOUT_EXPLAIN=1). */
    explain?: boolean;
  },
): Promise<VerifyRun> {
  const stage = stageByName(root, options.stage);
  const api =
    options.api ??
    (options.target === 'local' ? (readLocalState(root)?.api ?? 'virtualservice') : resolveApi(undefined));
  const plan = verificationPlan(root, options.plan);
  const client = new LoadClient({ origin: options.origin, concurrency: 32, timeoutMs: 5000 });
  io.out(`verifying ${stage.name} through ${client.origin} ...`);
  const own = options.signal ? null : abortOnSignals();
  let result: StageResult;
  try {
    result = await verifyStage({
      client,
      expectation: stageExpectation(root, stage, api),
      plan,
      signal: options.signal ?? (own as { signal: AbortSignal }).signal,
      ...(options.serverErrorsAsAnswers ? { serverErrorsAsAnswers: true } : {}),
      ...(options.onSample ? { onSample: options.onSample } : {}),
    });
  } catch (err) {
    // No table, no verdict and no JSON file: what was measured while stopping says nothing about the stage.
    if (err instanceof VerificationInterrupted)
      throw new InterruptedError(err.reason, `verification of ${stage.name} stopped, nothing written`);
    throw err;
  } finally {
    own?.dispose();
    await client.close();
  }
  result.notes.push(...(options.notes ?? []));
  // How each check was decided (test, plan, statistic): with --explain or ROLLOUT_EXPLAIN=1, and for a failed one.
  io.out(formatStageResult(result, { explain: options.explain ?? process.env.ROLLOUT_EXPLAIN === '1' }));
  const file = options.jsonFile ? resolve(options.jsonFile) : verifyFile(root, stage.name);
  const source =
    api === 'gateway-api' ? join(paths.gatewayApiStagesDir(root), `${stage.name}.yaml`) : stage.file;
  writeJson(file, { ...result, target: options.target, api, file: source });
  io.out(
    `verification of ${stage.name}: ${result.verdict === 'pass' ? 'passed' : 'FAILED'} in ${seconds(result.durationMs)} (${result.requests} requests); JSON: ${file}`,
  );
  return { result, file };
}

/** Parses --force-weights v1=80,v2=20 (a test hook: the gateway then does not do what the stage says). */
export function parseWeights(raw: string | undefined): Record<string, number> | undefined {
  if (raw === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const part of raw.split(',')) {
    const m = /^\s*([A-Za-z0-9._-]+)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m)
      throw new UsageError(
        `--force-weights takes subset=weight pairs like v1=80,v2=20, got ${JSON.stringify(raw)}`,
      );
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

async function switchStage(
  root: string,
  io: Io,
  name: string,
  overrideWeights?: Record<string, number>,
): Promise<{ gatewayPort: number; previous: string }> {
  const url = adminUrl(root);
  const started = performance.now();
  let answer: { status: number; json: unknown };
  try {
    answer = await adminCall(
      url,
      'PUT',
      '/stage',
      { stage: name, ...(overrideWeights ? { overrideWeights } : {}) },
      30_000,
    );
  } catch (err) {
    if (!(err instanceof GatewayDownError)) throw err;
    // No answer to the switch: say what the gateway applies now, if it answers at all.
    const now = await appliedStage(url).catch(() => null);
    if (now === null) throw err;
    throw new CliError(
      `the gateway did not answer the switch to ${name} (${err.reason}); it now applies ${now.stage} (applied at ${now.appliedAt})`,
    );
  }
  const { status, json } = answer;
  const body = json as { error?: string; validStages?: string[]; previous?: string; gatewayPort?: number };
  if (status === 422) {
    // Refused by the checks the cluster path runs before `kubectl apply`: nothing changed, exit 1.
    throw new CliError(`the gateway refused stage ${name}: ${body.error ?? 'refused'}`);
  }
  if (status === 400) {
    const valid = body.validStages?.length ? ` (valid stages: ${body.validStages.join(', ')})` : '';
    throw new UsageError(`the gateway refused stage ${name}: ${body.error ?? 'bad request'}${valid}`);
  }
  if (status !== 200) throw new CliError(`admin API answered ${status}: ${JSON.stringify(json)}`);
  io.out(
    `applied ${name} to the local gateway (was ${body.previous})${overrideWeights ? ` with FORCED weights ${JSON.stringify(overrideWeights)}` : ''} in ${seconds(performance.now() - started)}`,
  );
  return { gatewayPort: body.gatewayPort ?? 0, previous: body.previous ?? '' };
}

export async function applyCommand(
  root: string,
  io: Io,
  name: string,
  options: {
    target?: string;
    verify: boolean;
    jsonFile?: string;
    forceWeights?: string;
    plan?: PlanRequest;
  },
): Promise<number> {
  const target = resolveTarget(options.target);
  requireStageName(root, name); // unknown stage: exit 2 before anything else
  const weights = parseWeights(options.forceWeights);
  if (target === 'cluster') {
    throw new UsageError(
      `rollout applies stages to the local gateway only; for the cluster run \`make ${name}\` (scripts/stage.sh applies the manifest with kubectl, then verifies with k6)`,
    );
  }
  const { gatewayPort } = await switchStage(root, io, name, weights);
  if (!options.verify) return EXIT_OK;
  const { result } = await measure(root, io, {
    stage: name,
    origin: `http://localhost:${gatewayPort}`,
    target,
    ...(options.jsonFile ? { jsonFile: options.jsonFile } : {}),
    notes: weights ? [`gateway weights forced to ${JSON.stringify(weights)} (test hook)`] : [],
    ...(options.plan ? { plan: options.plan } : {}),
  });
  return result.verdict === 'pass' ? EXIT_OK : EXIT_FAIL;
}

export async function rollbackCommand(
  root: string,
  io: Io,
  options: { target?: string; verify: boolean; jsonFile?: string; plan?: PlanRequest },
): Promise<number> {
  const target = resolveTarget(options.target);
  if (target === 'cluster') {
    throw new UsageError(
      'for the cluster run `make rollback` (scripts/rollback.sh); `rollout rollback` is for --target local',
    );
  }
  const applied = await appliedStage(adminUrl(root));
  const to = rollbackTargetOf(root, applied.stage);
  io.out(`rollback: ${applied.stage} → ${to}`);
  return applyCommand(root, io, to, {
    target,
    verify: options.verify,
    ...(options.jsonFile ? { jsonFile: options.jsonFile } : {}),
    ...(options.plan ? { plan: options.plan } : {}),
  });
}

export async function verifyCommand(
  root: string,
  io: Io,
  options: { target?: string; stage?: string; jsonFile?: string; plan?: PlanRequest },
): Promise<number> {
  const target = resolveTarget(options.target);
  if (options.stage !== undefined) stageByName(root, options.stage);
  let stage: string;
  let origin: string;
  const notes: string[] = [];
  if (target === 'local') {
    const applied = await appliedStage(adminUrl(root));
    stage = options.stage ?? applied.stage;
    origin = `http://localhost:${applied.gatewayPort}`;
    if (stage !== applied.stage)
      notes.push(`measured as ${stage} while the gateway applies ${applied.stage}`);
    if (applied.overrideWeights)
      notes.push(`gateway weights forced to ${JSON.stringify(applied.overrideWeights)} (test hook)`);
  } else {
    stage = options.stage ?? clusterStage();
    origin = clusterGatewayUrl();
  }
  const { result } = await measure(root, io, {
    stage,
    origin,
    target,
    notes,
    ...(options.jsonFile ? { jsonFile: options.jsonFile } : {}),
    ...(options.plan ? { plan: options.plan } : {}),
  });
  return result.verdict === 'pass' ? EXIT_OK : EXIT_FAIL;
}

/** The rollouts/stage label of the route object (VirtualService webapp, or HTTPRoute webapp with API=gateway-api). */
function clusterStage(): string {
  const resource = `${ROUTE_RESOURCE[resolveApi(undefined)]}/webapp`;
  const args = [
    '--context',
    kubeContext(),
    '-n',
    NAMESPACE,
    'get',
    resource,
    '-o',
    'jsonpath={.metadata.labels.rollouts/stage}',
  ];
  const r = spawnSync('kubectl', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    throw new CliError(
      `kubectl failed to run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): install it with \`make tools\`, or pass --stage`,
    );
  }
  if (r.status !== 0) throw new CliError(`kubectl ${args.join(' ')} failed: ${r.stderr.trim()}`);
  const stage = r.stdout.trim();
  if (!stage)
    throw new CliError(`${resource} has no rollouts/stage label: apply a stage first (make stable)`);
  return stage;
}

export async function statusCommand(
  root: string,
  io: Io,
  options: { target?: string; json: boolean },
): Promise<number> {
  const target = resolveTarget(options.target);
  let stageName: string;
  let extra: Record<string, unknown> = {};
  let workloads: WorkloadHealth[] = [];
  if (target === 'local') {
    const url = adminUrl(root);
    let applied: Awaited<ReturnType<typeof appliedStage>>;
    try {
      applied = await appliedStage(url);
    } catch (err) {
      if (!(err instanceof GatewayDownError)) throw err;
      const message = `the local path is not running: make local-up (or rollout local up); the admin API at ${err.url} did not answer (${err.reason})`;
      if (options.json) io.out(JSON.stringify({ target, running: false, error: message }));
      io.err(`rollout: ${message}`);
      return EXIT_FAIL;
    }
    stageName = applied.stage;
    const listed = await adminCall(url, 'GET', '/workloads').catch(() => null);
    workloads =
      listed?.status === 200 ? ((listed.json as { workloads?: WorkloadHealth[] }).workloads ?? []) : [];
    extra = {
      appliedAt: applied.appliedAt,
      overrideWeights: applied.overrideWeights,
      gatewayUrl: `http://localhost:${applied.gatewayPort}`,
      scenario: readLocalState(root)?.scenario ?? null,
      api: readLocalState(root)?.api ?? 'virtualservice',
    };
  } else {
    stageName = clusterStage();
    extra = { gatewayUrl: clusterGatewayUrl() };
  }
  const stage = stageByName(root, stageName);
  const splits = profiles(stage).map((p) => ({ profile: p.name, split: expectedSplit(stage, p) }));
  const down = workloads.filter((w) => !w.ready);
  const code = down.length > 0 ? EXIT_FAIL : EXIT_OK;
  if (options.json) {
    io.out(
      JSON.stringify(
        {
          target,
          running: true,
          stage: stage.name,
          strategy: stage.strategy,
          ...extra,
          splits,
          ...(target === 'local' ? { workloads } : {}),
        },
        null,
        2,
      ),
    );
    return code;
  }
  io.out(
    `${target}: stage ${stage.name} (${stage.strategy})${extra.appliedAt ? `, applied at ${extra.appliedAt}` : ''}, gateway ${extra.gatewayUrl}${extra.api === 'gateway-api' ? ', API=gateway-api (HTTPRoute)' : ''}`,
  );
  if (extra.overrideWeights)
    io.out(
      `  weights FORCED to ${JSON.stringify(extra.overrideWeights)} (test hook): the gateway does not do what the stage says`,
    );
  for (const s of splits) io.out(`  ${s.profile}: ${formatSplit(s.split)}`);
  if (typeof extra.scenario === 'string') {
    const scenario = SCENARIOS.find((x) => x.name === extra.scenario) ?? null;
    io.out(`  scenario ${describeScenario(scenario)}`);
  }
  for (const w of workloads) io.out(`  workload ${describeWorkload(w)}`);
  if (down.length > 0) {
    io.err(
      `rollout: ${down.map((w) => w.version).join(', ')} not ready: the share the stage sends there fails with 503 until it is back (the gateway restarts it)`,
    );
  }
  return code;
}

/** "v1: ready, pid 123, up since …, 0 restarts" or "v2: DOWN (killed by SIGKILL at …), restarting at …". */
export function describeWorkload(w: WorkloadHealth): string {
  const restarts = `${w.restarts} restart${w.restarts === 1 ? '' : 's'}`;
  if (w.ready) return `${w.version}: ready, pid ${w.pid}, since ${w.readySince}, ${restarts}`;
  const exit = w.lastExit
    ? w.lastExit.signal
      ? `killed by ${w.lastExit.signal} at ${w.lastExit.at}`
      : `exited with code ${w.lastExit.code} at ${w.lastExit.at}`
    : null;
  const why = w.state === 'unready' ? 'failing its readiness probe' : (exit ?? w.state);
  const next = w.nextRestartAt
    ? `, restarting at ${w.nextRestartAt}`
    : w.state === 'starting'
      ? ', starting'
      : '';
  return `${w.version}: DOWN (${why})${next}, ${restarts}`;
}
