/**
 * Gateway API (gateway.networking.k8s.io/v1): the HTTPRoute stage files (istio/stages/gateway-api/*.yaml), the
 * Gateway Istio deploys for them (istio/base/gateway-api/gateway.yaml) and the chart's Services they name, parsed,
 * validated and translated into the route table Istio gives that Gateway's Envoy, in the same Envoy shape as the
 * VirtualService stages (table.ts), so one router (routeRequest) serves both.
 *
 * What the API server does first (the CRDs of GATEWAY_API_VERSION): defaults (no `matches`: PathPrefix "/"; no
 * path: PathPrefix "/"; header and query matches Exact; weight 1) and validation (path values, header names,
 * methods, list sizes, weights); a file it would refuse is `invalid`. What Istio does next
 * (pilot/pkg/config/kube/gateway conversion.go convertHTTPRoute, route_collections.go, then the VirtualService
 * translation of route.go with Gateway semantics):
 *
 * - each rule is split into one route per match, named after the rule (`name`), else `<namespace>.<route>.<rule
 *   index>`; the routes are sorted stably by Gateway API precedence (Exact path, then PathPrefix, then
 *   RegularExpression; the longer path first; a method match first; more header matches first; more query
 *   matches first); the translation stops after the first catch-all route, which goes last;
 * - PathPrefix "/" is `prefix: /`, any other prefix (a trailing `/` dropped) `pathSeparatedPrefix` (matches at a
 *   `/` boundary), Exact `path`, RegularExpression `safeRegex`;
 * - header matches (names as written) sorted by name, then `:method`; query matches `queryParameters`; a regex
 *   `*` is a presence match, as Istio reads it;
 * - backendRefs with weight 0 are left out; one left is a `cluster`, several `weightedClusters`; the cluster is
 *   `outbound|<port>||<service>.<namespace>.svc.cluster.local`; every route answers 500 for a missing cluster
 *   (`clusterNotFoundResponseCode`), gets Istio's default retry policy and no timeout;
 * - RequestHeaderModifier / ResponseHeaderModifier: `set` (overwrite), `add` (append) with names lower-cased, the
 *   first of equal names kept, each sorted by name; `remove` as written.
 *
 * Refused as `unsupported` (Istio accepts them, the local gateway does not emulate them): other filters
 * (RequestRedirect, URLRewrite, RequestMirror, CORS, ExtensionRef) and filters on a backendRef, `timeouts`,
 * `retry`, `hostnames`, a rule whose backends all weigh 0 (Istio answers 500 itself), a backend that is not one of
 * the chart's Services, parentRefs other than the one Gateway, and header modifiers on `host`.
 */
import type {
  HeaderMatcher,
  HeaderValueOption,
  QueryParameterMatcher,
  Route,
  RouteAction,
  RouteMatch,
  StringMatcher,
} from './envoy.js';
import { ManifestError } from './errors.js';
import { CLUSTER_DOMAIN } from './hosts.js';
import { describe, HEADER_NAME, type ObjectMeta, Reader, rewrittenBeforeRouting } from './manifest.js';
import { re2Problem } from './re2.js';
import { NAMESPACE } from './repo.js';
import { type ClusterInfo, DEFAULT_NAMESPACE, type GatewayRouteTable } from './table.js';
import {
  byteCompare,
  convertRetryPolicy,
  isCatchAllRoute,
  type RouteSource,
  subsetKey,
} from './translate.js';
import type { Workload } from './workloads.js';

export const GATEWAY_API = 'gateway.networking.k8s.io/v1';
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** The versions of the API that serve HTTPRoute and Gateway (the objects are the same). */
export const GATEWAY_API_VERSIONS = [GATEWAY_API, 'gateway.networking.k8s.io/v1beta1'];

/** The CRD's limits (HTTPRoute of the standard channel): rules per route, matches per rule and in all. */
export const HTTPROUTE_LIMITS = { rules: 16, matchesPerRule: 64, matches: 128, backendRefs: 16, headers: 16 };

export type PathMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';
export type ValueMatchType = 'Exact' | 'RegularExpression';

export interface HttpRouteMatchSpec {
  path: { type: PathMatchType; value: string };
  headers: { name: string; type: ValueMatchType; value: string }[];
  queryParams: { name: string; type: ValueMatchType; value: string }[];
  method?: string;
}

/** A header modifier filter: names as written. */
export interface HeaderModifierSpec {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}

export interface BackendRefSpec {
  name: string;
  namespace?: string;
  port: number;
  weight: number;
}

