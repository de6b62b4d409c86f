// lint: clean on the repository's real files; each rule found, with its message, in a fixture broken for it.
// A fixture is test/fixtures/repo (a small clean repository) with test/fixtures/lint/<rule>/ copied over it.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type Finding, findRepoRoot, type LintRule, lint, lintErrors } from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const fixtures = join(here, 'fixtures');
const temp = mkdtempSync(join(tmpdir(), 'stages-lint-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

function fixtureRepo(rule: string | null): string {
  const dir = join(temp, rule ?? 'clean');
  cpSync(join(fixtures, 'repo'), dir, { recursive: true });
  if (rule) cpSync(join(fixtures, 'lint', rule), dir, { recursive: true, force: true });
  return dir;
}

describe('lint on the repository', () => {
  const root = findRepoRoot(here);

  it('finds nothing in istio/ against the chart values', () => {
    expect(lint(root)).toEqual([]);
  });

  // The chart as helm renders it (the pinned helm in ./bin, installed by `make tools` / the test harness).
  const helm = join(root, 'bin', 'helm');
  it.runIf(existsSync(helm))('finds nothing against the chart rendered by helm', () => {
    // versions.env is bash (KUBE_VERSION is derived from the kind node image), so let bash read it.
    const kubeVersion = execFileSync('bash', ['-c', 'source versions.env && printf %s "$KUBE_VERSION"'], {
      cwd: root,
      encoding: 'utf8',
    });
    const rendered = execFileSync(
      helm,
      [
        'template',
        'webapp',
        join(root, 'charts', 'webapp'),
        '--namespace',
        'rollouts',
        '--kube-version',
        kubeVersion,
      ],
      { encoding: 'utf8' },
    );
    expect(rendered).toContain('kind: Deployment');
    expect(lint(root, { renderedChart: rendered })).toEqual([]);
  });
});

describe('lint rules, one broken fixture each', () => {
  it('the clean fixture is clean', () => {
    expect(lint(fixtureRepo(null))).toEqual([]);
  });

  const cases: [LintRule, Partial<Finding>[]][] = [
    [
      'weights-sum',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.http[1].route',
          message:
            'weights add up to 90, not 100 (80 + 10); Istio accepts it and splits in proportion (88.89 % / 11.11 %), but write percentages',
          severity: 'warning',
        },
      ],
    ],
    [
      'host-unreachable',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.hosts',
          message:
            'Host localhost (http://localhost:8080) reaches no virtual host of the gateway (domains ["localhost.rollouts.svc.cluster.local","webapp.rollouts.svc.cluster.local"]): Istio reads a host without a dot as a short name (localhost is localhost.rollouts.svc.cluster.local); write "*" to take every Host the Gateway accepts',
          severity: 'error',
        },
      ],
    ],
    [
      'rollback-target',
      [
        {
          file: 'istio/stages',
          field: 'metadata.labels.rollouts/stable',
          message:
            '2 canary stages are labelled rollouts/stable: "true" (canary-10, stable): exactly one is the rollback target',
        },
      ],
    ],
    [
      'unknown-subset',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.http[0].route[0].destination.subset',
          message:
            'subset "v2-typo" is not defined in istio/base/destination-rule.yaml (defined: v1, v2, green, blue)',
        },
        { file: 'istio/stages/canary-10.yaml', field: 'spec.http[1].route[1].destination.subset' },
      ],
    ],
    [
      'subset-selects-nothing',
      [
        {
          file: 'istio/base/destination-rule.yaml',
          field: 'spec.subsets[3].labels',
          message:
            'subset "blue" ({"color":"purple"}) matches no workload of charts/webapp/values.yaml (versions: v1, v2)',
        },
      ],
    ],
    [
      'host-not-service',
      [
        {
          file: 'istio/stages/stable.yaml',
          field: 'spec.http[1].route[0].destination.host',
          message:
            'host "webapp-v1.rollouts.svc.cluster.local" is not the chart\'s Service "webapp.rollouts.svc.cluster.local"',
        },
      ],
    ],
    [
      'no-gateway',
      [
        {
          file: 'istio/stages/green.yaml',
          field: 'spec.gateways',
          message:
            'not bound to the Gateway "rollouts/webapp-gateway" (gateways: ["mesh"]): the ingress gateway gets no route from this stage and answers 404 to every request',
        },
      ],
    ],
    [
      'stage-label',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'metadata.labels.rollouts/stage',
          message: 'label "canary-20" differs from the file name "canary-10"',
        },
      ],
    ],
    [
      'stage-header',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.http[0].headers.response.set.x-rollouts-stage',
          message:
            'the route does not set the response header x-rollouts-stage; set it to "canary-10" (the rollouts/stage label), so scripts/stage.sh and the verifiers can tell when the gateway serves this stage',
        },
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.http[1].headers.response.set.x-rollouts-stage',
          message:
            'x-rollouts-stage "canary-25" differs from the rollouts/stage label "canary-10": answers would name another stage',
        },
      ],
    ],
    [
      'virtual-service-name',
      [
        {
          file: 'istio/stages/green.yaml',
          field: 'metadata.name',
          message:
            'VirtualService "webapp-green" differs from the other stages\' "webapp": applying this stage would not replace the previous one',
        },
      ],
    ],
    [
      'manifest',
      [
        {
          file: 'istio/stages/canary-10.yaml',
          field: 'spec.http[1].mirror',
          message: expect.stringMatching(
            /^mirroring \(a copy of each request to another destination\): that changes what a request does/,
          ) as unknown as string,
        },
      ],
    ],
  ];

  for (const [rule, expected] of cases) {
    it(`${rule}: found with its message, and nothing else`, () => {
      const findings = lint(fixtureRepo(rule));
      expect(findings).toHaveLength(expected.length);
      expect(findings).toEqual(expected.map((e) => expect.objectContaining({ rule, ...e })));
    });
  }

  it('a stage header that is added (appended), not set, is found', () => {
    const dir = fixtureRepo(null);
    const file = join(dir, 'istio', 'stages', 'green.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace('set: { x-rollouts-stage', 'add: { x-rollouts-stage'),
    );
    expect(lint(dir)).toEqual([
      {
        rule: 'stage-header',
        severity: 'error',
        file: 'istio/stages/green.yaml',
        field: 'spec.http[0].headers.response.add.x-rollouts-stage',
        message:
          'x-rollouts-stage is added (appended to what the app sends), not set; use set: x-rollouts-stage: green, so scripts/stage.sh and the verifiers can tell when the gateway serves this stage',
      },
    ]);
  });

  it('stage: only that stage file and istio/base are linted', () => {
    // canary-10 is broken (weights); green is clean: each linted alone.
    const dir = fixtureRepo('weights-sum');
    expect(lintErrors(lint(dir))).toEqual([]); // a warning refuses nothing
    expect(lint(dir, { stage: 'canary-10' }).map((f) => [f.rule, f.file])).toEqual([
      ['weights-sum', 'istio/stages/canary-10.yaml'],
    ]);
    expect(lint(dir, { stage: 'green' })).toEqual([]);
    // A broken file of another stage is not reported for this one; its own broken file is.
    const manifest = fixtureRepo('manifest');
    expect(lint(manifest, { stage: 'stable' })).toEqual([]);
    expect(lint(manifest, { stage: 'canary-10' }).map((f) => f.rule)).toEqual(['manifest']);
    // istio/base findings concern every stage.
    const base = fixtureRepo('subset-selects-nothing');
    expect(lint(base, { stage: 'stable' }).map((f) => f.rule)).toEqual(['subset-selects-nothing']);
    // The shared VirtualService name is read from every stage, also when linting one.
    const vsName = fixtureRepo('virtual-service-name');
    expect(lint(vsName, { stage: 'green' }).map((f) => f.rule)).toEqual(['virtual-service-name']);
    expect(lint(vsName, { stage: 'stable' })).toEqual([]);
  });

  it('stage: an unknown stage throws UnknownStageError listing the stages', () => {
    expect(() => lint(fixtureRepo(null), { stage: 'canary-33' })).toThrow(
      /unknown stage "canary-33"; valid stages: .*canary-10/,
    );
  });

  it('a subset that matches no pod of the rendered chart is found from the rendered chart too', () => {
    const rendered = [
      'apiVersion: v1\nkind: Service\nmetadata: {name: webapp}\n',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: webapp-v1}\nspec:\n  template:\n    metadata:\n      labels: {app: webapp, version: v1, color: green}\n',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: webapp-v2}\nspec:\n  template:\n    metadata:\n      labels: {app: webapp, version: v2}\n',
    ].join('---\n');
    expect(lint(fixtureRepo(null), { renderedChart: rendered })).toEqual([
      expect.objectContaining({
        rule: 'subset-selects-nothing',
        field: 'spec.subsets[3].labels',
        message:
          'subset "blue" ({"color":"blue"}) matches no workload of the rendered chart (versions: v1, v2)',
      }),
    ]);
  });

  it('a Service other than the one the routes name is found from the rendered chart', () => {
    const rendered =
      'apiVersion: v1\nkind: Service\nmetadata: {name: shop}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {metadata: {labels: {version: v1, color: green}}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\nspec: {template: {metadata: {labels: {version: v2, color: blue}}}}\n';
    const findings = lint(fixtureRepo(null), { renderedChart: rendered });
    expect(new Set(findings.map((f) => f.rule))).toEqual(new Set(['host-not-service']));
    expect(findings.some((f) => f.message.includes('"shop.rollouts.svc.cluster.local"'))).toBe(true);
  });
});
