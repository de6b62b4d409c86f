/**
 * What an expected split asks a check to do, the same for the local verifier, `rollout expect` and the k6
 * script: which versions get traffic, which share a binomial test tracks, and the acceptance band of each
 * version's count among a fixed number of requests.
 */

import { binomialAcceptanceBand, type CountBand } from './binomial.js';

const DIGITS = /^\d/;

/**
 * Natural order of version names: digit runs compare as numbers ("v2" before "v10"), the rest character by
 * character. Written out rather than `localeCompare(…, {numeric: true})`, which k6's runtime does not honour.
 */
export function compareVersions(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i] as string;
    const y = tb[i] as string;
    if (DIGITS.test(x) && DIGITS.test(y)) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return ta.length - tb.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The shape of an expected split (probability per version). */
export interface SplitSupport {
  /** Every version listed, zero shares included, in natural order. */
  versions: string[];
  /** The versions with a positive share, in natural order. */
  support: { version: string; p: number }[];
  /**
   * Exactly two versions get traffic: the later one (v2 over v1, blue's version over green's) is the one whose
   * share a binomial test tracks (the test is symmetric); `other` is the first. Else null.
   */
  tested: { version: string; p0: number; other: string } | null;
}

export function splitSupport(versions: Readonly<Record<string, number>>): SplitSupport {
  const names = Object.keys(versions).sort(compareVersions);
  const support = names
    .map((version) => ({ version, p: versions[version] as number }))
    .filter(({ p }) => p > 0);
  const [first, second] = support;
  const tested =
    support.length === 2 && first && second
      ? { version: second.version, p0: second.p, other: first.version }
      : null;
  return { versions: names, support, tested };
}

/**
 * The acceptance band of every listed version's count among `n` requests, at significance `alpha`: a version
 * with a share of 0 must get none ([0, 0]); a lone version every one ([n, n]); with two versions the tracked one
 * (`tested`, default the later) gets the exact two-sided binomial band and the other its complement; with three
 * or more each gets an exact band at alpha / k (Bonferroni).
 */
export function countBands(
  versions: Readonly<Record<string, number>>,
  n: number,
  alpha: number,
  tested?: string | null,
): Record<string, CountBand> {
  const shape = splitSupport(versions);
  const bands: Record<string, CountBand> = {};
  for (const v of shape.versions) if ((versions[v] as number) <= 0) bands[v] = { lo: 0, hi: 0 };
  const support = shape.support;
  const only = support[0];
  if (support.length === 1 && only) {
    bands[only.version] = { lo: n, hi: n };
  } else if (support.length === 2 && shape.tested) {
    const named = support.find((s) => s.version === tested);
    const track = named ?? { version: shape.tested.version, p: shape.tested.p0 };
    const other = support.find((s) => s.version !== track.version) as { version: string };
    const band = binomialAcceptanceBand(n, track.p, 1 - alpha);
    bands[track.version] = band;
    bands[other.version] = { lo: n - band.hi, hi: n - band.lo };
  } else {
    for (const { version, p } of support) {
      bands[version] = binomialAcceptanceBand(n, p, 1 - alpha / support.length);
    }
  }
  return bands;
}
