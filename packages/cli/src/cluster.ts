/**
 * One step of a rollout on the cluster path, as `rollout progress --target cluster` runs it: apply the stage the
 * way `make <stage>` does (scripts/stage.sh: lint, kubectl apply, wait until the ingress gateway serves it; its
 * k6 measurement left out), the split check by the CLI's verifier through GATEWAY_URL (5xx answers of the app
 * count for the split and go to the analysis), then the bake and the canary analysis from Prometheus: the
 * counters of the step are the difference of two instant snapshots (split-check's QUERIES), one after a scrape
 * that followed the split check and one after a scrape that followed the step's traffic; latency is judged from
 * the histogram buckets (analyseHistogram).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LoadClient, type PlanRequest } from '@rollouts/local-mesh';
import {
  analyseHistogram,
  CLUSTER_GATEWAY_WORKLOAD,
  GATEWAY_API_GATEWAY_WORKLOAD,
  type MeshSelector,
  type MeshSnapshot,
  runStepAnalysis,
  type StepSamples,
  stepCounts,
} from '@rollouts/split-check';
import { profileRequest, type StageApi } from '@rollouts/stages';
import {
  analysisTraffic,
  type LoadedAnalysis,
  printAnalysis,
  type StepOutcome,
  splitOutcome,
} from './analysis.js';
import { measure } from './commands/stage.js';
import { type Io, resolveApi } from './context.js';
import { CliError, InterruptedError } from './errors.js';
import { meshSnapshot, type ScrapeTarget, waitForScrape } from './prometheus.js';

/** The gateway's workload for the API in use (API: the classic ingress gateway, or the Gateway API's). */
export function gatewayWorkload(): string {
  return resolveApi(undefined) === 'gateway-api' ? GATEWAY_API_GATEWAY_WORKLOAD : CLUSTER_GATEWAY_WORKLOAD;
}

export function clusterSelector(): MeshSelector {
  return { gateway: gatewayWorkload(), app: 'webapp' };
}

/** The ingress gateway's scrape target in the Istio addon's Prometheus (job kubernetes-pods: pod labels kept). */
export const isIngressGatewayTarget = (t: ScrapeTarget) =>
  t.labels.app === gatewayWorkload() || (t.labels.pod ?? '').startsWith(`${gatewayWorkload()}-`);

/** Runs a script of scripts/ with its output passed on line by line; a non-zero exit is a CliError naming it. */
export async function runScript(
  root: string,
  io: Io,
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<void> {
  const file = join(root, 'scripts', script);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pass = (write: (l: string) => void) => {
      let rest = '';
      return (chunk: Buffer) => {
        rest += chunk.toString();
        const lines = rest.split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) write(`  | ${l}`);
      };
    };
    child.stdout.on(
      'data',
      pass((l) => io.out(l)),
    );
    child.stderr.on(
      'data',
      pass((l) => io.out(l)),
    );
    child.once('error', (err) => reject(new CliError(`cannot run ${file}: ${err.message}`)));
    child.once('close', (c, signal) => resolve(signal ? 128 : c));
  });
  if (code !== 0) throw new CliError(`scripts/${script} ${args.join(' ')} failed (exit ${code})`);
}

export interface ClusterContext {
  gatewayUrl: string;
  prometheusUrl: string;
  /** Seconds: how long a wait for a scrape may take (the addon scrapes every 15 s). */
  scrapeTimeoutMs: number;
  /** After the last request, how far a scrape must be (the gateway's counters are updated as a request ends). */
  scrapeMarginMs: number;
}

/** Applies a stage as `make <stage>` does, without its k6 measurement (the CLI measures next). */
export async function applyClusterStage(root: string, io: Io, stage: string): Promise<void> {
  await runScript(root, io, 'stage.sh', [stage], { TARGET: 'cluster', SKIP_VERIFY: '1' });
}

async function snapshotAfter(
  ctx: ClusterContext,
  afterMs: number,
  signal: AbortSignal,
): Promise<MeshSnapshot> {
  await waitForScrape(ctx.prometheusUrl, afterMs + ctx.scrapeMarginMs, {
    match: isIngressGatewayTarget,
    what: `the ingress gateway (a target labelled app=${gatewayWorkload()}, or its pod)`,
    timeoutMs: ctx.scrapeTimeoutMs,
    signal,
  });
  return meshSnapshot(ctx.prometheusUrl, clusterSelector(), signal);
}

