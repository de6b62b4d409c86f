/**
 * Envoy's route matching over Envoy-shaped routes (envoy.ts), compiled once so the local gateway can run it per
 * request. Semantics, from Envoy's router (config_impl.cc) and HeaderUtility::matchHeaders:
 *
 * - `prefix` is compared with the whole `:path`, query string included; `path` and `safeRegex` with the path
 *   without query string; `safeRegex` is an RE2 full match and ignores `caseSensitive`; `caseSensitive: false`
 *   folds ASCII letters only;
 * - a header matcher sees every value of the header joined with "," (no space); a missing header fails the
 *   matcher unless it is `presentMatch` inverted (then it passes) or `treatMissingHeaderAsEmpty` is set (then the
 *   value is ""); `invertMatch` inverts the result otherwise; names are compared case-insensitively;
 * - `:method` is the request method;
 * - every condition of a route must hold; routes are tried in order and the first that matches wins.
 *
 * Header values are bytes (Node decodes them as latin1): a value with bytes above 0x7f is decoded as UTF-8 before
 * it is compared, as Envoy compares the UTF-8 bytes the VirtualService's strings become; a value that is not UTF-8
 * cannot be compared faithfully and makes the request `unsupported`.
 */
import type { HeaderMatcher, QueryParameterMatcher, Route, RouteMatch, StringMatcher } from './envoy.js';
import { asciiLower } from './hosts.js';
import { compileRe2 } from './re2.js';

/** What route matching reads of a request. Header names lower case; a header given several times is a list. */
export interface MatchRequest {
  method: string;
  /** The path the gateway routes by (normalised), with its query string. */
  path: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** A value a header matcher could not compare (not UTF-8): the request is refused, not guessed. */
export class UnsupportedRequestError extends Error {
  override readonly name = 'UnsupportedRequestError';
}

/** A request ready for the compiled tests (path without query, header values joined once). */
export interface Prepared {
  req: MatchRequest;
  pathOnly: string;
  joined: Map<string, string | undefined>;
  /** First value of each query parameter, read once when a route has query matches. */
  query?: Map<string, string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeBytes(value: string, name: string): string {
  let ascii = true;
  for (let i = 0; i < value.length && ascii; i++) ascii = value.charCodeAt(i) < 0x80;
  if (ascii) return value;
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) bytes[i] = value.charCodeAt(i) & 0xff;
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UnsupportedRequestError(
      `header ${name} is not valid UTF-8: Envoy would compare its bytes, which is not emulated`,
    );
  }
}

function headerValue(p: Prepared, name: string): string | undefined {
  if (p.joined.has(name)) return p.joined.get(name);
  let value: string | undefined;
  if (name === ':method') value = p.req.method;
  else {
    const raw = p.req.headers[name];
    if (raw === undefined) value = undefined;
    else value = decodeBytes(typeof raw === 'string' ? raw : raw.join(','), name);
  }
  p.joined.set(name, value);
  return value;
}

function stringTest(m: StringMatcher): (value: string) => boolean {
  if (m.exact !== undefined) {
    const exact = m.exact;
    return (v) => v === exact;
  }
  if (m.prefix !== undefined) {
    const prefix = m.prefix;
    return (v) => v.startsWith(prefix);
  }
  const re = compileRe2((m.safeRegex as { regex: string }).regex);
  return (v) => re.matches(v);
}

function headerTest(h: HeaderMatcher): (p: Prepared) => boolean {
  const name = asciiLower(h.name);
  const invert = h.invertMatch === true;
  const missingAsEmpty = h.treatMissingHeaderAsEmpty === true;
  if (h.stringMatch === undefined) {
    // presentMatch (Istio only ever sets true): present -> match; absent -> match only when inverted.
    const present = h.presentMatch !== false;
    return (p) => {
      const v = headerValue(p, name);
      if (v === undefined && !missingAsEmpty) return invert ? present : !present;
      return present !== invert;
    };
  }
  const test = stringTest(h.stringMatch);
  return (p) => {
    const v = headerValue(p, name);
    if (v === undefined && !missingAsEmpty) return false;
    return test(v ?? '') !== invert;
  };
}

