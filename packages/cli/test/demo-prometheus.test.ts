/**
 * The demo without Prometheus on the machine: one line says the analysis uses the verifier's own numbers, and the
 * summary says why there was no three-way check; ROLLOUT_PROMETHEUS=required refuses to run without it (exit 2,
 * nothing started). With Prometheus (the test suite's `prometheus` suite, hack/test-prometheus.sh) the
 * three-way check itself runs. No timing is asserted.
 */
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rollout, rolloutOnFreePorts, testEnv } from './helpers.js';

// A PATH with node and nothing else: no prometheus on it.
const NODE_ONLY = mkdtempSync(join(tmpdir(), 'rollout-node-only-'));
symlinkSync(process.execPath, join(NODE_ONLY, 'node'));

describe('the demo and Prometheus', () => {
  it('without prometheus on PATH: says so in one line and analyses with the verifier’s numbers', async () => {
    const env = await testEnv({ PATH: NODE_ONLY });
    delete env.ROLLOUT_PROMETHEUS;
    const run = await rolloutOnFreePorts(['demo', '--scenario', 'bad-v2'], env);
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n').filter((l) => l.includes('Prometheus not found'));
    expect(lines).toEqual([
      "demo: Prometheus not found (no prometheus on PATH): the analysis uses the verifier's own counts and latencies, not cross-checked with PromQL",
    ]);
    expect(run.stdout).not.toContain('three-way (Prometheus)');
    const summary = JSON.parse(
      readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'demo-summary.json'), 'utf8'),
    );
    expect(summary.threeWay).toEqual({ prometheus: null, why: 'no prometheus on PATH' });
    expect(summary.rolledBack.step).toBe('canary-10');
  }, 120_000);

  it('ROLLOUT_PROMETHEUS=required without prometheus: exit 2 before anything starts', async () => {
    const env = await testEnv({ PATH: NODE_ONLY, ROLLOUT_PROMETHEUS: 'required' });
    const run = await rollout(['demo'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('ROLLOUT_PROMETHEUS=required, but no prometheus is on PATH');
    expect(run.stdout).not.toContain('starting workload');
  });

  it('ROLLOUT_PROMETHEUS naming a binary that does not run: a clear error, everything stopped', async () => {
    const env = await testEnv({ ROLLOUT_PROMETHEUS: '/nonexistent/prometheus' });
    const run = await rolloutOnFreePorts(['demo'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('prometheus (/nonexistent/prometheus) did not start');
    expect(run.stdout).toContain('demo: stopping the gateway and the workloads');
  }, 60_000);
});
