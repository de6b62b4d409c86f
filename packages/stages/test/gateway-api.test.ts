// The Gateway API stages (istio/stages/gateway-api/*.yaml) through the public API: each HTTPRoute means what its
// VirtualService means (both derived from their files), what the loader refuses and why, and Envoy's matching of
// the route table they compile to. The size limits of both kinds of stage file (issue #16) are here too.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  compileRouteTable,
  expectedSplit,
  findRepoRoot,
  gatewayApiContext,
  httpRouteProfiles,
  httpRouteStageNames,
  httpRouteStageRouteTable,
  httpRouteTable,
  httpRouteTableFromFile,
  lintGatewayApi,
  loadHttpRouteStage,
  loadHttpRouteStageFile,
  loadStage,
  loadStageFile,
  MAX_OBJECT_BYTES,
  ManifestError,
  type Profile,
  parseHttpRoute,
  profiles,
  routeRequest,
  type Split,
  splitFromTable,
  stageNames,
  stageTable,
} from '../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = findRepoRoot(here);
const work = mkdtempSync(join(tmpdir(), 'stages-gateway-api-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Probabilities per version, 0-weight destinations left out (Envoy drops them too). */
function live(split: Split): Record<string, number> {
  return Object.fromEntries(Object.entries(split.versions).filter(([, p]) => p > 0));
}

const stageHeader = (t: ReturnType<typeof httpRouteStageRouteTable>, index: number) =>
  t.routeConfiguration.virtualHosts[0]?.routes[index]?.responseHeadersToAdd?.find(
    (h) => h.header.key === 'x-rollouts-stage',
  )?.header.value;

describe('every stage has both files, and they agree', () => {
  it('the same stage names in istio/stages/ and istio/stages/gateway-api/', () => {
    expect(httpRouteStageNames(root)).toEqual(stageNames(root));
    expect(httpRouteStageNames(root).length).toBeGreaterThanOrEqual(9);
  });

  for (const name of stageNames(root)) {
    it(`${name}: the same split for every request profile of either file, the same labels and stage header`, () => {
      const vs = loadStage(root, name);
      const route = loadHttpRouteStage(root, name);
      const table = httpRouteStageRouteTable(route);
      const all: Profile[] = [...profiles(vs), ...httpRouteProfiles(route)];
      expect(all.length).toBeGreaterThanOrEqual(2);
      for (const profile of all) {
        const fromVs = expectedSplit(vs, profile);
        const fromRoute = splitFromTable(table, profile);
        expect(fromRoute.routeIndex === null, profile.name).toBe(fromVs.routeIndex === null);
        expect(live(fromRoute), `${name} ${profile.name}`).toEqual(live(fromVs));
        expect(fromRoute.unresolved).toEqual({});
        expect(Object.values(live(fromRoute)).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      }
      expect(route.strategy).toBe(vs.strategy);
      expect(route.stageLabel).toBe(name);
      expect(route.httpRoute.metadata.labels['rollouts/stable']).toBe(
        vs.virtualService.metadata.labels['rollouts/stable'],
      );
      const routes = table.routeConfiguration.virtualHosts[0]?.routes ?? [];
      expect(routes.length).toBeGreaterThan(0);
      for (const [i] of routes.entries()) expect(stageHeader(table, i)).toBe(name);
    });
  }

  it('a changed weight in one HTTPRoute file makes the pair disagree (the comparison can fail)', () => {
    const route = loadHttpRouteStage(root, 'canary-25');
    const rules = route.httpRoute.spec.rules.map((r) => ({
      ...r,
      backendRefs: r.backendRefs.map((b) =>
        b.name === 'webapp-v2' && r.backendRefs.length > 1 ? { ...b, weight: 30 } : b,
      ),
    }));
    const ctx = gatewayApiContext(root);
    const table = httpRouteTable(
      { ...route.httpRoute, spec: { ...route.httpRoute.spec, rules } },
      ctx.services,
      ctx.workloads,
    );
    expect(live(splitFromTable(table))).not.toEqual(live(expectedSplit(loadStage(root, 'canary-25'))));
  });

  it('the local gateway entry point: a file to the same route table', () => {
    const file = join(root, 'istio', 'stages', 'gateway-api', 'blue-preview.yaml');
    const table = httpRouteTableFromFile(file, { root });
    expect(table.routeConfiguration.name).toBe('http.80');
    expect(table.clusters.map((c) => [c.name, c.endpoints.map((e) => e.version)])).toEqual([
      ['outbound|80||webapp-blue.rollouts.svc.cluster.local', ['v2']],
      ['outbound|80||webapp-green.rollouts.svc.cluster.local', ['v1']],
    ]);
  });
});

function routeFile(name: string, spec: unknown, extra: Record<string, unknown> = {}): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {
        name: 'webapp',
        namespace: 'rollouts',
        labels: { 'rollouts/stage': name, 'rollouts/strategy': 'canary' },
      },
      spec,
      ...extra,
    }),
  );
  return file;
}

