/**
 * `rollout demo`: start v1, v2 (child processes) and the gateway (in this process), walk every stage in
 * walk-through order with verification and, where the new version gets traffic, the canary analysis; roll back,
 * print a summary, stop everything: on success, on failure, on Ctrl-C (SIGINT) and SIGTERM. A failed (or
 * undecided) analysis rolls back at once and ends the walk, as a rollout would. `--scenario` starts v2 with a
 * release fault (scenarios.ts). Ports: GATEWAY_PORT, ADMIN_PORT, V1_PORT, V2_PORT.
 *
 * With a `prometheus` binary (PATH, or ROLLOUT_PROMETHEUS; local-prometheus.ts) the demo runs the three-way check:
 * a Prometheus of its own scrapes the gateway and both apps, and after every step the cluster path's PromQL must
 * count, per version, exactly the requests the verifier counted (a disagreement fails the demo). Without one it
 * says, in one line, that the analysis uses the verifier's own numbers.
 */

import { join } from 'node:path';
import {
  formatSeconds,
  type LocalMesh,
  type PlanRequest,
  type StageResult,
  startLocalMesh,
  table,
  verificationPlan,
} from '@rollouts/local-mesh';
import { expectedSplit, formatSplit, loadStage, scanStages } from '@rollouts/stages';
import {
  analysisJson,
  failureReport,
  type LoadedAnalysis,
  loadAnalysis,
  runStep,
  type StepOutcome,
  thresholdsLine,
} from '../analysis.js';
import { abortOnSignals, type Io, localPorts, resolveApi, seconds } from '../context.js';
import { EXIT_FAIL, EXIT_OK, InterruptedError } from '../errors.js';
import {
  type LocalPrometheus,
  prometheusBinary,
  reportThreeWay,
  startThreeWay,
} from '../local-prometheus.js';
import { describeScenario, resolveScenario } from '../scenarios.js';
import { stateDir, writeJson } from '../state.js';
import { rollbackTargetOf } from './info.js';

interface DemoRow {
  step: string;
  stage: string;
  strategy: string;
  expected: string;
  verdict: 'pass' | 'fail';
  /** The canary analysis' verdict, or null where the new version gets no traffic (or the split check failed). */
  analysis: 'pass' | 'fail' | 'inconclusive' | null;
  requests: number;
  failedRequests: number;
  verifySeconds: number;
  file: string;
  /** Everything the verifier measured: per profile n, counts, p-value, SPRT decision, bands, intervals, failures. */
  result: StageResult;
  /** The analysis: per version requests, 5xx and latency quantiles, every test, the looks. */
  analysisResult: unknown;
}

