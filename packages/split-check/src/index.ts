/**
 * @rollouts/split-check: pure statistics for traffic-split checks and canary analysis, what a split asks each
 * check to do, the verification table, and a seeded generator for simulations. No Node APIs and no
 * dependencies, so k6 scripts can import it as well as Node.
 */

export {
  type AnalysisCheck,
  type AnalysisInput,
  type AnalysisPlan,
  type AnalysisResult,
  type AnalysisStepSpec,
  type AnalysisThresholds,
  type AnalysisVerdict,
  analyse,
  type CheckId,
  formatAnalysisTables,
  formatMs,
  formatP,
  formatPoints,
  formatThresholds,
  type HistogramBucket,
  type LatencyJudge,
  parseThresholds,
  planAnalysis,
  readThresholds,
  ThresholdsError,
  testsOfStep,
  type VersionSample,
  type VersionStats,
} from './analysis.js';
export {
  binomialAcceptanceBand,
  binomialCdf,
  binomialPmf,
  binomialQuantile,
  binomialSf,
  binomialTestGreater,
  binomialTestLess,
  binomialTestTwoSided,
  type CountBand,
} from './binomial.js';
export { type ChiSquareResult, chiSquareGoodnessOfFit, chiSquareSf } from './chisquare.js';
export { analyseHistogram, checkBuckets, histogramQuantile } from './histogram.js';
export {
  clopperPearson,
  clopperPearsonLower,
  clopperPearsonUpper,
  type ProportionInterval,
} from './intervals.js';
export {
  type Alternative,
  type MannWhitneyOptions,
  type MannWhitneyResult,
  mannWhitneyOneSided,
  mannWhitneyU,
  rankSum,
} from './mannwhitney.js';
export { MappingSyntaxError, type ParsedMapping, parseMapping } from './mapping.js';
export {
  type CheckPlan,
  type PlanOptions,
  planCheck,
  planVerification,
  type VerificationPlan,
} from './plan.js';
export {
  CLUSTER_GATEWAY_WORKLOAD,
  counterDelta,
  countsBy,
  GATEWAY_API_GATEWAY_WORKLOAD,
  LOCAL_GATEWAY_WORKLOAD,
  type MeshSelector,
  type MeshSnapshot,
  PromQueryError,
  type PromSample,
  parseVector,
  QUERIES,
  type StepCounts,
  stepCounts,
} from './promql.js';
export {
  type OrderStatistic,
  quantileLowerBound,
  quantileLowerRank,
  quantileSorted,
  quantileUpperBound,
  quantileUpperRank,
  sortedSample,
} from './quantile.js';
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
  lookSchedule,
  runStepAnalysis,
  type StepAnalysis,
  type StepAnalysisOptions,
  type StepLook,
  type StepSamples,
} from './step.js';
export {
  formatPercent,
  formatShare,
  formatSplitTable,
  formatTable,
  formatWeightShare,
  indent,
  type ProfileOutcome,
  type ProfileRows,
  type VersionRow,
} from './table.js';