export interface HttpRouteRuleSpec {
  name?: string;
  matches: HttpRouteMatchSpec[];
  requestHeaderModifier?: HeaderModifierSpec;
  responseHeaderModifier?: HeaderModifierSpec;
  backendRefs: BackendRefSpec[];
}

export interface ParentRefSpec {
  name: string;
  namespace?: string;
  sectionName?: string;
  port?: number;
}

/** An HTTPRoute with the API server's defaults applied. */
export interface HTTPRoute {
  apiVersion: string;
  kind: 'HTTPRoute';
  metadata: ObjectMeta;
  spec: { parentRefs: ParentRefSpec[]; rules: HttpRouteRuleSpec[] };
}

/** A Gateway API Gateway: one plain HTTP listener without hostname (what this repository uses). */
export interface KubeGateway {
  apiVersion: string;
  kind: 'Gateway';
  metadata: ObjectMeta;
  file: string;
  spec: {
    gatewayClassName: string;
    listeners: { name: string; port: number; protocol: 'HTTP'; allowedRoutesFrom: 'Same' | 'All' }[];
  };
}

/** A Kubernetes Service a backendRef can name: what it selects and its port. */
export interface BackendService {
  name: string;
  namespace: string;
  port: number;
  selector: Record<string, string>;
}

type Json = unknown;

const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const API_SERVER_REFUSES = 'the API server refuses this (Gateway API CRD)';

class GatewayApiReader extends Reader {
  crd(field: string, problem: string): never {
    this.fail(field, `${API_SERVER_REFUSES}: ${problem}`, 'invalid');
  }

  only(r: Record<string, Json>, field: string, allowed: readonly string[]): void {
    for (const k of Object.keys(r)) {
      if (!allowed.includes(k)) {
        this.unsupported(
          `${field}.${k}`,
          `not supported by this repository's HTTPRoute emulation (supported: ${allowed.join(', ')})`,
        );
      }
    }
  }

  list(v: Json, field: string, max: number): Json[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(field, `must be a list, got ${describe(v)}`);
    if (v.length > max) this.crd(field, `at most ${max} items, got ${v.length}`);
    return v;
  }

  integer(v: Json, field: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v))
      this.crd(field, `must be an integer, got ${describe(v)}`);
    if (v < min || v > max) this.crd(field, `must be in ${min}..${max}, got ${v}`);
    return v;
  }

  headerName(v: Json, field: string): string {
    const name = this.anyString(v, field);
    if (name.length < 1 || name.length > 256 || !HEADER_NAME.test(name))
      this.crd(field, `${JSON.stringify(name)} is not a header name`);
    return name;
  }

  value(v: Json, field: string, max: number): string {
    const value = this.anyString(v, field);
    if (value.length < 1 || value.length > max) this.crd(field, `length must be 1..${max}`);
    return value;
  }

  override header(doc: Record<string, Json>, kind: string): string {
    if (doc.kind !== kind) this.fail('kind', `must be ${kind}, got ${describe(doc.kind)}`);
    if (typeof doc.apiVersion !== 'string' || !GATEWAY_API_VERSIONS.includes(doc.apiVersion)) {
      this.fail('apiVersion', `must be ${GATEWAY_API}, got ${describe(doc.apiVersion)}`);
    }
    return doc.apiVersion;
  }
}

function regexField(r: GatewayApiReader, value: string, field: string): void {
  // Istio hands the expression to Envoy as it is; Envoy's RE2 refuses what does not compile (the gateway keeps
  // its previous configuration), so a stage with one never takes effect.
  if (value === '*') return; // Istio reads `*` as "present"
  const problem = re2Problem(value);
  if (problem !== null) r.invalid(field, `Envoy refuses the regular expression: ${problem}`);
}