function refusal(name: string, rules: unknown[]): ManifestError {
  try {
    loadHttpRouteStageFile(root, routeFile(name, { parentRefs: [{ name: 'webapp-gateway' }], rules }));
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
  throw new Error('accepted');
}

const backend = [{ name: 'webapp-v1', port: 80 }];

describe('what is refused, with the field named', () => {
  it.each([
    ['RequestRedirect', { type: 'RequestRedirect', requestRedirect: { statusCode: 301 } }],
    ['URLRewrite', { type: 'URLRewrite', urlRewrite: { hostname: 'x' } }],
    [
      'RequestMirror',
      { type: 'RequestMirror', requestMirror: { backendRef: { name: 'webapp-v2', port: 80 } } },
    ],
    ['CORS', { type: 'CORS', cors: { allowOrigins: ['*'] } }],
  ])('filter %s: unsupported', (type, filter) => {
    const e = refusal(`filter-${type}`, [{ filters: [filter], backendRefs: backend }]);
    expect(e.kind).toBe('unsupported');
    expect(e.field).toBe('spec.rules[0].filters[0].type');
    expect(e.message).toContain(type);
  });

  it('timeouts and retry: unsupported', () => {
    expect(refusal('timeouts', [{ timeouts: { request: '1s' }, backendRefs: backend }]).field).toBe(
      'spec.rules[0].timeouts',
    );
    expect(refusal('retry', [{ retry: { attempts: 1 }, backendRefs: backend }]).kind).toBe('unsupported');
  });

  it('what the API server refuses (the CRD): invalid, with the rule', () => {
    const noSlash = refusal('no-slash', [
      { matches: [{ path: { type: 'PathPrefix', value: 'api' } }], backendRefs: backend },
    ]);
    expect(noSlash.kind).toBe('invalid');
    expect(noSlash.field).toBe('spec.rules[0].matches[0].path.value');
    expect(noSlash.message).toContain("start with '/'");
    expect(refusal('method', [{ matches: [{ method: 'FETCH' }], backendRefs: backend }]).field).toBe(
      'spec.rules[0].matches[0].method',
    );
    expect(refusal('weight', [{ backendRefs: [{ name: 'webapp-v1', port: 80, weight: -1 }] }]).kind).toBe(
      'invalid',
    );
    const many = refusal(
      'many-rules',
      Array.from({ length: 17 }, () => ({ backendRefs: backend })),
    );
    expect(many.field).toBe('spec.rules');
    expect(many.message).toContain('at most 16');
  });

  it('a backend that is not one of the chart Services, and a rule whose backends all weigh 0: unsupported', () => {
    const ctx = gatewayApiContext(root);
    const route = parseHttpRoute(
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'webapp', namespace: 'rollouts' },
        spec: {
          parentRefs: [{ name: 'webapp-gateway' }],
          rules: [{ backendRefs: [{ name: 'other', port: 80 }] }],
        },
      },
      'x.yaml',
    );
    expect(() => httpRouteTable(route, ctx.services, ctx.workloads)).toThrow(
      /not one of the chart's Services/,
    );
    expect(refusal('zero', [{ backendRefs: [{ name: 'webapp-v1', port: 80, weight: 0 }] }]).message).toMatch(
      /Istio answers 500/,
    );
  });
});

