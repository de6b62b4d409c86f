/**
 * `rollout demo`: start v1, v2 (child processes) and the gateway (in this process), walk every stage in
 * walk-through order with verification, roll back, print a summary, stop everything: on success, on failure,
 * on Ctrl-C (SIGINT) and SIGTERM. Ports: GATEWAY_PORT, ADMIN_PORT, V1_PORT, V2_PORT.
 */

import { join } from 'node:path';
import {
  ConfigError,
  formatSeconds,
  type LocalMesh,
  type PlanRequest,
  portsFromEnv,
  type StageResult,
  startLocalMesh,
  table,
  verificationPlan,
  workloadVersions,
} from '@rollouts/local-mesh';
import { expectedSplit, formatSplit, loadStage, scanStages } from '@rollouts/stages';
import { abortOnSignals, adminCall, type Io, seconds } from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, InterruptedError, UsageError } from '../errors.js';
import { stateDir, writeJson } from '../state.js';
import { measure } from './gateway.js';
import { rollbackTargetOf } from './info.js';

interface DemoRow {
  step: string;
  stage: string;
  strategy: string;
  expected: string;
  verdict: 'pass' | 'fail';
  requests: number;
  failedRequests: number;
  verifySeconds: number;
  file: string;
  /** Everything the verifier measured: per profile n, counts, p-value, SPRT decision, bands, intervals, failures. */
  result: StageResult;
}

export async function demoCommand(
  root: string,
  io: Io,
  options: { jsonFile?: string; plan?: PlanRequest },
): Promise<number> {
  const wallStart = performance.now();
  let ports: ReturnType<typeof portsFromEnv>;
  try {
    ports = portsFromEnv(process.env, workloadVersions(root));
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  // A stage file that does not load is reported and fails the demo; the other stages are still walked.
  const { stages, broken } = scanStages(root);
  for (const b of broken) io.err(`demo: stage ${b.name} left out (not applied): ${b.error.message}`);
  const plan = verificationPlan(root, options.plan);
  io.out(
    `demo: ${stages.length} stages (${stages.map((s) => s.name).join(', ')}); family alpha ${plan.familyAlpha} over ${plan.randomStages} random checks, power ${plan.power} at ${plan.delta * 100} points off`,
  );

  let mesh: LocalMesh | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
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
    });
    const startupMs = performance.now() - startupStart;
    const steps: { step: string; stage: string }[] = stages.map((s) => ({ step: s.name, stage: s.name }));
    const last = stages.at(-1);
    if (last) {
      const back = rollbackTargetOf(root, last.name);
      steps.push({ step: `rollback (${last.name} → ${back})`, stage: back });
    }
    for (const [i, step] of steps.entries()) {
      if (interrupt.signal.aborted)
        throw interrupted(`demo stopped before step ${i + 1}, no summary written`);
      const { status, json } = await adminCall(mesh.adminUrl, 'PUT', '/stage', { stage: step.stage });
      if (status !== 200)
        throw new CliError(`the gateway refused stage ${step.stage}: ${JSON.stringify(json)}`);
      io.out('');
      io.out(`demo: [${i + 1}/${steps.length}] ${step.step}: applied ${step.stage}`);
      const { result, file } = await measure(root, io, {
        stage: step.stage,
        origin: mesh.gatewayUrl,
        target: 'local',
        ...(options.plan ? { plan: options.plan } : {}),
        signal: interrupt.signal,
        // One file per step: the rollback verifies a stage an earlier step verified too (green).
        jsonFile: join(stateDir(root), 'verify', `${i + 1}-${step.stage}.json`),
      }).catch((err: unknown) => {
        if (err instanceof InterruptedError)
          throw interrupted(`demo stopped at step ${i + 1}, no summary written`);
        throw err;
      });
      const stage = loadStage(root, step.stage);
      rows.push({
        step: step.step,
        stage: step.stage,
        strategy: stage.strategy,
        expected: formatSplit(expectedSplit(stage)),
        verdict: result.verdict,
        requests: result.requests,
        failedRequests: result.failedRequests,
        verifySeconds: result.durationMs / 1000,
        file,
        result,
      });
    }
    if (interrupt.signal.aborted) throw interrupted('demo stopped, no summary written');
    const wallMs = performance.now() - wallStart;
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
    const lines = [['step', 'strategy', 'expected (no header)', 'requests', 'verify time', 'verdict']];
    for (const r of rows) {
      lines.push([
        r.step,
        r.strategy,
        r.expected,
        String(r.requests),
        `${r.verifySeconds.toFixed(2)} s`,
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
    writeJson(summaryFile, {
      verdict: failed.length === 0 && brokenNames.length === 0 ? 'pass' : 'fail',
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
    return failed.length === 0 && brokenNames.length === 0 ? EXIT_OK : EXIT_FAIL;
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
