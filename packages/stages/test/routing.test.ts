// Istio routing semantics on a fixture beyond the repository's stages: three subsets, regex header, uri
// exact/prefix/regex, methods, ORed and ANDed conditions, absent headers, and requests no route takes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compileRoutes,
  expectedSplit,
  formatSplit,
  loadWorkloads,
  matchRoute,
  parseDestinationRule,
  parseVirtualService,
  profiles,
  type RouteRequest,
  responseHeadersOf,
} from '../src/index.js';

const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/routing/${f}`, import.meta.url));
const vs = parseVirtualService(
  parse(readFileSync(fixture('virtual-service.yaml'), 'utf8')),
  'virtual-service.yaml',
);
const dr = parseDestinationRule(
  parse(readFileSync(fixture('destination-rule.yaml'), 'utf8')),
  'destination-rule.yaml',
);
const workloads = loadWorkloads('(unused)', fixture('values.yaml'));
const compiled = compileRoutes(vs);

function req(method: string, path: string, headers: Record<string, string | string[]> = {}): RouteRequest {
  return { method, path, headers };
}

describe('matchRoute', () => {
  it.each<[string, RouteRequest, string | null]>([
    ['regex header, case-insensitive via (?i)', req('GET', '/', { 'x-user': 'Tester-42' }), 'testers'],
    ['regex header must match the whole value', req('GET', '/', { 'x-user': 'tester-42-evil' }), 'reads'],
    ['regex header without digits', req('GET', '/', { 'x-user': 'tester-' }), 'reads'],
    ['uri prefix AND method: POST /api/orders', req('POST', '/api/orders'), 'api-writes-or-admin'],
    ['uri prefix AND method: GET /api/orders is not a write', req('GET', '/api/orders'), 'reads'],
    ['uri prefix is a plain prefix: POST /api (no slash) does not match', req('POST', '/api'), null],
    ['the second ORed entry: exact /admin, any method', req('DELETE', '/admin'), 'api-writes-or-admin'],
    ['exact ignores the query string', req('PUT', '/admin?x=1'), 'api-writes-or-admin'],
    ['exact is exact: /admin/ does not match', req('PUT', '/admin/'), null],
    ['uri regex full match', req('PUT', '/items/123'), 'items'],
    ['uri regex is anchored at the end', req('PUT', '/items/123/edit'), null],
    ['uri regex is anchored at the start', req('PUT', '/x/items/1'), null],
    ['uri regex ignores the query string', req('PUT', '/items/7?sort=asc'), 'items'],
    [
      'exact AND prefix headers',
      req('GET', '/', { 'x-canary': 'always', 'x-team': 'beta-2' }),
      'canary-beta',
    ],
    ['ANDed: one header alone is not enough', req('POST', '/', { 'x-canary': 'always' }), null],
    ['header values are case-sensitive', req('POST', '/', { 'x-canary': 'Always', 'x-team': 'beta' }), null],
    ['presence match with a required absent header', req('POST', '/', { 'x-debug': '' }), 'debug'],
    ['withoutHeaders excludes', req('POST', '/', { 'x-debug': '1', 'x-canary': 'always' }), null],
    [
      'multiple header values are joined with commas',
      req('GET', '/', { 'x-user': ['tester-1', 'x'] }),
      'reads',
    ],
    ['method regex: HEAD', req('HEAD', '/anything'), 'reads'],
    ['methods are case-sensitive', req('get', '/anything'), null],
    ['a request no route takes: POST elsewhere', req('POST', '/other'), null],
  ])('%s', (_what, request, routeName) => {
    const m = matchRoute(compiled, request);
    expect(m?.name ?? null).toBe(routeName);
    if (m) expect(vs.spec.http[m.index]).toBe(m.route);
  });

  it('the first matching route wins', () => {
    // Both "testers" (0) and "reads" (5) match; the earlier one is taken.
    expect(matchRoute(compiled, req('GET', '/items/1', { 'x-user': 'tester-1' }))?.index).toBe(0);
    // "items" (2) is before "reads" (5).
    expect(matchRoute(compiled, req('GET', '/items/1'))?.index).toBe(2);
  });

  it('a route without match takes every request', () => {
    const c = compileRoutes([{ route: [{ destination: { host: 'h' } }] }]);
    expect(matchRoute(c, req('PATCH', '/whatever?x'))?.index).toBe(0);
  });
});

describe('expectedSplit on the fixture', () => {
  const split = (method: string, path: string, headers: Record<string, string> = {}) =>
    expectedSplit(vs, { name: 't', headers, method, path }, dr, workloads);

  it('proportional weights across three subsets', () => {
    const s = split('GET', '/items/9');
    expect(s.routeIndex).toBe(2);
    expect(s.subsets).toEqual({ v1: 0.5, v2: 0.3, v3: 0.2 });
    expect(s.versions).toEqual({ v1: 0.5, v2: 0.3, v3: 0.2 });
  });

  it('a lone destination without weight takes 100 %', () => {
    expect(split('POST', '/api/x').subsets).toEqual({ v2: 1 });
  });

  it('a destination without subset spreads over every enabled workload (v4 is disabled)', () => {
    const s = split('GET', '/');
    expect(s.subsets).toEqual({ '(service)': 1 });
    expect(Object.keys(s.versions)).toEqual(['v1', 'v2', 'v3']);
    for (const p of Object.values(s.versions)) expect(p).toBeCloseTo(1 / 3, 12);
    // A subset selecting several versions is shown by versions.
    expect(formatSplit(s)).toBe('v1 33.33 %, v2 33.33 %, v3 33.33 %');
  });

  it('a subset that selects no workload is reported as unresolved (Istio answers 503)', () => {
    const s = split('POST', '/', { 'x-debug': '1' });
    expect(s.subsets).toEqual({ canaries: 1 });
    expect(s.versions).toEqual({});
    expect(s.unresolved).toEqual({ canaries: 1 });
  });

  it('no route: routeIndex null (Istio answers 404)', () => {
    expect(split('POST', '/other')).toEqual({
      routeIndex: null,
      routeName: null,
      subsets: {},
      versions: {},
      unresolved: {},
      subsetVersions: {},
      noRouteReason: 'no route matches',
    });
  });

  it('without DestinationRule and workloads only subsets are known', () => {
    const s = expectedSplit(vs, { name: 't', headers: {}, method: 'PUT', path: '/items/1' });
    expect(s.subsets).toEqual({ v1: 0.5, v2: 0.3, v3: 0.2 });
    expect(s.versions).toEqual({});
  });

  it('weights that add up to 0 are refused, as Istio refuses them', () => {
    const zero = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'z' },
      spec: {
        hosts: ['h'],
        http: [
          {
            route: [
              { destination: { host: 'h', subset: 'a' } },
              { destination: { host: 'h', subset: 'b' }, weight: 0 },
            ],
          },
        ],
      },
    };
    expect(() => parseVirtualService(zero, 'zero.yaml')).toThrow(
      /zero\.yaml: spec\.http\[0\]\.route: Istio rejects this: total destination weight = 0/,
    );
  });
});

describe('profiles', () => {
  it('the default one plus one per match with concrete header values', () => {
    expect(profiles(vs)).toEqual([
      { name: 'default', headers: {} },
      { name: 'x-canary: always, x-team: beta', headers: { 'x-canary': 'always', 'x-team': 'beta' } },
    ]);
  });

  it('each override profile takes the route it was derived from', () => {
    const [, canary] = profiles(vs);
    expect(expectedSplit(vs, canary, dr, workloads).routeName).toBe('canary-beta');
  });
});

describe('response headers of a route', () => {
  const withHeaders = parseVirtualService(
    parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp, labels: {rollouts/strategy: canary}}
spec:
  hosts: [a]
  http:
    - name: tagged
      match: [{headers: {x-tag: {}}}]
      headers:
        response:
          set: {X-Rollouts-Stage: canary-10, x-two: b}
          add: {x-trace: t1}
      route: [{destination: {host: a, subset: v2}}]
    - name: plain
      route: [{destination: {host: a, subset: v1}}]
`),
    'headers.yaml',
  );
  const routes = compileRoutes(withHeaders);

  it('are parsed as written and exposed on the matched route lower case, set before add', () => {
    expect(withHeaders.spec.http[0]?.headers).toEqual({
      response: { set: { 'X-Rollouts-Stage': 'canary-10', 'x-two': 'b' }, add: { 'x-trace': 't1' } },
    });
    expect(matchRoute(routes, req('GET', '/', { 'x-tag': '1' }))?.responseHeaders).toEqual({
      remove: [],
      set: [
        ['x-rollouts-stage', 'canary-10'],
        ['x-two', 'b'],
      ],
      add: [['x-trace', 't1']],
    });
  });

  it('are null on a route that changes none', () => {
    expect(matchRoute(routes, req('GET', '/'))?.responseHeaders).toBeNull();
  });

  it('leave out a set or add with an empty value: Envoy skips it (no keep_empty_value), the upstream header stays', () => {
    expect(
      responseHeadersOf({ headers: { response: { set: { 'x-a': '', 'x-b': 'b' }, add: { 'x-c': '' } } } }),
    ).toEqual({ remove: [], set: [['x-b', 'b']], add: [] });
    expect(responseHeadersOf({ headers: { response: { set: { 'x-a': '' } } } })).toBeNull();
  });
});
