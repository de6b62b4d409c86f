/**
 * Sample size of a fixed-n exact binomial test.
 */

import { binomialAcceptanceBand, binomialCdf, binomialSf, checkProbability } from './binomial.js';
import { normalQuantile } from './special.js';

/** What a fixed-n test must achieve. */
export interface FixedTestSpec {
  /** The proportion the manifest promises. */
  p0: number;
  /** Smallest deviation |p − p0| the test must detect. */
  delta: number;
  /** Probability of rejecting a correct split (two-sided). */
  alpha: number;
  /** Probability of rejecting a split that is `delta` off. */
  power: number;
}

export function checkSpec(spec: FixedTestSpec): void {
  checkProbability('p0', spec.p0);
  if (!(spec.delta > 0 && spec.delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${spec.delta}`);
  if (!(spec.alpha > 0 && spec.alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${spec.alpha}`);
  if (!(spec.power > 0 && spec.power < 1)) throw new RangeError(`power must be in (0, 1), got ${spec.power}`);
}

/** The alternatives p0 ± delta that lie inside [0, 1]. */
export function alternatives(p0: number, delta: number): number[] {
  const out: number[] = [];
  if (p0 - delta >= 0) out.push(p0 - delta);
  if (p0 + delta <= 1) out.push(p0 + delta);
  if (out.length === 0)
    throw new RangeError(`no alternative p0 ± delta lies in [0, 1] (p0=${p0}, delta=${delta})`);
  return out;
}

/** Observations a deterministic check (p0 = 0 or 1) needs: (1 − delta)^n ≤ 1 − power. */
export function deterministicSampleSize(delta: number, power: number): number {
  return Math.ceil(Math.log(1 - power) / Math.log(1 - delta));
}

/**
 * Normal-approximation sample size: n = ((z_{1−α/2}·√(p0(1−p0)) + z_{power}·√(p1(1−p1))) / δ)², the larger over
 * p1 = p0 ± δ. A first guess for {@link sampleSizeFixed}.
 */
export function sampleSizeNormal(spec: FixedTestSpec): number {
  checkSpec(spec);
  const { p0, delta, alpha, power } = spec;
  const za = normalQuantile(1 - alpha / 2);
  const zb = normalQuantile(power);
  let n = 1;
  for (const p1 of alternatives(p0, delta)) {
    const root = (za * Math.sqrt(p0 * (1 - p0)) + zb * Math.sqrt(p1 * (1 - p1))) / delta;
    n = Math.max(n, Math.ceil(root * root));
  }
  return n;
}

/**
 * Exact power of the fixed-n test that accepts counts inside {@link binomialAcceptanceBand}(n, p0, 1 − alpha),
 * when the true proportion is p1.
 */
export function fixedTestPower(n: number, p0: number, alpha: number, p1: number): number {
  const band = binomialAcceptanceBand(n, p0, 1 - alpha);
  return binomialCdf(band.lo - 1, n, p1) + binomialSf(band.hi, n, p1);
}

/**
 * Smallest n for which the exact two-sided fixed-n test (acceptance band at 1 − alpha, each tail ≤ alpha/2)
 * rejects with probability ≥ power when the true proportion is p0 + delta and when it is p0 − delta (those
 * inside [0, 1]). For p0 = 0 or 1 the check is deterministic: any contrary observation rejects, so
 * n = ceil(ln(1 − power) / ln(1 − delta)).
 *
 * The search scans up from half the normal-approximation answer; exact power is a saw-tooth in n, so the answer
 * is the first n that reaches the power.
 */
export function sampleSizeFixed(spec: FixedTestSpec): number {
  checkSpec(spec);
  const { p0, delta, alpha, power } = spec;
  if (p0 === 0 || p0 === 1) return deterministicSampleSize(delta, power);
  const key = `${p0}/${delta}/${alpha}/${power}`;
  const cached = sampleSizeCache.get(key);
  if (cached !== undefined) return cached;
  const n = searchSampleSize(p0, delta, alpha, power);
  if (sampleSizeCache.size >= 256) sampleSizeCache.clear();
  sampleSizeCache.set(key, n);
  return n;
}

// The search costs tens of milliseconds; a verifier asks for the same few specs again and again.
const sampleSizeCache = new Map<string, number>();

function searchSampleSize(p0: number, delta: number, alpha: number, power: number): number {
  const alts = alternatives(p0, delta);
  const guess = sampleSizeNormal({ p0, delta, alpha, power });
  const limit = 4 * guess + 1000;
  for (let n = Math.max(1, Math.floor(guess / 2)); n <= limit; n++) {
    if (alts.every((p1) => fixedTestPower(n, p0, alpha, p1) >= power)) return n;
  }
  throw new RangeError(`no sample size up to ${limit} reaches power ${power} (p0=${p0}, delta=${delta})`);
}
