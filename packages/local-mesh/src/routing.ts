/**
 * Builds the gateway's routing table from the repository's files through @rollouts/stages: the stage's route
 * table as Istio's ingress gateway gets it (stageRouteTable: the VirtualService translated into Envoy routes, the
 * Gateway's hosts, the DestinationRule's subsets as clusters, the chart's workloads as their endpoints), and the
 * running workloads each endpoint is served by. What the gateway compares with Istio is what it runs.
 *
 * A stage is applied only after the checks the cluster path runs before `kubectl apply`
 * (`rollout lint --stage <stage>`, scripts/stage.sh): a file Istio's validation would refuse, a field the gateway
 * does not emulate, or any lint error (a stage the gateway would not reach, an unknown subset, ...) refuses the
 * stage (BadStageError, status 422, the findings named) and the gateway keeps serving the previous one.
 */
import {
  compileRouteTable,
  durationMs,
  type Finding,
  findRepoRoot,
  type GatewayRouteTable,
  type HeaderValueOption,
  httpRouteStageRouteTable,
  lint,
  lintErrors,
  lintGatewayApi,
  loadHttpRouteStage,
  loadStage,
  loadWorkloads,
  ManifestError,
  type ResponseHeaders,
  type Route,
  repoContext,
  type StageApi,
  stageRouteTable,
  UnknownStageError,
  type Workload,
} from '@rollouts/stages';
import { BadStageError, type TableSource } from './admin.js';
import {
  type ClusterTarget,
  decideWith,
  type ResolvedRoute,
  type RoutingTable,
  retryPlan,
  type Upstream,
  type WeightedDestination,
} from './gateway.js';

/** The repository root (the directory with pnpm-workspace.yaml) at or above `from`. */
export function repoRoot(from: string = process.cwd()): string {
  return findRepoRoot(from);
}

/** The versions the chart runs (keys of `versions` in charts/webapp/values.yaml that are enabled). */
export function workloadVersions(root: string): string[] {
  return loadWorkloads(root).map((w) => w.version);
}

/** Service name the metrics report (the chart's app label). */
function upstreamFor(workload: Pick<Workload, 'labels' | 'version'>, origin: string): Upstream {
  const app = workload.labels.app ?? 'webapp';
  return { workload: `${app}-${workload.version}`, app, version: workload.version, service: app, origin };
}

export interface TableSourceOptions {
  /** Run the stage's lint before applying it (default true; tests of the gateway itself may turn it off). */
  lint?: boolean;
  /**
   * Which file carries a stage: `virtualservice` (istio/stages/<stage>.yaml, the default) or `gateway-api`
   * (istio/stages/gateway-api/<stage>.yaml, an HTTPRoute on the chart's per-version Services).
   */
  api?: StageApi;
}

/**
 * Routing tables for the stages of `root`, sending each version's traffic to `origins[version]`
 * (e.g. {v1: 'http://127.0.0.1:3001', v2: 'http://127.0.0.1:3002'}). The files are read afresh on every build,
 * so an edited manifest takes effect on the next switch.
 */
export function createTableSource(
  root: string,
  origins: Readonly<Record<string, string>>,
  options: TableSourceOptions = {},
): TableSource {
  return {
    build(name, overrideWeights) {
      let table: GatewayRouteTable;
      try {
        table =
          options.api === 'gateway-api'
            ? httpRouteStageTable(root, name, options.lint !== false)
            : virtualServiceTable(root, name, options.lint !== false);
      } catch (err) {
        if (err instanceof UnknownStageError) throw new BadStageError(err.message, err.validStages);
        if (err instanceof ManifestError) throw refused(name, [err.message]);
        throw err;
      }
      return buildTable(name, table, origins, overrideWeights ?? null);
    },
  };
}

/** Refuses the stage (422, each finding named) when its lint found errors; warnings do not refuse it. */
function refuseOnErrors(name: string, findings: Finding[]): void {
  const errors = lintErrors(findings);
  if (errors.length > 0) {
    throw refused(
      name,
      errors.map((f) => `${f.file}: ${f.field}: ${f.message} [${f.rule}]`),
    );
  }
}

/** An HTTPRoute stage's route table, after its lint (lintGatewayApi: the same checks, the pair with its VS). */
function httpRouteStageTable(root: string, name: string, runLint: boolean): GatewayRouteTable {
  const stage = loadHttpRouteStage(root, name);
  if (runLint) refuseOnErrors(name, lintGatewayApi(root, { stage: name }));
  return httpRouteStageRouteTable(stage);
}

/** A VirtualService stage's route table, after the checks `make <stage>` runs before `kubectl apply`. */
function virtualServiceTable(root: string, name: string, runLint: boolean): GatewayRouteTable {
  const stage = loadStage(root, name);
  if (runLint) refuseOnErrors(name, lint(root, { stage: name }));
  return stageRouteTable(stage, repoContext(root));
}

function refused(stage: string, findings: string[]): BadStageError {
  return new BadStageError(
    `stage ${stage} refused before any traffic moved (the gateway keeps serving the previous stage):\n  ${findings.join('\n  ')}`,
    [],
    422,
    findings,
  );
}

