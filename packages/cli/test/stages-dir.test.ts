/**
 * The CLI on copies of the repository with extra stage files: `rollout explain` prints the gateway's route table;
 * the rollback target is the labelled stage whatever stage files are added (a canary-0 that sends 0 % included);
 * one broken stage file does not break expect, rollback, lint or apply of the others; a stage Istio would refuse
 * is refused before any traffic moves and the gateway keeps serving the previous stage.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listStages, loadStage, stageRouteTable } from '@rollouts/stages';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, rollout, rolloutOnFreePorts, testEnv } from './helpers.js';

const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A copy of the repository's manifests, chart values, knobs (defaults.env) and (linked) app builds, plus `extra` stage files. */
function repoCopy(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'rollout-stages-'));
  temps.push(dir);
  writeFileSync(join(dir, 'pnpm-workspace.yaml'), 'packages: []\n');
  cpSync(join(REPO_ROOT, 'istio'), join(dir, 'istio'), { recursive: true });
  mkdirSync(join(dir, 'charts', 'webapp'), { recursive: true });
  cpSync(join(REPO_ROOT, 'charts', 'webapp', 'values.yaml'), join(dir, 'charts', 'webapp', 'values.yaml'));
  cpSync(join(REPO_ROOT, 'defaults.env'), join(dir, 'defaults.env'));
  symlinkSync(join(REPO_ROOT, 'apps'), join(dir, 'apps'));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, 'istio', 'stages', name), text);
  return dir;
}

const stableText = readFileSync(join(REPO_ROOT, 'istio', 'stages', 'stable.yaml'), 'utf8');
/** canary-0: the stable split under another name, without the rollback label. */
const canary0 = stableText
  .replaceAll('stable', 'canary-0')
  .replace(/\n\s*# The stage `make rollback` returns to[^\n]*\n\s*rollouts\/canary-0: "true"/, '');
/** A stage file with a field the local gateway refuses (fault injection). */
const broken = stableText
  .replaceAll('stable', 'broken')
  .replace(
    '    - name: split\n',
    '    - name: split\n      fault: { abort: { httpStatus: 500, percentage: { value: 1 } } }\n',
  );
/** A stage Istio's validation refuses: hosts "*" on a VirtualService also bound to the mesh. */
const meshWildcard = readFileSync(join(REPO_ROOT, 'istio', 'stages', 'canary-10.yaml'), 'utf8')
  .replaceAll('canary-10', 'canary-11')
  .replace('    - rollouts/webapp-gateway\n', '    - rollouts/webapp-gateway\n    - mesh\n');

describe('rollout explain', async () => {
  const env = await testEnv();

  it('prints the virtual host, its domains, each route with its match, clusters, weights and headers', async () => {
    const run = await rollout(['explain', 'canary-25'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('route configuration http.8080 of the ingress gateway');
    expect(run.stdout).toContain('virtual host *:80\n  domains: *');
    expect(run.stdout).toContain('match: prefix "/", header x-canary exact "always"');
    expect(run.stdout).toContain(
      'outbound|80|v1|webapp.rollouts.svc.cluster.local 75 % (weight 75) (webapp-v1), outbound|80|v2|webapp.rollouts.svc.cluster.local 25 % (weight 25) (webapp-v2)',
    );
    expect(run.stdout).toContain('response headers: set x-rollouts-stage: canary-25');
    expect(run.stdout).toContain(
      'istioctl proxy-config routes deploy/istio-ingressgateway -n istio-system --name http.8080 -o json',
    );
  });

  it('--json is the route table of @rollouts/stages, with the istioctl command', async () => {
    const run = await rollout(['explain', 'green', '--json'], env);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc.routeConfiguration).toEqual(stageRouteTable(loadStage(REPO_ROOT, 'green')).routeConfiguration);
    // blue's weight 0 is left out of the weighted clusters, as Istio leaves it out.
    expect(doc.routeConfiguration.virtualHosts[0].routes[0].route.weightedClusters).toEqual({
      clusters: [{ name: 'outbound|80|green|webapp.rollouts.svc.cluster.local', weight: 100 }],
    });
    expect(doc.command).toContain('--name http.8080');
  });

  it('an unknown stage is bad input (exit 2)', async () => {
    const run = await rollout(['explain', 'canary-33'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown stage "canary-33"');
  });
});

describe('the rollback target is written down, not inferred', async () => {
  it('a canary-0 stage (0 % to v2, listed first) does not move the rollback target from stable', async () => {
    const dir = repoCopy({ 'canary-0.yaml': canary0 });
    // The stage that would have been inferred: the first canary stage, now canary-0.
    expect(listStages(dir)[0]?.name).toBe('canary-0');
    const env = await testEnv({ ROLLOUT_ROOT: dir });
    for (const from of ['canary-0', 'canary-25', 'canary-100', 'stable']) {
      const run = await rollout(['rollback-target', from], env);
      expect([run.code, run.stdout.trim()], from).toEqual([0, 'stable']);
    }
    const blue = await rollout(['rollback-target', 'blue'], env);
    expect(blue.stdout.trim()).toBe('green');
    expect((await rollout(['lint'], env)).code).toBe(0);
  });
});

describe('one broken stage file does not break the others', async () => {
  const dir = repoCopy({ 'broken.yaml': broken, 'canary-11.yaml': meshWildcard });
  const env = await testEnv({ ROLLOUT_ROOT: dir });
  afterAll(async () => {
    await rollout(['local', 'down'], env);
  });

  it('expect, rollback-target and lint --stage of the other stages work; the broken ones are named', async () => {
    const expectRun = await rollout(['expect', 'canary-25', '--json'], env);
    expect(expectRun.code).toBe(0);
    expect(JSON.parse(expectRun.stdout).plan.randomChecks).toContain('canary-25');
    expect((await rollout(['rollback-target', 'broken'], env)).stdout.trim()).toBe('stable');
    expect((await rollout(['lint', '--stage', 'canary-25'], env)).code).toBe(0);
    const lintBroken = await rollout(['lint', '--stage', 'broken'], env);
    expect(lintBroken.code).toBe(1);
    expect(lintBroken.stderr).toContain('spec.http[1].fault: fault injection');
    const lintMesh = await rollout(['lint', '--stage', 'canary-11'], env);
    expect(lintMesh.stderr).toContain(
      'Istio rejects this: wildcard host * is not allowed for virtual services bound to the mesh gateway',
    );
    const stages = await rollout(['stages'], env);
    expect(stages.code).toBe(1);
    expect(stages.stdout).toContain('canary-25');
    expect(stages.stderr).toContain('stage broken left out');
  });

  it('apply and rollback of the other stages work; a refused stage changes nothing (exit 1)', async () => {
    const up = await rolloutOnFreePorts(['local', 'up'], env);
    expect(up.code, up.stderr).toBe(0);
    const apply = await rollout(['apply', 'canary-10', '--target', 'local'], env);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/verification of canary-10: passed/);
    for (const refusedStage of ['broken', 'canary-11']) {
      const refused = await rollout(['apply', refusedStage, '--target', 'local'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`the gateway refused stage ${refusedStage}`);
      expect(refused.stderr).toContain('the gateway keeps serving the previous stage');
      expect((await rollout(['status'], env)).stdout).toMatch(/^local: stage canary-10 /);
    }
    const back = await rollout(['rollback', '--target', 'local', '--no-verify'], env);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('rollback: canary-10 → stable');
  });
});
