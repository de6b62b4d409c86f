/**
 * What Istio's ingress gateway does to a request's path before route matching. Istio's default mesh config has no
 * `pathNormalization`, which pilot reads as DEFAULT (= BASE): the gateway's HTTP connection manager gets
 * `normalize_path: true`, `merge_slashes` unset (false) and `path_with_escaped_slashes_action: KEEP_UNCHANGED`
 * (pilot/pkg/networking/core/listener_builder.go). Envoy's normalize_path is RFC 3986 normalisation done with
 * its snapshot of Chromium's URL path canonicalizer (source/common/chromium_url), on the part before `?`:
 *
 * - `.` and `..` segments are removed (also written `%2e`); `..` never climbs above `/`;
 * - percent-escapes of unreserved characters (ALPHA, DIGIT, `-`, `_`, `~`) are decoded, other escapes kept as
 *   written (`%2F` and `%2f` stay, so escaped slashes are not slashes);
 * - a backslash becomes `/`; an escaped NUL (`%00`) fails the request with 400;
 * - repeated slashes are kept (`//a` is not `/a`).
 *
 * The query string is not touched. Requests whose path this module does not reproduce exactly are reported as
 * `unsupported` (the local gateway answers them 400 with the reason instead of guessing): a request target that
 * is not a path (absolute form, `*`), a `#`, or a raw character Envoy's codec or canonicalizer would escape or
 * reject (space, `"`, `<`, `>`, backslash, `^`, `` ` ``, `{`, `|`, `}`, control and non-ASCII bytes).
 */

export type PathNormalization =
  | { kind: 'ok'; path: string }
  /** Envoy answers 400 (path normalisation failed). */
  | { kind: 'rejected'; reason: string }
  /** The local gateway does not reproduce what Envoy does with this path: it refuses the request. */
  | { kind: 'unsupported'; reason: string };

const HEX = '0123456789ABCDEF';

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c <= 0x46) return c - 0x41 + 10;
  return c - 0x61 + 10;
}

/** Unreserved characters other than `.` (Chromium's UNESCAPE class): an escape of one of them is decoded. */
function isUnescaped(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x2d ||
    c === 0x5f ||
    c === 0x7e
  );
}

/** Raw characters Chromium's table escapes (or, for NUL, rejects) in a path; `%` and `\` are handled apart. */
function isEscapedRaw(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return true;
  return '"#<>?^`{|}'.includes(String.fromCharCode(c));
}

/** A valid `%XY` at `i` of `s`: its byte value, else -1. */
function decodeEscape(s: readonly number[] | string, i: number): number {
  const at = (k: number) => (typeof s === 'string' ? s.charCodeAt(k) : (s[k] as number));
  const len = s.length;
  if (i + 3 > len) return -1;
  const a = at(i + 1);
  const b = at(i + 2);
  if (!isHex(a) || !isHex(b)) return -1;
  return (hexValue(a) << 4) + hexValue(b);
}

/** Length of a dot at `i` (`.` is 1, `%2e` / `%2E` is 3), else 0. */
function dotLength(s: string, i: number, end: number): number {
  if (s.charCodeAt(i) === 0x2e) return 1;
  if (s[i] === '%' && i + 3 <= end && s[i + 1] === '2' && (s[i + 2] === 'e' || s[i + 2] === 'E')) return 3;
  return 0;
}

const isSlash = (c: number) => c === 0x2f || c === 0x5c;

/** Chromium's CanonicalizePath on a path that starts with `/`: the canonical path, or null when it fails. */
function canonicalize(spec: string): string | null {
  const end = spec.length;
  const out: number[] = [];
  let ok = true;
  let lastInvalidPercent = Number.MIN_SAFE_INTEGER;
  const backUpToPreviousSlash = () => {
    let i = out.length - 1;
    if (i === 0) return;
    i--;
    while (out[i] !== 0x2f && i > 0) i--;
    out.length = i + 1;
  };
  const nestedEscapes = (nextInput: number) => {
    const length = out.length;
    const lastUnescaped = out[length - 1] as number;
    const appendNext = lastInvalidPercent === length - 2;
    if (appendNext) {
      if (nextInput === end || spec.charCodeAt(nextInput) >= 0x80) return;
      out.push(spec.charCodeAt(nextInput));
    }
    if (decodeEscape(out, lastInvalidPercent) >= 0) {
      if (!appendNext) out.push(out[lastInvalidPercent + 1] as number);
      out[lastInvalidPercent + 1] = 0x32;
      out[lastInvalidPercent + 2] = 0x35;
      out.push(lastUnescaped);
    } else if (appendNext) {
      out.length = length;
    }
  };
  for (let i = 0; i < end; i++) {
    const c = spec.charCodeAt(i);
    const dot = dotLength(spec, i, end);
    if (dot > 0) {
      if (out.length > 0 && out[out.length - 1] === 0x2f) {
        const after = i + dot;
        if (after === end) {
          i += dot - 1; // "." at the end: the current directory
        } else if (isSlash(spec.charCodeAt(after))) {
          i += dot; // "./"
        } else {
          const second = dotLength(spec, after, end);
          const afterSecond = after + second;
          if (second > 0 && (afterSecond === end || isSlash(spec.charCodeAt(afterSecond)))) {
            backUpToPreviousSlash(); // ".." or "../"
            i += dot + second + (afterSecond === end ? 0 : 1) - 1;
          } else {
            out.push(0x2e);
            i += dot - 1;
          }
        }
      } else {
        out.push(0x2e);
        i += dot - 1;
      }
    } else if (c === 0x5c) {
      out.push(0x2f);
    } else if (c === 0x25) {
      const value = decodeEscape(spec, i);
      if (value >= 0) {
        i += 2;
        if (isUnescaped(value)) {
          out.push(value);
          if (lastInvalidPercent >= out.length - 3) nestedEscapes(i + 1);
        } else {
          out.push(0x25, spec.charCodeAt(i - 1), spec.charCodeAt(i));
          if (value === 0) ok = false;
        }
      } else {
        lastInvalidPercent = out.length;
        out.push(0x25);
      }
    } else if (c === 0) {
      out.push(0x25, 0x30, 0x30);
      ok = false;
    } else if (isEscapedRaw(c)) {
      out.push(0x25, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
    } else {
      out.push(c);
    }
  }
  return ok ? String.fromCharCode(...out) : null;
}

/**
 * The path the gateway routes by, from the request target as received (`/a/./b?x=1` becomes `/a/b?x=1`).
 * Characters are bytes: a string decoded as latin1, as Node gives `req.url`.
 */
export function normalizePath(target: string): PathNormalization {
  if (!target.startsWith('/')) {
    return {
      kind: 'unsupported',
      reason: `request target ${JSON.stringify(target)} is not a path (absolute form or "*")`,
    };
  }
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  if (target.includes('#')) return { kind: 'unsupported', reason: 'a "#" in the request target' };
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c || (c !== 0x25 && isEscapedRaw(c))) {
      return {
        kind: 'unsupported',
        reason: `the raw character ${JSON.stringify(path[i])} (0x${c.toString(16).padStart(2, '0')}) in the path`,
      };
    }
  }
  const canonical = canonicalize(path);
  if (canonical === null) return { kind: 'rejected', reason: 'path normalisation failed (an escaped NUL)' };
  return { kind: 'ok', path: canonical + query };
}
