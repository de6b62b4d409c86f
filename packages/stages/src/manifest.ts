/**
 * Typed subsets of Istio's VirtualService, DestinationRule and Gateway (networking.istio.io/v1), parsed from YAML.
 * A manifest is refused with a ManifestError naming the file and the field when Istio's validation would refuse it
 * (kind `invalid`: pkg/config/validation, reproduced rule by rule for the fields read here) or when Istio accepts
 * it but the local gateway does not emulate what it does (kind `unsupported`), so the two paths cannot silently
 * differ.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ManifestError, type ManifestErrorKind } from './errors.js';
import { hostsOverlap, isIpAddress } from './hosts.js';
import { re2Problem } from './re2.js';

export const NETWORKING_API = 'networking.istio.io/v1';
/** The versions of the networking API Istio serves; the objects are the same. */
export const NETWORKING_APIS = [
  NETWORKING_API,
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
];

/** Istio's StringMatch: at most one of exact, prefix, regex (RE2, full-string match). None: "present". */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** HTTPMatchRequest: the conditions inside one entry are ANDed. */
export interface HttpMatchRequest {
  name?: string;
  uri?: StringMatch;
  method?: StringMatch;
  /** Header names as written (Envoy compares them case-insensitively). */
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: { number: number };
}

export interface HttpRouteDestination {
  destination: Destination;
  weight?: number;
}

/**
 * Istio's HeaderOperations on the response: `set` replaces a header the upstream sent (or adds it), `add` appends a
 * value, `remove` drops a header. Names as written in the file (Envoy compares them case-insensitively).
 */
export interface ResponseHeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

/** HTTPRetry. Durations in the seconds notation of protobuf JSON ("2s", "0.25s"; the file may say "250ms"). */
export interface HttpRetry {
  attempts: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: string;
}

/** HTTPRoute: `match` entries are ORed; no `match` matches every request. */
export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route: HttpRouteDestination[];
  /** `headers.response` of the route (request headers are refused by the parser). */
  headers?: { response: ResponseHeaderOperations };
  /** Route timeout in the seconds notation of protobuf JSON ("10s"; the file may say "10s" or "1m"); Istio's default is none ("0s"). */
  timeout?: string;
  retries?: HttpRetry;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
}

export interface VirtualService {
  apiVersion: string;
  kind: 'VirtualService';
  metadata: ObjectMeta;
  spec: {
    hosts: string[];
    gateways: string[];
    http: HttpRoute[];
    /** Namespaces the VirtualService is visible to; absent: every namespace. */
    exportTo?: string[];
  };
}

export interface Subset {
  name: string;
  labels: Record<string, string>;
}

export interface DestinationRule {
  apiVersion: string;
  kind: 'DestinationRule';
  metadata: ObjectMeta;
  file: string;
  spec: { host: string; subsets: Subset[] };
}

/** A Gateway server (plain HTTP only). */
export interface GatewayServer {
  port: { number: number; name: string; protocol: string };
  hosts: string[];
  name?: string;
}

export interface Gateway {
  apiVersion: string;
  kind: 'Gateway';
  metadata: ObjectMeta;
  file: string;
  spec: { selector: Record<string, string>; servers: GatewayServer[] };
}

type Json = unknown;

