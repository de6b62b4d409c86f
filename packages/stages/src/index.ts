/**
 * @rollouts/stages: loads and validates the stage manifests (istio/stages/*.yaml), the DestinationRule, the
 * Gateway and the chart's workloads; builds the route table Istio's ingress gateway gets for a stage (Envoy's
 * shape) and routes requests with it as Envoy does; derives the expected split per request profile, and the canary
 * analysis' steps and roles; lints istio/ against the chart.
 */
export { analysisSteps, type StageRoles, stageRoles } from './analysis.js';
export { applySettings, readSettings, setting } from './defaults.js';
export type * from './envoy.js';
export { ManifestError, type ManifestErrorKind, UnknownStageError } from './errors.js';
export {
  type GatewayApiContext,
  gatewayApiContext,
  type HttpRouteStage,
  httpRouteProfiles,
  httpRouteStageNames,
  httpRouteStageRouteTable,
  httpRouteTableFromFile,
  loadHttpRouteStage,
  loadHttpRouteStageFile,
  loadKubeGateway,
  STAGE_APIS,
  type StageApi,
  splitFromTable,
} from './gateway-api-stages.js';
export {
  asciiLower,
  CLUSTER_DOMAIN,
  hostForMatching,
  intersectHosts,
  isIpAddress,
  resolveShortname,
  selectVirtualHost,
} from './hosts.js';
export {
  type BackendRefSpec,
  type BackendService,
  GATEWAY_API,
  type HeaderModifierSpec,
  type HTTPRoute,
  type HttpRouteMatchSpec,
  type HttpRouteRuleSpec,
  httpRouteTable,
  type KubeGateway,
  parseHttpRoute,
  parseKubeGateway,
  servicesFromRenderedObjects,
} from './httproute.js';
export {
  type Finding,
  type LintOptions,
  type LintRule,
  type LintSeverity,
  lint,
  lintErrors,
} from './lint.js';
export { type GatewayApiLintOptions, type GatewayApiLintRule, lintGatewayApi } from './lint-gateway-api.js';
export type {
  Destination,
  DestinationRule,
  Gateway,
  GatewayServer,
  HttpMatchRequest,
  HttpRetry,
  HttpRoute,
  HttpRouteDestination,
  ObjectMeta,
  ResponseHeaderOperations,
  StringMatch,
  Subset,
  VirtualService,
} from './manifest.js';
export {
  MAX_OBJECT_BYTES,
  MAX_VS_MATCHES,
  MAX_VS_ROUTES,
  parseDestinationRule,
  parseGateway,
  parseGoDuration,
  parseVirtualService,
  RETRY_ON_POLICIES,
} from './manifest.js';
export { type MatchRequest, UnsupportedRequestError } from './match.js';
export { normalizePath, type PathNormalization } from './path.js';
export { compileRe2, type FullMatcher, MAX_REGEX_LENGTH, re2Problem } from './re2.js';
export { findRepoRoot, NAMESPACE, paths } from './repo.js';
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
  type BrokenStage,
  DEFAULT_PROFILE,
  expectedSplit,
  formatSplit,
  listStages,
  loadDestinationRule,
  loadGateway,
  loadStage,
  loadStageFile,
  type Profile,
  profileRequest,
  profiles,
  type RepoContext,
  repoContext,
  rollbackTarget,
  type Split,
  STABLE_LABEL,
  STAGE_HEADER,
  STAGE_LABEL,
  STRATEGIES,
  STRATEGY_LABEL,
  type Stage,
  type StageRow,
  type StageSummary,
  type Strategy,
  scanStages,
  stableStages,
  stageNames,
  stageRouteTable,
  stageStrategy,
  stageTable,
  WHOLE_SERVICE,
} from './stages.js';
export {
  type AppService,
  type ClusterEndpoint,
  type ClusterInfo,
  type CompiledRouteTable,
  compileRouteTable,
  DEFAULT_GATEWAY,
  DEFAULT_NAMESPACE,
  DEFAULT_SERVICE,
  GATEWAY_NAMESPACE,
  type GatewayRequest,
  type GatewayRouteTable,
  gatewayRouteTable,
  type RouteDecision,
  type RouteTableOptions,
  resolveGatewayName,
  routeClusters,
  routeRequest,
  visibleTo,
} from './table.js';
export {
  convertRetryPolicy,
  DEFAULT_RETRY_ON,
  durationMs,
  formatDuration,
  parseSubsetKey,
  type RouteSource,
  subsetKey,
  translateHttpRoutes,
} from './translate.js';
export {
  appServiceFromValues,
  loadWorkloads,
  subsetSelects,
  versionsOfSubset,
  type Workload,
  workloadsFromRendered,
} from './workloads.js';
