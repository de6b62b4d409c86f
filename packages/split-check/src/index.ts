/**
 * @rollouts/split-check: pure statistics for traffic-split checks, what a split asks each check to do, the
 * verification table, and a seeded generator for simulations. No Node APIs and no dependencies, so k6 scripts
 * can import it as well as Node.
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
export { mulberry32 } from './random.js';
export {
  deterministicSampleSize,
  type FixedTestSpec,
  fixedTestPower,
  sampleSizeFixed,
  sampleSizeNormal,
} from './samplesize.js';
export { erfc, gammaP, gammaQ, logGamma, normalCdf, normalQuantile } from './special.js';
export { compareVersions, countBands, type SplitSupport, splitSupport } from './split.js';
export {
  createSprt,
  type Sprt,
  type SprtDecision,
  type SprtOptions,
  type SprtSide,
  type SprtState,
} from './sprt.js';
export {
  formatPercent,
  formatSplitTable,
  formatTable,
  indent,
  type ProfileOutcome,
  type ProfileRows,
  type VersionRow,
} from './table.js';