function isRecord(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Kubernetes' object size limit: the API server stores an object in etcd, which refuses a request above 1.5 MiB
 * (its default --max-request-bytes), so `kubectl apply` of a larger stage file fails. Such a file is refused
 * before it is parsed.
 */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/**
 * This repository's bound on a VirtualService stage: 100 http routes, 1000 match entries in all (the stages use 2
 * and 1). Istio has no such limit, but every route is tried in order for every request; a file above it is
 * refused before its matches (regular expressions) are compiled. HTTPRoute files have their CRD's limits (16
 * rules, 64 matches per rule, 128 in all).
 */
export const MAX_VS_ROUTES = 100;
export const MAX_VS_MATCHES = 1000;

/** Reads a file holding exactly one YAML document (refused above {@link MAX_OBJECT_BYTES}). */
export function readSingleDocument(file: string): Json {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_OBJECT_BYTES) {
      throw new ManifestError(
        file,
        '(file)',
        `${size} bytes is above Kubernetes' object size limit of 1.5 MiB (${MAX_OBJECT_BYTES} bytes, etcd's request limit): the API server would refuse it`,
        'invalid',
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    throw new ManifestError(file, '(file)', `cannot read: ${(error as Error).message}`);
  }
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  if (docs.length !== 1) {
    throw new ManifestError(file, '(file)', `expected exactly one YAML document, found ${docs.length}`);
  }
  const doc = docs[0];
  if (doc === undefined) throw new ManifestError(file, '(file)', 'empty');
  if (doc.errors.length > 0) {
    throw new ManifestError(file, '(file)', `invalid YAML: ${doc.errors[0]?.message ?? 'parse error'}`);
  }
  return doc.toJS();
}

const ISTIO_REJECTS = 'Istio rejects this';

export class Reader {
  constructor(readonly file: string) {}

  fail(field: string, problem: string, kind: ManifestErrorKind = 'invalid'): never {
    throw new ManifestError(this.file, field, problem, kind);
  }

  /** Istio's validation (the admission webhook, `istioctl validate`) refuses the field. */
  invalid(field: string, problem: string): never {
    this.fail(field, `${ISTIO_REJECTS}: ${problem}`, 'invalid');
  }

  /** Istio accepts the field, the local gateway does not emulate it. */
  unsupported(field: string, problem: string): never {
    this.fail(field, problem, 'unsupported');
  }

  record(v: Json, field: string): Record<string, Json> {
    if (!isRecord(v)) this.fail(field, `must be a mapping, got ${describe(v)}`);
    return v;
  }

  string(v: Json, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  anyString(v: Json, field: string): string {
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${describe(v)}`);
    return v;
  }

  boolean(v: Json, field: string): boolean {
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${describe(v)}`);
    return v;
  }

  stringArray(v: Json, field: string, optional = false): string[] {
    if (v === undefined && optional) return [];
    if (!Array.isArray(v)) this.fail(field, `must be a list of strings, got ${describe(v)}`);
    return v.map((x, i) => this.string(x, `${field}[${i}]`));
  }

  labels(v: Json, field: string): Record<string, string> {
    if (v === undefined) return {};
    const r = this.record(v, field);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(r)) {
      if (typeof x !== 'string') this.fail(`${field}.${k}`, `must be a string, got ${describe(x)}`);
      out[k] = x;
    }
    return out;
  }

  onlyKeys(r: Record<string, Json>, field: string, allowed: readonly string[]) {
    for (const k of Object.keys(r)) {
      if (!allowed.includes(k)) {
        this.unsupported(
          `${field}.${k}`,
          `not supported by this repository's VirtualService emulation (supported: ${allowed.join(', ')})`,
        );
      }
    }
  }

  metadata(v: Json): ObjectMeta {
    const m = this.record(v, 'metadata');
    const meta: ObjectMeta = {
      name: this.string(m.name, 'metadata.name'),
      labels: this.labels(m.labels, 'metadata.labels'),
    };
    if (m.namespace !== undefined) meta.namespace = this.string(m.namespace, 'metadata.namespace');
    return meta;
  }

  header(doc: Record<string, Json>, kind: string): string {
    if (doc.kind !== kind) this.fail('kind', `must be ${kind}, got ${describe(doc.kind)}`);
    if (typeof doc.apiVersion !== 'string' || !NETWORKING_APIS.includes(doc.apiVersion)) {
      this.fail('apiVersion', `must be ${NETWORKING_API}, got ${describe(doc.apiVersion)}`);
    }
    return doc.apiVersion;
  }
}

