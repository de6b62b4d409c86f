/**
 * `rollout progress`: progressive delivery without a controller, on the local path. Walks a strategy's stages
 * (canary: stable → canary-10 → 25 → 50 → 75 → 100; blue-green: green → blue-preview → blue) and at each one
 * checks the split, bakes with traffic and runs the canary analysis. A failed or undecided analysis (or a failed
 * split check) rolls back to the strategy's stable stage at once and exits 1 with a report of which metric failed,
 * by how much, at which step. Ctrl-C / SIGTERM also go back to the stable stage before exiting 130 / 143.
 *
 * Local path: it uses the running local path (`rollout local up`) when there is one, else starts its own (like
 * `rollout demo`) and stops it at the end.
 *
 * Cluster path (--target cluster): each stage is applied as `make <stage>` applies it (scripts/stage.sh), the
 * split is checked by the CLI's verifier through GATEWAY_URL, and the analysis reads the Istio addon's Prometheus
 * (reached through a kubectl port-forward this command starts and ends; PROMETHEUS_URL skips it) with the PromQL
 * of split-check (cluster.ts). A scenario given (SCENARIO, --scenario; `none`: healthy) is set on the release's
 * chart values first (scripts/scenario.sh); without one the release is walked as it is deployed.
 */
import { join } from 'node:path';
import { type LocalMesh, type PlanRequest, startLocalMesh, table } from '@rollouts/local-mesh';
import { listStages, rollbackTarget, STRATEGIES, type Strategy } from '@rollouts/stages';
import {
  analysisJson,
  failureReport,
  type LoadedAnalysis,
  loadAnalysis,
  runStep,
  type StepOutcome,
  thresholdsLine,
} from '../analysis.js';
import { applyClusterStage, type ClusterContext, runClusterStep, runScript } from '../cluster.js';
import {
  abortOnSignals,
  adminCall,
  adminUrl,
  appliedStage,
  clusterGatewayUrl,
  GatewayDownError,
  type Io,
  kubeContext,
  localPorts,
  resolveApi,
  resolveTarget,
  seconds,
} from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, InterruptedError, UsageError } from '../errors.js';
import {
  type LocalPrometheus,
  prometheusBinary,
  reportThreeWay,
  startThreeWay,
} from '../local-prometheus.js';
import { type PortForward, portForward } from '../prometheus.js';
import { describeScenario, resolveScenario, SCENARIOS, type Scenario } from '../scenarios.js';
import { readLocalState, stateDir, writeJson } from '../state.js';

export interface ProgressOptions {
  strategy?: string;
  target?: string;
  scenario?: string;
  analysisFile?: string;
  bakeMs: number;
  jsonFile?: string;
  plan?: PlanRequest;
  /** virtualservice | gateway-api (else $API, else virtualservice). */
  api?: string;
}

/** The stages a strategy walks: its stable stage first, then by rising share of the new version. */
export function progressionOf(root: string, strategy: Strategy): string[] {
  const stable = rollbackTarget(root, strategy);
  const rest = listStages(root)
    .filter((s) => s.strategy === strategy && s.name !== stable && s.newVersionShare > 0)
    .sort((a, b) => a.newVersionShare - b.newVersionShare)
    .map((s) => s.name);
  return [stable, ...rest];
}