function pathTest(m: RouteMatch): (p: Prepared) => boolean {
  const caseSensitive = m.caseSensitive !== false;
  if (m.path !== undefined) {
    const path = caseSensitive ? m.path : asciiLower(m.path);
    return caseSensitive ? (p) => p.pathOnly === path : (p) => asciiLower(p.pathOnly) === path;
  }
  if (m.safeRegex !== undefined) {
    const re = compileRe2(m.safeRegex.regex);
    return (p) => re.matches(p.pathOnly);
  }
  if (m.pathSeparatedPrefix !== undefined) {
    // Envoy's path_separated_prefix: the path without query equals the prefix or continues with "/".
    const fold = caseSensitive ? (s: string) => s : asciiLower;
    const prefix = fold(m.pathSeparatedPrefix);
    return (p) => {
      const path = fold(p.pathOnly);
      return path === prefix || path.startsWith(`${prefix}/`);
    };
  }
  const prefix = caseSensitive ? (m.prefix ?? '') : asciiLower(m.prefix ?? '');
  if (prefix === '' || prefix === '/') return (p) => p.req.path.startsWith(prefix);
  return caseSensitive
    ? (p) => p.req.path.startsWith(prefix)
    : (p) => asciiLower(p.req.path).startsWith(prefix);
}

/**
 * The query parameters of a request as Envoy's QueryParameterMatcher reads them: the first value of each name
 * (a name without `=` has the value ""). Envoy decodes percent-escapes; a query holding `%` or `+` is not
 * compared (UnsupportedRequestError), so the local gateway refuses such a request rather than guess.
 */
function firstQueryValues(p: Prepared): Map<string, string> {
  if (p.query !== undefined) return p.query;
  const out = new Map<string, string>();
  const q = p.req.path.indexOf('?');
  const query = q === -1 ? '' : p.req.path.slice(q + 1);
  if (query.includes('%') || query.includes('+')) {
    throw new UnsupportedRequestError(
      'a query string with percent-escapes or "+" against a query parameter match: Envoy decodes it, which is not emulated',
    );
  }
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (!out.has(name)) out.set(name, eq === -1 ? '' : part.slice(eq + 1));
  }
  p.query = out;
  return out;
}

function queryTest(q: QueryParameterMatcher): (p: Prepared) => boolean {
  if (q.stringMatch === undefined) return (p) => firstQueryValues(p).has(q.name);
  const test = stringTest(q.stringMatch);
  return (p) => {
    const v = firstQueryValues(p).get(q.name);
    return v !== undefined && test(v);
  };
}

/** A route compiled for {@link firstMatch}. */
export interface CompiledMatch<T> {
  readonly value: T;
  readonly test: (p: Prepared) => boolean;
}

/** Compiles the match of each route (regular expressions are built here). */
export function compileMatches<T>(routes: readonly T[], matchOf: (r: T) => RouteMatch): CompiledMatch<T>[] {
  return routes.map((value) => {
    const m = matchOf(value);
    const tests = [
      pathTest(m),
      ...(m.headers ?? []).map(headerTest),
      ...(m.queryParameters ?? []).map(queryTest),
    ];
    const test =
      tests.length === 1 ? (tests[0] as (p: Prepared) => boolean) : (p: Prepared) => tests.every((t) => t(p));
    return { value, test };
  });
}

/** The first route whose match holds for the request, or null (Envoy answers 404, flag NR). */
export function firstMatch<T>(compiled: readonly CompiledMatch<T>[], req: MatchRequest): T | null {
  const q = req.path.indexOf('?');
  const p: Prepared = { req, pathOnly: q === -1 ? req.path : req.path.slice(0, q), joined: new Map() };
  for (const c of compiled) if (c.test(p)) return c.value;
  return null;
}

/** Compiles Envoy routes for {@link firstMatch}. */
export function compileEnvoyRoutes(routes: readonly Route[]): CompiledMatch<Route>[] {
  return compileMatches(routes, (r) => r.match);
}
