/**
 * The local path through the CLI, with real processes on free ports: local up / status / apply / verify /
 * rollback / local down, bad input that changes nothing, a taken port, and `rollout demo` end to end
 * (also interrupted with Ctrl-C).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { isPortFree, pidAlive } from '@rollouts/local-mesh';
import { listStages } from '@rollouts/stages';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, rollout, rolloutOnFreePorts, start, testEnv, waitForOutput } from './helpers.js';

const ports = (env: NodeJS.ProcessEnv) =>
  ['GATEWAY_PORT', 'ADMIN_PORT', 'V1_PORT', 'V2_PORT'].map((k) => Number(env[k]));

async function allFree(env: NodeJS.ProcessEnv): Promise<boolean> {
  const free = await Promise.all(ports(env).map((p) => isPortFree(p)));
  return free.every(Boolean);
}

function pidFiles(env: NodeJS.ProcessEnv): { role: string; pid: number }[] {
  const dir = join(env.ROLLOUT_STATE_DIR as string, 'local');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pid.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

describe('rollout local up / apply / verify / rollback / down', async () => {
  const env = await testEnv();
  afterAll(async () => {
    await rollout(['local', 'down'], env); // whatever happened above, leave nothing running
  });

  it('runs the whole interactive cycle', async () => {
    const up = await rolloutOnFreePorts(['local', 'up'], env);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`starting workload v1 on 127.0.0.1:${env.V1_PORT}`);
    expect(up.stdout).toMatch(/local path up in [\d.]+ s/);
    expect(pidFiles(env).map((p) => p.role)).toEqual(['gateway']);
    const status = await rollout(['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^local: stage stable \(canary\)/);
    expect(status.stdout).toMatch(/workload v1: ready, pid \d+, since \S+, 0 restarts/);
    expect(status.stdout).toMatch(/workload v2: ready, pid \d+/);
    const workloads = JSON.parse((await rollout(['status', '--json'], env)).stdout).workloads as {
      pid: number;
    }[];
    const pids = [...pidFiles(env), ...workloads];
    expect(pids).toHaveLength(3);
    expect(pids.every((p) => pidAlive(p.pid))).toBe(true);

    // A second `local up` leaves the running one alone and says so.
    const again = await rollout(['local', 'up'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('the local path is already running');
    expect(again.stderr).toContain('nothing was changed');
    expect(pids.every((p) => pidAlive(p.pid))).toBe(true);

    const apply = await rollout(['apply', 'canary-25', '--target', 'local'], env);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('applied canary-25 to the local gateway (was stable)');
    expect(apply.stdout).toMatch(/verification of canary-25: passed in [\d.]+ s \(\d+ requests\)/);
    const saved = JSON.parse(
      readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'verify', 'canary-25.json'), 'utf8'),
    );
    expect(saved).toMatchObject({ stage: 'canary-25', verdict: 'pass', failedRequests: 0, target: 'local' });
    expect(saved.profiles.map((p: { name: string }) => p.name)).toEqual(['default', 'x-canary: always']);

    const unknown = await rollout(['apply', 'canary-33', '--target', 'local'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown stage "canary-33"');
    expect((await rollout(['status', '--json'], env)).stdout).toContain('"stage": "canary-25"');

    // The test hook: the gateway sends 20 % to v2 while canary-25 promises 25 %. The verifier must fail.
    const forced = await rollout(['apply', 'canary-25', '--force-weights', 'v1=80,v2=20'], env);
    expect(forced.code).toBe(1);
    expect(forced.stdout).toContain('stage canary-25: FAIL');
    expect((await rollout(['status'], env)).stdout).toContain('weights FORCED');

    // Measuring through the cluster code path (GATEWAY_URL) against the same gateway.
    const asCluster = await rollout(
      [
        'verify',
        '--target',
        'cluster',
        '--stage',
        'canary-25',
        '--json',
        join(env.ROLLOUT_STATE_DIR as string, 'c.json'),
      ],
      {
        ...env,
        GATEWAY_URL: `http://localhost:${env.GATEWAY_PORT}`,
      },
    );
    expect(asCluster.code).toBe(1);

    // Measuring a stage the gateway does not serve: the first answers name canary-25 in x-rollouts-stage.
    const other = await rollout(['verify', '--stage', 'canary-50'], env);
    expect(other.code).toBe(1);
    expect(other.stdout).toContain('note: measured as canary-50 while the gateway applies canary-25');
    expect(other.stdout).toMatch(/x-rollouts-stage "canary-25", not "canary-50": the gateway does not serve/);

    const rollback = await rollout(['rollback', '--target', 'local'], env);
    expect(rollback.code).toBe(0);
    expect(rollback.stdout).toContain('rollback: canary-25 → stable');
    expect(rollback.stdout).toContain('verification of stable: passed');

    const verify = await rollout(['verify'], env);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/stage stable: PASS/);

    const down = await rollout(['local', 'down'], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain('the local path is down');
    for (const p of pids) expect(pidAlive(p.pid)).toBe(false);
    expect(pidFiles(env)).toEqual([]);
    expect(await allFree(env)).toBe(true);

    const statusDown = await rollout(['status'], env);
    expect(statusDown.code).toBe(1);
    expect(statusDown.stderr).toContain('the local path is not running: make local-up');
    const applyDown = await rollout(['apply', 'canary-10'], env);
    expect(applyDown.code).toBe(1);
    expect(applyDown.stderr).toContain('make local-up');
    const downAgain = await rollout(['local', 'down'], env);
    expect(downAgain.code).toBe(0);
    expect(downAgain.stdout).toContain('not running');
  });
});

describe('rollout local up with a port in use', () => {
  it('names the port and the variable, exits non-zero and leaves nothing running', async () => {
    const env = await testEnv();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.GATEWAY_PORT), '127.0.0.1', resolve));
    try {
      const run = await rollout(['local', 'up'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`port ${env.GATEWAY_PORT} (gateway) is already in use`);
      expect(run.stderr).toContain('GATEWAY_PORT=');
      expect(pidFiles(env)).toEqual([]);
      expect(await isPortFree(Number(env.V1_PORT))).toBe(true);
      expect(await isPortFree(Number(env.V2_PORT))).toBe(true);
    } finally {
      blocker.close();
    }
  });

  it('a gateway port taken only on [::1] is named with its variable too', async () => {
    const env = await testEnv();
    const blocker = createServer();
    const v6 = await new Promise<boolean>((resolve) => {
      blocker.once('error', () => resolve(false));
      blocker.listen(Number(env.GATEWAY_PORT), '::1', () => resolve(true));
    });
    if (!v6) return; // no IPv6 loopback here: nothing to take
    try {
      for (const args of [['local', 'up'], ['demo']]) {
        const run = await rollout(args, env);
        expect(run.code, args.join(' ')).toBe(1);
        expect(run.stderr).toContain(`port ${env.GATEWAY_PORT} (gateway) is already in use`);
        expect(run.stderr).toContain('GATEWAY_PORT=');
        expect(run.stderr).not.toContain('EADDRINUSE');
      }
      expect(pidFiles(env)).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('a bad port value is bad input (exit 2)', async () => {
    const env = await testEnv({ V1_PORT: 'http' });
    const run = await rollout(['local', 'up'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('V1_PORT="http" is not a port');
  });
});

describe('rollout demo', () => {
  it('walks every stage with verification, prints a summary and stops everything', async () => {
    const env = await testEnv();
    const started = performance.now();
    const run = await rolloutOnFreePorts(['demo'], env);
    const seconds = (performance.now() - started) / 1000;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const stages = listStages(REPO_ROOT).map((s) => s.name);
    for (const s of stages) expect(run.stdout).toMatch(new RegExp(`^  ${s}\\s+.*\\spass$`, 'm'));
    expect(run.stdout).toMatch(/^ {2}rollback \(blue → green\)\s+.*\spass$/m);
    const summary = JSON.parse(
      readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'demo-summary.json'), 'utf8'),
    );
    expect(summary.verdict).toBe('pass');
    expect(summary.steps).toHaveLength(stages.length + 1);
    expect(summary.steps.every((s: { failedRequests: number }) => s.failedRequests === 0)).toBe(true);
    // One verification file per step, each holding that step's measurement (the rollback re-verifies green).
    type Step = { stage: string; file: string; result: { startedAt: string } };
    const files = (summary.steps as Step[]).map((s) => s.file);
    expect(new Set(files).size).toBe(files.length);
    for (const [i, step] of (summary.steps as Step[]).entries()) {
      expect(step.file).toBe(join(env.ROLLOUT_STATE_DIR as string, 'verify', `${i + 1}-${step.stage}.json`));
      const saved = JSON.parse(readFileSync(step.file, 'utf8'));
      expect([saved.stage, saved.startedAt]).toEqual([step.stage, step.result.startedAt]);
    }
    expect(await allFree(env)).toBe(true);
    console.log(
      `demo: ${seconds.toFixed(2)} s wall (spawned), ${summary.totalRequests} requests, median ${summary.medianRequestsPerStep} per step`,
    );
  });

  it('Ctrl-C during a verification aborts it: "interrupted", exit 130, no FAIL, nothing misleading written', async () => {
    const env = await testEnv();
    const demo = start(['demo'], env);
    await waitForOutput(demo.child, 'verifying canary-25');
    demo.child.kill('SIGINT');
    const run = await demo.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('SIGINT received, stopping everything');
    expect(run.stderr).toMatch(
      /rollout: interrupted \(SIGINT\): demo stopped at step \d+, no summary written/,
    );
    // The verification cut short prints no table and no verdict.
    expect(run.stdout).not.toMatch(/FAIL/);
    expect(run.stdout).not.toContain('verification of canary-25');
    const dir = env.ROLLOUT_STATE_DIR as string;
    const written = readdirSync(join(dir, 'verify'));
    expect(written.some((f) => f.endsWith('canary-25.json'))).toBe(false);
    expect(existsSync(join(dir, 'demo-summary.json'))).toBe(false);
    expect(await allFree(env)).toBe(true);
  });

  it('SIGTERM during a verification exits 143 the same way', async () => {
    const env = await testEnv();
    const demo = start(['demo'], env);
    await waitForOutput(demo.child, 'verifying stable');
    demo.child.kill('SIGTERM');
    const run = await demo.done;
    expect(run.code).toBe(143);
    expect(run.stderr).toContain('rollout: interrupted (SIGTERM)');
    expect(run.stdout).not.toMatch(/FAIL/);
    expect(await allFree(env)).toBe(true);
  });

  it('a workload build that cannot start fails the demo with its message, nothing left running', async () => {
    const env = await testEnv();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.V2_PORT), '127.0.0.1', resolve));
    try {
      const run = await rollout(['demo'], env);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`port ${env.V2_PORT} (workload v2) is already in use`);
      expect(run.stderr).toContain('V2_PORT=');
    } finally {
      blocker.close();
    }
    expect(await allFree(env)).toBe(true);
  });
});

describe('rollout local up --api gateway-api', async () => {
  const env = await testEnv();
  afterAll(async () => {
    await rollout(['local', 'down'], env);
  });

  it('serves the HTTPRoute stages, and verifies each against the split derived from its HTTPRoute file', async () => {
    const bad = await rollout(['local', 'up', '--api', 'httproute'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--api must be virtualservice or gateway-api, got "httproute"');
    const up = await rolloutOnFreePorts(['local', 'up', '--api', 'gateway-api'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('API=gateway-api: each stage is its HTTPRoute');
    const apply = await rollout(
      ['apply', 'canary-25', '--json', join(env.ROLLOUT_STATE_DIR as string, 'a.json')],
      env,
    );
    expect(apply.code, apply.stdout).toBe(0);
    const saved = JSON.parse(readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'a.json'), 'utf8'));
    expect(saved).toMatchObject({ stage: 'canary-25', verdict: 'pass', api: 'gateway-api' });
    expect(saved.file).toMatch(/istio\/stages\/gateway-api\/canary-25\.yaml$/);
    const status = await rollout(['status'], env);
    expect(status.stdout).toContain('API=gateway-api (HTTPRoute)');
  });
});
