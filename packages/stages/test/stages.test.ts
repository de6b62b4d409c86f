// The repository's real stages: what each one means, derived from istio/stages/*.yaml through the public API,
// checked against the meanings users rely on (the README's stage table): the oracle is written here, in the
// test, on purpose.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  expectedSplit,
  findRepoRoot,
  formatSplit,
  listStages,
  loadDestinationRule,
  loadStage,
  loadWorkloads,
  ManifestError,
  profileRequest,
  profiles,
  stageRouteTable,
  stageTable,
  UnknownStageError,
} from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = findRepoRoot(here);

type Expect = {
  strategy: 'canary' | 'blue-green';
  v2: number;
  subsets: Record<string, number>;
  header?: [string, string, string];
};

const DESIGN: Record<string, Expect> = {
  stable: { strategy: 'canary', v2: 0, subsets: { v1: 1, v2: 0 }, header: ['x-canary', 'always', 'v2'] },
  'canary-10': {
    strategy: 'canary',
    v2: 0.1,
    subsets: { v1: 0.9, v2: 0.1 },
    header: ['x-canary', 'always', 'v2'],
  },
  'canary-25': {
    strategy: 'canary',
    v2: 0.25,
    subsets: { v1: 0.75, v2: 0.25 },
    header: ['x-canary', 'always', 'v2'],
  },
  'canary-50': {
    strategy: 'canary',
    v2: 0.5,
    subsets: { v1: 0.5, v2: 0.5 },
    header: ['x-canary', 'always', 'v2'],
  },
  'canary-75': {
    strategy: 'canary',
    v2: 0.75,
    subsets: { v1: 0.25, v2: 0.75 },
    header: ['x-canary', 'always', 'v2'],
  },
  'canary-100': { strategy: 'canary', v2: 1, subsets: { v1: 0, v2: 1 } },
  green: { strategy: 'blue-green', v2: 0, subsets: { green: 1, blue: 0 } },
  'blue-preview': {
    strategy: 'blue-green',
    v2: 0.1,
    subsets: { green: 0.9, blue: 0.1 },
    header: ['x-preview', 'blue', 'blue'],
  },
  blue: { strategy: 'blue-green', v2: 1, subsets: { green: 0, blue: 1 } },
};