export function describe(v: Json): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Istio's ValidateDNS1123Labels: a problem, or null. */
function dnsLabelsProblem(domain: string): string | null {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1] as string;
  if (/^[+-]?\d+$/.test(tld))
    return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, label] of parts.entries()) {
    if (i === parts.length - 1 && label === '') return null;
    if (!isDns1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return null;
}

/** Istio's ValidateWildcardDomain: a problem, or null. */
export function wildcardDomainProblem(domain: string): string | null {
  if (domain.length > 255) return `domain name "${domain}" too long (max 255)`;
  if (domain.length === 0) return 'empty domain name not allowed';
  const dot = domain.indexOf('.');
  const first = dot === -1 ? domain : domain.slice(0, dot);
  if (!(first.length <= 63 && WILDCARD_LABEL.test(first)))
    return `domain name "${domain}" invalid (label "${first}" invalid)`;
  return dot === -1 ? null : dnsLabelsProblem(domain.slice(dot + 1));
}

/** RFC 7230 token characters as Istio's validation spells them (its class `+-.` also admits `,`). */
const ISTIO_HEADER_NAME = /^[!#$%&'*+,\-.^_`|~A-Za-z0-9]+$/;
/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

/**
 * Request headers Envoy sets, removes or regenerates at the gateway before it picks a route (HCM
 * mutateRequestHeaders: x-forwarded-for / -proto / -client-cert, x-request-id for external requests, x-envoy-*,
 * hop-by-hop headers, expect): a match on them would see a value the local gateway does not reproduce.
 */
export function rewrittenBeforeRouting(name: string): boolean {
  const n = name.toLowerCase();
  return (
    n.startsWith('x-envoy-') ||
    [
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-client-cert',
      'x-request-id',
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'te',
      'expect',
      'host',
    ].includes(n)
  );
}

type MatchPlace = 'uri' | 'method' | 'headers' | 'withoutHeaders';

const STRING_MATCH_KEYS = ['exact', 'prefix', 'regex'] as const;

function parseStringMatch(r: Reader, v: Json, field: string, place: MatchPlace): StringMatch {
  const m = r.record(v, field);
  for (const k of Object.keys(m)) {
    if (!(STRING_MATCH_KEYS as readonly string[]).includes(k)) {
      r.fail(`${field}.${k}`, `unknown StringMatch field (Istio's are ${STRING_MATCH_KEYS.join(', ')})`);
    }
  }
  const keys = Object.keys(m) as (typeof STRING_MATCH_KEYS)[number][];
  if (keys.length === 0) return {};
  if (keys.length > 1)
    r.fail(field, `sets ${keys.join(' and ')}; a StringMatch takes one of exact, prefix, regex`);
  const key = keys[0] as (typeof STRING_MATCH_KEYS)[number];
  const value = m[key];
  if (typeof value !== 'string') r.fail(`${field}.${key}`, `must be a string, got ${describe(value)}`);
  // uri allows an empty prefix (Envoy's RouteMatch.prefix may be empty); headers and method do not.
  if (key === 'prefix' && value === '' && place !== 'uri')
    r.invalid(`${field}.prefix`, `"${place}": prefix string match should not be empty`);
  if (key === 'regex' && !(place === 'withoutHeaders' && value === '*')) {
    const problem = re2Problem(value);
    if (problem !== null) r.invalid(`${field}.regex`, `"${place}": ${problem}`);
  }
  return { [key]: value };
}

function parseHeaderMap(
  r: Reader,
  v: Json,
  field: string,
  place: 'headers' | 'withoutHeaders',
): Record<string, StringMatch> {
  const h = r.record(v, field);
  const out: Record<string, StringMatch> = {};
  for (const [name, m] of Object.entries(h)) {
    const at = `${field}.${name}`;
    if (name.startsWith('@request.auth.claims')) {
      r.unsupported(
        at,
        'JWT claim routing needs a RequestAuthentication; the local gateway does not emulate it',
      );
    }
    if (name.startsWith(':')) {
      r.unsupported(at, 'pseudo-header matches are not emulated by the local gateway (use uri or method)');
    }
    if (!ISTIO_HEADER_NAME.test(name)) r.invalid(at, `header name ${name} is not a valid header name`);
    if (rewrittenBeforeRouting(name)) {
      r.unsupported(
        at,
        `the gateway sets, removes or regenerates ${name.toLowerCase()} before it picks a route; a match on it is not emulated`,
      );
    }
    if (m === null && place === 'headers') r.invalid(at, `header match ${name} cannot be null`);
    out[name] = parseStringMatch(r, m, at, place);
  }
  return out;
}

/** Match fields Istio has that the local gateway does not emulate, with what they would take into account. */
const REFUSED_MATCH_FIELDS: Record<string, string> = {
  authority: 'the Host (authority) of the request',
  scheme: 'the scheme of the request',
  queryParams: 'query parameters',
  port: 'the port the request arrived on',
  sourceLabels: 'the labels of the calling workload (sidecars only)',
  sourceNamespace: 'the namespace of the calling workload (sidecars only)',
  gateways: 'the gateway the request arrived through',
  statPrefix: 'a stat prefix',
};

const MATCH_KEYS = ['name', 'uri', 'method', 'headers', 'withoutHeaders', 'ignoreUriCase'] as const;

function parseMatch(r: Reader, v: Json, field: string): HttpMatchRequest {
  const m = r.record(v, field);
  for (const [key, what] of Object.entries(REFUSED_MATCH_FIELDS)) {
    if (m[key] !== undefined)
      r.unsupported(`${field}.${key}`, `a match on ${what} is not emulated by the local gateway`);
  }
  r.onlyKeys(m, field, MATCH_KEYS);
  const out: HttpMatchRequest = {};
  if (m.name !== undefined) out.name = r.anyString(m.name, `${field}.name`);
  if (m.uri !== undefined) out.uri = parseStringMatch(r, m.uri, `${field}.uri`, 'uri');
  if (m.method !== undefined) out.method = parseStringMatch(r, m.method, `${field}.method`, 'method');
  if (m.headers !== undefined) out.headers = parseHeaderMap(r, m.headers, `${field}.headers`, 'headers');
  if (m.withoutHeaders !== undefined)
    out.withoutHeaders = parseHeaderMap(r, m.withoutHeaders, `${field}.withoutHeaders`, 'withoutHeaders');
  if (m.ignoreUriCase !== undefined) out.ignoreUriCase = r.boolean(m.ignoreUriCase, `${field}.ignoreUriCase`);
  return out;
}

const INT32_MAX = 2 ** 31 - 1;

function parseDestination(r: Reader, v: Json, field: string): HttpRouteDestination {
  const d = r.record(v, field);
  if (d.headers !== undefined) {
    r.unsupported(
      `${field}.headers`,
      'header operations on a destination are not emulated by the local gateway',
    );
  }
  r.onlyKeys(d, field, ['destination', 'weight']);
  if (d.destination === undefined) r.invalid(`${field}.destination`, 'destination is required');
  const dest = r.record(d.destination, `${field}.destination`);
  r.onlyKeys(dest, `${field}.destination`, ['host', 'subset', 'port']);
  const host = r.string(dest.host, `${field}.destination.host`);
  if (host === '*') r.invalid(`${field}.destination.host`, `invalid destination host ${host}`);
  const hostProblem = wildcardDomainProblem(host);
  if (hostProblem !== null) r.invalid(`${field}.destination.host`, hostProblem);
  const destination: Destination = { host };
  if (dest.subset !== undefined) {
    const subset = r.anyString(dest.subset, `${field}.destination.subset`);
    if (subset === '') r.invalid(`${field}.destination.subset`, 'subset name cannot be empty');
    if (!isDns1123Label(subset))
      r.invalid(`${field}.destination.subset`, `subset name is invalid: ${subset}`);
    destination.subset = subset;
  }
  if (dest.port !== undefined) {
    const p = r.record(dest.port, `${field}.destination.port`);
    r.onlyKeys(p, `${field}.destination.port`, ['number']);
    if (typeof p.number !== 'number' || !Number.isInteger(p.number) || p.number < 1 || p.number > 65535) {
      r.invalid(
        `${field}.destination.port.number`,
        `port number ${describe(p.number)} must be in the range 1..65535`,
      );
    }
    destination.port = { number: p.number };
  }
  const out: HttpRouteDestination = { destination };
  if (d.weight !== undefined) {
    if (typeof d.weight !== 'number' || !Number.isInteger(d.weight) || d.weight > INT32_MAX) {
      r.fail(`${field}.weight`, `must be an integer, got ${describe(d.weight)}`);
    }
    if (d.weight < 0) r.invalid(`${field}.weight`, `weight ${d.weight} < 0`);
    out.weight = d.weight;
  }
  return out;
}

/** Istio's ValidateHTTPHeaderOperationName, and a name Envoy takes (a token). */
function checkOperationName(r: Reader, name: string, at: string): void {
  if (name.toLowerCase() === 'host') r.invalid(at, `invalid header "${name}": cannot set Host header`);
  if (name.startsWith(':')) r.invalid(at, `invalid header "${name}": header cannot have ":" prefix`);
  if (!HEADER_NAME.test(name)) r.invalid(at, `"${name}" is not an HTTP header name`);
}

function parseHeaderValues(r: Reader, v: Json, field: string): Record<string, string> {
  const m = r.record(v, field);
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(m)) {
    const at = `${field}.${name}`;
    checkOperationName(r, name, at);
    const lower = name.toLowerCase();
    if (seen.has(lower)) r.unsupported(at, `"${lower}" is given twice (header names are case-insensitive)`);
    seen.add(lower);
    if (typeof value !== 'string') r.fail(at, `must be a string, got ${describe(value)}`);
    // Istio's httpHeaderValueRegexp: no control characters but tab.
    if (
      [...value].some((ch) => {
        const c = ch.charCodeAt(0);
        return (c < 0x20 && c !== 0x09) || c === 0x7f;
      })
    )
      r.invalid(at, `header value configuration ${JSON.stringify(value)} is invalid`);
    // Envoy reads %...% as a command (e.g. %DOWNSTREAM_REMOTE_ADDRESS%); "%%" is a literal "%".
    if (value.replaceAll('%%', '').includes('%')) {
      r.unsupported(
        at,
        "'%' starts an Envoy command in a header value; not emulated (write %% for a literal %)",
      );
    }
    out[name] = value;
  }
  return out;
}

/**
 * A route's `headers`: `response.set`, `response.add` and `response.remove` are emulated (the local gateway applies
 * them to every answer of the route, its own 503 / 504 included, as Envoy does); request headers are refused.
 */
function parseRouteHeaders(r: Reader, v: Json, field: string): { response: ResponseHeaderOperations } {
  const h = r.record(v, field);
  if (h.request !== undefined) {
    r.unsupported(`${field}.request`, 'request header manipulation is not emulated by the local gateway');
  }
  r.onlyKeys(h, field, ['response']);
  const response: ResponseHeaderOperations = {};
  if (h.response === undefined) return { response };
  const resp = r.record(h.response, `${field}.response`);
  r.onlyKeys(resp, `${field}.response`, ['set', 'add', 'remove']);
  if (resp.set !== undefined) response.set = parseHeaderValues(r, resp.set, `${field}.response.set`);
  if (resp.add !== undefined) response.add = parseHeaderValues(r, resp.add, `${field}.response.add`);
  if (resp.remove !== undefined) {
    response.remove = r.stringArray(resp.remove, `${field}.response.remove`);
    for (const [i, name] of response.remove.entries())
      checkOperationName(r, name, `${field}.response.remove[${i}]`);
  }
  return { response };
}

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 MICRO SIGN
  μs: 1_000n, // U+03BC GREEK SMALL LETTER MU
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_DURATION_NS = 2n ** 63n - 1n;

/**
 * Go's time.ParseDuration, which Istio's decoder (golang/protobuf's jsonpb) reads a Duration field with: `10s`,
 * `0.5s`, `1m`, `1h30m`, `250ms`, `0`; a sign is allowed, a unit is required. Nanoseconds, or null when Go refuses it.
 */
export function parseGoDuration(text: string): bigint | null {
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return null;
  let total = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s) as RegExpExecArray;
    const whole = m[1] ?? '';
    const fraction = m[2] ?? '';
    if (whole === '' && fraction === '') return null;
    s = s.slice(m[0].length);
    const unitMatch = /^[^\d.]*/.exec(s) as RegExpExecArray;
    const unit = DURATION_UNITS[unitMatch[0]];
    if (unit === undefined) return null;
    s = s.slice(unitMatch[0].length);
    // Go scales the fraction with float64 arithmetic; to the nanosecond this is the same for what Istio accepts
    // (millisecond precision).
    let value = BigInt(whole === '' ? '0' : whole) * unit;
    if (fraction !== '') {
      const scale = 10n ** BigInt(fraction.length);
      value += (BigInt(fraction) * unit) / scale;
    }
    total += value;
    if (total > MAX_DURATION_NS) return null;
  }
  return negative ? -total : total;
}

