/**
 * Istio's HTTP route selection, compiled once per VirtualService so the local gateway can run it per request:
 * routes in order, the first match wins; within a route the `match` entries are ORed and the conditions of one
 * entry ANDed; a route without `match` matches every request. String matches follow Envoy: `exact` and `regex`
 * (RE2 syntax, full-string match) see the path without its query string, `prefix` the whole path.
 */
import {
  type HttpMatchRequest,
  type HttpRoute,
  normaliseRe2,
  type StringMatch,
  type VirtualService,
} from './manifest.js';

/** The parts of a request that routing looks at. Header names must be lower case (as Node gives them). */
export interface RouteRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/**
 * What a route does to the headers of an answer, ready to apply: `set` replaces (or adds) the header, `add`
 * appends a value to what the upstream sent. Names are lower case; `set` is applied before `add`.
 */
export interface ResponseHeaders {
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

type Predicate = (req: RouteRequest, pathOnly: string) => boolean;

/** A VirtualService's http routes, compiled for {@link matchRoute}. */
export interface CompiledRoutes {
  readonly routes: readonly { readonly matched: MatchedRoute; readonly test: Predicate }[];
}

function stringMatcher(m: StringMatch, ignoreCase = false): (value: string | undefined) => boolean {
  if (m.exact !== undefined) {
    const exact = ignoreCase ? m.exact.toLowerCase() : m.exact;
    return ignoreCase ? (v) => v !== undefined && v.toLowerCase() === exact : (v) => v === exact;
  }
  if (m.prefix !== undefined) {
    const prefix = ignoreCase ? m.prefix.toLowerCase() : m.prefix;
    return ignoreCase
      ? (v) => v?.toLowerCase().startsWith(prefix) === true
      : (v) => v?.startsWith(prefix) === true;
  }
  if (m.regex !== undefined) {
    const { source, flags } = normaliseRe2(m.regex);
    const re = new RegExp(source, flags);
    return (v) => v !== undefined && re.test(v);
  }
  // An empty StringMatch on a header: the header is present.
  return (v) => v !== undefined;
}

function headerValue(req: RouteRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

function compileMatch(m: HttpMatchRequest): Predicate {
  const tests: Predicate[] = [];
  if (m.method) {
    const t = stringMatcher(m.method);
    tests.push((req) => t(req.method));
  }
  if (m.uri) {
    const uri = m.uri;
    const t = stringMatcher(uri, m.ignoreUriCase === true);
    tests.push(uri.prefix !== undefined ? (req) => t(req.path) : (_req, pathOnly) => t(pathOnly));
  }
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const t = stringMatcher(sm);
    tests.push((req) => t(headerValue(req, name)));
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const t = stringMatcher(sm);
    tests.push((req) => !t(headerValue(req, name)));
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0] as Predicate;
  return (req, pathOnly) => tests.every((t) => t(req, pathOnly));
}

/** A route's response header operations as lists, or null when there are none. */
export function responseHeadersOf(route: HttpRoute): ResponseHeaders | null {
  const set = Object.entries(route.headers?.response.set ?? {});
  const add = Object.entries(route.headers?.response.add ?? {});
  if (set.length === 0 && add.length === 0) return null;
  return Object.freeze({ set: Object.freeze(set), add: Object.freeze(add) });
}

/** Compiles a VirtualService's (or a list of) http routes once; regular expressions are built here. */
export function compileRoutes(vs: VirtualService | readonly HttpRoute[]): CompiledRoutes {
  const http = Array.isArray(vs) ? (vs as readonly HttpRoute[]) : (vs as VirtualService).spec.http;
  return {
    routes: http.map((route, index) => {
      const matched: MatchedRoute = {
        index,
        name: route.name ?? null,
        route,
        responseHeaders: responseHeadersOf(route),
      };
      if (!route.match || route.match.length === 0) return { matched, test: () => true };
      const alternatives = route.match.map(compileMatch);
      const test: Predicate =
        alternatives.length === 1
          ? (alternatives[0] as Predicate)
          : (req, pathOnly) => alternatives.some((a) => a(req, pathOnly));
      return { matched, test };
    }),
  };
}

/** The first route that matches the request, or null (Istio answers 404). */
export function matchRoute(compiled: CompiledRoutes, req: RouteRequest): MatchedRoute | null {
  const q = req.path.indexOf('?');
  const pathOnly = q === -1 ? req.path : req.path.slice(0, q);
  for (const r of compiled.routes) {
    if (r.test(req, pathOnly)) return r.matched;
  }
  return null;
}

/**
 * The weights Envoy draws a route's destination with: a single destination takes every request whatever its weight;
 * with several, a missing weight is 0. Proportional, not necessarily summing to 100 (lint refuses that separately).
 */
export function destinationWeights(route: Pick<HttpRoute, 'route'>): number[] {
  return route.route.length === 1 ? [100] : route.route.map((d) => d.weight ?? 0);
}
