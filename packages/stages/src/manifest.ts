/**
 * Typed subsets of Istio's VirtualService and DestinationRule (networking.istio.io/v1), parsed from YAML with a
 * clear error (file + field) for anything this repository's tools cannot honour.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ManifestError } from './errors.js';

export const NETWORKING_API = 'networking.istio.io/v1';

/** Istio's StringMatch: exactly one of exact, prefix, regex (RE2, full-string match). Empty: "present". */
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
  /** Header names are lower case. */
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
 * Istio's HeaderOperations on the response, as far as they are emulated: `set` replaces a header the upstream
 * sent (or adds it), `add` appends a value. Names are lower case (HTTP header names are case-insensitive; Envoy
 * sends them lower case).
 */
export interface ResponseHeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
}

/** HTTPRoute: `match` entries are ORed; no `match` matches every request. */
export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route: HttpRouteDestination[];
  /** `headers.response` of the route (request headers and `remove` are refused by the parser). */
  headers?: { response: ResponseHeaderOperations };
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

type Json = unknown;

function isRecord(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a file holding exactly one YAML document. */
export function readSingleDocument(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
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

class Reader {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new ManifestError(this.file, field, problem);
  }

  record(v: Json, field: string): Record<string, Json> {
    if (!isRecord(v)) this.fail(field, `must be a mapping, got ${describe(v)}`);
    return v;
  }

  string(v: Json, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
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

  onlyKeys(
    r: Record<string, Json>,
    field: string,
    allowed: readonly string[],
    ignored: readonly string[] = [],
  ) {
    for (const k of Object.keys(r)) {
      if (!allowed.includes(k) && !ignored.includes(k)) {
        this.fail(
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

  header(doc: Record<string, Json>, kind: string): void {
    if (doc.kind !== kind) this.fail('kind', `must be ${kind}, got ${describe(doc.kind)}`);
    if (doc.apiVersion !== NETWORKING_API) {
      this.fail('apiVersion', `must be ${NETWORKING_API}, got ${describe(doc.apiVersion)}`);
    }
  }
}

function describe(v: Json): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

const STRING_MATCH_KEYS = ['exact', 'prefix', 'regex'] as const;

function parseStringMatch(r: Reader, v: Json, field: string, allowEmpty: boolean): StringMatch {
  const m = r.record(v, field);
  r.onlyKeys(m, field, STRING_MATCH_KEYS);
  const keys = Object.keys(m);
  if (keys.length === 0 && allowEmpty) return {};
  if (keys.length !== 1) r.fail(field, 'must set exactly one of exact, prefix, regex');
  const key = keys[0] as (typeof STRING_MATCH_KEYS)[number];
  const value = m[key];
  if (typeof value !== 'string') r.fail(`${field}.${key}`, `must be a string, got ${describe(value)}`);
  if (key === 'regex') checkRe2(r, value, `${field}.regex`);
  return { [key]: value };
}

/** Refuses what JavaScript would accept but RE2 (Envoy) would not, so both paths agree on every request. */
function checkRe2(r: Reader, source: string, field: string): void {
  if (/\(\?<?[=!]/.test(source))
    r.fail(field, 'lookaround assertions are not RE2 syntax (Envoy would refuse them)');
  if (/\\[1-9]/.test(source)) r.fail(field, 'backreferences are not RE2 syntax (Envoy would refuse them)');
  try {
    new RegExp(normaliseRe2(source).source);
  } catch (error) {
    r.fail(field, `invalid regular expression: ${(error as Error).message}`);
  }
}

/** RE2's leading `(?i)` becomes JavaScript's `i` flag; the pattern is anchored for a full-string match. */
export function normaliseRe2(source: string): { source: string; flags: string } {
  let s = source;
  let flags = '';
  const m = /^\(\?([ims]+)\)/.exec(s);
  if (m) {
    flags = m[1] as string;
    s = s.slice(m[0].length);
  }
  return { source: `^(?:${s})$`, flags: [...new Set(flags)].join('') };
}

function parseHeaderMap(r: Reader, v: Json, field: string): Record<string, StringMatch> {
  const h = r.record(v, field);
  const out: Record<string, StringMatch> = {};
  for (const [name, m] of Object.entries(h)) {
    if (name !== name.toLowerCase())
      r.fail(`${field}.${name}`, 'header names must be lower case (Istio requires it)');
    out[name] = parseStringMatch(r, m, `${field}.${name}`, true);
  }
  return out;
}

function parseMatch(r: Reader, v: Json, field: string): HttpMatchRequest {
  const m = r.record(v, field);
  r.onlyKeys(m, field, ['name', 'uri', 'method', 'headers', 'withoutHeaders', 'ignoreUriCase']);
  const out: HttpMatchRequest = {};
  if (m.name !== undefined) out.name = r.string(m.name, `${field}.name`);
  if (m.uri !== undefined) out.uri = parseStringMatch(r, m.uri, `${field}.uri`, false);
  if (m.method !== undefined) out.method = parseStringMatch(r, m.method, `${field}.method`, false);
  if (m.headers !== undefined) out.headers = parseHeaderMap(r, m.headers, `${field}.headers`);
  if (m.withoutHeaders !== undefined)
    out.withoutHeaders = parseHeaderMap(r, m.withoutHeaders, `${field}.withoutHeaders`);
  if (m.ignoreUriCase !== undefined) {
    if (typeof m.ignoreUriCase !== 'boolean') r.fail(`${field}.ignoreUriCase`, 'must be true or false');
    out.ignoreUriCase = m.ignoreUriCase;
  }
  return out;
}

function parseDestination(r: Reader, v: Json, field: string): HttpRouteDestination {
  const d = r.record(v, field);
  r.onlyKeys(d, field, ['destination', 'weight']);
  const dest = r.record(d.destination, `${field}.destination`);
  r.onlyKeys(dest, `${field}.destination`, ['host', 'subset', 'port']);
  const destination: Destination = { host: r.string(dest.host, `${field}.destination.host`) };
  if (dest.subset !== undefined) destination.subset = r.string(dest.subset, `${field}.destination.subset`);
  if (dest.port !== undefined) {
    const p = r.record(dest.port, `${field}.destination.port`);
    if (typeof p.number !== 'number' || !Number.isInteger(p.number) || p.number < 1 || p.number > 65535) {
      r.fail(`${field}.destination.port.number`, `must be a port number, got ${describe(p.number)}`);
    }
    destination.port = { number: p.number };
  }
  const out: HttpRouteDestination = { destination };
  if (d.weight !== undefined) {
    if (typeof d.weight !== 'number' || !Number.isInteger(d.weight) || d.weight < 0) {
      r.fail(`${field}.weight`, `must be a non-negative integer, got ${describe(d.weight)}`);
    }
    out.weight = d.weight;
  }
  return out;
}

/** An HTTP header name (RFC 9110 token); pseudo-headers such as `:status` are not one. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;

function parseHeaderValues(r: Reader, v: Json, field: string): Record<string, string> {
  const m = r.record(v, field);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(m)) {
    const at = `${field}.${name}`;
    if (!HEADER_NAME.test(name)) r.fail(at, 'not an HTTP header name');
    const lower = name.toLowerCase();
    if (lower in out) r.fail(at, `"${lower}" is given twice (header names are case-insensitive)`);
    if (typeof value !== 'string') r.fail(at, `must be a string, got ${describe(value)}`);
    if (/[\r\n\0]/.test(value)) r.fail(at, 'must not contain CR, LF or NUL');
    // Envoy reads %...% in a header value as a command (e.g. %DOWNSTREAM_REMOTE_ADDRESS%); the local path cannot.
    if (value.includes('%')) r.fail(at, "'%' starts an Envoy command in a header value; not emulated");
    out[lower] = value;
  }
  return out;
}

/**
 * A route's `headers`: only `response.set` and `response.add` are emulated (the local gateway applies them to
 * every proxied answer); request headers and `remove` are refused so both paths cannot differ.
 */
function parseRouteHeaders(r: Reader, v: Json, field: string): { response: ResponseHeaderOperations } {
  const h = r.record(v, field);
  if (h.request !== undefined) {
    r.fail(`${field}.request`, 'request header manipulation is not emulated by the local gateway');
  }
  r.onlyKeys(h, field, ['response']);
  const response: ResponseHeaderOperations = {};
  if (h.response === undefined) return { response };
  const resp = r.record(h.response, `${field}.response`);
  if (resp.remove !== undefined) {
    r.fail(`${field}.response.remove`, 'removing response headers is not emulated by the local gateway');
  }
  r.onlyKeys(resp, `${field}.response`, ['set', 'add']);
  if (resp.set !== undefined) response.set = parseHeaderValues(r, resp.set, `${field}.response.set`);
  if (resp.add !== undefined) response.add = parseHeaderValues(r, resp.add, `${field}.response.add`);
  return { response };
}

/** Route fields refused with a reason: each changes the answer or the destination of a request. */
const REFUSED_ROUTE_FIELDS: Record<string, string> = {
  corsPolicy: 'CORS policy (preflight answers and CORS response headers)',
  mirror: 'mirroring (a copy of each request to another destination)',
  mirrorPercentage: 'mirroring (a copy of each request to another destination)',
  mirrors: 'mirroring (a copy of each request to another destination)',
  fault: 'fault injection (delays and aborted requests)',
  rewrite: 'URI / authority rewriting (what the workload receives)',
  redirect: 'redirects (the gateway answers 3xx itself)',
  directResponse: 'direct responses (the gateway answers itself)',
  delegate: 'delegation to another VirtualService',
};

/**
 * Route fields accepted and not emulated locally: they do not change where a successful request goes.
 * `timeout` (Istio's per-route limit) and `retries` (Istio retries failed attempts; the local gateway answers
 * 503 / 504 at the first failure).
 */
export const ACCEPTED_NOT_EMULATED_ROUTE_FIELDS = ['timeout', 'retries'] as const;

/** VirtualService spec fields accepted and not emulated locally: `exportTo` (visibility to other namespaces). */
export const ACCEPTED_NOT_EMULATED_SPEC_FIELDS = ['exportTo'] as const;

function parseHttpRoute(r: Reader, v: Json, field: string): HttpRoute {
  const h = r.record(v, field);
  for (const [key, what] of Object.entries(REFUSED_ROUTE_FIELDS)) {
    if (h[key] !== undefined) {
      r.fail(
        `${field}.${key}`,
        `${what}: that changes what a request does, and the local gateway does not emulate it, so the local and cluster paths would differ`,
      );
    }
  }
  // timeout and retries do not change where a request that succeeds goes: accepted, not emulated locally
  // (README.md "The VirtualService subset that is emulated").
  r.onlyKeys(h, field, ['name', 'match', 'route', 'headers'], ACCEPTED_NOT_EMULATED_ROUTE_FIELDS);
  const out: HttpRoute = { route: [] };
  if (h.name !== undefined) out.name = r.string(h.name, `${field}.name`);
  if (h.headers !== undefined) out.headers = parseRouteHeaders(r, h.headers, `${field}.headers`);
  if (h.match !== undefined) {
    if (!Array.isArray(h.match) || h.match.length === 0) r.fail(`${field}.match`, 'must be a non-empty list');
    out.match = h.match.map((m, i) => parseMatch(r, m, `${field}.match[${i}]`));
  }
  if (!Array.isArray(h.route) || h.route.length === 0) {
    r.fail(`${field}.route`, 'must be a non-empty list of destinations');
  }
  out.route = h.route.map((d, i) => parseDestination(r, d, `${field}.route[${i}]`));
  return out;
}

/** Parses a VirtualService object (already read from YAML). */
export function parseVirtualService(doc: Json, file: string): VirtualService {
  const r: Reader = new Reader(file);
  const d = r.record(doc, '(document)');
  r.header(d, 'VirtualService');
  const spec = r.record(d.spec, 'spec');
  r.onlyKeys(spec, 'spec', ['hosts', 'gateways', 'http'], ACCEPTED_NOT_EMULATED_SPEC_FIELDS);
  if (!Array.isArray(spec.http) || spec.http.length === 0)
    r.fail('spec.http', 'must be a non-empty list of routes');
  return {
    apiVersion: d.apiVersion as string,
    kind: 'VirtualService',
    metadata: r.metadata(d.metadata),
    spec: {
      hosts: r.stringArray(spec.hosts, 'spec.hosts'),
      gateways: r.stringArray(spec.gateways, 'spec.gateways', true),
      http: spec.http.map((h, i) => parseHttpRoute(r, h, `spec.http[${i}]`)),
    },
  };
}

/** Parses a DestinationRule object (already read from YAML). */
export function parseDestinationRule(doc: Json, file: string): DestinationRule {
  const r: Reader = new Reader(file);
  const d = r.record(doc, '(document)');
  r.header(d, 'DestinationRule');
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
    apiVersion: d.apiVersion as string,
    kind: 'DestinationRule',
    metadata: r.metadata(d.metadata),
    file,
    spec: { host: r.string(spec.host, 'spec.host'), subsets },
  };
}
