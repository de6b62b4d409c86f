/**
 * A VirtualService's route selection, host aside: its http routes translated as Istio translates them
 * (translate.ts) and matched as Envoy matches them (match.ts), the very code the gateway route table runs
 * (table.ts). Routes in order, the first match wins; `match` entries are ORed, the conditions of one entry
 * ANDed; a route without `match` matches every request. The request path is normalised first, as the gateway does
 * (path.ts).
 */
import type { HttpRoute, VirtualService } from './manifest.js';
import { type CompiledMatch, compileEnvoyRoutes, firstMatch, UnsupportedRequestError } from './match.js';
import { normalizePath } from './path.js';
import { byteCompare, type TranslatedRoute, translateHttpRoutes } from './translate.js';

/** The parts of a request that routing looks at. Header names must be lower case (as Node gives them). */
export interface RouteRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/**
 * What a route does to the headers of an answer, ready to apply (names lower case), in Envoy's order: `remove`
 * first, then `set` (replaces, or adds), then `add` (appends a value to what the upstream sent). A value's `%%` is a
 * literal `%`, as Envoy reads it. A `set` or `add` with an empty value is left out: Envoy skips an empty header
 * value (Istio never sets `keep_empty_value`), so it neither replaces nor adds anything.
 */
export interface ResponseHeaders {
  readonly remove: readonly string[];
  readonly set: readonly (readonly [name: string, value: string])[];
  readonly add: readonly (readonly [name: string, value: string])[];
}

/** The route a request takes. */
export interface MatchedRoute {
  /** Index in spec.http. */
  index: number;
  name: string | null;
  route: HttpRoute;
  /** The route's `headers.response`, or null when it changes no response header. */
  responseHeaders: ResponseHeaders | null;
}

/** A VirtualService's http routes, compiled for {@link matchRoute}. */
export interface CompiledRoutes {
  readonly http: readonly HttpRoute[];
  readonly routes: readonly CompiledMatch<TranslatedRoute>[];
}

/** A route's response header operations, ready to apply, or null when there are none. */
export function responseHeadersOf(route: Pick<HttpRoute, 'headers'>): ResponseHeaders | null {
  const response = route.headers?.response;
  const entries = (m: Record<string, string> | undefined) =>
    Object.entries(m ?? {})
      .filter(([, v]) => v !== '')
      .sort(([a], [b]) => byteCompare(a, b))
      .map(([k, v]) => Object.freeze([k.toLowerCase(), v.replaceAll('%%', '%')] as const));
  const set = entries(response?.set);
  const add = entries(response?.add);
  const remove = (response?.remove ?? []).map((n) => n.toLowerCase());
  if (set.length === 0 && add.length === 0 && remove.length === 0) return null;
  return Object.freeze({ remove: Object.freeze(remove), set: Object.freeze(set), add: Object.freeze(add) });
}

/** Compiles a VirtualService's (or a list of) http routes once; regular expressions are built here. */
export function compileRoutes(vs: VirtualService | readonly HttpRoute[]): CompiledRoutes {
  const http = Array.isArray(vs) ? (vs as readonly HttpRoute[]) : (vs as VirtualService).spec.http;
  const asVs: VirtualService = Array.isArray(vs)
    ? {
        apiVersion: '',
        kind: 'VirtualService',
        metadata: { name: '', labels: {} },
        spec: { hosts: [], gateways: [], http: [...http] },
      }
    : (vs as VirtualService);
  const translated = translateHttpRoutes(asVs, {
    clusterName: (d) => `outbound|${d.port?.number ?? 0}|${d.subset ?? ''}|${d.host}`,
    listenPort: 80,
  });
  return {
    http,
    routes: compileEnvoyRoutes(translated.map((t) => t.route)).map((c, i) => ({
      value: translated[i] as TranslatedRoute,
      test: c.test,
    })),
  };
}

/** The first route that matches the request, or null (Istio answers 404). */
export function matchRoute(compiled: CompiledRoutes, req: RouteRequest): MatchedRoute | null {
  const normalized = normalizePath(req.path);
  if (normalized.kind !== 'ok') return null;
  let t: TranslatedRoute | null;
  try {
    t = firstMatch(compiled.routes, { method: req.method, path: normalized.path, headers: req.headers });
  } catch (error) {
    if (error instanceof UnsupportedRequestError) return null;
    throw error;
  }
  if (t === null) return null;
  const route = compiled.http[t.source.http] as HttpRoute;
  return { index: t.source.http, name: route.name ?? null, route, responseHeaders: responseHeadersOf(route) };
}

/**
 * The weights Envoy draws a route's destination with: a single destination takes every request whatever its
 * weight; with several, a missing weight is 0 (Envoy leaves 0-weight clusters out). Proportional, not necessarily
 * summing to 100: Istio accepts any total above 0 and Envoy splits by weight / total.
 */
export function destinationWeights(route: Pick<HttpRoute, 'route'>): number[] {
  return route.route.length === 1 ? [100] : route.route.map((d) => d.weight ?? 0);
}
