/**
 * The Gateway API stages: istio/stages/gateway-api/<stage>.yaml, one HTTPRoute per stage beside the stage's
 * VirtualService (istio/stages/<stage>.yaml), on the Gateway of istio/base/gateway-api/gateway.yaml, with the
 * chart's per-version and per-colour Services as backends. Each file is loaded, validated and translated into the
 * same Envoy-shaped route table as a VirtualService stage, and its expected split is derived from that table, so
 * the two files of a stage can be compared (never typed twice).
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { UnknownStageError } from './errors.js';
import {
  type BackendService,
  DEFAULT_KUBE_GATEWAY,
  type HTTPRoute,
  httpRouteTable,
  type KubeGateway,
  parseHttpRoute,
  parseKubeGateway,
  servicesFromRenderedObjects,
  servicesFromWorkloads,
} from './httproute.js';
import { readSingleDocument } from './manifest.js';
import { NAMESPACE, paths } from './repo.js';
import {
  addProfile,
  DEFAULT_PROFILE,
  noRouteReason,
  noRouteSplit,
  type Profile,
  profileRequest,
  type Split,
  STABLE_LABEL,
  STAGE_LABEL,
  type Strategy,
  strategyLabel,
  yamlFilesIn,
} from './stages.js';
import {
  type CompiledRouteTable,
  compileRouteTable,
  type GatewayRouteTable,
  routeClusters,
  routeRequest,
} from './table.js';
import { appServiceFromValues, loadWorkloads, type Workload, workloadsFromRendered } from './workloads.js';

/** Which API carries the stages: `virtualservice` (istio/stages/*.yaml, the default) or `gateway-api`. */
export type StageApi = 'virtualservice' | 'gateway-api';
export const STAGE_APIS: readonly StageApi[] = ['virtualservice', 'gateway-api'];

/** An HTTPRoute stage, loaded from istio/stages/gateway-api/<name>.yaml. */
export interface HttpRouteStage {
  name: string;
  strategy: Strategy;
  file: string;
  root: string;
  stageLabel: string | null;
  /** The value of rollouts/stable, when set. */
  stableLabel: string | null;
  httpRoute: HTTPRoute;
}

/** What an HTTPRoute stage's route table is built from, besides the stage. */
export interface GatewayApiContext {
  gateway: KubeGateway;
  services: BackendService[];
  workloads: Workload[];
}

function httpRouteFiles(root: string): string[] {
  const dir = paths.gatewayApiStagesDir(root);
  return existsSync(dir) ? yamlFilesIn(dir) : [];
}

/** The names of the HTTPRoute stage files (file stems), sorted. */
export function httpRouteStageNames(root: string): string[] {
  return httpRouteFiles(root).map((f) => basename(f, '.yaml'));
}

/** Loads one HTTPRoute stage file (refused above Kubernetes' object size limit before it is parsed). */
export function loadHttpRouteStageFile(root: string, file: string): HttpRouteStage {
  const route = parseHttpRoute(readSingleDocument(file), file);
  return {
    name: basename(file, '.yaml'),
    strategy: strategyLabel(route.metadata.labels, file),
    file,
    root,
    stageLabel: route.metadata.labels[STAGE_LABEL] ?? null,
    stableLabel: route.metadata.labels[STABLE_LABEL] ?? null,
    httpRoute: route,
  };
}

/** Loads istio/stages/gateway-api/<name>.yaml; UnknownStageError lists the HTTPRoute stages. */
export function loadHttpRouteStage(root: string, name: string): HttpRouteStage {
  const names = httpRouteStageNames(root);
  if (!names.includes(name)) throw new UnknownStageError(name, names);
  return loadHttpRouteStageFile(root, join(paths.gatewayApiStagesDir(root), `${name}.yaml`));
}

/** Loads istio/base/gateway-api/gateway.yaml (or `file`); the repository's Gateway when there is none. */
export function loadKubeGateway(root: string, file: string = paths.kubeGateway(root)): KubeGateway {
  if (!existsSync(file)) return DEFAULT_KUBE_GATEWAY;
  return parseKubeGateway(readSingleDocument(file), file);
}

/**
 * The Gateway, the chart's Services and workloads for the HTTPRoute stages: from `renderedChart` (`helm template`
 * output) when given, else from the chart's values (`valuesFile`, default charts/webapp/values.yaml).
 */
