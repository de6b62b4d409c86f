/**
 * What to expect from a stage, derived from its manifest through @rollouts/stages (never re-typed), and the
 * verification plan for the repository's stage matrix.
 */
import { planCheck, planVerification, splitSupport, type VerificationPlan } from '@rollouts/split-check';
import {
  compileRouteTable,
  expectedSplit,
  httpRouteProfiles,
  httpRouteStageRouteTable,
  loadDestinationRule,
  loadHttpRouteStage,
  loadStage,
  loadWorkloads,
  type Profile,
  profileRequest,
  profiles,
  routeRequest,
  type Split,
  type Stage,
  type StageApi,
  splitFromTable,
  stageTable,
} from '@rollouts/stages';
import { headerOps } from './routing.js';
import type { ProfileExpectation, StageExpectation } from './verifier.js';

/**
 * A stage's profiles with their expected split (versions), ready for the verifier: from its VirtualService, or with
 * `api` gateway-api from its HTTPRoute (istio/stages/gateway-api/<stage>.yaml) through the route table Istio builds.
 */
export function stageExpectation(
  root: string,
  stageOrName: Stage | string,
  api: StageApi = 'virtualservice',
): StageExpectation {
  if (api === 'gateway-api') {
    const name = typeof stageOrName === 'string' ? stageOrName : stageOrName.name;
    return httpRouteExpectation(root, name);
  }
  const stage = typeof stageOrName === 'string' ? loadStage(root, stageOrName) : stageOrName;
  const dr = loadDestinationRule(root);
  const workloads = loadWorkloads(root);
  return {
    stage: stage.name,
    profiles: profiles(stage).map((p) =>
      profileExpectation(stage, p, expectedSplit(stage, p, dr, workloads)),
    ),
  };
}

function profileExpectation(stage: Stage, profile: Profile, split: Split): ProfileExpectation {
  const out: ProfileExpectation = { name: profile.name, headers: profile.headers, versions: split.versions };
  if (profile.method !== undefined) out.method = profile.method;
  if (profile.path !== undefined) out.path = profile.path;
  if (split.routeIndex === null) out.noRoute = true;
  else {
    // What the route promises on every answer (x-rollouts-stage: <stage>): `set` values are exact; `add` ones
    // are appended to whatever the app sends, so they are not checked; an empty value sets nothing (Envoy skips
    // it), so it promises nothing either.
    const set = Object.entries(
      stage.virtualService.spec.http[split.routeIndex]?.headers?.response.set ?? {},
    ).filter(([, v]) => v !== '');
    if (set.length > 0) out.responseHeaders = Object.fromEntries(set);
  }
  return out;
}

function httpRouteExpectation(root: string, name: string): StageExpectation {
  const stage = loadHttpRouteStage(root, name);
  const compiled = compileRouteTable(httpRouteStageRouteTable(stage));
  return {
    stage: name,
    profiles: httpRouteProfiles(stage).map((p) => {
      const split = splitFromTable(compiled, p);
      const out: ProfileExpectation = { name: p.name, headers: p.headers, versions: split.versions };
      if (p.method !== undefined) out.method = p.method;
      if (p.path !== undefined) out.path = p.path;
      const decision = routeRequest(compiled, profileRequest(p));
      if (decision.kind !== 'route') out.noRoute = true;
      else {
        // What the rule's ResponseHeaderModifier promises on every answer (its `set` values; see above).
        const set = headerOps(decision.route.responseHeadersToAdd)?.set ?? [];
        if (set.length > 0) out.responseHeaders = Object.fromEntries(set);
      }
      return out;
    }),
  };
}

/** A check whose outcome is random: a profile whose split reaches two or more versions. */
function isRandom(split: Split): boolean {
  return Object.values(split.versions).filter((p) => p > 0 && p < 1).length >= 2;
}

/**
 * The random checks of the stage matrix ("canary-25", or "stage / profile" for an override profile), which
 * share the family alpha.
 */
export function randomChecks(root: string): string[] {
  const out: string[] = [];
  for (const row of stageTable(root)) {
    if (isRandom(row.default)) out.push(row.stage);
    for (const o of row.overrides) if (isRandom(o.split)) out.push(`${row.stage} / ${o.profile.name}`);
  }
  return out;
}

/** What a caller may request of the plan; unset fields keep the defaults (0.001, 0.05, 0.999). */
export interface PlanRequest {
  familyAlpha?: number;
  delta?: number;
  power?: number;
}

/**
 * The plan a verification of this repository uses: by default family alpha 0.001 over the stage matrix's random
 * checks, power 0.999 against a share 5 points off; `request` changes any of the three.
 */
export function verificationPlan(root: string, request: PlanRequest = {}): VerificationPlan {
  return planVerification({ randomStages: randomChecks(root), ...request });
}

/** How each profile of a stage is checked: what `rollout expect --json` prints and k6 reads. */
export interface ProfileCheck {
  kind: 'deterministic' | 'binomial' | 'chi-square' | 'no-route';
  /** Two versions: the version whose share is tested (the newer one) and its expected share. */
  version: string | null;
  p0: number | null;
  /** Requests of a fixed-n check (k6), and the exact acceptance band of the tested version's count. */
  n: number;
  band: { lo: number; hi: number } | null;
  alpha: number;
  /** The local verifier's sequential test (two versions): its truncation point. */
  sprtMaxN: number | null;
  /** The response status every request must get (404 when no route matches), else any 2xx. */
  status: number | null;
}

export function profileCheck(plan: VerificationPlan, expectation: ProfileExpectation): ProfileCheck {
  const { support, tested } = splitSupport(expectation.versions);
  const base = { alpha: plan.alphaPerStage, sprtMaxN: null, status: null };
  if (expectation.noRoute || support.length === 0) {
    return {
      ...base,
      kind: 'no-route',
      version: null,
      p0: null,
      n: plan.deterministicN,
      band: null,
      status: 404,
    };
  }
  if (support.length === 1) {
    const version = (support[0] as { version: string }).version;
    const n = plan.deterministicN;
    return { ...base, kind: 'deterministic', version, p0: 1, n, band: { lo: n, hi: n } };
  }
  if (tested) {
    const check = planCheck(plan, tested.p0);
    return {
      ...base,
      kind: 'binomial',
      version: tested.version,
      p0: tested.p0,
      n: check.fixedN,
      band: check.band,
      sprtMaxN: check.sprt.maxN,
    };
  }
  const n = Math.max(...support.map(({ p }) => planCheck(plan, p).fixedN));
  return { ...base, kind: 'chi-square', version: null, p0: null, n, band: null };
}
