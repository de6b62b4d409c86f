/**
 * Random VirtualServices and requests (fast-check arbitraries), seeded so a run can be repeated and a failing case
 * shrunk. The values mix what the stages use with what Istio validates or translates in its own way: hosts of every
 * kind, gateway bindings, RE2-only and invalid regular expressions, weights that are 0 or do not add up to 100,
 * subsets the DestinationRule lacks, other destination hosts, response header operations; requests with and
 * without port, header name case, repeated headers, dot segments, `//`, percent-encoding, case and query strings.
 */
import fc from 'fast-check';
import type { CaseRequest } from './case.js';

const APP = 'webapp.rollouts.svc.cluster.local';

/** Valid values, and rarer ones Istio rejects or our side refuses as unsupported. */
export function choose<T>(
  common: readonly T[],
  rare: readonly T[] = [],
  rareWeight = 1,
  commonWeight = 20,
): fc.Arbitrary<T> {
  const parts = [{ arbitrary: fc.constantFrom(...common), weight: commonWeight }];
  if (rare.length > 0) parts.push({ arbitrary: fc.constantFrom(...rare), weight: rareWeight });
  return fc.oneof({ withCrossShrink: true }, ...parts);
}

export const HOSTS = [
  APP,
  'webapp',
  'localhost',
  '127.0.0.1',
  '10.1.2.3',
  '*.example.com',
  'example.com',
  'foo.example.com',
  'api.example.org',
  'Mixed.Example.com',
  '*.rollouts.svc.cluster.local',
  'webapp.rollouts',
  '::1',
];
/** Istio rejects these as VirtualService hosts. */
export const BAD_HOSTS = ['bad_host', 'example.*', 'a..b'];

const hosts: fc.Arbitrary<string[]> = fc.oneof(
  { arbitrary: fc.constant<string[]>(['*']), weight: 4 },
  { arbitrary: fc.uniqueArray(fc.constantFrom(...HOSTS), { minLength: 1, maxLength: 3 }), weight: 8 },
  {
    arbitrary: fc.array(choose([...HOSTS, '*'], BAD_HOSTS, 2, 10), { minLength: 1, maxLength: 3 }),
    weight: 1,
  },
);

const gateways: fc.Arbitrary<string[] | undefined> = fc.oneof(
  { arbitrary: fc.constant<string[]>(['rollouts/webapp-gateway']), weight: 24 },
  { arbitrary: fc.constant<string[]>(['webapp-gateway']), weight: 4 },
  { arbitrary: fc.constant<string[]>(['webapp-gateway.rollouts.svc.cluster.local']), weight: 2 },
  { arbitrary: fc.constant<string[]>(['rollouts/webapp-gateway', 'mesh']), weight: 3 },
  { arbitrary: fc.constant<string[]>(['mesh']), weight: 1 },
  { arbitrary: fc.constant<string[]>([]), weight: 1 },
  { arbitrary: fc.constant<string[] | undefined>(undefined), weight: 1 },
  { arbitrary: fc.constant<string[]>(['other/webapp-gateway']), weight: 2 },
  { arbitrary: fc.constant<string[]>(['./webapp-gateway']), weight: 1 },
);

export const URI_VALUES = ['/', '/api', '/api/', '/API/v1', '/v1/', '/a/b', '/healthz', '/a%2Fb', '', '/Api'];

export const REGEXES = [
  '/api/.*',
  '/v[12]/.*',
  '/[[:digit:]]+',
  '[[:digit:]]+',
  '/\\pL+',
  '/(?P<n>a)+',
  '/(?<n>a)',
  '/\\Qa.b\\E',
  '.*',
  '(?i)/api.*',
  '/[[:alpha:]]+/[0-9]{2,3}',
  '/a|/b',
  '/ap',
  '/h.*z',
  '^/api$',
  '(?s).*',
  '/\\p{Greek}+',
  '/[[:^alpha:]]+',
  '/x{,3}',
  '/\\x{41}.*',
  '(?U)/a+',
  '(?m)^/a',
  '/\\b.*',
  '/caf\u00e9',
];
/** Not RE2: Istio rejects them. */
export const BAD_REGEXES = [
  '[',
  '(a',
  'a{2,1}',
  '(?<=a)b',
  '/(a)\\1',
  '*',
  '/a**',
  '(?=a)',
  '/\\C',
  'a{1001}',
  '/\\z',
  `/${'a'.repeat(1025)}`,
];

