/**
 * @rollouts/split-check: pure statistics for traffic-split checks. No Node APIs and no dependencies, so k6
 * scripts can import it as well as Node.
 */

export {
  binomialAcceptanceBand,
  binomialCdf,
  binomialPmf,
  binomialSf,
  binomialTestTwoSided,
  type CountBand,
} from './binomial.js';
export { type ChiSquareResult, chiSquareGoodnessOfFit, chiSquareSf } from './chisquare.js';
export { clopperPearson, type ProportionInterval, wilson } from './intervals.js';
export {
  type CheckPlan,
  type PlanOptions,
  planCheck,
  planVerification,
  type VerificationPlan,
} from './plan.js';
export {
  deterministicSampleSize,
  type FixedTestSpec,
  fixedTestPower,
  sampleSizeFixed,
  sampleSizeNormal,
} from './samplesize.js';
export { erfc, gammaP, gammaQ, logGamma, normalCdf, normalQuantile } from './special.js';
export {
  createSprt,
  type Sprt,
  type SprtDecision,
  type SprtOptions,
  type SprtSide,
  type SprtState,
} from './sprt.js';
