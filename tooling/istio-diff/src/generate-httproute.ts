/**
 * Random HTTPRoutes (fast-check arbitraries) on the repository's Gateway API Gateway, seeded like the
 * VirtualServices of generate.ts: what the HTTPRoute stages use (header matches, weights, the response header
 * modifier) mixed with what Istio's Gateway API translation orders or translates in its own way (Exact /
 * PathPrefix / RegularExpression paths with and without trailing `/`, several matches per rule, method and
 * query matches, rule names and positions, weights 0 and totals other than 100, request header modifiers, names
 * in upper case and repeated), and what the API server (the CRDs) or our side refuses: invalid paths, methods,
 * weights and rule names, filters and fields we do not emulate, backends that are not the chart's Services,
 * parents other than the Gateway.
 */
import fc from 'fast-check';
import type { CaseRequest } from './case.js';
import { choose, type RequestChoice, requestChoice, resolveRequest } from './generate.js';

type Obj = Record<string, unknown>;

/** Absent (weight `absent`) or a value (weight `present`). */
const optional = <T>(a: fc.Arbitrary<T>, present = 1, absent = 2): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: absent }, { arbitrary: a, weight: present });

export const GA_PATHS = ['/', '/api', '/api/', '/api/v1', '/v1', '/healthz', '/a/b', '/API', '/a.b'];
/** The API server refuses these for Exact and PathPrefix (the CRD's CEL rules). */
export const GA_BAD_PATHS = ['api', '/a//b', '/a/./b', '/a/..', '/a#b', '/a%2Fb', '/a b'];
export const GA_REGEXES = ['/api/.*', '/v[12]/.*', '/[[:digit:]]+', '.*', '/h.*z', '(?i)/api.*'];

const path: fc.Arbitrary<Obj | undefined> = optional(
  fc.oneof(
    {
      arbitrary: fc.record({
        type: fc.constantFrom('Exact', 'PathPrefix'),
        value: choose(GA_PATHS, GA_BAD_PATHS, 1, 40),
      }),
      weight: 6,
    },
    {
      arbitrary: fc.record({ type: fc.constant('RegularExpression'), value: fc.constantFrom(...GA_REGEXES) }),
      weight: 2,
    },
    { arbitrary: fc.record({ value: fc.constantFrom(...GA_PATHS) }), weight: 1 },
  ),
  4,
);

const HEADER_NAMES = ['x-canary', 'x-preview', 'X-User', 'x-canary-group'];
const HEADER_VALUES = ['always', 'blue', 'a', 'Always', '1'];

const valueMatch = (names: readonly string[], rare: readonly string[]) =>
  fc.oneof(
    {
      arbitrary: fc.record({ name: choose(names, rare, 1, 60), value: fc.constantFrom(...HEADER_VALUES) }),
      weight: 6,
    },
    {
      arbitrary: fc.record({
        name: choose(names, rare, 1, 60),
        type: fc.constant('Exact'),
        value: fc.constantFrom(...HEADER_VALUES),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        name: fc.constantFrom(...names),
        type: fc.constant('RegularExpression'),
        value: fc.constantFrom('a.*', '[[:digit:]]+', '*', 'al(ways)?'),
      }),
      weight: 2,
    },
  );

const match: fc.Arbitrary<Obj> = fc
  .record(
    {
      path,
      headers: optional(
        fc.uniqueArray(valueMatch(HEADER_NAMES, ['x-request-id', 'bad name']), {
          maxLength: 2,
          selector: (h) => (h as Obj).name,
        }),
        2,
      ),
      queryParams: optional(
        fc.uniqueArray(valueMatch(['debug', 'v', 'Q'], ['bad name']), {
          maxLength: 2,
          selector: (h) => (h as Obj).name,
        }),
      ),
      method: optional(choose(['GET', 'POST', 'HEAD'], ['get', 'FETCH'], 1, 40)),
    },
    { requiredKeys: [] },
  )
  .map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)));