export const HEADER_NAMES = ['x-canary', 'x-preview', 'X-Canary', 'x-user', 'user-agent', 'cookie'];
/** Istio rejects `bad header`; we refuse matches on what the gateway rewrites and on pseudo-headers. */
export const RARE_HEADER_NAMES = [
  'x-request-id',
  ':authority',
  'x-envoy-original-path',
  'host',
  'bad header',
];

export const HEADER_VALUES = ['always', 'blue', 'Always', '', 'a,b', 'v1'];
export const HEADER_REGEXES = ['al.*', '[[:digit:]]+', '\\pL+', '(?i)ALWAYS', 'a|b', 'a,b', '.*'];

export const DEST_HOSTS = [APP, APP, APP, 'webapp'];
/** Other services: Istio routes to their clusters, our local path refuses them. */
export const OTHER_DEST_HOSTS = ['webapp.rollouts', 'other.rollouts.svc.cluster.local', 'other'];

const subset: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.constantFrom(undefined, 'v1', 'v2', 'green', 'blue'), weight: 150 },
  { arbitrary: fc.constantFrom('v3', 'canary'), weight: 15 },
  { arbitrary: fc.constant('Bad_Subset'), weight: 1 },
);

export const RESPONSE_HEADER_NAMES = ['x-rollouts-stage', 'X-Custom', 'x-a', 'cache-control'];
export const RESPONSE_HEADER_VALUES = ['v', '', 'a%%b', 'two words', 'canary-25'];

type Obj = Record<string, unknown>;

const APP_DESTINATION = { destination: { host: APP, subset: 'v1' } };
const REFUSED_ROUTE_FIELDS: Obj[] = [
  { corsPolicy: { allowOrigins: [{ exact: 'https://example.com' }] } },
  { mirror: { host: APP, subset: 'v2' } },
  { fault: { abort: { httpStatus: 503, percentage: { value: 10 } } } },
  { rewrite: { uri: '/v2' } },
  { mirrorPercentage: { value: 5 }, mirror: APP_DESTINATION.destination },
];
const REFUSED_MATCH_FIELDS: Obj[] = [
  { authority: { exact: 'localhost' } },
  { queryParams: { a: { exact: '1' } } },
  { scheme: { exact: 'http' } },
  { port: 80 },
  { sourceLabels: { app: 'other' } },
];

/** `arb` in `percent` % of the values, else null. */
function maybe<T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> {
  return fc.oneof(
    { withCrossShrink: true },
    { arbitrary: fc.constant(null), weight: 100 - percent },
    { arbitrary: arb, weight: percent },
  );
}

/** `{[key]: value}` in `percent` % of the values, else `{}`. */
function optionalKey<T>(key: string, arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<Obj> {
  return maybe(arb, percent).map((v) => (v === null ? {} : { [key]: v }));
}

function merge(...parts: fc.Arbitrary<Obj>[]): fc.Arbitrary<Obj> {
  return fc.tuple(...parts).map((ps) => Object.assign({}, ...ps) as Obj);
}

const uriMatch: fc.Arbitrary<Obj> = fc.oneof(
  fc.constantFrom(...URI_VALUES).map((v) => ({ exact: v })),
  fc.constantFrom(...URI_VALUES).map((v) => ({ prefix: v })),
  choose(REGEXES, BAD_REGEXES).map((v) => ({ regex: v })),
);

function headerMatch(place: 'headers' | 'withoutHeaders'): fc.Arbitrary<Obj> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...HEADER_VALUES).map((v) => ({ exact: v })), weight: 6 },
    { arbitrary: choose(['al', 'b'], [''], 1, 20).map((v) => ({ prefix: v })), weight: 3 },
    { arbitrary: choose(HEADER_REGEXES, BAD_REGEXES, 1, 30).map((v) => ({ regex: v })), weight: 4 },
    // "*" is a presence match in withoutHeaders (and an invalid regex in headers, among BAD_REGEXES)
    { arbitrary: fc.constant(place === 'withoutHeaders' ? { regex: '*' } : {}), weight: 1 },
    { arbitrary: fc.constant({}), weight: 3 },
  );
}

