/**
 * Stages: one VirtualService file per stage in istio/stages/. Everything about a stage (its strategy, its
 * expected split, the request profiles worth checking) is derived from that file, never re-typed.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { compareVersions, formatWeightShare } from '@rollouts/split-check';
import { parse as parseYaml } from 'yaml';
import { ManifestError, UnknownStageError } from './errors.js';
import {
  type DestinationRule,
  type Gateway,
  type HttpMatchRequest,
  parseDestinationRule,
  parseGateway,
  parseVirtualService,
  readSingleDocument,
  type VirtualService,
} from './manifest.js';
import { paths } from './repo.js';
import { type CompiledRoutes, compileRoutes, destinationWeights, matchRoute } from './routing.js';
import {
  type AppService,
  type CompiledRouteTable,
  compileRouteTable,
  DEFAULT_GATEWAY,
  type GatewayRequest,
  type GatewayRouteTable,
  gatewayRouteTable,
  type RouteDecision,
  routeRequest,
} from './table.js';
import { subsetKey } from './translate.js';
import { appServiceFromValues, loadWorkloads, versionsOfSubset, type Workload } from './workloads.js';

export const STAGE_LABEL = 'rollouts/stage';
/**
 * Response header every route of a stage sets to the stage's name (`headers.response.set`), so scripts and
 * verifiers can see which stage the gateway serves (a stage switch reaches Envoy a moment after the apply).
 */
export const STAGE_HEADER = 'x-rollouts-stage';
export const STRATEGY_LABEL = 'rollouts/strategy';
/**
 * Label of the stage a rollback returns to, one per strategy (`rollouts/stable: "true"` on stable.yaml and
 * green.yaml): written down once, so adding or changing another stage never moves the rollback target.
 */
export const STABLE_LABEL = 'rollouts/stable';
export const STRATEGIES = ['canary', 'blue-green'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** A stage, loaded from istio/stages/<name>.yaml. */
export interface Stage {
  /** The file stem: what `make <stage>` and the CLI take. */
  name: string;
  strategy: Strategy;
  /** Absolute path of the manifest. */
  file: string;
  /** The repository root it was loaded from. */
  root: string;
  /** The value of the rollouts/stage label (lint checks it equals `name`). */
  stageLabel: string | null;
  virtualService: VirtualService;
}

/** What {@link listStages} returns: enough to order and print the stages. */
export interface StageSummary {
  name: string;
  strategy: Strategy;
  file: string;
  /** Share of requests without override header that reach the new version (v2 / blue). */
  newVersionShare: number;
  /** The version (or subset, when the chart's values are not available) counted as new. */
  newVersion: string;
  /** Where requests without override header go (expectedSplit with the default profile). */
  split: Split;
}

/** A request profile: the headers (and optionally method and path) of the requests a check sends. */
export interface Profile {
  /** "default" (no header), or the override, e.g. "x-canary: always". */
  name: string;
  headers: Record<string, string>;
  /** Defaults to GET. */
  method?: string;
  /** Defaults to "/". */
  path?: string;
  /** The Host the request is sent with; defaults to "localhost" (http://localhost:8080). */
  host?: string;
}

/** Where requests of one profile go. */
export interface Split {
  /** Index of the http route that takes the requests, or null: no route matches and Istio answers 404. */
  routeIndex: number | null;
  routeName: string | null;
  /** Probability per destination subset ("(service)" for a destination without subset). */
  subsets: Record<string, number>;
  /**
   * Probability per version (x-app-version), when the DestinationRule and the workloads are known. A subset that
   * selects several versions shares its probability equally among them (equal replica counts).
   */
  versions: Record<string, number>;
  /** Probability sent to subsets that select no workload (Istio answers 503), by subset. */
  unresolved: Record<string, number>;
  /**
   * The versions each destination subset of the route selects (known with the DestinationRule and the
   * workloads, else empty): blue-green subsets are colours, e.g. {green: ['v1'], blue: ['v2']}.
   */
  subsetVersions: Record<string, string[]>;
  /** routeIndex null: why the gateway has no route for the request (no virtual host, no matching route). */
  noRouteReason?: string;
}

export const DEFAULT_PROFILE: Profile = { name: 'default', headers: {} };
export const WHOLE_SERVICE = '(service)';

/** The request a profile stands for, as the gateway gets it: GET, path / and Host localhost unless it says otherwise. */
export function profileRequest(profile: Profile): GatewayRequest {
  return {
    method: profile.method ?? 'GET',
    target: profile.path ?? '/',
    authority: profile.host ?? 'localhost',
    headers: profile.headers,
  };
}

/**
 * Adds the profile of an override match to `out`, unless one of the same name is there: named after its headers
 * ("x-canary: always"), and its method and path when the match has them ("x-canary: always (POST /api)").
 */
export function addProfile(
  out: Profile[],
  headers: Record<string, string>,
  method: string | undefined,
  path: string | undefined,
): void {
  const profile: Profile = {
    name: Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', '),
    headers,
  };
  if (method !== undefined) profile.method = method;
  if (path !== undefined) profile.path = path;
  if (method !== undefined || path !== undefined) {
    const request = profileRequest(profile);
    profile.name += ` (${request.method} ${request.target})`;
  }
  if (!out.some((p) => p.name === profile.name)) out.push(profile);
}