export function gatewayApiContext(
  root: string,
  options: { renderedChart?: string; valuesFile?: string; gatewayFile?: string } = {},
): GatewayApiContext {
  const gateway = loadKubeGateway(root, options.gatewayFile);
  if (options.renderedChart !== undefined) {
    const objects = parseAllDocuments(options.renderedChart).map((d) => d.toJS() as unknown);
    return {
      gateway,
      services: servicesFromRenderedObjects(objects),
      workloads: workloadsFromRendered(options.renderedChart),
    };
  }
  const valuesFile = options.valuesFile ?? paths.values(root);
  const workloads = loadWorkloads(root, valuesFile);
  const app = appServiceFromValues(valuesFile);
  const name = app.host.split('.')[0] as string;
  return {
    gateway,
    workloads,
    services: servicesFromWorkloads(workloads, { name, namespace: NAMESPACE, port: app.port }),
  };
}

/** The route table Istio gives the Gateway's Envoy for an HTTPRoute stage (same shape as stageRouteTable's). */
export function httpRouteStageRouteTable(
  stage: HttpRouteStage,
  ctx: GatewayApiContext = gatewayApiContext(stage.root),
): GatewayRouteTable {
  return httpRouteTable(stage.httpRoute, ctx.services, ctx.workloads, { gateway: ctx.gateway });
}

/**
 * What the local gateway routes an HTTPRoute stage file by: the file (any path) read, validated and translated
 * with the repository's Gateway and the chart's Services (from its values, or a rendered chart).
 */
export function httpRouteTableFromFile(
  file: string,
  options: { root: string; renderedChart?: string; valuesFile?: string; gatewayFile?: string },
): GatewayRouteTable {
  const stage = loadHttpRouteStageFile(options.root, file);
  return httpRouteStageRouteTable(stage, gatewayApiContext(options.root, options));
}

/**
 * Where requests of `profile` go by a route table (either API's): the route Envoy picks, its clusters' weights
 * and the versions of their endpoints (a cluster over several versions shares its weight equally). `subsets`
 * is keyed by cluster: its subset (VirtualService) or its Service name (HTTPRoute).
 */
export function splitFromTable(
  table: GatewayRouteTable | CompiledRouteTable,
  profile: Profile = DEFAULT_PROFILE,
): Split {
  const compiled =
    'virtualHosts' in table && 'table' in table ? table : compileRouteTable(table as GatewayRouteTable);
  const request = profileRequest(profile);
  const decision = routeRequest(compiled, request);
  if (decision.kind !== 'route') return noRouteSplit(noRouteReason(compiled, decision, request));
  const weighted = routeClusters(decision.route);
  const total = weighted.reduce((n, c) => n + c.weight, 0);
  const out: Split = {
    routeIndex: decision.source.http,
    routeName: decision.route.name ?? null,
    subsets: {},
    versions: {},
    unresolved: {},
    subsetVersions: {},
  };
  for (const c of weighted) {
    const info = compiled.table.clusters.find((x) => x.name === c.name);
    const key = info?.subset ?? info?.host.split('.')[0] ?? c.name;
    const p = c.weight / total;
    out.subsets[key] = (out.subsets[key] ?? 0) + p;
    const versions =
      info === undefined || !info.exists ? [] : [...new Set(info.endpoints.map((e) => e.version))];
    out.subsetVersions[key] = versions;
    if (versions.length === 0) {
      out.unresolved[key] = (out.unresolved[key] ?? 0) + p;
      continue;
    }
    for (const v of versions) out.versions[v] = (out.versions[v] ?? 0) + p / versions.length;
  }
  return out;
}

/** The request profiles of an HTTPRoute stage: the default one and one per exact header match of its rules. */
export function httpRouteProfiles(stage: HttpRouteStage | HTTPRoute): Profile[] {
  const route = 'httpRoute' in stage ? stage.httpRoute : stage;
  const out: Profile[] = [DEFAULT_PROFILE];
  for (const rule of route.spec.rules) {
    for (const m of rule.matches) {
      if (m.headers.length === 0 || m.headers.some((h) => h.type !== 'Exact')) continue;
      const headers = Object.fromEntries(m.headers.map((h) => [h.name, h.value]));
      const path = m.path.type !== 'RegularExpression' && m.path.value !== '/' ? m.path.value : undefined;
      addProfile(out, headers, m.method, path);
    }
  }
  return out;
}