function parsePath(r: GatewayApiReader, v: Json, field: string): HttpRouteMatchSpec['path'] {
  if (v === undefined) return { type: 'PathPrefix', value: '/' };
  const p = r.record(v, field);
  r.only(p, field, ['type', 'value']);
  const type = (p.type ?? 'PathPrefix') as PathMatchType;
  if (!['Exact', 'PathPrefix', 'RegularExpression'].includes(type))
    r.crd(`${field}.type`, `must be Exact, PathPrefix or RegularExpression, got ${describe(p.type)}`);
  const value = p.value === undefined ? '/' : r.anyString(p.value, `${field}.value`);
  if (value.length > 1024) r.crd(`${field}.value`, 'at most 1024 characters');
  if (type === 'RegularExpression') {
    regexField(r, value, `${field}.value`);
    return { type, value };
  }
  const bad: [boolean, string][] = [
    [!value.startsWith('/'), "value must be an absolute path and start with '/'"],
    [value.includes('//'), "must not contain '//'"],
    [value.includes('/./'), "must not contain '/./'"],
    [value.includes('/../'), "must not contain '/../'"],
    [value.includes('%2f') || value.includes('%2F'), "must not contain '%2f'"],
    [value.includes('#'), "must not contain '#'"],
    [value.endsWith('/..') || value.endsWith('/.'), "must not end with '/..' or '/.'"],
    [!PATH_CHARS.test(value), 'must only contain valid path characters'],
  ];
  for (const [failed, message] of bad) if (failed) r.crd(`${field}.value`, message);
  return { type, value };
}

function parseValueMatches(
  r: GatewayApiReader,
  v: Json,
  field: string,
  max: number,
): { name: string; type: ValueMatchType; value: string }[] {
  const seen = new Set<string>();
  return r.list(v, field, max).map((x, i) => {
    const at = `${field}[${i}]`;
    const m = r.record(x, at);
    r.only(m, at, ['name', 'type', 'value']);
    const name = r.headerName(m.name, `${at}.name`);
    if (seen.has(name)) r.crd(`${at}.name`, `duplicate entry ${JSON.stringify(name)}`);
    seen.add(name);
    const type = (m.type ?? 'Exact') as ValueMatchType;
    if (type !== 'Exact' && type !== 'RegularExpression')
      r.crd(`${at}.type`, `must be Exact or RegularExpression, got ${describe(m.type)}`);
    const value = r.value(m.value, `${at}.value`, field.endsWith('queryParams') ? 1024 : 4096);
    if (type === 'RegularExpression') regexField(r, value, `${at}.value`);
    return { name, type, value };
  });
}

function parseMatch(r: GatewayApiReader, v: Json, field: string): HttpRouteMatchSpec {
  const m = r.record(v, field);
  r.only(m, field, ['path', 'headers', 'queryParams', 'method']);
  const out: HttpRouteMatchSpec = {
    path: parsePath(r, m.path, `${field}.path`),
    headers: parseValueMatches(r, m.headers, `${field}.headers`, HTTPROUTE_LIMITS.headers),
    queryParams: parseValueMatches(r, m.queryParams, `${field}.queryParams`, HTTPROUTE_LIMITS.headers),
  };
  for (const [i, h] of out.headers.entries()) {
    if (rewrittenBeforeRouting(h.name)) {
      r.unsupported(
        `${field}.headers[${i}].name`,
        `the gateway sets, removes or regenerates ${h.name.toLowerCase()} before it picks a route; a match on it is not emulated`,
      );
    }
  }
  if (m.method !== undefined) {
    if (typeof m.method !== 'string' || !METHODS.includes(m.method))
      r.crd(`${field}.method`, `must be one of ${METHODS.join(', ')}, got ${describe(m.method)}`);
    out.method = m.method;
  }
  return out;
}

function parseHeaderModifier(r: GatewayApiReader, v: Json, field: string): HeaderModifierSpec {
  const h = r.record(v, field);
  r.only(h, field, ['set', 'add', 'remove']);
  const pairs = (key: 'set' | 'add') => {
    const seen = new Set<string>();
    return r.list(h[key], `${field}.${key}`, 16).map((x, i) => {
      const at = `${field}.${key}[${i}]`;
      const p = r.record(x, at);
      r.only(p, at, ['name', 'value']);
      const name = r.headerName(p.name, `${at}.name`);
      if (seen.has(name)) r.crd(`${at}.name`, `duplicate entry ${JSON.stringify(name)}`);
      seen.add(name);
      if (name.toLowerCase() === 'host')
        r.unsupported(`${at}.name`, 'a Host header modifier rewrites the authority; not emulated');
      const value = r.value(p.value, `${at}.value`, 4096);
      if ([...value].some((ch) => (ch.charCodeAt(0) < 0x20 && ch !== '\t') || ch.charCodeAt(0) === 0x7f))
        r.invalid(
          `${at}.value`,
          `Istio refuses this: header ${JSON.stringify(name)} value contains invalid characters`,
        );
      if (value.replaceAll('%%', '').includes('%'))
        r.unsupported(
          `${at}.value`,
          "'%' starts an Envoy command in a header value; not emulated (write %% for a literal %)",
        );
      return { name, value };
    });
  };
  const remove = r
    .list(h.remove, `${field}.remove`, 16)
    .map((x, i) => r.headerName(x, `${field}.remove[${i}]`));
  if (new Set(remove).size !== remove.length) r.crd(`${field}.remove`, 'duplicate entries');
  for (const [i, name] of remove.entries())
    if (name.toLowerCase() === 'host')
      r.unsupported(`${field}.remove[${i}]`, 'removing Host is not emulated');
  return { set: pairs('set'), add: pairs('add'), remove };
}