/** The split of a request the gateway has no route for (it answers 404 itself), and why. */
export function noRouteSplit(reason: string): Split {
  return {
    routeIndex: null,
    routeName: null,
    subsets: {},
    versions: {},
    unresolved: {},
    subsetVersions: {},
    noRouteReason: reason,
  };
}

/**
 * Why a route table gives `request` no route (its decision was not a route): the stage gives the gateway no
 * route at all, no virtual host serves the Host, no route matches, or the gateway refuses the request.
 */
export function noRouteReason(
  compiled: CompiledRouteTable,
  decision: Exclude<RouteDecision, { kind: 'route' }>,
  request: GatewayRequest,
): string {
  if (decision.kind !== 'no-route') return decision.reason;
  const unbound = compiled.table.unbound;
  if (unbound !== null) return `the gateway has no route from this stage: ${unbound}`;
  return decision.virtualHost === null
    ? `no virtual host of the gateway serves Host ${request.authority}`
    : 'no route matches';
}

/** The .yaml files directly in `dir` (not its subfolders), sorted by name. */
export function yamlFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

function stageFiles(root: string): string[] {
  const dir = paths.stagesDir(root);
  if (!existsSync(dir)) throw new ManifestError(dir, '(directory)', 'not found: no stages');
  return yamlFilesIn(dir);
}

