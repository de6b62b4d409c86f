/**
 * What the page compares the answers with, derived from the stage manifests (never re-typed): for every stage,
 * the expected split of the requests the watch server sends, with each combination of the override headers the
 * stages know (x-canary: always, x-preview: blue). A header a stage has no route for is sent all the same and
 * the stage's own routes decide where it goes, as on the gateway.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { verificationPlan } from '@rollouts/local-mesh';
import {
  type AnalysisThresholds,
  planAnalysis,
  readThresholds,
  ThresholdsError,
} from '@rollouts/split-check';
import {
  analysisSteps,
  expectedSplit,
  loadStageFile,
  type Profile,
  paths,
  profiles,
  repoContext,
  type Stage,
  type StageRoles,
  scanStages,
  stageRoles,
} from '@rollouts/stages';
import {
  type AnalysisConfig,
  type OverrideHeader,
  type ProfileExpectation,
  profileKey,
  type StageInfo,
} from './page/protocol.js';

export interface Expectations {
  stages: StageInfo[];
  brokenStages: { name: string; error: string }[];
  overrides: OverrideHeader[];
  /** 1 − α per check (the plan of `make verify`). */
  confidence: number;
  alpha: number;
}

/** Every non-empty and the empty subset of `items`, in a stable order. */
function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [[]];
  for (const item of items) {
    const n = out.length;
    for (let i = 0; i < n; i++) out.push([...(out[i] as T[]), item]);
  }
  return out;
}

/** The override profiles of a stage that the watch traffic (GET /) can send: header-only ones. */
function headerOverrides(stage: Stage): Profile[] {
  return profiles(stage)
    .slice(1)
    .filter((p) => p.method === undefined && p.path === undefined);
}

/**
 * Loads every stage. `command(name)` is what applies a stage from a terminal (`make canary-25`, with
 * `TARGET=local` on the local path).
 */
export function loadExpectations(root: string, command: (stage: string) => string): Expectations {
  const ctx = repoContext(root);
  const scan = scanStages(root);
  const loaded: Stage[] = [];
  const broken = scan.broken.map((b) => ({ name: b.name, error: b.error.message }));
  for (const summary of scan.stages) {
    try {
      loaded.push(loadStageFile(root, summary.file));
    } catch (err) {
      broken.push({ name: summary.name, error: (err as Error).message });
    }
  }
  const overrides = new Map<string, OverrideHeader>();
  for (const stage of loaded) {
    for (const p of headerOverrides(stage)) {
      if (!overrides.has(p.name)) overrides.set(p.name, { name: p.name, headers: { ...p.headers } });
    }
  }
  const catalogue = [...overrides.values()];
  const stages = loaded.map((stage): StageInfo => {
    const expect: Record<string, ProfileExpectation> = {};
    for (const combo of subsets(catalogue)) {
      const headers = Object.assign({}, ...combo.map((o) => o.headers)) as Record<string, string>;
      const key = profileKey(combo.map((o) => o.name));
      const split = expectedSplit(stage, { name: key || 'default', headers }, ctx.dr, ctx.workloads);
      expect[key] = {
        versions: split.versions,
        noRoute: split.routeIndex === null,
        route: split.routeName,
      };
    }
    return {
      name: stage.name,
      strategy: stage.strategy,
      file: relative(root, stage.file),
      command: command(stage.name),
      overrides: headerOverrides(stage).map((p) => p.name),
      expect,
    };
  });
  const plan = verificationPlan(root);
  return {
    stages,
    brokenStages: broken,
    overrides: catalogue,
    confidence: 1 - plan.alphaPerStage,
    alpha: plan.alphaPerStage,
  };
}

/** The headers to send for a set of override names (unknown names are ignored). */
export function headersFor(
  overrides: readonly OverrideHeader[],
  names: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of overrides) if (names.includes(o.name)) Object.assign(out, o.headers);
  return out;
}

/** analysis.yaml missing or bad: the message names the file and what to do (the page shows it). */
export class AnalysisFileError extends Error {
  override readonly name = 'AnalysisFileError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The canary analysis as `make progress` plans it: the thresholds of analysis.yaml at the root (their one
 * definition: without the file there is no analysis), over the analysed steps of the stage matrix (every stage
 * whose requests without header reach the new version; with a baseline when the old one gets some too). Throws
 * AnalysisFileError for a missing or bad file, every problem named with its line.
 */
export function loadAnalysis(root: string): AnalysisConfig {
  const file = paths.analysis(root);
  const shown = relative(root, file);
  if (!existsSync(file))
    throw new AnalysisFileError(
      shown,
      `the analysis thresholds file ${shown} does not exist (it ships with the repository: git checkout ${shown})`,
    );
  let thresholds: AnalysisThresholds;
  try {
    // the same reader as `make progress` (split-check's): a bad value is named with its line
    thresholds = readThresholds(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof ThresholdsError)
      throw new AnalysisFileError(
        shown,
        `bad analysis thresholds in ${shown}: ${err.problems.join('; ')} (fix the file, or git checkout ${shown})`,
      );
    throw new AnalysisFileError(
      shown,
      `the analysis thresholds file ${shown} cannot be read: ${(err as Error).message}`,
    );
  }
  const { stages } = scanStages(root);
  const roles: Record<string, StageRoles | null> = {};
  for (const s of stages) roles[s.name] = stageRoles(root, s);
  return { file: shown, plan: planAnalysis(thresholds, analysisSteps(stages)), roles };
}