describe('repository root', () => {
  it('is found from a nested directory', () => {
    expect(findRepoRoot(join(root, 'packages', 'stages', 'src'))).toBe(root);
  });

  it('is refused where there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'no-root-'));
    try {
      expect(() => findRepoRoot(dir)).toThrow(/no pnpm-workspace.yaml found/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('the real stages', () => {
  it('are listed from the files, canary first then blue-green, by share to the new version', () => {
    expect(listStages(root).map((s) => s.name)).toEqual([
      'stable',
      'canary-10',
      'canary-25',
      'canary-50',
      'canary-75',
      'canary-100',
      'green',
      'blue-preview',
      'blue',
    ]);
  });

  for (const [name, want] of Object.entries(DESIGN)) {
    it(`${name}: strategy, default split and every override profile`, () => {
      const stage = loadStage(root, name);
      expect(stage.strategy).toBe(want.strategy);
      expect(stage.stageLabel).toBe(name);
      expect(stage.virtualService.metadata.name).toBe('webapp');

      const def = expectedSplit(stage);
      expect(def.routeIndex).not.toBeNull();
      expect(def.subsets).toEqual(want.subsets);
      expect(def.versions.v2 ?? 0).toBeCloseTo(want.v2, 12);
      expect(def.versions.v1 ?? 0).toBeCloseTo(1 - want.v2, 12);
      expect(def.unresolved).toEqual({});

      const ps = profiles(stage);
      expect(ps[0]).toEqual({ name: 'default', headers: {} });
      if (want.header) {
        const [h, value, subset] = want.header;
        expect(ps.slice(1)).toEqual([{ name: `${h}: ${value}`, headers: { [h]: value } }]);
        const split = expectedSplit(stage, ps[1]);
        expect(split.subsets).toEqual({ [subset]: 1 });
        expect(split.versions).toEqual({ v2: 1 });
      } else {
        expect(ps).toHaveLength(1);
      }
      // The header of the other strategy changes nothing.
      const foreign: Record<string, string> =
        want.strategy === 'canary' ? { 'x-preview': 'blue' } : { 'x-canary': 'always' };
      expect(expectedSplit(stage, { name: 'foreign', headers: foreign }).subsets).toEqual(want.subsets);
    });
  }

  it('stage table rows carry every profile, in walk-through order', () => {
    const rows = stageTable(root);
    expect(rows.map((r) => r.stage)).toEqual(listStages(root).map((s) => s.name));
    const preview = rows.find((r) => r.stage === 'blue-preview');
    expect(preview?.file).toBe('istio/stages/blue-preview.yaml');
    // Blue-green subsets are colours: shown with the version each selects, in version order.
    expect(preview?.default.subsetVersions).toEqual({ green: ['v1'], blue: ['v2'] });
    expect(formatSplit(preview?.default ?? ({} as never))).toBe('green (v1) 90 %, blue (v2) 10 %');
    expect(preview?.overrides.map((o) => [o.profile.name, formatSplit(o.split)])).toEqual([
      ['x-preview: blue', 'blue (v2) 100 %'],
    ]);
    expect(formatSplit(rows.find((r) => r.stage === 'green')?.default ?? ({} as never))).toBe(
      'green (v1) 100 %, blue (v2) 0 %',
    );
    // Canary subsets are named after their versions: versions alone.
    expect(formatSplit(rows.find((r) => r.stage === 'canary-25')?.default ?? ({} as never))).toBe(
      'v1 75 %, v2 25 %',
    );
    expect(rows.find((r) => r.stage === 'canary-100')?.overrides).toEqual([]);
  });

  it("a profile's request: GET / with Host localhost unless the profile says otherwise", () => {
    const headers = { 'x-canary': 'always' };
    expect(profileRequest({ name: 'x-canary: always', headers })).toEqual({
      method: 'GET',
      target: '/',
      authority: 'localhost',
      headers,
    });
    expect(
      profileRequest({ name: 'p', headers: {}, method: 'POST', path: '/api', host: 'shop.example' }),
    ).toEqual({ method: 'POST', target: '/api', authority: 'shop.example', headers: {} });
  });

  it('the DestinationRule and the chart workloads resolve every subset', () => {
    const dr = loadDestinationRule(root);
    expect(dr.spec.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'green', 'blue']);
    const workloads = loadWorkloads(root);
    expect(workloads.map((w) => [w.version, w.labels.color])).toEqual([
      ['v1', 'green'],
      ['v2', 'blue'],
    ]);
    expect(workloads[0]?.labels).toMatchObject({
      app: 'webapp',
      version: 'v1',
      'app.kubernetes.io/name': 'webapp',
    });
  });
});

describe('bad input', () => {
  it('an unknown stage lists the valid ones', () => {
    expect(() => loadStage(root, 'canary-30')).toThrow(UnknownStageError);
    expect(() => loadStage(root, 'canary-30')).toThrow(
      /unknown stage "canary-30"; valid stages: stable, canary-10, .*blue$/,
    );
  });

  it('timeout, retries and exportTo go into the route table and change nothing about where requests go', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stages-'));
    try {
      writeFileSync(join(dir, 'pnpm-workspace.yaml'), 'packages: []\n');
      const stagesDir = join(dir, 'istio', 'stages');
      mkdirSync(stagesDir, { recursive: true });
      const host = 'webapp.rollouts.svc.cluster.local';
      const vs = (spec: string, route: string) =>
        `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, namespace: rollouts, labels: {rollouts/strategy: canary}}\nspec: {hosts: ["*"], gateways: [rollouts/webapp-gateway], ${spec}http: [{${route}route: [{destination: {host: ${host}, subset: v1}, weight: 70}, {destination: {host: ${host}, subset: v2}, weight: 30}]}]}\n`;
      writeFileSync(join(stagesDir, 'plain.yaml'), vs('', ''));
      writeFileSync(
        join(stagesDir, 'extra.yaml'),
        vs('exportTo: ["*"], ', 'timeout: 5s, retries: {attempts: 3, perTryTimeout: 0.5s}, '),
      );
      writeFileSync(join(stagesDir, 'private.yaml'), vs('exportTo: ["."], ', ''));
      const plain = loadStage(dir, 'plain');
      const extra = loadStage(dir, 'extra');
      expect(expectedSplit(extra)).toEqual(expectedSplit(plain));
      expect(expectedSplit(plain).subsets).toEqual({ v1: 0.7, v2: 0.3 });
      const action = (name: string) =>
        stageRouteTable(loadStage(dir, name)).routeConfiguration.virtualHosts[0]?.routes[0]?.route;
      expect(action('plain')).toMatchObject({ timeout: '0s', retryPolicy: { numRetries: 2 } });
      expect(action('extra')).toMatchObject({
        timeout: '5s',
        maxGrpcTimeout: '5s',
        retryPolicy: { numRetries: 3, perTryTimeout: '0.500s' },
      });
      // exportTo ".": visible in its own namespace only, not to the ingress gateway in istio-system.
      const hidden = expectedSplit(loadStage(dir, 'private'));
      expect(hidden.routeIndex).toBeNull();
      expect(hidden.noRouteReason).toMatch(
        /exportTo \["\."\] hides the VirtualService from the ingress gateway/,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('a broken manifest names the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stages-'));
    try {
      writeFileSync(join(dir, 'pnpm-workspace.yaml'), 'packages: []\n');
      const stagesDir = join(dir, 'istio', 'stages');
      const file = join(stagesDir, 'odd.yaml');
      mkdirSync(stagesDir, { recursive: true });
      const cases: [string, RegExp][] = [
        ['kind: Service\napiVersion: v1\n', /odd\.yaml: kind: must be VirtualService/],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: rolling}}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}}]}]}\n',
          /metadata\.labels\.rollouts\/strategy: must be one of canary, blue-green, got "rolling"/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{match: [{queryParams: {a: {exact: b}}}], route: [{destination: {host: a}}]}]}\n',
          /spec\.http\[0\]\.match\[0\]\.queryParams: a match on query parameters is not emulated/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{match: [{uri: {regex: "(?=x)a"}}], route: [{destination: {host: a}}]}]}\n',
          /spec\.http\[0\]\.match\[0\]\.uri\.regex: Istio rejects this: "uri": error parsing regexp: invalid or unsupported Perl syntax/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}, weight: -1}]}]}\n',
          /spec\.http\[0\]\.route\[0\]\.weight: Istio rejects this: weight -1 < 0/,
        ],
        // Response headers: set and add are emulated; anything else about headers is refused.
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{headers: {request: {set: {x-a: b}}}, route: [{destination: {host: a}}]}]}\n',
          /spec\.http\[0\]\.headers\.request: request header manipulation is not emulated/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{headers: {response: {remove: [Host]}}, route: [{destination: {host: a}}]}]}\n',
          /spec\.http\[0\]\.headers\.response\.remove\[0\]: Istio rejects this: invalid header "Host": cannot set Host header/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{route: [{destination: {host: a}, headers: {response: {set: {x-a: b}}}}]}]}\n',
          /spec\.http\[0\]\.route\[0\]\.headers: header operations on a destination are not emulated/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{headers: {response: {set: {x-a: 1}}}, route: [{destination: {host: a}}]}]}\n',
          /spec\.http\[0\]\.headers\.response\.set\.x-a: must be a string, got 1/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{headers: {response: {add: {x-a: "%START_TIME%"}}}, route: [{destination: {host: a}}]}]}\n',
          /headers\.response\.add\.x-a: '%' starts an Envoy command in a header value; not emulated/,
        ],
        [
          'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{headers: {response: {set: {X-A: b, x-a: c}}}, route: [{destination: {host: a}}]}]}\n',
          /headers\.response\.set\.x-a: "x-a" is given twice/,
        ],
        ['a: [1, 2\n', /odd\.yaml: \(file\): invalid YAML/],
        // Route fields that change what a request does are refused, each with its reason.
        ...(
          [
            ['corsPolicy', '{allowOrigins: [{exact: "https://x"}]}', /CORS policy/],
            ['mirror', '{host: a, subset: v2}', /mirroring/],
            ['fault', '{abort: {httpStatus: 500, percentage: {value: 1}}}', /fault injection/],
            ['rewrite', '{uri: /v2}', /URI \/ authority rewriting/],
            ['redirect', '{uri: /elsewhere}', /redirects/],
          ] as const
        ).map(([key, value, what]): [string, RegExp] => [
          `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: webapp, labels: {rollouts/strategy: canary}}\nspec: {hosts: [a], http: [{${key}: ${value}, route: [{destination: {host: a}}]}]}\n`,
          new RegExp(
            `odd\\.yaml: spec\\.http\\[0\\]\\.${key}: ${what.source}.*changes what a request does.*the local and cluster paths would differ`,
          ),
        ]),
      ];
      for (const [text, message] of cases) {
        writeFileSync(file, text);
        let error: unknown;
        try {
          loadStage(dir, 'odd');
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ManifestError);
        expect((error as Error).message).toMatch(message);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