const methodMatch: fc.Arbitrary<Obj> = fc.oneof(
  fc.constantFrom('GET', 'POST', 'get').map((v) => ({ exact: v })),
  fc.constantFrom('P', 'G').map((v) => ({ prefix: v })),
  fc.constantFrom('GET|HEAD', '(?i)get', 'P.*').map((v) => ({ regex: v })),
);

function headerMap(place: 'headers' | 'withoutHeaders'): fc.Arbitrary<Obj> {
  return fc
    .array(fc.tuple(choose(HEADER_NAMES, RARE_HEADER_NAMES, 1, 30), headerMatch(place)), {
      minLength: 1,
      maxLength: 2,
    })
    .map((entries) => Object.fromEntries(entries));
}

const match: fc.Arbitrary<Obj> = merge(
  optionalKey('name', fc.constantFrom('m1', 'm2', 'byHeader'), 15),
  optionalKey('uri', uriMatch, 65),
  optionalKey('method', methodMatch, 12),
  optionalKey('headers', headerMap('headers'), 40),
  optionalKey('withoutHeaders', headerMap('withoutHeaders'), 15),
  optionalKey('ignoreUriCase', fc.boolean(), 15),
  maybe(fc.constantFrom(...REFUSED_MATCH_FIELDS), 1).map((f) => (f === null ? {} : { ...f })),
);

const destination: fc.Arbitrary<Obj> = fc
  .record({
    host: choose(DEST_HOSTS, OTHER_DEST_HOSTS, 1, 40),
    subset,
    port: maybe(choose([80], [8080], 1, 6), 25),
    weight: maybe(
      fc.oneof(
        { arbitrary: fc.constant(0), weight: 1 },
        { arbitrary: fc.integer({ min: 1, max: 100 }), weight: 8 },
        { arbitrary: fc.constantFrom(50, 100, 1000), weight: 1 },
      ),
      88,
    ),
  })
  .map(({ host, subset, port, weight }) => {
    const d: Obj = { host };
    if (subset !== undefined) d.subset = subset;
    if (port !== null) d.port = { number: port };
    return weight === null ? { destination: d } : { destination: d, weight };
  });

const headerValues: fc.Arbitrary<Obj> = fc
  .array(
    fc.tuple(
      choose(RESPONSE_HEADER_NAMES, ['host', ':status'], 1, 80),
      choose(RESPONSE_HEADER_VALUES, ['%DOWNSTREAM_REMOTE_ADDRESS%'], 1, 30),
    ),
    {
      minLength: 1,
      maxLength: 2,
    },
  )
  .map((entries) => Object.fromEntries(entries));

const responseHeaders: fc.Arbitrary<Obj> = merge(
  optionalKey('set', headerValues, 70),
  optionalKey('add', headerValues, 30),
  optionalKey(
    'remove',
    fc.array(fc.constantFrom('x-powered-by', 'server', 'X-Custom', 'x-rollouts-stage'), {
      minLength: 1,
      maxLength: 2,
    }),
    30,
  ),
).map((response) => ({ response }));

const retries: fc.Arbitrary<Obj> = merge(
  choose([1, 2, 3], [0], 1, 15).map((attempts) => ({ attempts })),
  optionalKey('perTryTimeout', choose(['2s', '0.5s', '0.25s', '250ms'], ['0s'], 1, 30), 40),
  optionalKey('backoff', fc.constantFrom('0.1s', '25ms', '1s'), 20),
  optionalKey(
    'retryOn',
    fc.constantFrom('5xx', 'gateway-error,connect-failure', '503', 'reset,503,retriable-4xx'),
    50,
  ),
);