const REFUSED_FILTERS: Record<string, string> = {
  RequestRedirect: 'redirects (the gateway answers 3xx itself)',
  URLRewrite: 'URL rewriting (what the workload receives)',
  RequestMirror: 'mirroring (a copy of each request to another backend)',
  CORS: 'CORS (preflight answers and CORS response headers)',
  ExtensionRef: 'an implementation-specific filter',
};

function parseRule(r: GatewayApiReader, v: Json, field: string): HttpRouteRuleSpec {
  const h = r.record(v, field);
  for (const [key, what] of [
    ['timeouts', 'request timeouts'],
    ['retry', 'a retry policy of its own'],
    ['sessionPersistence', 'session persistence'],
  ] as const) {
    if (h[key] !== undefined)
      r.unsupported(`${field}.${key}`, `${what} is not emulated by the local gateway`);
  }
  r.only(h, field, ['name', 'matches', 'filters', 'backendRefs']);
  const out: HttpRouteRuleSpec = { matches: [], backendRefs: [] };
  if (h.name !== undefined) {
    const name = r.anyString(h.name, `${field}.name`);
    if (name.length > 253 || !RULE_NAME.test(name))
      r.crd(`${field}.name`, `${JSON.stringify(name)} is not a valid rule name`);
    out.name = name;
  }
  out.matches =
    h.matches === undefined
      ? [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }]
      : r
          .list(h.matches, `${field}.matches`, HTTPROUTE_LIMITS.matchesPerRule)
          .map((m, i) => parseMatch(r, m, `${field}.matches[${i}]`));
  for (const [i, x] of r.list(h.filters, `${field}.filters`, 16).entries()) {
    const at = `${field}.filters[${i}]`;
    const f = r.record(x, at);
    const type = r.string(f.type, `${at}.type`);
    const what = REFUSED_FILTERS[type];
    if (what !== undefined)
      r.unsupported(
        `${at}.type`,
        `${type}: ${what} changes what a request does and is not emulated by the local gateway`,
      );
    if (type !== 'RequestHeaderModifier' && type !== 'ResponseHeaderModifier')
      r.crd(`${at}.type`, `unknown filter type ${JSON.stringify(type)}`);
    const key = type === 'RequestHeaderModifier' ? 'requestHeaderModifier' : 'responseHeaderModifier';
    r.only(f, at, ['type', key]);
    if (f[key] === undefined) r.crd(at, `filter.${key} must be specified for ${type} filter.type`);
    if (out[key] !== undefined) r.crd(at, `${type} filter cannot be repeated`);
    out[key] = parseHeaderModifier(r, f[key], `${at}.${key}`);
  }
  out.backendRefs = r
    .list(h.backendRefs, `${field}.backendRefs`, HTTPROUTE_LIMITS.backendRefs)
    .map((x, i) => {
      const at = `${field}.backendRefs[${i}]`;
      const b = r.record(x, at);
      if (b.filters !== undefined) r.unsupported(`${at}.filters`, 'filters on a backendRef are not emulated');
      r.only(b, at, ['name', 'namespace', 'port', 'weight', 'group', 'kind']);
      if ((b.group ?? '') !== '' || (b.kind ?? 'Service') !== 'Service')
        r.unsupported(at, "only Service backends (the chart's) are emulated");
      const name = r.string(b.name, `${at}.name`);
      if (b.port === undefined) r.crd(`${at}.port`, 'must be specified when referencing a Service');
      const ref: BackendRefSpec = {
        name,
        port: r.integer(b.port, `${at}.port`, 1, 65535),
        weight: b.weight === undefined ? 1 : r.integer(b.weight, `${at}.weight`, 0, 1_000_000),
      };
      if (b.namespace !== undefined) ref.namespace = r.string(b.namespace, `${at}.namespace`);
      return ref;
    });
  if (out.backendRefs.every((b) => b.weight === 0)) {
    r.unsupported(
      `${field}.backendRefs`,
      'a rule without a backend of weight > 0: Istio answers 500 itself, which the local gateway does not emulate',
    );
  }
  return out;
}