/**
 * A Duration field as Istio reads it (Go's duration syntax, {@link parseGoDuration}), validated as Istio does (at
 * least 1 ms, to the millisecond: ValidateDuration), in the seconds notation protobuf JSON prints (`1m` is `60s`,
 * `1500ms` is `1.5s`).
 */
function parseDuration(r: Reader, v: Json, field: string): string {
  if (typeof v !== 'string') r.invalid(field, `bad Duration: ${describe(v)} is not a string`);
  const ns = parseGoDuration(v);
  if (ns === null) r.invalid(field, `bad Duration: time: invalid duration ${JSON.stringify(v)}`);
  if (ns < 1_000_000n) r.invalid(field, 'duration must be greater than 1ms');
  if (ns % 1_000_000n !== 0n) r.invalid(field, 'only durations to ms precision are supported');
  const seconds = ns / 1_000_000_000n;
  const ms = (ns % 1_000_000_000n) / 1_000_000n;
  return ms === 0n ? `${seconds}s` : `${seconds}.${String(ms).padStart(3, '0').replace(/0+$/, '')}s`;
}

/** The retryOn policies Envoy knows (Istio's supportedRetryOnPolicies). */
export const RETRY_ON_POLICIES = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

/** Status codes Go's http.StatusText knows: Istio reads those in retryOn as retriable status codes. */
export function isKnownStatusCode(code: number): boolean {
  return (
    (code >= 100 && code <= 103) ||
    (code >= 200 && code <= 208) ||
    code === 226 ||
    (code >= 300 && code <= 308 && code !== 306) ||
    (code >= 400 && code <= 418) ||
    (code >= 421 && code <= 426) ||
    code === 428 ||
    code === 429 ||
    code === 431 ||
    code === 451 ||
    (code >= 500 && code <= 508) ||
    code === 510 ||
    code === 511
  );
}

