/**
 * The lint of the Gateway API stages (istio/stages/gateway-api/*.yaml): what `rollout lint` reports for them with
 * API=gateway-api, in the same Finding shape and rule vocabulary as lint.ts, plus the rules only a pair of files
 * can break. Rules (all errors):
 * - manifest: an HTTPRoute stage file or the Gateway cannot be loaded (the API server or Istio would refuse it,
 *   or the local gateway does not emulate it; a backend that is not one of the chart's Services included);
 * - stage-label: the rollouts/stage label differs from the file name;
 * - stage-header: a rule does not set the response header x-rollouts-stage to the stage's name with a
 *   ResponseHeaderModifier `set`;
 * - rollback-target: not exactly one HTTPRoute stage of a strategy is labelled rollouts/stable: "true", or the
 *   labelled one is not the VirtualService's (a rollback must reach the same stage whichever API carries it);
 * - route-name: the stages do not all name the same HTTPRoute (applying one must replace the previous);
 * - stage-pair: a stage has only one of its two files, a different strategy in each, or a different split for a
 *   request profile of either file (the expected split must not depend on the API);
 * - backend-selects-nothing: a backend Service whose pods are none of the chart's workloads (Envoy answers 503).
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ManifestError, UnknownStageError } from './errors.js';
import {
  gatewayApiContext,
  type HttpRouteStage,
  httpRouteProfiles,
  httpRouteStageNames,
  httpRouteStageRouteTable,
  loadHttpRouteStageFile,
  splitFromTable,
} from './gateway-api-stages.js';
import type { Finding } from './lint.js';
import { paths } from './repo.js';
import {
  expectedSplit,
  loadStageFile,
  profiles,
  repoContext,
  STABLE_LABEL,
  STAGE_HEADER,
  STAGE_LABEL,
  STRATEGIES,
  stableStages,
  stageNames,
} from './stages.js';
import { workloadsFromRendered } from './workloads.js';

export type GatewayApiLintRule =
  | 'manifest'
  | 'stage-label'
  | 'stage-header'
  | 'rollback-target'
  | 'route-name'
  | 'stage-pair'
  | 'backend-selects-nothing';

export interface GatewayApiLintOptions {
  /** `helm template` output: the Services and workloads are taken from it. */
  renderedChart?: string;
  /** Chart values when no rendered chart is given (default charts/webapp/values.yaml). */
  valuesFile?: string;
  /** Only this stage (its files, the Gateway, the chart); UnknownStageError for a name without an HTTPRoute file. */
  stage?: string;
}

