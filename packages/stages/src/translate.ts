/**
 * A VirtualService's http routes as Istio translates them into Envoy routes (pilot/pkg/networking/core/route/
 * route.go: BuildHTTPRoutesForVirtualService, TranslateRoute, TranslateRouteMatch, translateHeaderMatch,
 * TranslateHeadersOperations; retry/retry.go: ConvertPolicy), for the fields the parser accepts:
 *
 * - one Envoy route per `match` entry (one for a route without match), named `<route name>.<match name>`;
 *   the translation stops after the first catch-all route (prefix `/` or regex `.*`, no header condition);
 * - `uri` exact / prefix / regex become `path` / `prefix` / `safeRegex`; no uri is `prefix: /`;
 *   `caseSensitive` is `!ignoreUriCase` (and absent on a route without match);
 * - `headers` and `withoutHeaders` become header matchers sorted by name: an empty match (or `regex: "*"`) is
 *   `presentMatch: true`; a withoutHeaders entry adds `invertMatch: true` and, unless it is a presence match,
 *   `treatMissingHeaderAsEmpty: true`; `method` is a `:method` matcher after them;
 * - one destination is a `cluster`, several are `weightedClusters` without the 0-weight ones;
 * - the retry policy is the route's `retries`, else Istio's default (2 retries on connect-failure,
 *   refused-stream, unavailable, cancelled, retriable-status-codes; previous-hosts predicate); `attempts: 0`
 *   removes it; the timeout is the route's, else `0s` (none);
 * - `headers.response.set` (overwrite) then `add` (append), each sorted by name, and `remove`.
 */
import type {
  HeaderMatcher,
  HeaderValueOption,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  StringMatcher,
} from './envoy.js';
import {
  type Destination,
  type HttpMatchRequest,
  type HttpRetry,
  type HttpRoute,
  isKnownStatusCode,
  type StringMatch,
  type VirtualService,
} from './manifest.js';

/** Where an Envoy route comes from: `spec.http[http].match[match]` (match null: a route without match). */
export interface RouteSource {
  http: number;
  match: number | null;
}

export interface TranslatedRoute {
  route: Route;
  source: RouteSource;
}

export interface TranslateOptions {
  /** Envoy's cluster name for a destination, e.g. outbound|80|v1|webapp.rollouts.svc.cluster.local. */
  clusterName(destination: Destination, field: string): string;
  /** The port of the Gateway server (the decorator names it). */
  listenPort: number;
}

export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
export const PREVIOUS_HOSTS_PREDICATE = {
  name: 'envoy.retry_host_predicates.previous_hosts',
  typedConfig: {
    '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  },
} as const;

/** Istio's cluster name: outbound|<port>|<subset>|<host>. */
export function subsetKey(host: string, port: number, subset: string | undefined): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

/** Parses outbound|<port>|<subset>|<host>, or null. */
export function parseSubsetKey(name: string): { port: number; subset: string; host: string } | null {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== 'outbound') return null;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return null;
  return { port, subset: parts[2] as string, host: parts[3] as string };
}

/** A protobuf JSON duration as protojson prints it: 0, 3, 6 or 9 fractional digits ("10s", "0.500s"). */
export function formatDuration(seconds: string): string {
  const [whole, fraction = ''] = seconds.slice(0, -1).split('.');
  const digits = fraction.replace(/0+$/, '');
  if (digits === '') return `${Number(whole)}s`;
  const width = digits.length <= 3 ? 3 : digits.length <= 6 ? 6 : 9;
  return `${Number(whole)}.${digits.padEnd(width, '0')}s`;
}

/** Milliseconds of a protobuf JSON duration ("1.5s" is 1500). */
export function durationMs(seconds: string): number {
  return Math.round(Number(seconds.slice(0, -1)) * 1000);
}

function isPresentMatch(m: StringMatch): boolean {
  return m.exact === undefined && m.prefix === undefined && (m.regex === undefined || m.regex === '*');
}