const httpRoute: fc.Arbitrary<Obj> = merge(
  optionalKey('name', fc.constantFrom('canary-override', 'split', 'r1', 'r2', 'api'), 70),
  optionalKey('match', fc.array(match, { minLength: 0, maxLength: 3 }), 75),
  fc
    .oneof(
      { arbitrary: fc.array(destination, { minLength: 1, maxLength: 1 }), weight: 5 },
      { arbitrary: fc.array(destination, { minLength: 2, maxLength: 2 }), weight: 3 },
      { arbitrary: fc.array(destination, { minLength: 3, maxLength: 4 }), weight: 1 },
    )
    .map((route) => ({ route })),
  optionalKey('headers', responseHeaders, 50),
  optionalKey(
    'timeout',
    choose(
      ['5s', '0.5s', '0.001s', '1.250s', '1m', '1500ms', '1h30m'],
      ['0s', '0.0005s', '1.5', '-1s', '100us'],
      1,
      30,
    ),
    15,
  ),
  optionalKey('retries', retries, 15),
  // Fields Istio accepts and the local gateway does not emulate: refused as unsupported, naming the field.
  maybe(fc.constantFrom(...REFUSED_ROUTE_FIELDS), 2).map((f) => (f === null ? {} : { ...f })),
);

/** A VirtualService object (the YAML document of a case). */
export const virtualService: fc.Arbitrary<Obj> = fc
  .record({
    hosts,
    gateways,
    exportTo: maybe(fc.constantFrom(['.'], ['*'], ['istio-system'], ['rollouts', 'istio-system']), 12),
    http: fc.array(httpRoute, { minLength: 1, maxLength: 5 }),
    namespace: choose(['rollouts'], ['default', 'istio-system', null], 1, 30),
  })
  .map(({ hosts, gateways, exportTo, http, namespace }) => {
    const spec: Obj = { hosts };
    if (gateways !== undefined) spec.gateways = gateways;
    if (exportTo !== null) spec.exportTo = exportTo;
    spec.http = http;
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: namespace === null ? { name: 'webapp' } : { name: 'webapp', namespace },
      spec,
    };
  });