function parseRetries(r: Reader, v: Json, field: string): HttpRetry {
  const h = r.record(v, field);
  r.onlyKeys(h, field, [
    'attempts',
    'perTryTimeout',
    'retryOn',
    'retryRemoteLocalities',
    'retryIgnorePreviousHosts',
    'backoff',
  ]);
  const attempts = h.attempts ?? 0;
  if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts > INT32_MAX) {
    r.fail(`${field}.attempts`, `must be an integer, got ${describe(attempts)}`);
  }
  if (attempts < 0) r.invalid(`${field}.attempts`, 'attempts cannot be negative');
  const out: HttpRetry = { attempts };
  if (h.perTryTimeout !== undefined)
    out.perTryTimeout = parseDuration(r, h.perTryTimeout, `${field}.perTryTimeout`);
  if (h.retryOn !== undefined) {
    out.retryOn = r.anyString(h.retryOn, `${field}.retryOn`);
    for (const policy of out.retryOn === '' ? [] : out.retryOn.split(',')) {
      const code = /^[+-]?\d+$/.test(policy) ? Number(policy) : Number.NaN;
      if (!isKnownStatusCode(code) && !(RETRY_ON_POLICIES as readonly string[]).includes(policy)) {
        r.invalid(`${field}.retryOn`, `"${policy}" is not a valid retryOn policy`);
      }
    }
  }
  if (h.retryRemoteLocalities !== undefined)
    out.retryRemoteLocalities = r.boolean(h.retryRemoteLocalities, `${field}.retryRemoteLocalities`);
  if (h.retryIgnorePreviousHosts !== undefined)
    out.retryIgnorePreviousHosts = r.boolean(h.retryIgnorePreviousHosts, `${field}.retryIgnorePreviousHosts`);
  if (h.backoff !== undefined) out.backoff = parseDuration(r, h.backoff, `${field}.backoff`);
  if (
    attempts === 0 &&
    (out.perTryTimeout !== undefined || (out.retryOn ?? '') !== '' || out.retryRemoteLocalities !== undefined)
  ) {
    r.invalid(field, 'http retry policy configured when attempts are set to 0 (disabled)');
  }
  return out;
}

