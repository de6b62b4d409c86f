/**
 * RE2, the regular expression engine Istio validates with (Go's regexp, RE2 syntax) and Envoy matches with
 * (`safe_regex`: C++ RE2, always a full-string match). Implemented by re2js, a pure JavaScript port of RE2/J, so
 * `[[:digit:]]`, `\pL`, `\Q...\E`, `(?P<name>...)` and `(?i)` mean what RE2 says, and lookarounds or
 * backreferences are syntax errors as they are for Istio.
 */
import { RE2JS } from 're2js';

/** Istio refuses longer expressions (pkg/config/validation: "regex is too large, max length allowed is 1024"). */
export const MAX_REGEX_LENGTH = 1024;

/** A compiled RE2 expression that matches whole strings only (Envoy's safe_regex). */
export interface FullMatcher {
  readonly source: string;
  matches(value: string): boolean;
}

/** Why Istio would refuse `source` as a regex, or null when it compiles as RE2. */
export function re2Problem(source: string): string | null {
  if (source === '') return 'regex string match should not be empty';
  if (source.length > MAX_REGEX_LENGTH)
    return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  try {
    RE2JS.compile(source);
    return null;
  } catch (error) {
    return `${(error as Error).message}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`;
  }
}

/** Compiles `source` for a full-string match. Throws on what {@link re2Problem} reports. */
export function compileRe2(source: string): FullMatcher {
  const re = RE2JS.compile(source);
  return { source, matches: (value) => re.matches(value) };
}