const headerPairs = fc.uniqueArray(
  fc.record({
    name: choose(['x-rollouts-stage', 'X-Extra', 'x-extra', 'x-b'], ['host'], 1, 60),
    value: choose(['canary-10', 'v', 'a b', '100%%'], ['%REQ(x)%'], 1, 60),
  }),
  { minLength: 1, maxLength: 2, selector: (p) => p.name },
);

const modifier = fc
  .record(
    {
      set: optional(headerPairs, 3),
      add: optional(headerPairs),
      remove: optional(
        fc.uniqueArray(fc.constantFrom('x-a', 'X-Powered-By', 'x-b'), { minLength: 1, maxLength: 2 }),
      ),
    },
    { requiredKeys: [] },
  )
  .map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)));

const filter: fc.Arbitrary<Obj> = fc.oneof(
  {
    arbitrary: modifier.map((m) => ({ type: 'ResponseHeaderModifier', responseHeaderModifier: m })),
    weight: 24,
  },
  {
    arbitrary: modifier.map((m) => ({ type: 'RequestHeaderModifier', requestHeaderModifier: m })),
    weight: 12,
  },
  {
    arbitrary: fc.constantFrom<Obj>(
      { type: 'URLRewrite', urlRewrite: { hostname: 'example.com' } },
      { type: 'RequestRedirect', requestRedirect: { statusCode: 302 } },
      { type: 'CORS', cors: { allowOrigins: ['https://example.com'] } },
    ),
    weight: 1,
  },
);

export const BACKENDS = ['webapp', 'webapp-v1', 'webapp-v2', 'webapp-green', 'webapp-blue'];

const backendRef: fc.Arbitrary<Obj> = fc
  .record({
    name: choose(BACKENDS, ['other', 'webapp-v3'], 1, 60),
    port: choose([80], [8080], 1, 60),
    weight: optional(choose([1, 10, 25, 50, 75, 90, 100, 1, 10, 50, 0], [-1, 1_000_001], 1, 40), 3),
  })
  .map((b) => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)));

const RULE_NAMES = ['split', 'canary-override', 'a', 'rule.two'];

const rule: fc.Arbitrary<Obj> = fc
  .record(
    {
      name: optional(choose(RULE_NAMES, ['Bad_Name'], 1, 60)),
      matches: optional(fc.array(match, { minLength: 1, maxLength: 3 }), 3),
      filters: optional(fc.uniqueArray(filter, { maxLength: 2, selector: (f) => f.type }), 2),
      backendRefs: fc.array(backendRef, { minLength: 1, maxLength: 3 }),
      timeouts: optional(fc.constant({ request: '5s' }), 1, 40),
    },
    { requiredKeys: ['backendRefs'] },
  )
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));

const parentRefs = fc.oneof(
  { arbitrary: fc.constant<Obj[]>([{ name: 'webapp-gateway' }]), weight: 40 },
  { arbitrary: fc.constant<Obj[]>([{ name: 'webapp-gateway', namespace: 'rollouts' }]), weight: 2 },
  { arbitrary: fc.constant<Obj[]>([{ name: 'webapp-gateway', sectionName: 'http' }]), weight: 2 },
  { arbitrary: fc.constant<Obj[]>([{ name: 'webapp-gateway', port: 80 }]), weight: 1 },
  { arbitrary: fc.constant<Obj[]>([{ name: 'other-gateway' }]), weight: 1 },
);

export const httpRoute: fc.Arbitrary<Obj> = fc
  .record({
    namespace: choose(['rollouts'], ['other'], 1, 60),
    parentRefs,
    rules: fc.array(rule, { minLength: 1, maxLength: 4 }),
    hostnames: optional(fc.constant(['example.com']), 1, 40),
  })
  .map(({ namespace, parentRefs, rules, hostnames }) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'webapp', namespace },
    spec: { parentRefs, rules, ...(hostnames ? { hostnames } : {}) },
  }));