/** Route fields refused with a reason: each changes the answer or the destination of a request. */
const REFUSED_ROUTE_FIELDS: Record<string, string> = {
  corsPolicy: 'CORS policy (preflight answers and CORS response headers)',
  mirror: 'mirroring (a copy of each request to another destination)',
  mirrorPercent: 'mirroring (a copy of each request to another destination)',
  mirrorPercentage: 'mirroring (a copy of each request to another destination)',
  mirrors: 'mirroring (a copy of each request to another destination)',
  fault: 'fault injection (delays and aborted requests)',
  rewrite: 'URI / authority rewriting (what the workload receives)',
  redirect: 'redirects (the gateway answers 3xx itself)',
  directResponse: 'direct responses (the gateway answers itself)',
  delegate: 'delegation to another VirtualService',
};

function parseHttpRoute(r: Reader, v: Json, field: string): HttpRoute {
  const h = r.record(v, field);
  for (const [key, what] of Object.entries(REFUSED_ROUTE_FIELDS)) {
    if (h[key] !== undefined) {
      r.unsupported(
        `${field}.${key}`,
        `${what}: that changes what a request does, and the local gateway does not emulate it, so the local and cluster paths would differ`,
      );
    }
  }
  r.onlyKeys(h, field, ['name', 'match', 'route', 'headers', 'timeout', 'retries']);
  const out: HttpRoute = { route: [] };
  if (h.name !== undefined) out.name = r.anyString(h.name, `${field}.name`);
  if (h.headers !== undefined) out.headers = parseRouteHeaders(r, h.headers, `${field}.headers`);
  if (h.match !== undefined && h.match !== null) {
    if (!Array.isArray(h.match)) r.fail(`${field}.match`, 'must be a list');
    // An empty list is no match at all: the route takes every request, as Istio reads it.
    if (h.match.length > 0) out.match = h.match.map((m, i) => parseMatch(r, m, `${field}.match[${i}]`));
  }
  if (h.route === undefined || (Array.isArray(h.route) && h.route.length === 0)) {
    r.invalid(`${field}.route`, 'HTTP route, redirect or direct_response is required');
  }
  if (!Array.isArray(h.route)) r.fail(`${field}.route`, 'must be a list of destinations');
  out.route = h.route.map((d, i) => parseDestination(r, d, `${field}.route[${i}]`));
  if (out.route.length > 1 && out.route.every((d) => (d.weight ?? 0) === 0)) {
    r.invalid(`${field}.route`, 'total destination weight = 0');
  }
  if (h.timeout !== undefined) out.timeout = parseDuration(r, h.timeout, `${field}.timeout`);
  if (h.retries !== undefined) out.retries = parseRetries(r, h.retries, `${field}.retries`);
  return out;
}