/** Parses an HTTPRoute (already read from YAML), applying the API server's defaults and checks. */
export function parseHttpRoute(doc: Json, file: string): HTTPRoute {
  const r = new GatewayApiReader(file);
  const d = r.record(doc, '(document)');
  const apiVersion = r.header(d, 'HTTPRoute');
  const metadata = r.metadata(d.metadata);
  const spec = r.record(d.spec, 'spec');
  if (spec.hostnames !== undefined)
    r.unsupported(
      'spec.hostnames',
      'hostnames are not emulated: the stage routes every Host the Gateway accepts',
    );
  r.only(spec, 'spec', ['parentRefs', 'rules']);
  const parentRefs = r.list(spec.parentRefs, 'spec.parentRefs', 32).map((x, i) => {
    const at = `spec.parentRefs[${i}]`;
    const p = r.record(x, at);
    r.only(p, at, ['name', 'namespace', 'sectionName', 'port', 'group', 'kind']);
    if ((p.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || (p.kind ?? 'Gateway') !== 'Gateway')
      r.unsupported(at, 'only a Gateway parent is emulated (no mesh routing through a Service)');
    const ref: ParentRefSpec = { name: r.string(p.name, `${at}.name`) };
    if (p.namespace !== undefined) ref.namespace = r.string(p.namespace, `${at}.namespace`);
    if (p.sectionName !== undefined) ref.sectionName = r.string(p.sectionName, `${at}.sectionName`);
    if (p.port !== undefined) ref.port = r.integer(p.port, `${at}.port`, 1, 65535);
    return ref;
  });
  const rulesRaw = spec.rules === undefined ? [{}] : r.list(spec.rules, 'spec.rules', HTTPROUTE_LIMITS.rules);
  const rules = rulesRaw.map((x, i) => parseRule(r, x, `spec.rules[${i}]`));
  const total = rules.reduce((n, rule) => n + rule.matches.length, 0);
  if (total > HTTPROUTE_LIMITS.matches)
    r.crd(
      'spec.rules',
      `the total number of matches across all rules must be at most ${HTTPROUTE_LIMITS.matches}, got ${total}`,
    );
  // Rule names "MUST be unique" says the API's documentation, but the CRD does not check it, and Istio names
  // each Envoy route after its rule: equal names are accepted as they are.
  return { apiVersion, kind: 'HTTPRoute', metadata, spec: { parentRefs, rules } };
}

/** Parses a Gateway API Gateway: class istio, plain HTTP listeners without hostname. */
export function parseKubeGateway(doc: Json, file: string): KubeGateway {
  const r = new GatewayApiReader(file);
  const d = r.record(doc, '(document)');
  const apiVersion = r.header(d, 'Gateway');
  const metadata = r.metadata(d.metadata);
  const spec = r.record(d.spec, 'spec');
  r.only(spec, 'spec', ['gatewayClassName', 'listeners', 'infrastructure']);
  const gatewayClassName = r.string(spec.gatewayClassName, 'spec.gatewayClassName');
  if (gatewayClassName !== 'istio')
    r.unsupported('spec.gatewayClassName', `only Istio's class "istio" is emulated, got ${gatewayClassName}`);
  const listeners = r.list(spec.listeners, 'spec.listeners', 64).map((x, i) => {
    const at = `spec.listeners[${i}]`;
    const l = r.record(x, at);
    r.only(l, at, ['name', 'port', 'protocol', 'allowedRoutes']);
    if (l.protocol !== 'HTTP')
      r.unsupported(`${at}.protocol`, `only HTTP listeners are emulated, got ${describe(l.protocol)}`);
    const from = (r.record(l.allowedRoutes ?? {}, `${at}.allowedRoutes`).namespaces ?? {}) as Record<
      string,
      Json
    >;
    const allowed = (from.from ?? 'Same') as string;
    if (allowed !== 'Same' && allowed !== 'All')
      r.unsupported(`${at}.allowedRoutes.namespaces.from`, `only Same and All are emulated, got ${allowed}`);
    return {
      name: r.string(l.name, `${at}.name`),
      port: r.integer(l.port, `${at}.port`, 1, 65535),
      protocol: 'HTTP' as const,
      allowedRoutesFrom: allowed as 'Same' | 'All',
    };
  });
  if (listeners.length !== 1) r.unsupported('spec.listeners', 'exactly one listener is emulated');
  return { apiVersion, kind: 'Gateway', metadata, file, spec: { gatewayClassName, listeners } };
}

/** The Gateway of istio/base/gateway-api/gateway.yaml when none is given. */
export const DEFAULT_KUBE_GATEWAY: KubeGateway = {
  apiVersion: GATEWAY_API,
  kind: 'Gateway',
  metadata: { name: 'webapp-gateway', namespace: NAMESPACE, labels: {} },
  file: '(default)',
  spec: {
    gatewayClassName: 'istio',
    listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutesFrom: 'Same' }],
  },
};

