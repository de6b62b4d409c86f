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
  destinationWeights,
  durationMs,
  findRepoRoot,
  type GatewayRouteTable,
  lint,
  lintErrors,
  loadStage,
  loadWorkloads,
  ManifestError,
  repoContext,
  responseHeadersOf,
  type Stage,
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
      let stage: Stage;
      try {
        stage = loadStage(root, name);
      } catch (err) {
        if (err instanceof UnknownStageError) throw new BadStageError(err.message, err.validStages);
        if (err instanceof ManifestError) throw refused(name, [err.message]);
        throw err;
      }
      if (options.lint !== false) {
        const errors = lintErrors(lint(root, { stage: name }));
        if (errors.length > 0) {
          throw refused(
            name,
            errors.map((f) => `${f.file}: ${f.field}: ${f.message} [${f.rule}]`),
          );
        }
      }
      let table: GatewayRouteTable;
      try {
        table = stageRouteTable(stage, repoContext(root));
      } catch (err) {
        if (err instanceof ManifestError) throw refused(name, [err.message]);
        throw err;
      }
      return buildTable(stage, table, origins, overrideWeights ?? null);
    },
  };
}

function refused(stage: string, findings: string[]): BadStageError {
  return new BadStageError(
    `stage ${stage} refused before any traffic moved (the gateway keeps serving the previous stage):\n  ${findings.join('\n  ')}`,
    [],
    422,
    findings,
  );
}

/** The routing table of a stage from its route table: each Envoy route with its clusters and their workloads. */
export function buildTable(
  stage: Stage,
  table: GatewayRouteTable,
  origins: Readonly<Record<string, string>>,
  overrideWeights: Readonly<Record<string, number>> | null,
): RoutingTable {
  const vs = stage.virtualService;
  const targets = new Map<string, ClusterTarget>();
  for (const c of table.clusters) {
    const upstreams = c.endpoints.flatMap((e) => {
      const origin = origins[e.version];
      return origin ? [upstreamFor(e, origin)] : [];
    });
    targets.set(c.name, Object.freeze({ name: c.name, subset: c.subset, exists: c.exists, upstreams }));
  }
  const missing = (name: string): ClusterTarget => ({ name, subset: null, exists: false, upstreams: [] });
  const vh = table.routeConfiguration.virtualHosts[0];
  const sources = table.sources[0] ?? [];
  let overridden = false;

  const routes: ResolvedRoute[] = (vh?.routes ?? []).map((route, i) => {
    const source = sources[i] as { http: number };
    const http = vs.spec.http[source.http] as Stage['virtualService']['spec']['http'][number];
    const action = route.route;
    let destinations: WeightedDestination[];
    const subsetNames = http.route.map((d) => d.destination.subset ?? null);
    if (overrideWeights && sameSet(Object.keys(overrideWeights), subsetNames)) {
      // The test hook: the VirtualService route's own destinations with the forced weights (0 kept, never drawn).
      overridden = true;
      const clusterOf = (subset: string) =>
        [...targets.values()].find((t) => t.subset === subset) ?? missing(subset);
      destinations = subsetNames.map((s) => {
        const cluster = clusterOf(s as string);
        return {
          weight: overrideWeights[s as string] as number,
          subset: s,
          cluster,
          upstreams: cluster.upstreams,
        };
      });
    } else {
      const weighted =
        action.cluster !== undefined
          ? [{ name: action.cluster, weight: destinationWeights(http)[0] as number }]
          : (action.weightedClusters?.clusters ?? []);
      destinations = weighted.map((w) => {
        const cluster = targets.get(w.name) ?? missing(w.name);
        return { weight: w.weight, subset: cluster.subset, cluster, upstreams: cluster.upstreams };
      });
    }
    return {
      index: source.http,
      name: route.name ?? http.name ?? null,
      route,
      destinations: Object.freeze(destinations),
      responseHeaders: responseHeadersOf(http),
      retry: retryPlan(action.retryPolicy, durationMs),
      timeoutMs: durationMs(action.timeout),
    };
  });

  if (overrideWeights && !overridden) {
    const splits = vs.spec.http
      .filter((r) => r.route.length > 1)
      .map((r) => `{${r.route.map((d) => d.destination.subset ?? '(service)').join(', ')}}`);
    throw new BadStageError(
      `overrideWeights ${JSON.stringify(overrideWeights)} name no route of stage ${stage.name}: give a weight for ` +
        `exactly the subsets of one route (${splits.length > 0 ? splits.join(' or ') : 'this stage has no split'})`,
    );
  }
  if (overrideWeights && Object.values(overrideWeights).every((w) => w === 0)) {
    throw new BadStageError('overrideWeights must not all be 0');
  }

  const frozen = Object.freeze(routes);
  const decide = decideWith(compileRouteTable(table), frozen);
  return Object.freeze({
    stage: stage.name,
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