export async function runClusterStep(
  root: string,
  io: Io,
  ctx: ClusterContext,
  options: {
    stage: string;
    analysis: LoadedAnalysis;
    bakeMs: number;
    signal: AbortSignal;
    jsonFile?: string;
    plan?: PlanRequest;
    /** Which file the stage's expectation and roles come from; default: API (as scripts/stage.sh applies it). */
    api?: StageApi;
  },
): Promise<StepOutcome> {
  const started = performance.now();
  const { signal } = options;
  const api = options.api ?? resolveApi(undefined);
  await applyClusterStage(root, io, options.stage);
  if (signal.aborted) throw new InterruptedError(signal.reason, `stopped at ${options.stage}`);
  const { result: split, file } = await measure(root, io, {
    stage: options.stage,
    origin: ctx.gatewayUrl,
    target: 'cluster',
    signal,
    serverErrorsAsAnswers: true,
    ...(options.jsonFile ? { jsonFile: options.jsonFile } : {}),
    ...(options.plan ? { plan: options.plan } : {}),
    api,
  });
  const outcome = splitOutcome(options.stage, split, file);
  const { roles, profile } = analysisTraffic(root, options.stage, api);
  if (split.verdict !== 'pass' || !roles || !profile) {
    outcome.durationMs = performance.now() - started;
    return outcome;
  }
  const versions = [roles.canary, ...(roles.baseline ? [roles.baseline] : [])];
  io.out(
    `analysis of ${options.stage} from Prometheus (${ctx.prometheusUrl}): waiting for a scrape of the ingress gateway ...`,
  );
  const start = await snapshotAfter(ctx, Date.now(), signal);
  const empty = (version: string) => ({ version, requests: 0, errors: 0, latenciesMs: [], buckets: [] });
  let current: StepSamples = {
    canary: empty(roles.canary),
    baseline: roles.baseline ? empty(roles.baseline) : null,
    unattributed: 0,
  };
  const client = new LoadClient({ origin: ctx.gatewayUrl, concurrency: 32, timeoutMs: 5000 });
  let sent = 0;
  let noAnswer = 0;
  const { method, target: path } = profileRequest(profile);
  const send = async (requests: number, minMs: number) => {
    const deadline = performance.now() + minMs;
    const result = await client.run({
      maxCount: minMs > 0 ? Number.POSITIVE_INFINITY : requests,
      headers: profile.headers,
      path,
      method,
      signal,
      serverErrorsAsAnswers: true,
      onOutcome: (_o, totals) => minMs > 0 && totals.completed >= requests && performance.now() >= deadline,
    });
    sent += result.completed;
    // Resets and timeouts never reach a counter of the gateway's upstreams: counted here.
    noAnswer += result.failures.filter((f) => f.kind === 'error').length;
    if (signal.aborted) throw new InterruptedError(signal.reason, `stopped at ${options.stage}`);
    const end = await snapshotAfter(ctx, Date.now(), signal);
    const counts = stepCounts(start, end, versions);
    current = {
      canary: counts.versions[roles.canary] as StepSamples['canary'],
      baseline: roles.baseline ? (counts.versions[roles.baseline] as StepSamples['canary']) : null,
      unattributed: counts.unattributed + noAnswer,
    };
  };
  try {
    if (options.bakeMs > 0) {
      io.out(`baking ${options.stage} for ${(options.bakeMs / 1000).toFixed(1)} s with traffic ...`);
      await send(0, options.bakeMs);
    }
    const analysis = await runStepAnalysis({
      plan: options.analysis.plan,
      stage: options.stage,
      share: roles.share,
      baseline: roles.baseline !== null,
      samples: () => current,
      collect: (n) => send(n, 0),
      judge: analyseHistogram,
      signal,
    });
    outcome.analysis = analysis;
    outcome.verdict = analysis.result.verdict;
    outcome.requests += sent;
    printAnalysis(io, analysis, roles, []);
    io.out(
      `  counts: Prometheus, the difference of istio_requests_total / istio_request_duration_milliseconds at the step's start and end (after a scrape that followed the split check, and one that followed the last request)`,
    );
  } finally {
    await client.close();
  }
  outcome.durationMs = performance.now() - started;
  return outcome;
}