export async function demoCommand(
  root: string,
  io: Io,
  options: {
    jsonFile?: string;
    plan?: PlanRequest;
    scenario?: string;
    analysisFile?: string;
    bakeMs?: number;
    api?: string;
  },
): Promise<number> {
  const wallStart = performance.now();
  const scenario = resolveScenario(options.scenario);
  const api = resolveApi(options.api);
  const analysis: LoadedAnalysis = loadAnalysis(root, options.analysisFile);
  const ports = localPorts(root);
  // A stage file that does not load is reported and fails the demo; the other stages are still walked.
  const { stages, broken } = scanStages(root);
  for (const b of broken) io.err(`demo: stage ${b.name} left out (not applied): ${b.error.message}`);
  const plan = verificationPlan(root, options.plan);
  const promBin = prometheusBinary();

  io.out(
    `demo: ${stages.length} stages (${stages.map((s) => s.name).join(', ')}); family alpha ${plan.familyAlpha} over ${plan.randomStages} random checks, power ${plan.power} at ${plan.delta * 100} points off`,
  );
  io.out(`demo: ${thresholdsLine(analysis)}`);
  io.out(`demo: scenario ${describeScenario(scenario)}`);

  let mesh: LocalMesh | undefined;
  let prom: LocalPrometheus | null = null;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (prom) {
        await prom.stop();
        io.out('demo: Prometheus stopped');
      }
      if (mesh) {
        io.out('demo: stopping the gateway and the workloads');
        await mesh.stop();
      }
    })();
    return stopping;
  };
  // Ctrl-C / SIGTERM abort the verification in progress (no verdict, no file), then everything stops and the
  // demo exits 130 / 143 without a summary.
  const interrupt = abortOnSignals((signal) => io.err(`demo: ${signal} received, stopping everything`));
  const interrupted = (what: string) => new InterruptedError(interrupt.signal.reason, what);

  const rows: DemoRow[] = [];
  try {
    const startupStart = performance.now();
    mesh = await startLocalMesh({
      root,
      ports,
      stage: stages[0]?.name ?? 'stable',
      log: (l) => io.out(`demo: ${l}`),
      api,
      ...(scenario ? { workloadEnv: scenario.env } : {}),
    });
    const startupMs = performance.now() - startupStart;
    prom = await startThreeWay(
      io,
      'demo',
      mesh,
      promBin,
      " (verifier / istio_requests_total / its +Inf bucket / the apps' http_requests_total)",
    );
    const steps: { step: string; stage: string }[] = stages.map((s) => ({ step: s.name, stage: s.name }));
    const last = stages.at(-1);
    if (last) {
      const back = rollbackTargetOf(root, last.name);
      steps.push({ step: `rollback (${last.name} → ${back})`, stage: back });
    }
    let abortedAt: { step: string; report: string; rolledBackTo: string } | null = null;
    const runOne = async (i: number, step: { step: string; stage: string }, total: number) => {
      if (interrupt.signal.aborted)
        throw interrupted(`demo stopped before step ${i + 1}, no summary written`);
      io.out('');
      io.out(`demo: [${i + 1}/${total}] ${step.step}: applying ${step.stage}`);
      const outcome: StepOutcome = await runStep(root, io, {
        stage: step.stage,
        adminUrl: (mesh as LocalMesh).adminUrl,
        gatewayUrl: (mesh as LocalMesh).gatewayUrl,
        analysis,
        api,
        bakeMs: options.bakeMs ?? 0,
        signal: interrupt.signal,
        ...(options.plan ? { plan: options.plan } : {}),
        // One file per step: the rollback verifies a stage an earlier step verified too (green).
        jsonFile: join(stateDir(root), 'verify', `${i + 1}-${step.stage}.json`),
      }).catch((err: unknown) => {
        if (err instanceof InterruptedError || interrupt.signal.aborted)
          throw interrupted(`demo stopped at step ${i + 1}, no summary written`);
        throw err;
      });
      if (prom) await reportThreeWay(io, 'demo', prom, step.step, outcome.answered ?? {});
      const stage = loadStage(root, step.stage);
      const result = outcome.split;
      rows.push({
        step: step.step,
        stage: step.stage,
        strategy: stage.strategy,
        expected: formatSplit(expectedSplit(stage)),
        verdict: outcome.verdict === 'pass' ? 'pass' : 'fail',
        analysis: outcome.analysis?.result.verdict ?? null,
        requests: outcome.requests,
        failedRequests: result.failedRequests,
        verifySeconds: outcome.durationMs / 1000,
        file: outcome.splitFile,
        result,
        analysisResult: analysisJson(outcome.analysis),
      });
      return outcome;
    };
    let stepCount = steps.length;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as { step: string; stage: string };
      const outcome = await runOne(i, step, stepCount);
      // A failed or undecided analysis: back to the stable stage at once, as a rollout does, and stop the walk.
      if (outcome.analysis && outcome.analysis.result.verdict !== 'pass') {
        const back = rollbackTargetOf(root, step.stage);
        const report = failureReport(outcome);
        io.out('');
        io.err(`demo: ${step.stage}: ${report}`);
        io.out(`demo: rolling back: ${step.stage} → ${back}`);
        abortedAt = { step: step.step, report, rolledBackTo: back };
        stepCount = i + 2;
        const rollback = await runOne(
          i + 1,
          { step: `rollback (${step.stage} → ${back})`, stage: back },
          stepCount,
        );
        io.out(
          `demo: rolled back to ${back}${rollback.verdict === 'pass' ? ' (verified)' : ': its verification FAILED'}; the walk stops here`,
        );
        break;
      }
    }
    if (interrupt.signal.aborted) throw interrupted('demo stopped, no summary written');
    const wallMs = performance.now() - wallStart;
    // The rollback after a failed analysis passes its own verification; the step that failed is in `failed`.
    const failed = rows.filter((r) => r.verdict === 'fail');
    const brokenNames = broken.map((b) => b.name);
    const sorted = rows.map((r) => r.requests).sort((a, b) => a - b);
    const median =
      sorted.length === 0
        ? 0
        : sorted.length % 2 === 1
          ? (sorted[(sorted.length - 1) / 2] as number)
          : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;

    io.out('');
    io.out('demo summary');
    const lines = [['step', 'strategy', 'expected (no header)', 'requests', 'time', 'analysis', 'verdict']];
    for (const r of rows) {
      lines.push([
        r.step,
        r.strategy,
        r.expected,
        String(r.requests),
        `${r.verifySeconds.toFixed(2)} s`,
        r.analysis === null ? '-' : r.analysis === 'fail' ? 'FAIL' : r.analysis,
        r.verdict === 'pass' ? 'pass' : 'FAIL',
      ]);
    }
    io.out(
      table(lines, new Set([3, 4]))
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    const total = rows.reduce((s, r) => s + r.requests, 0);
    io.out(
      `demo: ${rows.length - failed.length}/${rows.length} steps passed; ${total} requests (median ${median} per step); start-up ${formatSeconds(startupMs)}; wall time ${seconds(wallMs)}`,
    );
    const summaryFile = options.jsonFile ?? `${stateDir(root)}/demo-summary.json`;
    const disagreeing = prom?.rows.filter((r) => !r.agree).map((r) => r.step) ?? [];
    const ok =
      failed.length === 0 && brokenNames.length === 0 && abortedAt === null && disagreeing.length === 0;
    writeJson(summaryFile, {
      verdict: ok ? 'pass' : 'fail',
      scenario: scenario?.name ?? null,
      thresholds: analysis.plan.thresholds,
      analysisPlan: { ...analysis.plan, thresholds: undefined, file: analysis.file },
      rolledBack: abortedAt,
      threeWay: prom
        ? { prometheus: prom.version, agree: disagreeing.length === 0, steps: prom.rows }
        : { prometheus: null, why: promBin.why },
      wallTimeMs: wallMs,
      startupMs,
      totalRequests: total,
      medianRequestsPerStep: median,
      ports,
      plan,
      steps: rows,
      failed: [...failed.map((r) => r.step), ...brokenNames],
      broken: broken.map((b) => ({ stage: b.name, error: b.error.message })),
    });
    io.out(`demo: summary JSON ${summaryFile}`);
    if (failed.length > 0) io.err(`demo: FAILED steps: ${failed.map((r) => r.step).join(', ')}`);
    if (brokenNames.length > 0) io.err(`demo: stages left out: ${brokenNames.join(', ')}`);
    if (prom && disagreeing.length === 0)
      io.out(
        `demo: three-way check: the verifier, the gateway's and the apps' metrics agree at all ${prom.rows.length} steps`,
      );
    if (disagreeing.length > 0)
      io.err(
        `demo: three-way check FAILED: Prometheus counts other requests than the verifier at ${disagreeing.join(', ')}`,
      );
    if (abortedAt)
      io.err(
        `demo: the canary analysis stopped the rollout at ${abortedAt.step} and rolled back to ${abortedAt.rolledBackTo}: ${abortedAt.report}`,
      );
    return ok ? EXIT_OK : EXIT_FAIL;
  } catch (err) {
    // A step that failed because the mesh was being stopped is the interruption, not a failure of the mesh.
    if (interrupt.signal.aborted && !(err instanceof InterruptedError))
      throw interrupted('demo stopped, no summary written');
    throw err;
  } finally {
    await stop();
    interrupt.dispose();
  }
}
