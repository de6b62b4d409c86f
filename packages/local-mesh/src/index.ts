/**
 * The local path: the gateway that applies the stage manifests to real traffic, its admin API, the supervised
 * workloads, the load client and the statistical verifier. What other packages use, and nothing else.
 */
export {
  type AdminOptions,
  type AdminServer,
  BadStageError,
  createAdmin,
  newAdminToken,
  type TableSource,
} from './admin.js';
export {
  ConfigError,
  gatewayUrlFromEnv,
  type LocalPorts,
  parsePort,
  portEnvName,
  portsFromEnv,
} from './config.js';
export {
  type PlanRequest,
  type ProfileCheck,
  profileCheck,
  randomChecks,
  stageExpectation,
  verificationPlan,
} from './expectations.js';
export { Gateway, type GatewayOptions, listenOn, type RoutingTable, type Upstream } from './gateway.js';
export { LoadClient, type LoadClientOptions, type ResponseSample } from './load.js';
export {
  adminTokenFile,
  type LocalState,
  localDir,
  localStateFile,
  readAdminToken,
  readLocalState,
  resolveAdminUrl,
  stateDir,
} from './local-state.js';
export {
  appBuild,
  GATEWAY_MAIN,
  type LocalMesh,
  type LocalMeshOptions,
  MissingBuildError,
  registerAdminToken,
  registeredAdminToken,
  startLocalMesh,
} from './mesh.js';
export {
  assertPortsFree,
  findFreePort,
  groupMembers,
  isPortFree,
  listenAs,
  PortInUseError,
  type ProcessIdentity,
  pidAlive,
  processIdentity,
  stopPid,
  waitReady,
} from './processes.js';
export { formatSeconds, formatSplitLine, formatStageResult, table } from './report.js';
export {
  buildTable,
  createTableSource,
  headerOps,
  repoRoot,
  type TableSourceOptions,
  workloadVersions,
} from './routing.js';
export {
  type BackoffOptions,
  type ProbeOptions,
  SupervisedWorkload,
  type SupervisedWorkloadOptions,
  type WorkloadHealth,
  type WorkloadState,
} from './supervisor.js';
export {
  type CheckKind,
  type ProfileExpectation,
  type StageResult,
  StepTraffic,
  VerificationInterrupted,
  verifyStage,
} from './verifier.js';