/** A VirtualService-shaped view of an HTTPRoute's matches, for resolveRequest to aim requests at. */
function asTargets(route: Obj): Obj {
  const rules = (((route.spec as Obj).rules as Obj[] | undefined) ?? []).flatMap(
    (r) => (r.matches as Obj[] | undefined) ?? [],
  );
  return {
    spec: {
      hosts: ['*'],
      http: [
        {
          match: rules.map((m) => ({
            uri:
              (m.path as Obj | undefined)?.type === 'RegularExpression'
                ? {}
                : { prefix: (m.path as Obj | undefined)?.value ?? '/' },
            headers: Object.fromEntries(
              ((m.headers as Obj[] | undefined) ?? []).map((h) => [h.name, { exact: h.value }]),
            ),
          })),
        },
      ],
    },
  };
}

export interface GeneratedHttpRouteCase {
  route: Obj;
  requests: { choice: RequestChoice; query: number; method: number }[];
}

/** The request a choice makes against an HTTPRoute: its paths, headers, and its query parameters. */
export function resolveHttpRouteRequest(
  route: Obj,
  r: GeneratedHttpRouteCase['requests'][number],
): CaseRequest {
  const out = resolveRequest(asTargets(route), r.choice);
  const queries = (((route.spec as Obj).rules as Obj[] | undefined) ?? [])
    .flatMap((x) => (x.matches as Obj[] | undefined) ?? [])
    .flatMap((m) => (m.queryParams as Obj[] | undefined) ?? [])
    .map((q) => `${String(q.name)}=${String(q.value)}`);
  const options = ['', ...queries, 'debug=1&debug=2', 'v=a'];
  const q = options[r.query % options.length] as string;
  if (q !== '' && !out.path.includes('?') && !out.path.includes('#') && !/[^\x21-\x7e]/.test(q))
    out.path = `${out.path}?${q}`;
  const methods = ['GET', 'POST', 'HEAD'];
  if (r.method % 4 !== 3) out.method = methods[r.method % 3] as string;
  return out;
}

export const generatedHttpRouteCase: fc.Arbitrary<GeneratedHttpRouteCase> = fc.record({
  route: httpRoute,
  requests: fc.array(fc.record({ choice: requestChoice, query: fc.nat(8), method: fc.nat(7) }), {
    minLength: 1,
    maxLength: 6,
  }),
});

/** What an HTTPRoute uses, as short labels (the report counts them over the cases compared in full). */
export function httpRouteFeatures(route: unknown): string[] {
  const out = new Set<string>();
  const spec = ((route as Obj | null)?.spec ?? {}) as Obj;
  const rules = (spec.rules as Obj[] | undefined) ?? [];
  out.add(`rules ${rules.length}`);
  for (const r of rules) {
    if (r.name !== undefined) out.add('rule name');
    const matches = (r.matches as Obj[] | undefined) ?? [];
    out.add(matches.length === 0 ? 'no matches (default /)' : `matches ${matches.length}`);
    for (const m of matches) {
      const p = m.path as Obj | undefined;
      if (p !== undefined) {
        const v = String(p.value ?? '/');
        out.add(
          `path ${String(p.type ?? 'PathPrefix (default)')}${v !== '/' && v.endsWith('/') ? ' trailing /' : ''}`,
        );
      }
      for (const h of (m.headers as Obj[] | undefined) ?? [])
        out.add(`header ${String(h.type ?? 'Exact')}${h.value === '*' ? ' *' : ''}`);
      for (const q of (m.queryParams as Obj[] | undefined) ?? [])
        out.add(`query ${String(q.type ?? 'Exact')}`);
      if (m.method !== undefined) out.add('method');
    }
    for (const f of (r.filters as Obj[] | undefined) ?? []) out.add(`filter ${String(f.type)}`);
    const refs = (r.backendRefs as Obj[] | undefined) ?? [];
    out.add(`backendRefs ${refs.length}`);
    for (const b of refs) {
      out.add(`backend ${String(b.name)}`);
      if (b.weight === 0) out.add('weight 0');
      if (b.weight === undefined) out.add('weight default (1)');
    }
  }
  return [...out];
}
