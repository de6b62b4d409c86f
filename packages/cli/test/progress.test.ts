/**
 * The canary analysis through the CLI, with real processes on free ports: a bad release (the demo scenarios) is
 * caught at canary-10 and rolled back, by `rollout demo` and by `rollout progress`; blue-green promotes a healthy
 * one; Ctrl-C sends a running local path back to its stable stage; bad input (scenario, strategy, target, bake,
 * thresholds file) exits 2 before anything starts. No timing is asserted.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPortFree } from '@rollouts/local-mesh';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, rollout, rolloutOnFreePorts, start, testEnv, waitForOutput } from './helpers.js';

async function allFree(env: NodeJS.ProcessEnv): Promise<boolean> {
  const ports = ['GATEWAY_PORT', 'ADMIN_PORT', 'V1_PORT', 'V2_PORT'].map((k) => Number(env[k]));
  return (await Promise.all(ports.map((p) => isPortFree(p)))).every(Boolean);
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

describe('bad input exits 2 and starts nothing', async () => {
  const env = await testEnv();
  const badFile = join(mkdtempSync(join(tmpdir(), 'rollout-analysis-')), 'analysis.yaml');
  writeFileSync(
    badFile,
    readFileSync(join(REPO_ROOT, 'analysis.yaml'), 'utf8')
      .replace('slo: 0.01', 'slo: 1 %')
      .replace('looks: 3', 'looks: 0'),
  );
  it.each([
    [['progress', '--scenario', 'nope'], {}, 'unknown scenario "nope"; scenarios: bad-v2, slow-v2'],
    [['demo', '--scenario', 'nope'], {}, 'unknown scenario "nope"; scenarios: bad-v2, slow-v2'],
    [['local', 'up', '--scenario', 'nope'], {}, 'unknown scenario "nope"; scenarios: bad-v2, slow-v2'],
    [
      ['demo'],
      { SCENARIO: 'worse-v2' },
      'unknown scenario "worse-v2" (SCENARIO); scenarios: bad-v2, slow-v2',
    ],
    [['progress', '--strategy', 'big-bang'], {}, '--strategy must be one of canary, blue-green'],
    [['progress', '--target', 'moon'], {}, '--target must be local or cluster, got "moon"'],
    [['progress', '--bake', 'soon'], {}, '--bake must be a duration like 5s, 500ms or 1m; got "soon"'],
    [
      ['demo', '--analysis', '/nonexistent/analysis.yaml'],
      {},
      'analysis.yaml does not exist (given by --analysis)',
    ],
    [
      ['progress'],
      { ROLLOUT_ANALYSIS: '/nonexistent/thresholds.yaml' },
      'thresholds.yaml does not exist (given by ROLLOUT_ANALYSIS)',
    ],
  ])('rollout %j %j', async (args, extra, message) => {
    const run = await rollout(args, { ...env, ...extra });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).not.toContain('starting workload');
  });

  it('names every bad threshold with its line', async () => {
    const run = await rollout(['progress', '--analysis', badFile], env);
    expect(run.code).toBe(2);
    const lines = readFileSync(badFile, 'utf8').split('\n');
    const line = (text: string) => lines.findIndex((l) => l.includes(text)) + 1;
    expect(run.stderr).toContain(`bad analysis thresholds in ${badFile}:`);
    expect(run.stderr).toContain(
      `line ${line('slo: 1 %')}: errorRate.slo must be a share in (0, 0.5], e.g. 0.01 for 1 %; got "1 %"`,
    );
    expect(run.stderr).toContain(
      `line ${line('looks: 0')}: decision.looks must be an integer from 1 to 10; got 0`,
    );
  });
});

describe('a bad release is caught at canary-10 and rolled back', () => {
  it('rollout demo --scenario bad-v2: the failing analysis, the rollback, exit 1', async () => {
    const env = await testEnv();
    const run = await rolloutOnFreePorts(['demo', '--scenario', 'bad-v2'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('demo: scenario bad-v2: v2 answers 5 % of requests with 500');
    // The fault knob on v2 only (the workload may carry other variables, e.g. its colour).
    expect(run.stdout).toMatch(/starting workload v2 on \S+ with (\S+ )*FAULT_ERROR_RATE=0\.05/);
    expect(run.stdout).not.toMatch(/starting workload v1 .*FAULT_ERROR_RATE/);
    // The split check passes (5xx answers count for the split), the analysis fails on the error rate.
    expect(run.stdout).toMatch(
      /^split: v2 10\.0 % expected, [\d.]+ % seen \(\d+ requests\), as expected: pass/m,
    );
    expect(run.stdout).toMatch(/^analysis: v2 errors [\d.]+ % vs v1 0\.00 % \(SLO 1\.00 %\), .*: FAIL$/m);
    expect(run.stdout).toMatch(/^ {2}v2 error rate {2,}≤ 1\.00 % {2,}[\d.]+ % \(\d+ of \d+\) {2,}FAIL$/m);
    expect(run.stderr).toMatch(
      /^demo: canary-10: analysis failed: v2 error rate [\d.]+ % is above the SLO of 1\.00 % by [\d.]+ points/m,
    );
    expect(run.stdout).toContain('demo: rolled back to stable (verified); the walk stops here');
    expect(run.stdout).toMatch(/^ {2}rollback \(canary-10 → stable\)\s+.*\spass$/m);
    const summary = readJson(join(env.ROLLOUT_STATE_DIR as string, 'demo-summary.json'));
    expect(summary).toMatchObject({
      verdict: 'fail',
      scenario: 'bad-v2',
      rolledBack: { step: 'canary-10', rolledBackTo: 'stable' },
      thresholds: { errorRate: { slo: 0.01 } },
    });
    expect(
      summary.steps.map((s: { stage: string; analysis: string | null }) => [s.stage, s.analysis]),
    ).toEqual([
      ['stable', null],
      ['canary-10', 'fail'],
      ['stable', null],
    ]);
    expect(await allFree(env)).toBe(true);
  });

  it('rollout progress --scenario slow-v2: latency fails at canary-10, back on stable, exit 1', async () => {
    const env = await testEnv();
    const run = await rolloutOnFreePorts(['progress', '--scenario', 'slow-v2', '--bake', '0'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('progress: no local path is running: starting one for this run');
    expect(run.stdout).toContain(
      'progress: canary: stable → canary-10 → canary-25 → canary-50 → canary-75 → canary-100',
    );
    expect(run.stdout).toMatch(/^progress: analysis thresholds \(analysis\.yaml\): error rate ≤ 1\.00 %/m);
    expect(run.stderr).toMatch(
      /^progress: ROLLED BACK at canary-10 \(step 2 of 6\): analysis failed: v2 is slower than v1 by more than 50\.0 ms: median \+1\d\d(\.\d+)? ms, past the margin by \d+(\.\d+)? ms .*; the mesh is on stable \(verified\)$/m,
    );
    const summary = readJson(join(env.ROLLOUT_STATE_DIR as string, 'progress-summary.json'));
    expect(summary).toMatchObject({
      strategy: 'canary',
      scenario: 'slow-v2',
      verdict: 'rolled back',
      failedAt: { stage: 'canary-10', step: 2 },
      rolledBackTo: 'stable',
      rollbackVerified: true,
    });
    const failed = summary.steps[1].analysis.checks.filter((c: { verdict: string }) => c.verdict === 'fail');
    expect(failed.map((c: { id: string }) => c.id)).toEqual(['latency-shift']);
    expect(await allFree(env)).toBe(true);
  });
});

describe('rollout progress', () => {
  it('promotes a healthy release through blue-green: green → blue-preview → blue', async () => {
    const env = await testEnv();
    const run = await rolloutOnFreePorts(['progress', '--strategy', 'blue-green', '--bake', '0'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('progress: blue-green: green → blue-preview → blue');
    expect(run.stdout).toMatch(/^analysis of blue: v2 against the SLOs only/m);
    expect(run.stdout).toMatch(/^progress: promoted: blue serves the new version to everyone/m);
    const summary = readJson(join(env.ROLLOUT_STATE_DIR as string, 'progress-summary.json'));
    expect(summary.verdict).toBe('promoted');
    expect(summary.steps.map((s: { stage: string; verdict: string }) => [s.stage, s.verdict])).toEqual([
      ['green', 'pass'],
      ['blue-preview', 'pass'],
      ['blue', 'pass'],
    ]);
    // The analysis counts the split check's requests of the default profile too: its last look saw more
    // requests than the analysis sent after the split check.
    for (const step of summary.steps.slice(1)) {
      const look = step.analysis.looks.at(-1);
      expect(look.totalRequests).toBeGreaterThan(step.requests - step.split.requests);
    }
    expect(await allFree(env)).toBe(true);
  });

  describe('on a running local path', async () => {
    const env = await testEnv();
    afterAll(async () => {
      await rollout(['local', 'down'], env);
    });

    it('refuses another scenario than the running one (exit 2), and Ctrl-C leaves the mesh on stable', async () => {
      const up = await rolloutOnFreePorts(['local', 'up', '--scenario', 'bad-v2'], env);
      expect(up.code).toBe(0);
      expect(up.stdout).toContain('with FAULT_ERROR_RATE=0.05');
      expect((await rollout(['status'], env)).stdout).toContain('scenario bad-v2: v2 answers 5 %');
      const other = await rollout(['progress', '--scenario', 'slow-v2'], env);
      expect(other.code).toBe(2);
      expect(other.stderr).toContain('the running local path has scenario bad-v2, not slow-v2');
      expect((await rollout(['local', 'down'], env)).code).toBe(0);

      expect((await rolloutOnFreePorts(['local', 'up'], env)).code).toBe(0);
      const progress = start(['progress', '--bake', '30s'], env);
      await waitForOutput(progress.child, 'baking canary-10');
      progress.child.kill('SIGINT');
      const run = await progress.done;
      expect(run.code).toBe(130);
      expect(run.stdout).toContain('progress: using the running local path');
      expect(run.stderr).toContain('progress: interrupted: the mesh is back on stable');
      expect(run.stderr).toContain(
        'rollout: interrupted (SIGINT): progress stopped, the mesh is back on stable',
      );
      expect((await rollout(['status'], env)).stdout).toMatch(/^local: stage stable \(canary\)/);
    });
  });
});