/** The rollouts/strategy label of a stage file's route object; ManifestError when it is not a strategy. */
export function strategyLabel(labels: Readonly<Record<string, string>>, file: string): Strategy {
  const strategy = labels[STRATEGY_LABEL];
  if (strategy === undefined || !(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ManifestError(
      file,
      `metadata.labels.${STRATEGY_LABEL}`,
      `must be one of ${STRATEGIES.join(', ')}, got ${strategy === undefined ? 'nothing' : JSON.stringify(strategy)}`,
    );
  }
  return strategy as Strategy;
}

/** The names of every stage file (file stems), sorted by name. */
export function stageNames(root: string): string[] {
  return stageFiles(root).map((f) => basename(f, '.yaml'));
}

/** Loads one stage file (no name check: use {@link loadStage} for a stage by name). */
export function loadStageFile(root: string, file: string): Stage {
  const vs = parseVirtualService(readSingleDocument(file), file);
  return {
    name: basename(file, '.yaml'),
    strategy: strategyLabel(vs.metadata.labels, file),
    file,
    root,
    stageLabel: vs.metadata.labels[STAGE_LABEL] ?? null,
    virtualService: vs,
  };
}

/**
 * Loads istio/stages/<name>.yaml. Throws UnknownStageError (listing the valid stages) for a name without a
 * file, ManifestError (file + field) for a file that is not a usable stage.
 */
export function loadStage(root: string, name: string): Stage {
  const names = stageNames(root);
  if (!names.includes(name)) throw new UnknownStageError(name, orderedNames(root, names));
  return loadStageFile(root, join(paths.stagesDir(root), `${name}.yaml`));
}

/** Stage names in listStages order (canary, then blue-green), else `fallback` when a file cannot be loaded. */
export function orderedNames(root: string, fallback: string[]): string[] {
  try {
    return listStages(root).map((s) => s.name);
  } catch {
    return fallback;
  }
}

/** Loads istio/base/gateway.yaml; Istio's Gateway of this repository (DEFAULT_GATEWAY) when there is none. */
export function loadGateway(root: string, file: string = paths.gateway(root)): Gateway {
  if (!existsSync(file)) return DEFAULT_GATEWAY;
  return parseGateway(readSingleDocument(file), file);
}

/** Loads istio/base/destination-rule.yaml (or `file`). */
export function loadDestinationRule(
  root: string,
  file: string = paths.destinationRule(root),
): DestinationRule {
  return parseDestinationRule(readSingleDocument(file), file);
}

/** What a stage's route table is built from, besides the stage. */
export interface RepoContext {
  dr: DestinationRule | undefined;
  workloads: Workload[] | undefined;
  gateway: Gateway;
  service: AppService;
}

/** The DestinationRule, workloads, Gateway and Service of a repository, when they can be read (read afresh). */
export function repoContext(root: string): RepoContext {
  const ctx: RepoContext = {
    dr: undefined,
    workloads: undefined,
    gateway: DEFAULT_GATEWAY,
    service: appServiceFromValues(paths.values(root)),
  };
  try {
    ctx.dr = loadDestinationRule(root);
  } catch {
    // Without a DestinationRule only subsets are known.
  }
  try {
    ctx.workloads = loadWorkloads(root);
  } catch {
    // Without the chart's values only subsets are known.
  }
  try {
    ctx.gateway = loadGateway(root);
  } catch {
    // lint reports a broken Gateway; the default one stands in.
  }
  return ctx;
}

/**
 * The ingress gateway's route table for a stage (see gatewayRouteTable): the Envoy configuration Istio builds
 * from the stage file, istio/base and the chart, which the local gateway routes by.
 */
export function stageRouteTable(stage: Stage, ctx: RepoContext = repoContext(stage.root)): GatewayRouteTable {
  return gatewayRouteTable(stage.virtualService, ctx.dr ? [ctx.dr] : [], ctx.workloads ?? [], {
    gateway: ctx.gateway,
    service: ctx.service,
  });
}

const compiledCache = new WeakMap<VirtualService, CompiledRoutes>();
const tableCache = new WeakMap<VirtualService, CompiledRouteTable>();

function tableFor(stage: Stage): CompiledRouteTable {
  let c = tableCache.get(stage.virtualService);
  if (!c) {
    c = compileRouteTable(stageRouteTable(stage));
    tableCache.set(stage.virtualService, c);
  }
  return c;
}

function compiledFor(vs: VirtualService): CompiledRoutes {
  let c = compiledCache.get(vs);
  if (!c) {
    c = compileRoutes(vs);
    compiledCache.set(vs, c);
  }
  return c;
}

function isStage(x: Stage | VirtualService): x is Stage {
  return 'virtualService' in x;
}

/**
 * Where requests of `profile` go under a stage (or a bare VirtualService): the first matching route, and its
 * destinations' probabilities with Istio's semantics (weights are proportional; a single destination takes
 * every request whatever its weight; with several, a missing weight is 0). Versions are resolved through the
 * DestinationRule's subset labels and the workloads' pod labels; for a Stage they default to the repository's.
 *
 * For a Stage the request goes through the ingress gateway's route table (stageRouteTable): its Host
 * (`profile.host`, default localhost) must select a virtual host, so a stage the gateway does not serve has no
 * route. A bare VirtualService is matched on its routes alone, whatever its hosts and gateways.
 */
export function expectedSplit(
  stageOrVs: Stage | VirtualService,
  profile: Profile = DEFAULT_PROFILE,
  dr?: DestinationRule,
  workloads?: readonly Workload[],
): Split {
  const vs = isStage(stageOrVs) ? stageOrVs.virtualService : stageOrVs;
  const file = isStage(stageOrVs) ? stageOrVs.file : `VirtualService ${vs.metadata.name}`;
  if (isStage(stageOrVs) && (dr === undefined || workloads === undefined)) {
    const ctx = repoContext(stageOrVs.root);
    dr ??= ctx.dr;
    workloads ??= ctx.workloads;
  }
  const request = profileRequest(profile);
  let index: number;
  if (isStage(stageOrVs)) {
    const compiled = tableFor(stageOrVs);
    const decision = routeRequest(compiled, request);
    if (decision.kind !== 'route') return noRouteSplit(noRouteReason(compiled, decision, request));
    index = decision.source.http;
  } else {
    const { method, target: path, headers } = request;
    const matched = matchRoute(compiledFor(vs), { method, path, headers });
    if (matched === null) return noRouteSplit('no route matches');
    index = matched.index;
  }
  const route = vs.spec.http[index] as VirtualService['spec']['http'][number];
  const matched = { index, name: route.name ?? null, route };
  const clusters = isStage(stageOrVs) ? tableFor(stageOrVs).table.clusters : [];

  const dests = matched.route.route;
  const weights = destinationWeights(matched.route);
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) {
    throw new ManifestError(file, `spec.http[${matched.index}].route`, 'total destination weight is 0');
  }
  const subsets: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const unresolved: Record<string, number> = {};
  const subsetVersions: Record<string, string[]> = {};
  for (const [i, d] of dests.entries()) {
    const p = (weights[i] as number) / total;
    const key = d.destination.subset ?? WHOLE_SERVICE;
    subsets[key] = (subsets[key] ?? 0) + p;
    if (dr === undefined || workloads === undefined) continue;
    // A cluster Istio does not create (a port the Service lacks) has no endpoint, as a subset the rule lacks.
    const port = d.destination.port?.number;
    const missing =
      port !== undefined &&
      clusters.some((c) => c.name === subsetKey(c.host, port, d.destination.subset) && !c.exists);
    const selected = missing ? [] : versionsOfSubset(dr, workloads, d.destination.subset ?? null);
    subsetVersions[key] = selected;
    if (selected.length === 0) {
      unresolved[key] = (unresolved[key] ?? 0) + p;
      continue;
    }
    for (const v of selected) versions[v] = (versions[v] ?? 0) + p / selected.length;
  }
  return {
    routeIndex: matched.index,
    routeName: matched.name,
    subsets,
    versions,
    unresolved,
    subsetVersions,
  };
}