/**
 * The chart's Services from its values (loadWorkloads' workloads): the shared one over every version, one per
 * version and one per colour (templates/version-services.yaml), selecting by the labels the workloads carry.
 */
export function servicesFromWorkloads(
  workloads: readonly Workload[],
  app: { name: string; namespace: string; port: number },
): BackendService[] {
  const base = { namespace: app.namespace, port: app.port };
  const out: BackendService[] = [{ ...base, name: app.name, selector: {} }];
  for (const w of workloads) {
    out.push({ ...base, name: `${app.name}-${w.version}`, selector: { version: w.version } });
    if (w.color) out.push({ ...base, name: `${app.name}-${w.color}`, selector: { color: w.color } });
  }
  return out;
}

/** The Services of a rendered chart (`helm template` output): name, namespace, first port, selector. */
export function servicesFromRenderedObjects(objects: readonly unknown[]): BackendService[] {
  const out: BackendService[] = [];
  for (const o of objects) {
    if (typeof o !== 'object' || o === null) continue;
    const obj = o as { kind?: unknown; metadata?: Record<string, unknown>; spec?: Record<string, unknown> };
    if (obj.kind !== 'Service') continue;
    const annotations = (obj.metadata?.annotations ?? {}) as Record<string, unknown>;
    if ('helm.sh/hook' in annotations) continue;
    const ports = (obj.spec?.ports ?? []) as { port?: unknown }[];
    const selector = (obj.spec?.selector ?? {}) as Record<string, string>;
    for (const p of ports) {
      if (typeof p.port !== 'number') continue;
      out.push({
        name: String(obj.metadata?.name),
        namespace: String(obj.metadata?.namespace ?? DEFAULT_NAMESPACE),
        port: p.port,
        selector: { ...selector },
      });
    }
  }
  return out;
}

export interface HttpRouteTableOptions {
  gateway?: KubeGateway;
}

function uriRank(p: HttpRouteMatchSpec['path']): number {
  return p.type === 'Exact' ? 3 : p.type === 'PathPrefix' ? 2 : 1;
}

/** The path Istio's createURIMatch keeps (PathPrefix: a trailing `/` dropped, except for "/"). */
function istioPath(p: HttpRouteMatchSpec['path']): string {
  return p.type === 'PathPrefix' && p.value !== '/' ? p.value.replace(/\/$/, '') : p.value;
}

function valueMatcher(type: ValueMatchType, value: string): StringMatcher {
  return type === 'Exact' ? { exact: value } : { safeRegex: { regex: value } };
}

/** The header or query parameter matchers of a match, sorted by name: a RegularExpression `*` is a presence match. */
function nameMatchers(
  matches: readonly { name: string; type: ValueMatchType; value: string }[],
): QueryParameterMatcher[] {
  return matches
    .map(
      (x): QueryParameterMatcher =>
        x.type === 'RegularExpression' && x.value === '*'
          ? { name: x.name, presentMatch: true }
          : { name: x.name, stringMatch: valueMatcher(x.type, x.value) },
    )
    .sort((a, b) => byteCompare(a.name, b.name));
}

function routeMatchOf(m: HttpRouteMatchSpec): RouteMatch {
  const out: RouteMatch = { caseSensitive: true };
  const path = istioPath(m.path);
  if (m.path.type === 'Exact') out.path = path;
  else if (m.path.type === 'RegularExpression') out.safeRegex = { regex: path };
  else if (path === '/') out.prefix = '/';
  else out.pathSeparatedPrefix = path.replace(/\/$/, '');
  const headers: HeaderMatcher[] = nameMatchers(m.headers);
  if (m.method !== undefined) headers.push({ name: ':method', stringMatch: { exact: m.method } });
  if (headers.length > 0) out.headers = headers;
  if (m.queryParams.length > 0) {
    out.queryParameters = nameMatchers(m.queryParams);
  }
  // Keep protojson's field order (the path specifier first).
  const { caseSensitive, ...rest } = out;
  return { ...rest, caseSensitive } as RouteMatch;
}