/** Istio's validateGatewayNames. */
function checkGatewayName(r: Reader, name: string, field: string): void {
  const slash = name.indexOf('/');
  if (slash === -1) {
    const problem = name.length > 255 ? `domain name "${name}" too long (max 255)` : dnsLabelsProblem(name);
    if (problem !== null) r.invalid(field, problem);
    return;
  }
  const ns = name.slice(0, slash);
  const gw = name.slice(slash + 1);
  if (ns === '' || gw === '') r.invalid(field, 'config namespace and gateway name cannot be empty');
  if (!isDns1123Label(ns)) r.invalid(field, `invalid value for namespace: "${ns}"`);
  if (!isDns1123Label(gw)) r.invalid(field, `invalid value for gateway name: "${gw}"`);
}

/** Istio's validateExportTo for a VirtualService. */
function checkExportTo(r: Reader, exportTo: readonly string[], namespace: string | undefined): void {
  const seen = new Set<string>();
  for (const [i, e] of exportTo.entries()) {
    const key = e === '.' ? (namespace ?? '') : e;
    if (seen.has(key)) r.invalid(`spec.exportTo[${i}]`, `duplicate entries in exportTo for entry ${e}`);
    if (!['*', '~', '.'].includes(e) && !isDns1123Label(e))
      r.invalid(`spec.exportTo[${i}]`, `invalid namespace ${JSON.stringify(e)} in exportTo`);
    seen.add(key);
  }
  if (seen.has('*') && exportTo.length > 1) {
    r.invalid('spec.exportTo', 'cannot have both public (*) and non-public exportTo values for a resource');
  }
}

/** Parses a VirtualService object (already read from YAML), with Istio's validation of what it reads. */
export function parseVirtualService(doc: Json, file: string): VirtualService {
  const r: Reader = new Reader(file);
  const d = r.record(doc, '(document)');
  const apiVersion = r.header(d, 'VirtualService');
  const metadata = r.metadata(d.metadata);
  const spec = r.record(d.spec, 'spec');
  for (const key of ['tcp', 'tls'] as const) {
    if (spec[key] !== undefined)
      r.unsupported(`spec.${key}`, `${key} routes are not emulated by the local gateway (HTTP only)`);
  }
  r.onlyKeys(spec, 'spec', ['hosts', 'gateways', 'http', 'exportTo']);
  if (spec.hosts === undefined || (Array.isArray(spec.hosts) && spec.hosts.length === 0)) {
    r.unsupported('spec.hosts', 'a VirtualService without hosts is a delegate; delegation is not emulated');
  }
  const hosts = r.stringArray(spec.hosts, 'spec.hosts');
  const gateways = r.stringArray(spec.gateways, 'spec.gateways', true);
  for (const [i, g] of gateways.entries()) checkGatewayName(r, g, `spec.gateways[${i}]`);
  // Bound to the mesh when no gateway is named, or `mesh` is one of them.
  const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');
  for (const [i, h] of hosts.entries()) {
    const problem = wildcardDomainProblem(h);
    if (problem !== null && !isIpAddress(h)) r.invalid(`spec.hosts[${i}]`, problem);
    if (problem === null && appliesToMesh && h === '*') {
      r.invalid(
        `spec.hosts[${i}]`,
        'wildcard host * is not allowed for virtual services bound to the mesh gateway',
      );
    }
  }
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      if (hostsOverlap(hosts[i] as string, hosts[j] as string)) {
        r.invalid(`spec.hosts[${j}]`, `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
      }
    }
  }
  if (spec.http === undefined || (Array.isArray(spec.http) && spec.http.length === 0)) {
    r.invalid('spec.http', 'http, tcp or tls must be provided in virtual service');
  }
  if (!Array.isArray(spec.http)) r.fail('spec.http', 'must be a list of routes');
  if (spec.http.length > MAX_VS_ROUTES) {
    r.unsupported(
      'spec.http',
      `${spec.http.length} routes is above this repository's bound of ${MAX_VS_ROUTES} routes per stage (every route is tried in order for every request)`,
    );
  }
  const matches = spec.http.reduce(
    (n: number, h) => n + (isRecord(h) && Array.isArray(h.match) ? h.match.length : 1),
    0,
  );
  if (matches > MAX_VS_MATCHES) {
    r.unsupported(
      'spec.http',
      `${matches} match entries is above this repository's bound of ${MAX_VS_MATCHES} per stage`,
    );
  }
  const http = spec.http.map((h, i) => parseHttpRoute(r, h, `spec.http[${i}]`));
  const out: VirtualService = {
    apiVersion,
    kind: 'VirtualService',
    metadata,
    spec: { hosts, gateways, http },
  };
  if (spec.exportTo !== undefined) {
    out.spec.exportTo = r.stringArray(spec.exportTo, 'spec.exportTo');
    checkExportTo(r, out.spec.exportTo, metadata.namespace);
  }
  return out;
}