/**
 * Header operations of an Envoy route (`*HeadersToAdd` / `*HeadersToRemove`), ready to apply: names lower case,
 * `%%` read as `%`, an empty value left out (Envoy skips it); OVERWRITE_IF_EXISTS_OR_ADD is a `set`, else `add`.
 */
export function headerOps(
  toAdd: readonly HeaderValueOption[] = [],
  toRemove: readonly string[] = [],
): ResponseHeaders | null {
  const set: (readonly [string, string])[] = [];
  const add: (readonly [string, string])[] = [];
  for (const o of toAdd) {
    const value = (o.header.value ?? '').replaceAll('%%', '%');
    if (value === '') continue;
    (o.appendAction === 'OVERWRITE_IF_EXISTS_OR_ADD' ? set : add).push([o.header.key.toLowerCase(), value]);
  }
  const remove = toRemove.map((n) => n.toLowerCase());
  return set.length + add.length + remove.length === 0 ? null : { remove, set, add };
}

/** The name `overrideWeights` uses for a cluster: its subset (VirtualService), else its endpoints' one version. */
function overrideKey(cluster: ClusterTarget, versions: readonly string[]): string | null {
  if (cluster.subset !== null) return cluster.subset;
  return versions.length === 1 ? (versions[0] as string) : null;
}

/** The routing table of a stage from its route table: each Envoy route with its clusters and their workloads. */
export function buildTable(
  stageName: string,
  table: GatewayRouteTable,
  origins: Readonly<Record<string, string>>,
  overrideWeights: Readonly<Record<string, number>> | null,
): RoutingTable {
  const targets = new Map<string, ClusterTarget>();
  const versionsOf = new Map<string, string[]>();
  for (const c of table.clusters) {
    const upstreams = c.endpoints.flatMap((e) => {
      const origin = origins[e.version];
      return origin ? [upstreamFor(e, origin)] : [];
    });
    targets.set(c.name, Object.freeze({ name: c.name, subset: c.subset, exists: c.exists, upstreams }));
    versionsOf.set(c.name, [...new Set(c.endpoints.map((e) => e.version))]);
  }
  const missing = (name: string): ClusterTarget => ({ name, subset: null, exists: false, upstreams: [] });
  const vh = table.routeConfiguration.virtualHosts[0];
  const sources = table.sources[0] ?? [];
  let overridden = false;
  const splits: string[] = [];

  const routes: ResolvedRoute[] = (vh?.routes ?? []).map((route: Route, i) => {
    const source = sources[i] as { http: number };
    const action = route.route;
    const weighted =
      action.cluster !== undefined
        ? [{ name: action.cluster, weight: 100 }]
        : (action.weightedClusters?.clusters ?? []);
    let destinations: WeightedDestination[] = weighted.map((w) => {
      const cluster = targets.get(w.name) ?? missing(w.name);
      return { weight: w.weight, subset: cluster.subset, cluster, upstreams: cluster.upstreams };
    });
    const keys = destinations.map((d) => overrideKey(d.cluster, versionsOf.get(d.cluster.name) ?? []));
    if (destinations.length > 1) splits.push(`{${keys.map((k) => k ?? '(service)').join(', ')}}`);
    if (overrideWeights && sameSet(Object.keys(overrideWeights), keys)) {
      // The test hook: the route's own destinations with the forced weights (0 kept, never drawn).
      overridden = true;
      destinations = destinations.map((d, j) => ({
        ...d,
        weight: overrideWeights[keys[j] as string] as number,
      }));
    }
    return {
      index: source.http,
      name: route.name ?? null,
      route,
      destinations: Object.freeze(destinations),
      responseHeaders: headerOps(route.responseHeadersToAdd, route.responseHeadersToRemove),
      requestHeaders: headerOps(route.requestHeadersToAdd, route.requestHeadersToRemove),
      retry: retryPlan(action.retryPolicy, durationMs),
      timeoutMs: durationMs(action.timeout),
    };
  });

  if (overrideWeights && !overridden) {
    throw new BadStageError(
      `overrideWeights ${JSON.stringify(overrideWeights)} name no route of stage ${stageName}: give a weight for ` +
        `exactly the subsets of one route (${splits.length > 0 ? [...new Set(splits)].join(' or ') : 'this stage has no split'})`,
    );
  }
  if (overrideWeights && Object.values(overrideWeights).every((w) => w === 0)) {
    throw new BadStageError('overrideWeights must not all be 0');
  }

  const frozen = Object.freeze(routes);
  const decide = decideWith(compileRouteTable(table), frozen);
  return Object.freeze({
    stage: stageName,
    appliedAt: new Date().toISOString(),
    overrideWeights: overrideWeights ? Object.freeze({ ...overrideWeights }) : null,
    routeTable: table,
    routes: frozen,
    decide,
  });
}

function sameSet(keys: readonly string[], subsets: readonly (string | null)[]): boolean {
  if (subsets.some((s) => s === null)) return false;
  const a = new Set(keys);
  const b = new Set(subsets);
  return a.size === b.size && a.size === subsets.length && [...a].every((k) => b.has(k));
}