function envoyStringMatch(m: StringMatch): StringMatcher {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { safeRegex: { regex: m.regex as string } };
}

function headerMatcher(name: string, m: StringMatch): HeaderMatcher {
  return isPresentMatch(m) ? { name, presentMatch: true } : { name, stringMatch: envoyStringMatch(m) };
}

/** Go's string order: by UTF-16 code unit (byte order for the ASCII names it sorts). */
export function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Istio's TranslateRouteMatch. */
export function translateRouteMatch(m: HttpMatchRequest | null): RouteMatch {
  if (m === null) return { prefix: '/' } as RouteMatch;
  const out: RouteMatch = { prefix: '/', caseSensitive: true };
  const headers: HeaderMatcher[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {})) headers.push(headerMatcher(name, sm));
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const h = headerMatcher(name, sm);
    h.invertMatch = true;
    if (!isPresentMatch(sm)) h.treatMissingHeaderAsEmpty = true;
    headers.push(h);
  }
  headers.sort((a, b) => byteCompare(a.name, b.name));
  const uri = m.uri;
  if (uri?.exact !== undefined) {
    delete out.prefix;
    out.path = uri.exact;
  } else if (uri?.prefix !== undefined) {
    out.prefix = uri.prefix;
  } else if (uri?.regex !== undefined) {
    delete out.prefix;
    out.safeRegex = { regex: uri.regex };
  }
  out.caseSensitive = m.ignoreUriCase !== true;
  if (m.method) headers.push(headerMatcher(':method', m.method));
  if (headers.length > 0) out.headers = headers;
  return out;
}

/** Istio's IsCatchAllRoute. */
export function isCatchAllRoute(match: RouteMatch): boolean {
  const catchAll =
    match.prefix === '/' || match.pathSeparatedPrefix === '/' || match.safeRegex?.regex === '.*';
  return catchAll && (match.headers ?? []).length === 0 && (match.queryParameters ?? []).length === 0;
}

/** Istio's header options, as protojson prints them: an empty value (the proto3 default) is left out. */
function sortedOptions(headers: Record<string, string> | undefined, overwrite: boolean): HeaderValueOption[] {
  return Object.entries(headers ?? {})
    .sort(([a], [b]) => byteCompare(a, b))
    .map(([key, value]) => {
      const header = value === '' ? { key } : { key, value };
      return overwrite ? { header, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' } : { header };
    });
}

/** Istio's parseRetryOn: status codes apart, the rest joined with commas. */
function parseRetryOn(retryOn: string): { retryOn: string; codes: number[] } {
  const codes: number[] = [];
  const tokens: string[] = [];
  for (const raw of retryOn.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const code = /^[+-]?\d+$/.test(part) ? Number(part) : Number.NaN;
    if (isKnownStatusCode(code)) codes.push(code);
    else tokens.push(part);
  }
  return { retryOn: tokens.join(','), codes };
}

/** Istio's retry.ConvertPolicy (no consistent hashing: the previous-hosts predicate is kept). */
export function convertRetryPolicy(retries: HttpRetry | undefined): RetryPolicy | undefined {
  const base = (): RetryPolicy => ({
    retryOn: DEFAULT_RETRY_ON,
    numRetries: 2,
    retryHostPredicate: [PREVIOUS_HOSTS_PREDICATE],
    hostSelectionRetryMaxAttempts: '5',
  });
  if (retries === undefined) return base();
  if (retries.attempts <= 0) return undefined;
  const out = base();
  out.numRetries = retries.attempts;
  if (retries.retryOn !== undefined && retries.retryOn !== '') {
    const { retryOn, codes } = parseRetryOn(retries.retryOn);
    out.retryOn = retryOn;
    if (codes.length > 0) {
      out.retriableStatusCodes = codes;
      if (!out.retryOn.includes('retriable-status-codes')) out.retryOn += ',retriable-status-codes';
    }
  }
  if (retries.perTryTimeout !== undefined) out.perTryTimeout = formatDuration(retries.perTryTimeout);
  if (retries.retryIgnorePreviousHosts !== undefined) {
    if (retries.retryIgnorePreviousHosts) out.retryHostPredicate = [PREVIOUS_HOSTS_PREDICATE];
    else delete out.retryHostPredicate;
  }
  if (retries.retryRemoteLocalities === true) {
    out.retryPriority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typedConfig: {
        '@type':
          'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
        updateFrequency: 2,
      },
    };
  }
  if (retries.backoff !== undefined) out.retryBackOff = { baseInterval: formatDuration(retries.backoff) };
  return out;
}

