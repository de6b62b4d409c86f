/**
 * @rollouts/stages: loads and validates the stage manifests (istio/stages/*.yaml), the DestinationRule and the
 * chart's workloads; routes requests with Istio's VirtualService semantics; derives the expected split per
 * request profile; lints istio/ against the chart and the Makefile.
 */
export { ManifestError, UnknownStageError } from './errors.js';
export {
  type Finding,
  type LintOptions,
  type LintRule,
  lint,
  NAMESPACE,
  parseMakeStageTargets,
} from './lint.js';
export type {
  Destination,
  DestinationRule,
  HttpMatchRequest,
  HttpRoute,
  HttpRouteDestination,
  ObjectMeta,
  ResponseHeaderOperations,
  StringMatch,
  Subset,
  VirtualService,
} from './manifest.js';
export { parseDestinationRule, parseVirtualService } from './manifest.js';
export { findRepoRoot, paths } from './repo.js';
export {
  type CompiledRoutes,
  compileRoutes,
  destinationWeights,
  type MatchedRoute,
  matchRoute,
  type ResponseHeaders,
  type RouteRequest,
  responseHeadersOf,
} from './routing.js';
export {
  DEFAULT_PROFILE,
  expectedSplit,
  formatSplit,
  listStages,
  loadDestinationRule,
  loadStage,
  loadStageFile,
  type Profile,
  profiles,
  type Split,
  STAGE_HEADER,
  STAGE_LABEL,
  STRATEGIES,
  STRATEGY_LABEL,
  type Stage,
  type StageRow,
  type StageSummary,
  type Strategy,
  stageNames,
  stageTable,
  WHOLE_SERVICE,
} from './stages.js';
export {
  loadWorkloads,
  subsetSelects,
  versionsOfSubset,
  type Workload,
  workloadsFromRendered,
} from './workloads.js';