/** Ways a path is written differently (Envoy normalises some of them before it routes). */
const DECORATIONS: ((p: string) => string)[] = [
  (p) => p,
  (p) => p,
  (p) => `${p}?q=1`,
  (p) => `${p}/x`,
  (p) => p.toUpperCase(),
  (p) => `/x/..${p}`,
  (p) => `${p}/./`,
  (p) => `/${p}`,
  (p) => p.replace(/[a-z]/, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`),
  (p) => `${p}%2Fx`,
  (p) => `${p}?a=1&b=/x/../`,
  (p) => p.replace(/^\/+/, '/%2e%2e/'),
  (p) => `${p}/..`,
  (p) => `${p}//`,
  // rarer: Envoy answers 400 (an escaped NUL), or the local gateway refuses the request (not emulated)
  (p) => `${p}%00`,
  (p) => `${p}\\x`,
  (p) => `${p}#frag`,
];
const RARE_DECORATIONS = 3;

/** A request as choices, resolved against the VirtualService (so it shrinks independently of it). */
export interface RequestChoice {
  host: number;
  port: '' | ':8080' | ':80' | ':9999';
  hostCase: 'as-is' | 'upper-first';
  method: string;
  path: number;
  decoration: number;
  headers: { name: number; value: number; nameCase: 'lower' | 'as-is' | 'upper'; repeat: boolean }[];
}

export const requestChoice: fc.Arbitrary<RequestChoice> = fc.record({
  host: fc.nat(40),
  port: fc.constantFrom('' as const, ':8080' as const, ':80' as const, ':9999' as const),
  hostCase: choose(['as-is' as const], ['upper-first' as const], 1, 5),
  method: fc.constantFrom('GET', 'GET', 'POST', 'HEAD', 'get'),
  path: fc.nat(40),
  decoration: fc.oneof(
    { arbitrary: fc.nat(DECORATIONS.length - RARE_DECORATIONS - 1), weight: 15 },
    {
      arbitrary: fc.integer({ min: DECORATIONS.length - RARE_DECORATIONS, max: DECORATIONS.length - 1 }),
      weight: 1,
    },
  ),
  headers: fc.array(
    fc.record({
      name: fc.nat(20),
      value: fc.nat(20),
      nameCase: fc.constantFrom('lower' as const, 'as-is' as const, 'upper' as const),
      repeat: fc.boolean(),
    }),
    { maxLength: 3 },
  ),
});

function values(x: unknown): string[] {
  if (typeof x !== 'object' || x === null) return [];
  return Object.values(x as Obj).filter((v): v is string => typeof v === 'string');
}

/** What a VirtualService offers requests to aim at: hosts, paths, header names and values. */
function targets(vs: Obj): {
  hosts: string[];
  paths: string[];
  headerNames: string[];
  headerValues: string[];
} {
  const spec = (vs.spec ?? {}) as Obj;
  const hosts = ((spec.hosts as string[] | undefined) ?? []).map((h) =>
    h === '*' ? 'anything.test' : h.startsWith('*') ? `foo${h.slice(1)}` : h === '::1' ? '[::1]' : h,
  );
  const paths: string[] = [];
  const headerNames: string[] = [];
  const headerValues: string[] = [];
  for (const route of (spec.http as Obj[] | undefined) ?? []) {
    for (const m of (route.match as Obj[] | undefined) ?? []) {
      const uri = m.uri as Obj | undefined;
      for (const v of values(uri)) if (v.startsWith('/')) paths.push(v.replace(/\\/g, ''));
      for (const key of ['headers', 'withoutHeaders']) {
        for (const [name, sm] of Object.entries((m[key] as Obj | undefined) ?? {})) {
          headerNames.push(name);
          headerValues.push(...values(sm));
        }
      }
    }
  }
  return { hosts, paths, headerNames, headerValues };
}

const REQUEST_HOSTS = [
  'localhost',
  '127.0.0.1',
  APP,
  'webapp',
  'foo.example.com',
  'example.com',
  'localhost.rollouts.svc.cluster.local',
  'webapp.rollouts',
  '',
];
const REQUEST_PATHS = ['/', '/api', '/api/x', '/v1/a', '/healthz', '/123', '/a.b', '/abc', '/API/v1'];
const REQUEST_HEADER_NAMES = ['x-canary', 'x-preview', 'x-user', 'user-agent'];
const REQUEST_HEADER_VALUES = ['always', 'blue', 'Always', '', 'a', 'b', '123', 'al'];

function pick<T>(list: readonly T[], i: number): T {
  return list[i % list.length] as T;
}

/** The request a choice makes against a VirtualService. */
export function resolveRequest(vs: Obj, choice: RequestChoice): CaseRequest {
  const t = targets(vs);
  let host = pick([...t.hosts, ...REQUEST_HOSTS], choice.host);
  if (choice.hostCase === 'upper-first') host = host.replace(/[a-z]/, (ch) => ch.toUpperCase());
  const authority = host === '' ? '' : `${host}${choice.port}`;
  const base = pick([...t.paths, ...REQUEST_PATHS], choice.path);
  const path = (DECORATIONS[choice.decoration % DECORATIONS.length] as (p: string) => string)(base || '/');
  const names = [...t.headerNames, ...REQUEST_HEADER_NAMES];
  const vals = [...t.headerValues, ...REQUEST_HEADER_VALUES];
  const headers: [string, string][] = [];
  for (const h of choice.headers) {
    let name = pick(names, h.name);
    if (h.nameCase === 'lower') name = name.toLowerCase();
    if (h.nameCase === 'upper')
      name = name.replace(/(^|-)([a-z])/g, (_, d: string, ch: string) => d + ch.toUpperCase());
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name)) continue; // not a header a client can send
    const value = pick(vals, h.value);
    headers.push([name, value]);
    if (h.repeat) headers.push([name, pick(vals, h.value + 1)]);
  }
  return { authority, method: choice.method, path, headers };
}

export interface GeneratedCase {
  vs: Obj;
  requests: RequestChoice[];
}

export const generatedCase: fc.Arbitrary<GeneratedCase> = fc.record({
  vs: virtualService,
  requests: fc.array(requestChoice, { minLength: 1, maxLength: 6 }),
});