/** Istio's headerListToMap: names lower-cased, the first of equal names kept, then sorted (translateAppendHeaders). */
function headerOptions(
  pairs: readonly { name: string; value: string }[],
  overwrite: boolean,
): HeaderValueOption[] {
  const seen = new Map<string, string>();
  for (const p of pairs) {
    const k = p.name.toLowerCase();
    if (!seen.has(k)) seen.set(k, p.value);
  }
  return [...seen.entries()]
    .sort(([a], [b]) => byteCompare(a, b))
    .map(([key, value]) =>
      overwrite
        ? { header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }
        : { header: { key, value } },
    );
}

interface SplitRoute {
  rule: HttpRouteRuleSpec;
  ruleIndex: number;
  matchIndex: number;
  match: HttpRouteMatchSpec;
}

/** Istio's sortHTTPRoutes (stable). */
function precedence(a: SplitRoute, b: SplitRoute): number {
  const r1 = uriRank(a.match.path);
  const r2 = uriRank(b.match.path);
  if (r1 !== r2) return r2 - r1;
  const l1 = istioPath(a.match.path).length;
  const l2 = istioPath(b.match.path).length;
  if (l1 !== l2) return l2 - l1;
  const m1 = a.match.method !== undefined;
  const m2 = b.match.method !== undefined;
  if (m1 !== m2) return m1 ? -1 : 1;
  const h1 = new Set(a.match.headers.map((h) => h.name)).size;
  const h2 = new Set(b.match.headers.map((h) => h.name)).size;
  if (h1 !== h2) return h2 - h1;
  return (
    new Set(b.match.queryParams.map((q) => q.name)).size -
    new Set(a.match.queryParams.map((q) => q.name)).size
  );
}

/**
 * The route table Istio gives the Gateway's Envoy for one HTTPRoute (the Gateway API sibling of
 * gatewayRouteTable): route configuration `http.<listener port>`, one virtual host `*:<port>` with domain `*`.
 * `services` are the Kubernetes Services a backendRef may name (the chart's), `workloads` the pods behind them.
 * Throws ManifestError (kind `unsupported`) for a backend that is not one of `services`.
 */