/** Istio's GetRouteOperation (the tracing decorator). */
function routeOperation(match: RouteMatch, action: RouteAction, vsName: string, port: number): string {
  let path = '/*';
  if (match.prefix !== undefined) path = `${match.prefix}*`;
  else if (match.path !== undefined) path = match.path;
  else if (match.safeRegex !== undefined) path = match.safeRegex.regex;
  const key = action.cluster === undefined ? null : parseSubsetKey(action.cluster);
  if (key !== null) return `${key.host}:${key.port}${path}`;
  return `${vsName}:${port}${path}`;
}

function translateRoute(
  vs: VirtualService,
  http: HttpRoute,
  httpIndex: number,
  match: HttpMatchRequest | null,
  options: TranslateOptions,
): Route {
  let name = http.name ?? '';
  if (match?.name) name = `${name}.${match.name}`;
  const routeMatch = translateRouteMatch(match);
  const timeout = http.timeout === undefined ? '0s' : formatDuration(http.timeout);
  const action: RouteAction = { timeout, maxGrpcTimeout: timeout };
  const field = (i: number) => `spec.http[${httpIndex}].route[${i}].destination`;
  if (http.route.length === 1) {
    action.cluster = options.clusterName(
      (http.route[0] as { destination: Destination }).destination,
      field(0),
    );
  } else {
    const clusters = http.route.flatMap((d, i) =>
      (d.weight ?? 0) === 0
        ? []
        : [{ name: options.clusterName(d.destination, field(i)), weight: d.weight as number }],
    );
    action.weightedClusters = { clusters };
  }
  const retryPolicy = convertRetryPolicy(http.retries);
  if (retryPolicy !== undefined) action.retryPolicy = retryPolicy;
  const namespace = vs.metadata.namespace ?? '';
  const out: Route = {
    match: routeMatch,
    route: action,
    metadata: {
      filterMetadata: {
        istio: {
          config: `/apis/networking.istio.io/v1/namespaces/${namespace}/virtual-service/${vs.metadata.name}`,
        },
      },
    },
    decorator: { operation: routeOperation(routeMatch, action, vs.metadata.name, options.listenPort) },
  };
  if (name !== '') out.name = name;
  const response = http.headers?.response;
  const toAdd = [...sortedOptions(response?.set, true), ...sortedOptions(response?.add, false)];
  if (toAdd.length > 0) out.responseHeadersToAdd = toAdd;
  if ((response?.remove ?? []).length > 0) out.responseHeadersToRemove = [...(response?.remove ?? [])];
  // Keep the key order protojson prints: name first.
  return out.name === undefined ? out : { name: out.name, ...out };
}

/** Istio's BuildHTTPRoutesForVirtualService for one VirtualService. */
export function translateHttpRoutes(vs: VirtualService, options: TranslateOptions): TranslatedRoute[] {
  const out: TranslatedRoute[] = [];
  for (const [httpIndex, http] of vs.spec.http.entries()) {
    let catchAll = false;
    if (!http.match || http.match.length === 0) {
      out.push({
        route: translateRoute(vs, http, httpIndex, null, options),
        source: { http: httpIndex, match: null },
      });
      catchAll = true;
    } else {
      for (const [matchIndex, m] of http.match.entries()) {
        const route = translateRoute(vs, http, httpIndex, m, options);
        out.push({ route, source: { http: httpIndex, match: matchIndex } });
        if (isCatchAllRoute(route.match)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}