/** Parses a DestinationRule object (already read from YAML). */
export function parseDestinationRule(doc: Json, file: string): DestinationRule {
  const r: Reader = new Reader(file);
  const d = r.record(doc, '(document)');
  const apiVersion = r.header(d, 'DestinationRule');
  const spec = r.record(d.spec, 'spec');
  const subsetsRaw = spec.subsets ?? [];
  if (!Array.isArray(subsetsRaw)) r.fail('spec.subsets', 'must be a list');
  const subsets = subsetsRaw.map((s, i) => {
    const sr = r.record(s, `spec.subsets[${i}]`);
    return {
      name: r.string(sr.name, `spec.subsets[${i}].name`),
      labels: r.labels(sr.labels, `spec.subsets[${i}].labels`),
    };
  });
  const seen = new Set<string>();
  for (const [i, s] of subsets.entries()) {
    if (seen.has(s.name)) r.fail(`spec.subsets[${i}].name`, `duplicate subset "${s.name}"`);
    seen.add(s.name);
  }
  return {
    apiVersion,
    kind: 'DestinationRule',
    metadata: r.metadata(d.metadata),
    file,
    spec: { host: r.string(spec.host, 'spec.host'), subsets },
  };
}

/** Parses a Gateway (plain HTTP servers only: TLS and bind are refused). */
export function parseGateway(doc: Json, file: string): Gateway {
  const r: Reader = new Reader(file);
  const d = r.record(doc, '(document)');
  const apiVersion = r.header(d, 'Gateway');
  const spec = r.record(d.spec, 'spec');
  if (!Array.isArray(spec.servers) || spec.servers.length === 0)
    r.fail('spec.servers', 'must be a non-empty list');
  const servers = spec.servers.map((s, i): GatewayServer => {
    const field = `spec.servers[${i}]`;
    const sr = r.record(s, field);
    if (sr.tls !== undefined)
      r.unsupported(`${field}.tls`, 'TLS servers are not emulated by the local gateway');
    if (sr.bind !== undefined) r.unsupported(`${field}.bind`, 'bind is not emulated by the local gateway');
    r.onlyKeys(sr, field, ['port', 'hosts', 'name']);
    const port = r.record(sr.port, `${field}.port`);
    if (
      typeof port.number !== 'number' ||
      !Number.isInteger(port.number) ||
      port.number < 1 ||
      port.number > 65535
    ) {
      r.fail(`${field}.port.number`, `must be a port number, got ${describe(port.number)}`);
    }
    const protocol = r.string(port.protocol, `${field}.port.protocol`);
    if (protocol.toUpperCase() !== 'HTTP') {
      r.unsupported(
        `${field}.port.protocol`,
        `only HTTP servers are emulated by the local gateway, got ${protocol}`,
      );
    }
    const server: GatewayServer = {
      port: { number: port.number, name: r.string(port.name, `${field}.port.name`), protocol },
      hosts: r.stringArray(sr.hosts, `${field}.hosts`),
    };
    if (sr.name !== undefined) server.name = r.string(sr.name, `${field}.name`);
    return server;
  });
  return {
    apiVersion,
    kind: 'Gateway',
    metadata: r.metadata(d.metadata),
    file,
    spec: { selector: r.labels(spec.selector, 'spec.selector'), servers },
  };
}