export function httpRouteTable(
  given: HTTPRoute,
  services: readonly BackendService[],
  workloads: readonly Workload[],
  options: HttpRouteTableOptions = {},
): GatewayRouteTable {
  const route: HTTPRoute =
    given.metadata.namespace === undefined
      ? { ...given, metadata: { ...given.metadata, namespace: DEFAULT_NAMESPACE } }
      : given;
  const namespace = route.metadata.namespace as string;
  const gateway = options.gateway ?? DEFAULT_KUBE_GATEWAY;
  const listener = gateway.spec.listeners[0] as KubeGateway['spec']['listeners'][number];
  const gatewayNamespace = gateway.metadata.namespace ?? DEFAULT_NAMESPACE;
  const port = listener.port;
  const file = `HTTPRoute ${namespace}/${route.metadata.name}`;
  const vsName = `${gatewayNamespace}~${gateway.metadata.name}~istio-autogenerated-k8s-gateway~${listener.name}~*`;

  let unbound: string | null = null;
  const attached = route.spec.parentRefs.some(
    (p) =>
      p.name === gateway.metadata.name &&
      (p.namespace ?? namespace) === gatewayNamespace &&
      (p.sectionName === undefined || p.sectionName === listener.name) &&
      (p.port === undefined || p.port === port),
  );
  if (!attached) {
    unbound = `spec.parentRefs ${JSON.stringify(route.spec.parentRefs)} do not name the Gateway ${gatewayNamespace}/${gateway.metadata.name} (listener ${listener.name}, port ${port})`;
  } else if (listener.allowedRoutesFrom === 'Same' && namespace !== gatewayNamespace) {
    unbound = `the Gateway ${gatewayNamespace}/${gateway.metadata.name} admits routes of its own namespace only, not ${namespace}`;
  }
  if (unbound !== null) {
    throw new ManifestError(
      file,
      'spec.parentRefs',
      `${unbound}: the Gateway gets no route from it`,
      'unsupported',
    );
  }

  const clusters = new Map<string, ClusterInfo>();
  const clusterOf = (b: BackendRefSpec, field: string): string => {
    const ns = b.namespace ?? namespace;
    if (ns !== namespace) {
      throw new ManifestError(
        file,
        `${field}.namespace`,
        'a backend in another namespace needs a ReferenceGrant; not emulated',
        'unsupported',
      );
    }
    const svc = services.find((s) => s.name === b.name && s.namespace === ns && s.port === b.port);
    if (svc === undefined) {
      const known = services.map((s) => `${s.name}:${s.port}`).join(', ');
      throw new ManifestError(
        file,
        `${field}.name`,
        `backend ${b.name} port ${b.port} is not one of the chart's Services (${known}): the local path runs only the app`,
        'unsupported',
      );
    }
    const host = `${svc.name}.${ns}.svc.${CLUSTER_DOMAIN}`;
    const name = subsetKey(host, b.port, undefined);
    if (!clusters.has(name)) {
      const selected = workloads.filter((w) =>
        Object.entries(svc.selector).every(([k, v]) => w.labels[k] === v),
      );
      clusters.set(name, {
        name,
        host,
        port: b.port,
        subset: null,
        exists: true,
        endpoints: selected.map((w) => ({
          workload: `${w.labels.app ?? 'webapp'}-${w.version}`,
          version: w.version,
          labels: { ...w.labels },
        })),
      });
    }
    return name;
  };

  const split: SplitRoute[] = route.spec.rules.flatMap((rule, ruleIndex) =>
    rule.matches.map((match, matchIndex) => ({ rule, ruleIndex, matchIndex, match })),
  );
  const sorted = split
    .map((s, i) => ({ s, i }))
    .sort((a, b) => precedence(a.s, b.s) || a.i - b.i)
    .map((x) => x.s);

  const routes: Route[] = [];
  const sources: RouteSource[] = [];
  for (const s of sorted) {
    const match = routeMatchOf(s.match);
    const timeout = '0s';
    const action: RouteAction = {
      timeout,
      maxGrpcTimeout: timeout,
      clusterNotFoundResponseCode: 'INTERNAL_SERVER_ERROR',
    };
    const live = s.rule.backendRefs.map((b, i) => ({ b, i })).filter(({ b }) => b.weight > 0);
    const field = (i: number) => `spec.rules[${s.ruleIndex}].backendRefs[${i}]`;
    if (live.length === 1) {
      const only = live[0] as { b: BackendRefSpec; i: number };
      action.cluster = clusterOf(only.b, field(only.i));
    } else {
      action.weightedClusters = {
        clusters: live.map(({ b, i }) => ({ name: clusterOf(b, field(i)), weight: b.weight })),
      };
    }
    action.retryPolicy = convertRetryPolicy(undefined);
    const path =
      match.prefix !== undefined ? `${match.prefix}*` : (match.path ?? match.safeRegex?.regex ?? '/*');
    const single = action.cluster === undefined ? undefined : clusters.get(action.cluster);
    const operation =
      single !== undefined ? `${single.host}:${single.port}${path}` : `${vsName}:${port}${path}`;
    const out: Route = {
      name: s.rule.name ?? `${namespace}.${route.metadata.name}.${s.ruleIndex}`,
      match,
      route: action,
      metadata: {
        filterMetadata: {
          istio: {
            config: `/apis/networking.istio.io/v1/namespaces/${gatewayNamespace}/virtual-service/${vsName}`,
          },
        },
      },
      decorator: { operation },
    };
    const req = s.rule.requestHeaderModifier;
    if (req !== undefined) {
      const toAdd = [...headerOptions(req.set, true), ...headerOptions(req.add, false)];
      if (toAdd.length > 0) out.requestHeadersToAdd = toAdd;
      if (req.remove.length > 0) out.requestHeadersToRemove = [...req.remove];
    }
    const resp = s.rule.responseHeaderModifier;
    if (resp !== undefined) {
      const toAdd = [...headerOptions(resp.set, true), ...headerOptions(resp.add, false)];
      if (toAdd.length > 0) out.responseHeadersToAdd = toAdd;
      if (resp.remove.length > 0) out.responseHeadersToRemove = [...resp.remove];
    }
    routes.push(out);
    sources.push({ http: s.ruleIndex, match: s.matchIndex });
    if (isCatchAllRoute(match)) break;
  }
  // Istio's SortVHostRoutes: catch-all routes last (there is at most one, and it is the last already).
  return {
    routeConfiguration: {
      name: `http.${port}`,
      virtualHosts: [{ name: `*:${port}`, domains: ['*'], routes, includeRequestAttemptCount: true }],
      validateClusters: false,
      ignorePortInHostMatching: true,
      maxDirectResponseBodySizeBytes: 1024 * 1024,
    },
    clusters: [...clusters.values()].sort((a, b) => byteCompare(a.name, b.name)),
    sources: [sources],
    unbound: null,
  };
}
