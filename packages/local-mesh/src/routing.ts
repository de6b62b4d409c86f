/**
 * Builds the gateway's routing table from the repository's files through @rollouts/stages: the stage's
 * VirtualService (routes compiled once, Istio's matching), the DestinationRule's subsets, and the chart's
 * workloads (pod labels from charts/webapp/values.yaml, never typed again). A subset goes to every local
 * workload whose labels it selects.
 *
 * Also emulated: the VirtualService `hosts` (the request's Host, port stripped, must be one of them, as at
 * Istio's ingress gateway; `*` and `*.suffix` wildcards work) and each route's `headers.response` set / add.
 * Not emulated (accepted by the stages library, no effect here): timeout, retries, corsPolicy, the `gateways`
 * binding.
 */
import {
  compileRoutes,
  destinationWeights,
  findRepoRoot,
  loadDestinationRule,
  loadStage,
  loadWorkloads,
  ManifestError,
  matchRoute,
  responseHeadersOf,
  type Stage,
  UnknownStageError,
  versionsOfSubset,
  type Workload,
} from '@rollouts/stages';
import { BadStageError, type TableSource } from './admin.js';
import type { RequestInfo, ResolvedRoute, RoutingTable, Upstream, WeightedDestination } from './gateway.js';

/** The repository root (the directory with pnpm-workspace.yaml) at or above `from`. */
export function repoRoot(from: string = process.cwd()): string {
  return findRepoRoot(from);
}

/** The versions the chart runs (keys of `versions` in charts/webapp/values.yaml that are enabled). */
export function workloadVersions(root: string): string[] {
  return loadWorkloads(root).map((w) => w.version);
}

/** Service name the metrics report (the chart's app label). */
function upstreamFor(workload: Workload, origin: string): Upstream {
  const app = workload.labels.app ?? 'webapp';
  return { workload: `${app}-${workload.version}`, app, version: workload.version, service: app, origin };
}

/** Matches a Host header (port stripped, case-insensitive) against a VirtualService's hosts. */
export function hostMatcher(hosts: readonly string[]): (host: string | undefined) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const h of hosts) {
    const host = h.toLowerCase();
    if (host === '*') any = true;
    else if (host.startsWith('*.')) suffixes.push(host.slice(1));
    else exact.add(host);
  }
  return (raw) => {
    if (any) return true;
    if (raw === undefined) return false;
    let host = raw.toLowerCase();
    if (host.startsWith('[')) {
      const end = host.indexOf(']');
      host = end === -1 ? host : host.slice(0, end + 1);
    } else {
      const colon = host.lastIndexOf(':');
      if (colon !== -1) host = host.slice(0, colon);
    }
    if (exact.has(host)) return true;
    return suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  };
}

/**
 * Routing tables for the stages of `root`, sending each version's traffic to `origins[version]`
 * (e.g. {v1: 'http://127.0.0.1:3001', v2: 'http://127.0.0.1:3002'}). The files are read afresh on every build,
 * so an edited manifest takes effect on the next switch.
 */
export function createTableSource(root: string, origins: Readonly<Record<string, string>>): TableSource {
  return {
    build(name, overrideWeights) {
      let stage: Stage;
      try {
        stage = loadStage(root, name);
      } catch (err) {
        if (err instanceof UnknownStageError) throw new BadStageError(err.message, err.validStages);
        if (err instanceof ManifestError) throw new BadStageError(err.message);
        throw err;
      }
      return buildTable(root, stage, origins, overrideWeights ?? null);
    },
  };
}

function buildTable(
  root: string,
  stage: Stage,
  origins: Readonly<Record<string, string>>,
  overrideWeights: Readonly<Record<string, number>> | null,
): RoutingTable {
  const dr = loadDestinationRule(root);
  const workloads = loadWorkloads(root);
  const byVersion = new Map(workloads.map((w) => [w.version, w]));
  const vs = stage.virtualService;
  const compiled = compileRoutes(vs);
  let overridden = false;

  const routes: ResolvedRoute[] = vs.spec.http.map((route, index) => {
    const dests = route.route;
    let weights = destinationWeights(route);
    const subsetNames = dests.map((d) => d.destination.subset ?? null);
    if (overrideWeights && sameSet(Object.keys(overrideWeights), subsetNames)) {
      weights = subsetNames.map((s) => overrideWeights[s as string] as number);
      overridden = true;
    }
    const destinations: WeightedDestination[] = dests.map((d, i) => {
      const subset = d.destination.subset ?? null;
      const upstreams = versionsOfSubset(dr, workloads, subset).flatMap((version) => {
        const origin = origins[version];
        const workload = byVersion.get(version);
        return origin && workload ? [upstreamFor(workload, origin)] : [];
      });
      return { weight: weights[i] as number, subset, upstreams };
    });
    return {
      index,
      name: route.name ?? null,
      destinations: Object.freeze(destinations),
      responseHeaders: responseHeadersOf(route),
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

  const hostOk = hostMatcher(vs.spec.hosts);
  const table: RoutingTable = {
    stage: stage.name,
    appliedAt: new Date().toISOString(),
    overrideWeights: overrideWeights ? Object.freeze({ ...overrideWeights }) : null,
    routes: Object.freeze(routes),
    match(req: RequestInfo) {
      const host = req.headers.host;
      if (!hostOk(host)) return null;
      const m = matchRoute(compiled, req);
      return m ? (routes[m.index] ?? null) : null;
    },
  };
  return Object.freeze(table);
}

function sameSet(keys: readonly string[], subsets: readonly (string | null)[]): boolean {
  if (subsets.some((s) => s === null)) return false;
  const a = new Set(keys);
  const b = new Set(subsets);
  return a.size === b.size && a.size === subsets.length && [...a].every((k) => b.has(k));
}