export async function progressCommand(root: string, io: Io, options: ProgressOptions): Promise<number> {
  const target = resolveTarget(options.target);
  const api = resolveApi(options.api);
  // The cluster scripts this command runs (scripts/stage.sh) read the API from the environment.
  process.env.API = api;
  const strategy = (options.strategy ?? 'canary') as Strategy;
  if (!(STRATEGIES as readonly string[]).includes(strategy))
    throw new UsageError(
      `--strategy must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(options.strategy)}`,
    );
  const requested = resolveScenario(options.scenario);
  const analysis = loadAnalysis(root, options.analysisFile);
  const stages = progressionOf(root, strategy);
  const stable = stages[0] as string;
  if (target === 'cluster')
    return walk(root, io, options, {
      strategy,
      stages,
      analysis,
      scenario: requested,
      walker: await clusterWalker(root, io, options, requested),
    });

  // The running local path, if any; else one of our own for this run.
  let mesh: LocalMesh | null = null;
  let admin = adminUrl(root);
  let gatewayUrl: string;
  let scenario: Scenario | null = requested;
  let promBin: ReturnType<typeof prometheusBinary> | null = null;
  let prom: LocalPrometheus | null = null;
  try {
    const applied = await appliedStage(admin);
    gatewayUrl = `http://localhost:${applied.gatewayPort}`;
    const running = readLocalState(root)?.scenario ?? null;
    if (options.scenario !== undefined || process.env.SCENARIO) {
      if ((requested?.name ?? null) !== running) {
        throw new UsageError(
          `the running local path has scenario ${running ?? 'none'}, not ${requested?.name ?? 'none'}: ` +
            `stop it (make local-down) and start it with the scenario (make local-up SCENARIO=${requested?.name ?? ''}), ` +
            'or stop it and let progress start its own',
        );
      }
    }
    scenario = running ? (SCENARIOS.find((s) => s.name === running) ?? null) : null;
    const runningApi = readLocalState(root)?.api ?? 'virtualservice';
    if (runningApi !== api) {
      throw new UsageError(
        `the running local path serves API=${runningApi}, not ${api}: stop it (make local-down) and start it with make local-up API=${api}, or let progress start its own`,
      );
    }
    io.out(`progress: using the running local path (gateway ${gatewayUrl}, stage ${applied.stage})`);
  } catch (err) {
    if (!(err instanceof GatewayDownError)) throw err;
    const ports = localPorts(root);
    io.out('progress: no local path is running: starting one for this run');
    promBin = prometheusBinary();
    mesh = await startLocalMesh({
      root,
      ports,
      stage: stable,
      log: (l) => io.out(`progress: ${l}`),
      api,
      ...(scenario ? { workloadEnv: scenario.env } : {}),
    });
    admin = mesh.adminUrl;
    gatewayUrl = mesh.gatewayUrl;
  }
  // The three-way check (local-prometheus.ts) needs the apps' addresses: with a local path of its own only.
  if (mesh && promBin) {
    try {
      prom = await startThreeWay(io, 'progress', mesh, promBin);
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  } else {
    io.out(
      "progress: a running local path: the analysis uses the verifier's own counts and latencies, not cross-checked with PromQL (progress cross-checks them when it starts its own local path, with prometheus on PATH)",
    );
  }

  const a = admin;
  const p = prom as LocalPrometheus | null;
  const g = gatewayUrl;
  return walk(root, io, options, {
    strategy,
    stages,
    analysis,
    scenario,
    walker: {
      target: 'local',
      step: async (stage, bakeMs, jsonFile, signal) => {
        const outcome = await runStep(root, io, {
          stage,
          adminUrl: a,
          gatewayUrl: g,
          analysis,
          bakeMs,
          signal,
          jsonFile,
          api,
          ...(options.plan ? { plan: options.plan } : {}),
        });
        if (p) await reportThreeWay(io, 'progress', p, stage, outcome.answered ?? {});
        return outcome;
      },
      backTo: (stage, why) => backTo(io, a, stage, why),
      stop: async () => {
        await p?.stop();
        await mesh?.stop();
      },
      summary: () =>
        p
          ? { prometheus: p.version, agree: p.rows.every((r) => r.agree), steps: p.rows }
          : { prometheus: null, why: mesh ? (promBin?.why ?? null) : 'a running local path' },
      problem: () => {
        const bad = p?.rows.filter((r) => !r.agree).map((r) => r.step) ?? [];
        return bad.length > 0
          ? `three-way check FAILED: Prometheus counts other requests than the verifier at ${bad.join(', ')}`
          : null;
      },
    },
  });
}

/** How a walk applies, measures and leaves a stage: on the local gateway or on the cluster. */
interface Walker {
  target: 'local' | 'cluster';
  step(stage: string, bakeMs: number, jsonFile: string, signal: AbortSignal): Promise<StepOutcome>;
  /** The fastest way back to `stage` (Ctrl-C, an error): not verified. */
  backTo(stage: string, why: string): Promise<void>;
  /** Ends what the walk started (the local path of its own, the port-forward). */
  stop(): Promise<void>;
  /** The cluster's release walked as deployed (no scenario given): its scenario is not known. */
  asDeployed?: boolean;
  /** For the summary JSON: the three-way check (local path). */
  summary?: () => unknown;
  /** A failure besides the rollout's (the three-way check disagreeing), or null. */
  problem?: () => string | null;
}

async function walk(
  root: string,
  io: Io,
  options: ProgressOptions,
  w: {
    strategy: Strategy;
    stages: string[];
    analysis: LoadedAnalysis;
    scenario: Scenario | null;
    walker: Walker;
  },
): Promise<number> {
  const { strategy, stages, analysis, scenario, walker } = w;
  const stable = stages[0] as string;
  io.out(`progress: ${strategy}: ${stages.join(' → ')}; bake ${seconds(options.bakeMs)} per step`);
  io.out(`progress: ${thresholdsLine(analysis)}`);
  io.out(`progress: scenario ${walker.asDeployed ? 'as deployed (none given)' : describeScenario(scenario)}`);
  const interrupt = abortOnSignals((signal) =>
    io.err(`progress: ${signal} received: back to ${stable}, then stopping`),
  );
  const outcomes: StepOutcome[] = [];
  const wallStart = performance.now();
  let failedAt: { stage: string; step: number; report: string } | null = null;
  let rollback: StepOutcome | null = null;
  try {
    for (const [i, stage] of stages.entries()) {
      if (interrupt.signal.aborted) break;
      io.out('');
      io.out(`progress: [${i + 1}/${stages.length}] ${stage}`);
      const outcome = await walker.step(
        stage,
        options.bakeMs,
        join(stateDir(root), 'verify', `progress-${i + 1}-${stage}.json`),
        interrupt.signal,
      );
      outcomes.push(outcome);
      if (outcome.verdict !== 'pass') {
        failedAt = { stage, step: i + 1, report: failureReport(outcome) };
        break;
      }
    }
    if (failedAt) {
      io.out('');
      io.err(`progress: ${failedAt.stage} (step ${failedAt.step} of ${stages.length}): ${failedAt.report}`);
      io.out(`progress: rolling back: ${failedAt.stage} → ${stable}`);
      rollback = await walker.step(
        stable,
        0,
        join(stateDir(root), 'verify', `progress-rollback-${stable}.json`),
        interrupt.signal,
      );
    }
  } catch (err) {
    if (!(interrupt.signal.aborted || err instanceof InterruptedError)) {
      await walker.backTo(stable, 'after an error');
      await walker.stop();
      interrupt.dispose();
      throw err;
    }
  }

  if (interrupt.signal.aborted) {
    // Ctrl-C: the mesh goes back to the stable stage before anything else (not verified: the user wants out).
    await walker.backTo(stable, 'interrupted');
    await walker.stop();
    interrupt.dispose();
    throw new InterruptedError(interrupt.signal.reason, `progress stopped, the mesh is back on ${stable}`);
  }
  interrupt.dispose();

  const wallMs = performance.now() - wallStart;
  io.out('');
  io.out(`progress summary (${strategy}${scenario ? `, scenario ${scenario.name}` : ''})`);
  const rows = [['step', 'requests', 'time', 'split', 'analysis']];
  for (const o of [...outcomes, ...(rollback ? [rollback] : [])]) {
    rows.push([
      o === rollback ? `rollback → ${o.stage}` : o.stage,
      String(o.requests),
      seconds(o.durationMs),
      o.split.verdict === 'pass' ? 'pass' : 'FAIL',
      o.analysis ? (o.analysis.result.verdict === 'fail' ? 'FAIL' : o.analysis.result.verdict) : '-',
    ]);
  }
  io.out(indentTable(table(rows, new Set([1, 2]))));
  const file = options.jsonFile ?? join(stateDir(root), 'progress-summary.json');
  const promoted = !failedAt;
  writeJson(file, {
    target: walker.target,
    strategy,
    scenario: scenario?.name ?? null,
    verdict: promoted ? 'promoted' : 'rolled back',
    failedAt,
    rolledBackTo: rollback ? stable : null,
    rollbackVerified: rollback ? rollback.split.verdict === 'pass' : null,
    thresholds: analysis.plan.thresholds,
    analysisFile: analysis.file,
    wallTimeMs: wallMs,
    steps: outcomes.map((o) => stepJson(o)),
    rollback: rollback ? stepJson(rollback) : null,
    ...(walker.summary ? { threeWay: walker.summary() } : {}),
  });
  io.out(`progress: summary JSON ${file}`);
  const problem = walker.problem?.() ?? null;
  await walker.stop();
  if (problem) io.err(`progress: ${problem}`);
  if (promoted) {
    io.out(
      `progress: promoted: ${stages.at(-1)} serves the new version to everyone (${seconds(wallMs)}, ${outcomes.reduce((s, o) => s + o.requests, 0)} requests)`,
    );
    return problem ? EXIT_FAIL : EXIT_OK;
  }
  const f = failedAt as { stage: string; step: number; report: string };
  io.err(
    `progress: ROLLED BACK at ${f.stage} (step ${f.step} of ${stages.length}): ${f.report}; the mesh is on ${stable}${rollback?.split.verdict === 'pass' ? ' (verified)' : ', whose verification FAILED'}`,
  );
  return EXIT_FAIL;
}

function stepJson(o: StepOutcome): unknown {
  return {
    stage: o.stage,
    verdict: o.verdict,
    requests: o.requests,
    durationMs: o.durationMs,
    split: { verdict: o.split.verdict, file: o.splitFile, requests: o.split.requests },
    analysis: analysisJson(o.analysis),
  };
}

function indentTable(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** Switches the gateway to `stage` without verifying (Ctrl-C, an error): the fastest way back. */
async function backTo(io: Io, admin: string, stage: string, why: string): Promise<void> {
  try {
    const { status, json } = await adminCall(admin, 'PUT', '/stage', { stage });
    if (status !== 200) throw new CliError(`the gateway refused ${stage}: ${JSON.stringify(json)}`);
    io.err(
      `progress: ${why}: the mesh is back on ${stage} (not verified; make verify TARGET=local measures it)`,
    );
  } catch (err) {
    io.err(`progress: ${why}: could not go back to ${stage}: ${(err as Error).message}`);
  }
}

/** A duration in seconds from the environment (e.g. PROMETHEUS_SCRAPE_TIMEOUT=120), else the default. */
function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback * 1000;
  const v = Number(raw);
  if (!(Number.isFinite(v) && v > 0))
    throw new UsageError(`${name} must be a number of seconds > 0, got ${JSON.stringify(raw)}`);
  return v * 1000;
}

/**
 * The cluster path's walker: the scenario onto the chart values (when one was asked for), Prometheus reached by a
 * port-forward of svc/prometheus in istio-system (ended by stop(), also on Ctrl-C and errors), the stages applied
 * by scripts/stage.sh and analysed from Prometheus (cluster.ts).
 */
async function clusterWalker(
  root: string,
  io: Io,
  options: ProgressOptions,
  scenario: Scenario | null,
): Promise<Walker> {
  const gatewayUrl = clusterGatewayUrl();
  const context = kubeContext();
  const scrapeTimeoutMs = envSeconds('PROMETHEUS_SCRAPE_TIMEOUT', 120);
  const scrapeMarginMs = envSeconds('PROMETHEUS_SCRAPE_MARGIN', 1);
  const asked = options.scenario !== undefined || Boolean(process.env.SCENARIO);
  io.out(`progress: cluster path (context ${context}, gateway ${gatewayUrl})`);
  if (asked) {
    io.out(
      `progress: setting scenario ${scenario?.name ?? 'none'} on the chart values (scripts/scenario.sh)`,
    );
    await runScript(root, io, 'scenario.sh', [scenario?.name ?? 'none'], {});
  } else {
    io.out(
      'progress: no SCENARIO given: the release is walked as deployed (SCENARIO=none resets the fault knobs)',
    );
  }
  let forward: PortForward | null = null;
  let prometheusUrl = process.env.PROMETHEUS_URL?.replace(/\/$/, '');
  if (prometheusUrl) {
    io.out(`progress: Prometheus ${prometheusUrl} (PROMETHEUS_URL)`);
  } else {
    forward = await portForward({ context, namespace: 'istio-system', service: 'prometheus', port: 9090 });
    prometheusUrl = forward.url;
    io.out(
      `progress: Prometheus through kubectl port-forward svc/prometheus (pid ${forward.pid}): ${prometheusUrl}`,
    );
  }
  const ctx: ClusterContext = { gatewayUrl, prometheusUrl, scrapeTimeoutMs, scrapeMarginMs };
  const analysis = loadAnalysis(root, options.analysisFile);
  return {
    target: 'cluster',
    asDeployed: !asked,
    step: (stage, bakeMs, jsonFile, signal) =>
      runClusterStep(root, io, ctx, {
        stage,
        analysis,
        bakeMs,
        signal,
        jsonFile,
        ...(options.plan ? { plan: options.plan } : {}),
      }),
    backTo: async (stage, why) => {
      try {
        await applyClusterStage(root, io, stage);
        io.err(`progress: ${why}: the cluster is back on ${stage} (not measured; make verify measures it)`);
      } catch (err) {
        io.err(
          `progress: ${why}: could not go back to ${stage}: ${(err as Error).message}; run make ${stage}`,
        );
      }
    },
    stop: async () => {
      if (forward) {
        await forward.stop();
        io.out(`progress: port-forward to Prometheus (pid ${forward.pid}) stopped`);
        forward = null;
      }
    },
  };
}
