/**
 * Turning the product's promise ("a correct mesh fails at most 1 time in 1000 over the whole stage matrix; a
 * split 5 points off is caught at least 999 times in 1000") into per-check numbers. See README.md for the
 * derivation.
 */

import { binomialAcceptanceBand, type CountBand } from './binomial.js';
import { deterministicSampleSize, sampleSizeFixed } from './samplesize.js';
import type { SprtOptions } from './sprt.js';

/** Inputs of {@link planVerification}. */
export interface PlanOptions {
  /**
   * The checks whose outcome is random (a share strictly between 0 and 1): their count, or their names (e.g.
   * the stages canary-10, canary-25, canary-50, canary-75, blue-preview). Deterministic checks (shares of 0 or 1,
   * header overrides) cannot fail on a correct mesh, so they take no share of the family alpha.
   */
  randomStages: number | readonly string[];
  /** Probability that a correct mesh fails any check of the whole matrix. Default 0.001. */
  familyAlpha?: number;
  /** Deviation of the share that must be caught. Default 0.05 (5 percentage points). */
  delta?: number;
  /** Probability that a check catches a share `delta` off. Default 0.999. */
  power?: number;
}

/** The numbers every check of a verification run uses. */
export interface VerificationPlan {
  familyAlpha: number;
  delta: number;
  power: number;
  /** 1 − power: probability of missing a share `delta` off, per check. */
  beta: number;
  /** How many checks share the family alpha. */
  randomStages: number;
  /** Names, when they were given. */
  randomStageNames: string[];
  /** Bonferroni: familyAlpha / randomStages (familyAlpha when there are none). */
  alphaPerStage: number;
  /** Requests a deterministic check needs: ceil(ln(beta) / ln(1 − delta)). */
  deterministicN: number;
  /** Fixed-n sample size at the worst case p0 = 0.5: an upper bound of every random check's maxN. */
  worstCaseFixedN: number;
}

/** How one share (the probability that a request reaches one version) is checked. */
export interface CheckPlan {
  p0: number;
  kind: 'deterministic' | 'binomial';
  /** Options for createSprt (maxN = 2 · fixedN, see defaultMaxN). */
  sprt: Required<SprtOptions>;
  /** Requests a fixed-n check needs (k6 uses fixed n). */
  fixedN: number;
  /** Acceptance band of the count at fixedN: counts outside it fail the check. */
  band: CountBand;
}

/**
 * Per-check significance and sample sizes for a verification run over the stage matrix.
 *
 * alphaPerStage = familyAlpha / m, where m is the number of random checks (Bonferroni: the probability that
 * any of m checks rejects a correct mesh is at most the sum of their alphas).
 */
export function planVerification(options: PlanOptions): VerificationPlan {
  const familyAlpha = options.familyAlpha ?? 0.001;
  const delta = options.delta ?? 0.05;
  const power = options.power ?? 0.999;
  if (!(familyAlpha > 0 && familyAlpha < 1))
    throw new RangeError(`familyAlpha must be in (0, 1), got ${familyAlpha}`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  if (!(power > 0 && power < 1)) throw new RangeError(`power must be in (0, 1), got ${power}`);
  const names = typeof options.randomStages === 'number' ? [] : [...options.randomStages];
  const m = typeof options.randomStages === 'number' ? options.randomStages : names.length;
  if (!Number.isInteger(m) || m < 0)
    throw new RangeError(`randomStages must be a non-negative integer, got ${m}`);
  const alphaPerStage = familyAlpha / Math.max(1, m);
  return {
    familyAlpha,
    delta,
    power,
    beta: Number((1 - power).toPrecision(12)),
    randomStages: m,
    randomStageNames: names,
    alphaPerStage,
    deterministicN: deterministicSampleSize(delta, power),
    worstCaseFixedN: sampleSizeFixed({ p0: 0.5, delta, alpha: alphaPerStage, power }),
  };
}

/** The check of one share p0 under a plan: SPRT options, fixed n and its acceptance band. */
export function planCheck(plan: VerificationPlan, p0: number): CheckPlan {
  if (!(p0 >= 0 && p0 <= 1)) throw new RangeError(`p0 must be a probability in [0, 1], got ${p0}`);
  const deterministic = p0 === 0 || p0 === 1;
  const alpha = plan.alphaPerStage;
  const fixedN = deterministic
    ? plan.deterministicN
    : sampleSizeFixed({ p0, delta: plan.delta, alpha, power: plan.power });
  return {
    p0,
    kind: deterministic ? 'deterministic' : 'binomial',
    sprt: { p0, delta: plan.delta, alpha, beta: plan.beta, maxN: deterministic ? fixedN : 2 * fixedN },
    fixedN,
    band: binomialAcceptanceBand(fixedN, p0, 1 - alpha),
  };
}