function concreteHeaders(m: HttpMatchRequest): Record<string, string> | null {
  const headers: Record<string, string> = {};
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    if (sm.exact !== undefined) headers[name] = sm.exact;
    else if (sm.prefix !== undefined) headers[name] = sm.prefix;
    else return null; // a regex or presence match has no single obvious value
  }
  return Object.keys(headers).length > 0 ? headers : null;
}

/**
 * The request profiles worth checking for a stage: the default one (no header) and one per header override
 * found in the routes' matches (exact values, or the prefix itself, become concrete headers; uri exact/prefix
 * and method exact conditions of the same match become the profile's path and method).
 */
export function profiles(stage: Stage | VirtualService): Profile[] {
  const vs = isStage(stage) ? stage.virtualService : stage;
  const out: Profile[] = [DEFAULT_PROFILE];
  for (const route of vs.spec.http) {
    for (const m of route.match ?? []) {
      const headers = concreteHeaders(m);
      if (headers === null) continue;
      const path = m.uri?.exact ?? m.uri?.prefix;
      addProfile(out, headers, m.method?.exact, path);
    }
  }
  return out;
}

/** Natural order (v2 before v10, canary-25 before canary-100): split-check's, the one comparator of the repo. */
const naturalCompare = compareVersions;

/** The new version of a stage: the highest version it routes to (or last subset used, without workloads). */
function newVersionShare(
  stage: Stage,
  split: Split,
  ctx: RepoContext,
): { newVersion: string; share: number } {
  if (ctx.workloads && ctx.workloads.length > 0 && Object.keys(split.versions).length > 0) {
    const newest = ctx.workloads
      .map((w) => w.version)
      .sort(naturalCompare)
      .at(-1) as string;
    return { newVersion: newest, share: split.versions[newest] ?? 0 };
  }
  const used = new Set(
    stage.virtualService.spec.http.flatMap((r) => r.route.map((d) => d.destination.subset)),
  );
  const order =
    ctx.dr?.spec.subsets.map((s) => s.name).filter((n) => used.has(n)) ?? [...used].filter((x) => x);
  const last = (order.at(-1) as string | undefined) ?? WHOLE_SERVICE;
  return { newVersion: last, share: split.subsets[last] ?? 0 };
}

