/**
 * The canary analysis over the stage matrix: which stages it judges, with or without a baseline, and who is the
 * canary and who the baseline at each. Its thresholds are analysis.yaml at the root (paths.analysis), read by
 * split-check's readThresholds; each caller says in its own words what is wrong with the file.
 */
import type { AnalysisStepSpec } from '@rollouts/split-check';
import {
  httpRouteStageRouteTable,
  loadHttpRouteStage,
  type StageApi,
  splitFromTable,
} from './gateway-api-stages.js';
import { listStages, type Split, type StageSummary } from './stages.js';

/**
 * The analysed steps of the stage matrix: every stage whose requests without header reach the new version
 * (share > 0), with a baseline when the old one gets some too (share < 1).
 */
export function analysisSteps(stages: readonly StageSummary[]): AnalysisStepSpec[] {
  return stages
    .filter((s) => s.newVersionShare > 0)
    .map((s) => ({ stage: s.name, baseline: s.newVersionShare < 1 }));
}

/** Who is judged at a stage by the canary analysis: null at a stage where the new version gets no traffic. */
export interface StageRoles {
  canary: string;
  /** The version the canary is compared with (null: none gets traffic beside it, canary-100 and blue). */
  baseline: string | null;
  /** The canary's expected share of requests without header. */
  share: number;
}

/**
 * The roles at a stage (by name, or its listStages summary), read from the file the gateway serves: the
 * VirtualService, or with `api` gateway-api the HTTPRoute. The canary is the stage's new version; the baseline is
 * the one other version its requests without header reach, if there is exactly one.
 */
export function stageRoles(
  root: string,
  stage: string | StageSummary,
  api: StageApi = 'virtualservice',
): StageRoles | null {
  const summary = typeof stage === 'string' ? listStages(root).find((s) => s.name === stage) : stage;
  if (summary === undefined) return null;
  const canary = summary.newVersion;
  let split: Split;
  let share: number;
  if (api === 'gateway-api') {
    split = splitFromTable(httpRouteStageRouteTable(loadHttpRouteStage(root, summary.name)));
    share = split.versions[canary] ?? 0;
  } else {
    // The summary is the VirtualService's: its share is the new version's (or its subset's, without workloads).
    split = summary.split;
    share = summary.newVersionShare;
  }
  if (share <= 0) return null;
  const others = Object.entries(split.versions).filter(([v, p]) => p > 0 && v !== canary);
  return { canary, baseline: others.length === 1 ? (others[0] as [string, number])[0] : null, share };
}