function live(v: Record<string, number>): string {
  return JSON.stringify(
    Object.entries(v)
      .filter(([, p]) => p > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

/** Lints the HTTPRoute stages against their VirtualServices, the Gateway and the chart. */
export function lintGatewayApi(root: string, options: GatewayApiLintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const rel = (f: string) => relative(root, f) || f;
  const add = (file: string, field: string, rule: GatewayApiLintRule, message: string) =>
    findings.push({ file: rel(file), field, message, rule, severity: 'error' });
  const names = httpRouteStageNames(root);
  if (options.stage !== undefined && !names.includes(options.stage))
    throw new UnknownStageError(options.stage, names);
  const wanted = (n: string) => options.stage === undefined || options.stage === n;
  const dir = paths.gatewayApiStagesDir(root);

  let ctx: ReturnType<typeof gatewayApiContext> | undefined;
  try {
    ctx = gatewayApiContext(root, options);
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    add(error.file, error.field, 'manifest', error.problem);
  }
  const vsCtx = repoContext(root);
  // The chart gatewayApiContext parsed; parsed again only when that context failed to load.
  if (options.renderedChart !== undefined)
    vsCtx.workloads = ctx?.workloads ?? workloadsFromRendered(options.renderedChart);

  const stages: HttpRouteStage[] = [];
  for (const name of names) {
    const file = join(dir, `${name}.yaml`);
    try {
      stages.push(loadHttpRouteStageFile(root, file));
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      if (wanted(name)) add(error.file, error.field, 'manifest', error.problem);
    }
  }

  const routeNames = new Set(stages.map((s) => s.httpRoute.metadata.name));
  const vsNames = stageNames(root);
  for (const s of stages) {
    if (!wanted(s.name)) continue;
    if (s.stageLabel !== s.name)
      add(
        s.file,
        `metadata.labels.${STAGE_LABEL}`,
        'stage-label',
        `must be "${s.name}" (the file name), got ${JSON.stringify(s.stageLabel)}`,
      );
    for (const [i, rule] of s.httpRoute.spec.rules.entries()) {
      const set = rule.responseHeaderModifier?.set.find((h) => h.name.toLowerCase() === STAGE_HEADER);
      if (set?.value !== s.name) {
        add(
          s.file,
          `spec.rules[${i}].filters`,
          'stage-header',
          set === undefined
            ? `the rule does not set the response header ${STAGE_HEADER} (ResponseHeaderModifier set) to "${s.name}", so scripts/stage.sh and the verifiers can tell when the gateway serves this stage`
            : `${STAGE_HEADER} "${set.value}" differs from the stage "${s.name}"`,
        );
      }
    }
    if (routeNames.size > 1)
      add(
        s.file,
        'metadata.name',
        'route-name',
        `every HTTPRoute stage must name the same HTTPRoute (found ${[...routeNames].sort().join(', ')}): applying one must replace the previous`,
      );
    if (!vsNames.includes(s.name)) {
      add(
        s.file,
        '(file)',
        'stage-pair',
        `istio/stages/${s.name}.yaml is missing: every stage is written for both APIs`,
      );
      continue;
    }
    if (ctx === undefined) continue;
    let table: ReturnType<typeof httpRouteStageRouteTable>;
    try {
      table = httpRouteStageRouteTable(s, ctx);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      add(error.file, error.field, 'manifest', error.problem);
      continue;
    }
    for (const c of table.clusters) {
      if (c.endpoints.length === 0)
        add(
          s.file,
          'spec.rules[].backendRefs',
          'backend-selects-nothing',
          `backend ${c.host} selects none of the chart's workloads: Envoy answers 503`,
        );
    }
    let vs: ReturnType<typeof loadStageFile>;
    try {
      vs = loadStageFile(root, join(paths.stagesDir(root), `${s.name}.yaml`));
    } catch {
      continue; // lint() reports the VirtualService file
    }
    if (vs.strategy !== s.strategy)
      add(
        s.file,
        'metadata.labels.rollouts/strategy',
        'stage-pair',
        `strategy ${s.strategy} differs from the VirtualService's ${vs.strategy}`,
      );
    const all = [...profiles(vs), ...httpRouteProfiles(s)];
    for (const profile of all.filter((p, i) => all.findIndex((q) => q.name === p.name) === i)) {
      const a = live(splitFromTable(table, profile).versions);
      const b = live(expectedSplit(vs, profile, vsCtx.dr, vsCtx.workloads).versions);
      if (a !== b)
        add(
          s.file,
          'spec.rules',
          'stage-pair',
          `requests "${profile.name}": this HTTPRoute sends ${a}, the VirtualService ${b}; the expected split must not depend on the API`,
        );
    }
  }
  if (options.stage === undefined) {
    for (const n of vsNames)
      if (!names.includes(n))
        add(
          join(dir, `${n}.yaml`),
          '(file)',
          'stage-pair',
          `missing: istio/stages/${n}.yaml has no HTTPRoute twin`,
        );
    const vsStable = stableStages(root);
    for (const strategy of STRATEGIES) {
      const labelled = stages
        .filter((s) => s.strategy === strategy && s.stableLabel === 'true')
        .map((s) => s.name);
      const expected = vsStable.filter((v) => v.strategy === strategy).map((v) => v.name);
      if (labelled.length !== 1)
        add(
          dir,
          `metadata.labels.${STABLE_LABEL}`,
          'rollback-target',
          `${labelled.length} ${strategy} HTTPRoute stages are labelled ${STABLE_LABEL}: "true"${labelled.length > 0 ? ` (${labelled.join(', ')})` : ''}; exactly one must be`,
        );
      else if (expected.length === 1 && labelled[0] !== expected[0])
        add(
          dir,
          `metadata.labels.${STABLE_LABEL}`,
          'rollback-target',
          `the ${strategy} rollback target is ${labelled[0]} here but ${expected[0]} for the VirtualService stages`,
        );
    }
  }
  if (!existsSync(paths.kubeGateway(root)))
    add(paths.kubeGateway(root), '(file)', 'manifest', 'missing: the HTTPRoute stages have no Gateway');
  return findings;
}