/** A stage file that cannot be used (Istio would refuse it, or the local gateway does not emulate it). */
export interface BrokenStage {
  name: string;
  file: string;
  error: Error;
}

/**
 * Every stage file: the ones that load, ordered as {@link listStages} orders them, and the ones that do not, with
 * their error. One broken file never hides the others.
 */
export function scanStages(root: string): { stages: StageSummary[]; broken: BrokenStage[] } {
  const ctx = repoContext(root);
  const broken: BrokenStage[] = [];
  const rows: StageSummary[] = [];
  for (const file of stageFiles(root)) {
    try {
      const stage = loadStageFile(root, file);
      const split = expectedSplit(stage, DEFAULT_PROFILE, ctx.dr, ctx.workloads);
      const { newVersion, share } = newVersionShare(stage, split, ctx);
      rows.push({
        name: stage.name,
        strategy: stage.strategy,
        file,
        newVersionShare: share,
        newVersion,
        split,
      });
    } catch (error) {
      broken.push({ name: basename(file, '.yaml'), file, error: error as Error });
    }
  }
  const rank = (s: Strategy) => STRATEGIES.indexOf(s);
  rows.sort(
    (a, b) =>
      rank(a.strategy) - rank(b.strategy) ||
      a.newVersionShare - b.newVersionShare ||
      naturalCompare(a.name, b.name),
  );
  return { stages: rows, broken };
}

/**
 * Every stage in istio/stages/*.yaml that loads, ordered for a walk-through: canary stages first, then
 * blue-green, each by ascending share of default traffic to the new version (ties by name). A file that does not
 * load is left out (scanStages names it; `rollout lint` reports it).
 */
export function listStages(root: string): StageSummary[] {
  return scanStages(root).stages;
}

/** The labels of a stage file, read without validating the rest of it (null when it is not YAML). */
function labelsOf(file: string): Record<string, string> | null {
  try {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { metadata?: { labels?: unknown } } | null;
    const labels = doc?.metadata?.labels;
    if (typeof labels !== 'object' || labels === null) return {};
    return Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
  } catch {
    return null;
  }
}

/** The strategy label of a stage file, read without validating the rest of it. */
export function stageStrategy(root: string, name: string): Strategy {
  const names = stageNames(root);
  if (!names.includes(name)) throw new UnknownStageError(name, orderedNames(root, names));
  const file = join(paths.stagesDir(root), `${name}.yaml`);
  return strategyLabel(labelsOf(file) ?? {}, file);
}

/** The stage files carrying `rollouts/stable: "true"`, with their strategy label (files read loosely). */
export function stableStages(root: string): { name: string; file: string; strategy: string | undefined }[] {
  return stageFiles(root).flatMap((file) => {
    const labels = labelsOf(file);
    if (labels?.[STABLE_LABEL] !== 'true') return [];
    return [{ name: basename(file, '.yaml'), file, strategy: labels[STRATEGY_LABEL] }];
  });
}

