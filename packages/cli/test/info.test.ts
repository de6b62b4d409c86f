/** The read-only commands: output and exit codes of the built CLI. */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listStages } from '@rollouts/stages';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, rollout, testEnv } from './helpers.js';

let env: NodeJS.ProcessEnv;
const stages = listStages(REPO_ROOT).map((s) => s.name);

beforeAll(async () => {
  env = await testEnv();
});

describe('rollout (read-only commands)', () => {
  it('stages prints every stage with its split; --json is machine-readable', async () => {
    const text = await rollout(['stages'], env);
    expect(text.code).toBe(0);
    for (const s of stages) expect(text.stdout).toMatch(new RegExp(`^${s}\\s`, 'm'));
    expect(text.stdout).toMatch(/canary-25\s+canary\s+v1 75 %, v2 25 %\s+x-canary: always → v2 100 %/);
    const json = await rollout(['stages', '--json'], env);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as {
      stage: string;
      default: { versions: Record<string, number> };
    }[];
    expect(rows.map((r) => r.stage)).toEqual(stages);
    expect(rows.find((r) => r.stage === 'blue-preview')?.default.versions).toEqual({ v1: 0.9, v2: 0.1 });
  });

  it('stages --markdown is the README table, one row per stage', async () => {
    const run = await rollout(['stages', '--markdown'], env);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^\| stage +\| strategy +\| requests without header +\| with override header +\| manifests +\|$/,
    );
    // each stage links both of its files
    expect(lines.find((l) => l.startsWith('| `canary-25`'))).toContain(
      '[VirtualService](istio/stages/canary-25.yaml) · [HTTPRoute](istio/stages/gateway-api/canary-25.yaml)',
    );
    expect(lines[1]).toMatch(/^\| -+ \| -+ \| -+ \| -+ \| -+ \|$/);
    expect(lines.slice(2).map((l) => /^\| `([a-z0-9-]+)`/.exec(l)?.[1])).toEqual(stages);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1); // padded like biome formats Markdown tables
    // Blue-green subsets are colours: each is shown with the version it runs.
    expect(lines.find((l) => l.startsWith('| `blue-preview`'))).toMatch(
      /\| green \(v1\) 90 %, blue \(v2\) 10 % +\| `x-preview: blue` → blue \(v2\) 100 % +\|/,
    );
  });

  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const block = /<!-- stages:begin -->\n([\s\S]*?)<!-- stages:end -->/.exec(readme)?.[1]?.trim() ?? '';
  it.skipIf(block === '')(
    'the stage table in README.md is what `rollout stages --markdown` prints',
    async () => {
      const run = await rollout(['stages', '--markdown'], env);
      expect(block).toBe(run.stdout.trim());
    },
  );

  it('field answers one fact a line for each API; a bad field or API is bad input (exit 2)', async () => {
    const field = async (...args: string[]) => (await rollout(['field', ...args], env)).stdout.trim();
    expect(await field('canary-25', 'file')).toBe(join(REPO_ROOT, 'istio', 'stages', 'canary-25.yaml'));
    expect(await field('canary-25', 'file', '--api', 'gateway-api')).toBe(
      join(REPO_ROOT, 'istio', 'stages', 'gateway-api', 'canary-25.yaml'),
    );
    expect(await field('canary-25', 'resource')).toBe('virtualservice.networking.istio.io/webapp');
    expect(await field('blue', 'resource', '--api', 'gateway-api')).toBe(
      'httproute.gateway.networking.k8s.io/webapp',
    );
    expect(await field('blue-preview', 'stage-header')).toBe('x-rollouts-stage');
    expect(await field('blue-preview', 'stage-header', '--api', 'gateway-api')).toBe('x-rollouts-stage');
    expect(await field('stable', 'hosts')).toBe('*');
    const bad = await rollout(['field', 'stable', 'colour'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('field must be one of file, resource, stage-header, hosts');
    expect((await rollout(['field', 'stable', 'file', '--api', 'ingress'], env)).code).toBe(2);
  });

  it('path prints the manifest; an unknown stage exits 2 and lists the valid ones', async () => {
    const ok = await rollout(['path', 'canary-25'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe(join(REPO_ROOT, 'istio', 'stages', 'canary-25.yaml'));
    const bad = await rollout(['path', 'canary-33'], env);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('unknown stage "canary-33"');
    expect(bad.stderr).toContain(stages.join(', '));
  });

  it('expect --json gives the split per profile and the sample plan k6 uses', async () => {
    const run = await rollout(['expect', 'canary-25', '--json'], env);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({
      stage: 'canary-25',
      strategy: 'canary',
      file: 'istio/stages/canary-25.yaml',
    });
    expect(doc.plan).toMatchObject({
      familyAlpha: 0.001,
      delta: 0.05,
      power: 0.999,
      alphaPerStage: 0.0002,
      deterministicN: 135,
    });
    const [dflt, header] = doc.profiles;
    expect(dflt).toMatchObject({
      name: 'default',
      headers: {},
      versions: { v1: 0.75, v2: 0.25 },
      responseHeaders: { 'x-rollouts-stage': 'canary-25' },
    });
    expect(dflt.check).toMatchObject({
      kind: 'binomial',
      version: 'v2',
      p0: 0.25,
      n: 3690,
      band: { lo: 826, hi: 1021 },
    });
    expect(header).toMatchObject({
      name: 'x-canary: always',
      headers: { 'x-canary': 'always' },
      versions: { v2: 1 },
    });
    expect(header.check).toMatchObject({ kind: 'deterministic', version: 'v2', n: 135 });
    const text = await rollout(['expect', 'blue-preview'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('pass if the v2 count is in 152..251');
    expect((await rollout(['expect', 'nope'], env)).code).toBe(2);
  });

  it('rollback-target: green after a blue-green stage, else stable', async () => {
    expect((await rollout(['rollback-target', 'blue-preview'], env)).stdout.trim()).toBe('green');
    expect((await rollout(['rollback-target', 'blue'], env)).stdout.trim()).toBe('green');
    expect((await rollout(['rollback-target', 'canary-75'], env)).stdout.trim()).toBe('stable');
    expect((await rollout(['rollback-target', 'nope'], env)).code).toBe(2);
  });

  it('lint is clean on the repository; an unreadable --rendered file is bad input', async () => {
    const ok = await rollout(['lint'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^lint: istio\/ is consistent/);
    const bad = await rollout(['lint', '--rendered', '/nonexistent/rendered.yaml'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--rendered /nonexistent/rendered.yaml: cannot read');
  });

  it('expect --json carries the requested plan (flags, else ROLLOUT_* env); defaults unchanged', async () => {
    type Doc = { plan: Record<string, number>; profiles: { check: { n: number } }[] };
    const doc = async (args: string[], extra: Record<string, string> = {}) => {
      const run = await rollout(['expect', 'canary-25', '--json', ...args], { ...env, ...extra });
      expect(run.stderr).toBe('');
      return JSON.parse(run.stdout) as Doc;
    };
    const base = await doc([]);
    expect(base.plan).toMatchObject({ familyAlpha: 0.001, delta: 0.05, power: 0.999 });
    const wide = await doc(['--delta', '0.1', '--power', '0.99', '--family-alpha', '0.01']);
    expect(wide.plan).toMatchObject({ familyAlpha: 0.01, delta: 0.1, power: 0.99, alphaPerStage: 0.002 });
    expect(wide.profiles[0]?.check.n).toBeLessThan(base.profiles[0]?.check.n ?? 0);
    const fromEnv = await doc([], {
      ROLLOUT_DELTA: '0.1',
      ROLLOUT_POWER: '0.99',
      ROLLOUT_FAMILY_ALPHA: '0.01',
    });
    expect(fromEnv.plan).toEqual(wide.plan);
    expect((await doc(['--delta', '0.05'], { ROLLOUT_DELTA: '0.1' })).plan.delta).toBe(0.05);
  });

  it('a plan value out of range is bad input (exit 2) on every command that takes it', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['expect', 'stable', '--power', '1'], {}, '--power must be a probability in [0.5, 1)'],
      [['verify', '--delta', '0'], {}, '--delta must be a share in [0.01, 0.5]'],
      [['apply', 'stable', '--family-alpha', 'x'], {}, '--family-alpha must be a probability in (0, 0.5]'],
      [['rollback', '--delta', '0.9'], {}, '--delta must be'],
      [['demo'], { ROLLOUT_FAMILY_ALPHA: '0.7' }, 'ROLLOUT_FAMILY_ALPHA must be a probability in (0, 0.5]'],
      [['verify'], { ROLLOUT_POWER: '0.999x' }, 'ROLLOUT_POWER must be'],
    ];
    for (const [args, extra, message] of cases) {
      const run = await rollout(args, { ...env, ...extra });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain(message);
    }
  });

  it('lint --stage lints one stage; an unknown stage exits 2 with the list', async () => {
    const ok = await rollout(['lint', '--stage', 'canary-25'], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^lint: istio\/stages\/canary-25\.yaml and istio\/base are consistent/);
    const bad = await rollout(['lint', '--stage', 'canary-33'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`unknown stage "canary-33"; valid stages: ${stages.join(', ')}`);
  });

  it('lint reports findings of a rendered chart and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rollout-lint-'));
    const file = join(dir, 'rendered.yaml');
    // A chart that renders only v1: the subsets v2 and blue select nothing.
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Service',
        'metadata: {name: webapp}',
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: {name: webapp-v1}',
        'spec:',
        '  template:',
        '    metadata:',
        '      labels: {app: webapp, version: v1, color: green}',
      ].join('\n'),
    );
    const run = await rollout(['lint', '--rendered', file], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/subset-selects-nothing/);
  });

  it('bad input: unknown command, unknown option, missing argument all exit 2; help exits 0', async () => {
    const unknown = await rollout(['deploy'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "deploy"');
    const option = await rollout(['stages', '--bogus'], env);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/Unknown option '--bogus'/);
    expect((await rollout(['path'], env)).code).toBe(2);
    expect((await rollout([], env)).code).toBe(2);
    const help = await rollout(['help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: rollout <command>');
    // --force-weights is a test hook (packages/local-mesh/README.md), not advertised to users.
    for (const args of [['--help'], ['apply', '--help']]) {
      const run = await rollout(args, env);
      expect(run.code).toBe(0);
      expect(run.stdout).not.toMatch(/force-weights|test hook/i);
    }
    const target = await rollout(['status', '--target', 'moon'], env);
    expect(target.code).toBe(2);
    expect(target.stderr).toContain('--target must be local or cluster');
  });

  it('local down with nothing running names the pid directory it looked in (ROLLOUT_STATE_DIR)', async () => {
    const run = await rollout(['local', 'down'], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`(no pid files in ${join(env.ROLLOUT_STATE_DIR as string, 'local')}/)`);
    expect(run.stdout).not.toContain('.state/local');
  });

  it('status --target local exits 1 when nothing runs, also with --json', async () => {
    const run = await rollout(['status', '--target', 'local'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the local path is not running: make local-up');
    const json = await rollout(['status', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ target: 'local', running: false });
  });

  it('the cluster path uses KUBE_CONTEXT, else kind-<CLUSTER_NAME or rollouts>', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'rollout-bin-'));
    const kubectl = join(bin, 'kubectl');
    // Answers only for the context given; prints it as the stage label's source.
    writeFileSync(
      kubectl,
      '#!/bin/sh\n[ "$1" = --context ] || { echo "no --context" >&2; exit 3; }\ncase "$2" in kind-rollouts) printf canary-10 ;; kind-other) printf canary-50 ;; mine) printf blue ;; *) echo "context $2" >&2; exit 3 ;; esac\n',
    );
    chmodSync(kubectl, 0o755);
    const withBin = { ...env, PATH: `${bin}:${env.PATH}` };
    const stageOf = async (extra: Record<string, string>) => {
      const run = await rollout(['status', '--target', 'cluster'], { ...withBin, ...extra });
      expect(run.stderr).toBe('');
      return /^cluster: stage (\S+)/.exec(run.stdout)?.[1];
    };
    expect(await stageOf({})).toBe('canary-10');
    expect(await stageOf({ CLUSTER_NAME: 'other' })).toBe('canary-50');
    expect(await stageOf({ CLUSTER_NAME: 'other', KUBE_CONTEXT: 'mine' })).toBe('blue');
    // No --target and no TARGET: defaults.env's TARGET, the cluster, as for `make <stage>`.
    const untargeted: NodeJS.ProcessEnv = { ...withBin };
    delete untargeted.TARGET;
    const run = await rollout(['status'], untargeted);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^cluster: stage canary-10/);
  });

  it('status --target cluster reads the rollouts/stage label with kubectl', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'rollout-bin-'));
    const kubectl = join(bin, 'kubectl');
    writeFileSync(
      kubectl,
      '#!/bin/sh\ncase "$*" in *"-n rollouts get virtualservice.networking.istio.io/webapp -o jsonpath={.metadata.labels.rollouts/stage}"*) printf canary-50 ;; *) exit 3 ;; esac\n',
    );
    chmodSync(kubectl, 0o755);
    const run = await rollout(['status', '--target', 'cluster'], { ...env, PATH: `${bin}:${env.PATH}` });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^cluster: stage canary-50 \(canary\)/);
    expect(run.stdout).toContain('default: v1 50 %, v2 50 %');
  });
});