describe("the route table's matching (Envoy's rules)", () => {
  const ctx = gatewayApiContext(root);
  const table = (rules: unknown[]) =>
    compileRouteTable(
      httpRouteTable(
        parseHttpRoute(
          {
            apiVersion: 'gateway.networking.k8s.io/v1',
            kind: 'HTTPRoute',
            metadata: { name: 'webapp', namespace: 'rollouts' },
            spec: { parentRefs: [{ name: 'webapp-gateway' }], rules },
          },
          'x.yaml',
        ),
        ctx.services,
        ctx.workloads,
      ),
    );
  const to = (
    t: ReturnType<typeof table>,
    target: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ) => {
    const d = routeRequest(t, { method, target, authority: 'localhost:8080', headers });
    return d.kind === 'route' ? d.route.name : d.kind;
  };

  it('PathPrefix matches at a "/" boundary, a trailing "/" ignored; Exact before PathPrefix whatever the order', () => {
    const t = table([
      { name: 'prefix', matches: [{ path: { type: 'PathPrefix', value: '/api/' } }], backendRefs: backend },
      { name: 'exact', matches: [{ path: { type: 'Exact', value: '/api/v2' } }], backendRefs: backend },
      { name: 'rest', backendRefs: backend },
    ]);
    expect(to(t, '/api')).toBe('prefix');
    expect(to(t, '/api/x')).toBe('prefix');
    expect(to(t, '/apix')).toBe('rest');
    expect(to(t, '/api/v2')).toBe('exact');
    expect(to(t, '/api/v2?x=1')).toBe('exact');
  });

  it('header, method and query matches; more specific rules first', () => {
    const t = table([
      { name: 'plain', backendRefs: backend },
      { name: 'query', matches: [{ queryParams: [{ name: 'debug', value: '1' }] }], backendRefs: backend },
      { name: 'post', matches: [{ method: 'POST' }], backendRefs: backend },
      {
        name: 'header',
        matches: [{ headers: [{ name: 'x-canary', value: 'always' }] }],
        backendRefs: backend,
      },
    ]);
    expect(to(t, '/')).toBe('plain');
    expect(to(t, '/', {}, 'POST')).toBe('post');
    expect(to(t, '/', { 'x-canary': 'always' })).toBe('header');
    expect(to(t, '/?debug=1&debug=2')).toBe('query');
    expect(to(t, '/?debug=2&debug=1')).toBe('plain');
    expect(to(t, '/?debug=%31')).toBe('unsupported');
  });

  it('request and response header modifiers reach the table (names lower-cased, the first of equal names kept)', () => {
    const t = table([
      {
        filters: [
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-b'] },
          },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-c', value: '2' }] } },
        ],
        backendRefs: backend,
      },
    ]);
    const r = t.table.routeConfiguration.virtualHosts[0]?.routes[0];
    expect(r?.requestHeadersToAdd).toEqual([
      { header: { key: 'x-a', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect(r?.requestHeadersToRemove).toEqual(['x-b']);
    expect(r?.responseHeadersToAdd).toEqual([{ header: { key: 'x-c', value: '2' } }]);
  });
});

describe('stage files above the limits are refused at once (issue #16)', () => {
  const bigSpec = (n: number) => ({
    hosts: ['*'],
    gateways: ['rollouts/webapp-gateway'],
    http: Array.from({ length: n }, (_, i) => ({
      name: `r${i}`,
      match: [{ uri: { regex: `/a${i}(b|c)+` } }],
      route: [{ destination: { host: 'webapp.rollouts.svc.cluster.local', subset: 'v1' } }],
    })),
  });
  const vsFile = (name: string, spec: unknown, pad = 0) => {
    const file = join(work, `${name}.yaml`);
    // JSON is YAML: the compact form keeps 20,000 routes under the size limit.
    const text = JSON.stringify({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: {
        name: 'webapp',
        namespace: 'rollouts',
        labels: { 'rollouts/stage': name, 'rollouts/strategy': 'canary' },
      },
      spec,
    });
    writeFileSync(file, `${text}\n# ${'x'.repeat(pad)}\n`);
    return file;
  };

  it('a VirtualService file of 3.9 MB: above the 1.5 MiB object size limit, named in the message', () => {
    const file = vsFile('huge', bigSpec(2), 3_900_000);
    expect(() => loadStageFile(root, file)).toThrow(/1\.5 MiB/);
    expect(MAX_OBJECT_BYTES).toBe(1_572_864);
  });

  it('an HTTPRoute file of 3.9 MB: the same limit', () => {
    const file = routeFile('huge-route', {
      parentRefs: [{ name: 'webapp-gateway' }],
      rules: [{ backendRefs: backend }],
    });
    writeFileSync(file, `# ${'x'.repeat(3_900_000)}\n`, { flag: 'a' });
    expect(() => loadHttpRouteStageFile(root, file)).toThrow(/Kubernetes' object size limit of 1\.5 MiB/);
  });

  it('a VirtualService with 20,000 routes under the size limit: refused by the route bound, before its regexes are compiled', () => {
    const file = vsFile('many', {
      hosts: ['*'],
      gateways: ['rollouts/webapp-gateway'],
      http: Array.from({ length: 20_000 }, () => ({ route: [{ destination: { host: 'w', subset: 'v1' } }] })),
    });
    try {
      loadStageFile(root, file);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(ManifestError);
      expect((error as ManifestError).message).toContain('bound of 100 routes');
      expect((error as ManifestError).field).toBe('spec.http');
    }
  });

  it('100 routes are accepted (the bound is not below it)', () => {
    expect(loadStageFile(root, vsFile('hundred', bigSpec(100))).virtualService.spec.http).toHaveLength(100);
  });
});

describe('lintGatewayApi', () => {
  /** A copy of the repository's istio/ and chart values, with `edit` applied to one HTTPRoute stage file. */
  function repoCopy(stage: string, edit: (text: string) => string): string {
    const dir = mkdtempSync(join(work, 'repo-'));
    cpSync(join(root, 'istio'), join(dir, 'istio'), { recursive: true });
    cpSync(join(root, 'charts', 'webapp', 'values.yaml'), join(dir, 'charts', 'webapp', 'values.yaml'), {
      recursive: true,
    });
    const file = join(dir, 'istio', 'stages', 'gateway-api', `${stage}.yaml`);
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
    return dir;
  }

  it("the repository's HTTPRoute stages: no finding", () => {
    expect(lintGatewayApi(root)).toEqual([]);
  });

  it('a weight changed in one file only: stage-pair, naming the requests and both splits', () => {
    const dir = repoCopy('canary-25', (t) => t.replace('weight: 75', 'weight: 70'));
    const findings = lintGatewayApi(dir);
    expect(findings.map((f) => [f.file, f.rule])).toEqual([
      ['istio/stages/gateway-api/canary-25.yaml', 'stage-pair'],
    ]);
    expect(findings[0]?.message).toContain('requests "default"');
  });

  it('a stage header naming another stage, a second stable stage, a wrong label', () => {
    const header = lintGatewayApi(
      repoCopy('canary-50', (t) => t.replaceAll('value: canary-50', 'value: canary-75')),
    );
    expect(header.map((f) => f.rule)).toEqual(['stage-header', 'stage-header']);
    const stable = lintGatewayApi(
      repoCopy('canary-10', (t) =>
        t.replace('rollouts/strategy: canary', 'rollouts/strategy: canary\n    rollouts/stable: "true"'),
      ),
    );
    expect(stable.map((f) => f.rule)).toEqual(['rollback-target']);
    const label = lintGatewayApi(
      repoCopy('blue', (t) => t.replace('rollouts/stage: blue', 'rollouts/stage: bleu')),
    );
    expect(label.map((f) => f.rule)).toEqual(['stage-label']);
  });

  it('a backend that is not a chart Service: manifest, the field named; --stage limits the findings to that stage', () => {
    const dir = repoCopy('green', (t) => t.replace('name: webapp-green', 'name: webapp-grey'));
    const findings = lintGatewayApi(dir);
    expect(findings.map((f) => [f.rule, f.field])).toEqual([
      ['manifest', 'spec.rules[0].backendRefs[0].name'],
    ]);
    expect(lintGatewayApi(dir, { stage: 'stable' })).toEqual([]);
    expect(() => lintGatewayApi(dir, { stage: 'nope' })).toThrow(/unknown stage "nope"/);
  });
});

describe('stageTable names both files of a stage', () => {
  it('each row has its VirtualService and its HTTPRoute file', () => {
    const rows = stageTable(root);
    expect(rows.length).toBe(stageNames(root).length);
    for (const row of rows) {
      expect(row.file).toBe(`istio/stages/${row.stage}.yaml`);
      expect(row.httpRouteFile).toBe(`istio/stages/gateway-api/${row.stage}.yaml`);
    }
  });
});