/**
 * The stage a rollback from a stage of `strategy` returns to: the one stage file of that strategy labelled
 * `rollouts/stable: "true"`. Other files are read only for their labels, so a broken one does not matter.
 */
export function rollbackTarget(root: string, strategy: Strategy): string {
  const candidates = stableStages(root).filter((s) => s.strategy === strategy);
  if (candidates.length === 1) return (candidates[0] as { name: string }).name;
  throw new ManifestError(
    paths.stagesDir(root),
    `metadata.labels.${STABLE_LABEL}`,
    candidates.length === 0
      ? `no ${strategy} stage is labelled ${STABLE_LABEL}: "true": a rollback has nowhere to go`
      : `${candidates.length} ${strategy} stages are labelled ${STABLE_LABEL}: "true" (${candidates.map((c) => c.name).join(', ')}); exactly one must be`,
  );
}

/** One row of the stage table: a stage and its expected split per profile. */
export interface StageRow {
  stage: string;
  strategy: Strategy;
  /** Path relative to the repository root. */
  file: string;
  /** The stage's HTTPRoute (Gateway API) file relative to the root, or null when it has none. */
  httpRouteFile: string | null;
  /** Split of requests without override header. */
  default: Split;
  /** One entry per override header profile. */
  overrides: { profile: Profile; split: Split }[];
}

/** Rows for printing every stage (in walk-through order) with its expected split per profile. */
export function stageTable(root: string): StageRow[] {
  const ctx = repoContext(root);
  return listStages(root).map((summary) => {
    const stage = loadStageFile(root, summary.file);
    const [, ...overrides] = profiles(stage);
    return {
      stage: stage.name,
      strategy: stage.strategy,
      file: relative(root, stage.file),
      httpRouteFile: existsSync(join(paths.gatewayApiStagesDir(root), `${stage.name}.yaml`))
        ? relative(root, join(paths.gatewayApiStagesDir(root), `${stage.name}.yaml`))
        : null,
      default: expectedSplit(stage, DEFAULT_PROFILE, ctx.dr, ctx.workloads),
      overrides: overrides.map((profile) => ({
        profile,
        split: expectedSplit(stage, profile, ctx.dr, ctx.workloads),
      })),
    };
  });
}

/**
 * "v1 90 %, v2 10 %": versions when known, else subsets; "404 (no route)" when nothing matches. When each subset
 * selects one version and they are not all named after it (blue-green's colours), the subsets are shown with
 * their versions, in version order: "green (v1) 90 %, blue (v2) 10 %".
 */
export function formatSplit(split: Split): string {
  if (split.routeIndex === null) return '404 (no route)';
  const useVersions = Object.keys(split.versions).length > 0;
  const selected = Object.entries(split.subsetVersions).filter(([, vs]) => vs.length > 0);
  // Each subset selects one version and some are not named after it (colours): name both.
  const named =
    selected.every(([, vs]) => vs.length === 1) && selected.some(([subset, vs]) => vs[0] !== subset);
  let parts: string[];
  if (useVersions && named) {
    parts = selected
      .sort(([a, va], [b, vb]) => naturalCompare(va[0] as string, vb[0] as string) || naturalCompare(a, b))
      .map(([subset, vs]) => `${subset} (${vs[0]}) ${formatWeightShare(split.subsets[subset] ?? 0)}`);
  } else {
    const entries = Object.entries(useVersions ? split.versions : split.subsets).sort(([a], [b]) =>
      naturalCompare(a, b),
    );
    parts = entries.map(([k, p]) => `${k} ${formatWeightShare(p)}`);
  }
  for (const [k, p] of Object.entries(split.unresolved))
    parts.push(`${k} (no workload, 503) ${formatWeightShare(p)}`);
  return parts.join(', ');
}
