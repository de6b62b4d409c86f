/**
 * The route table Istio's ingress gateway receives for a stage (the RouteConfiguration `istioctl proxy-config
 * routes deploy/istio-ingressgateway -n istio-system --name http.8080 -o json` prints), built from the stage's
 * VirtualService, the DestinationRules, the Gateway and the chart's workloads as pilot builds it
 * (pilot/pkg/networking/core/gateway.go buildGatewayHTTPRouteConfig), and the routing decision Envoy takes with it
 * for a request. Pure: no file or network access, so it runs wherever the differential test runs.
 *
 * - The VirtualService applies to the gateway when its `gateways` (short names resolved in its namespace) name the
 *   Gateway and its `exportTo` lets the gateway's namespace (istio-system) see it. A VirtualService bound only to
 *   `mesh` gives the gateway no virtual host but Istio's default one, `blackhole:80` with domain `*` and no
 *   routes: every request gets 404.
 * - Its hosts are resolved (short names get `.<namespace>.svc.cluster.local`) and intersected with the Gateway
 *   server's hosts; virtual hosts with the same routes are collapsed into one named after the most specific host.
 * - Clusters are `outbound|<port>|<subset>|<host>`; a destination host other than the app's Service is refused
 *   (the local path has only the app's workloads). A cluster Istio would not create (a subset the DestinationRule
 *   lacks, a port the Service lacks) is listed with `exists: false`: Envoy answers 503 (flag NC) for it.
 */

import type { Route, RouteConfiguration, VirtualHost } from './envoy.js';
import { ManifestError } from './errors.js';
import { intersectHosts, resolveShortname, selectVirtualHost } from './hosts.js';
import type { Destination, DestinationRule, Gateway, VirtualService } from './manifest.js';
import { type CompiledMatch, compileEnvoyRoutes, firstMatch, UnsupportedRequestError } from './match.js';
import { normalizePath } from './path.js';
import { NAMESPACE } from './repo.js';
import { byteCompare, type RouteSource, subsetKey, translateHttpRoutes } from './translate.js';
import { subsetSelects, type Workload } from './workloads.js';

/** The namespace of Istio's ingress gateway (scripts/istio-operator.yaml): what `exportTo` is checked against. */
export const GATEWAY_NAMESPACE = 'istio-system';

/** The namespace of an object that names none (kubectl's default context namespace). */
export const DEFAULT_NAMESPACE = 'default';

/** The app's Service: its FQDN and its (only) port. */
export interface AppService {
  host: string;
  port: number;
}

export const DEFAULT_SERVICE: AppService = { host: 'webapp.rollouts.svc.cluster.local', port: 80 };

/** The Gateway of istio/base/gateway.yaml when none is given. */
export const DEFAULT_GATEWAY: Gateway = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'webapp-gateway', namespace: NAMESPACE, labels: {} },
  file: '(default)',
  spec: {
    selector: { istio: 'ingressgateway' },
    servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
  },
};

export interface RouteTableOptions {
  gateway?: Gateway;
  service?: AppService;
  /**
   * The port the gateway pod listens on for the Gateway's server port (the ingress gateway Service's targetPort):
   * the route configuration is named http.<that port>. Default: 8080 for 80, 8443 for 443 (Istio's
   * istio-ingressgateway Service), else the server port.
   */
  targetPort?: number;
  /** The namespace the ingress gateway runs in. Default istio-system. */
  gatewayNamespace?: string;
}

/** A workload behind a cluster (the local path sends the request to that version's process). */
export interface ClusterEndpoint {
  workload: string;
  version: string;
  labels: Record<string, string>;
}

/** A cluster a route names. Not part of a RouteConfiguration: `istioctl proxy-config clusters / endpoints`. */
export interface ClusterInfo {
  name: string;
  host: string;
  port: number;
  subset: string | null;
  /** false: Istio creates no such cluster, Envoy answers 503 with flag NC. */
  exists: boolean;
  /** Why the cluster does not exist. */
  missing?: string;
  /** Workloads whose labels the subset selects (every workload without subset); none: 503 no healthy upstream. */
  endpoints: ClusterEndpoint[];
}

/** The gateway's view of a stage: Envoy's RouteConfiguration, plus the clusters and where each route came from. */
export interface GatewayRouteTable {
  routeConfiguration: RouteConfiguration;
  /** Every cluster the routes name, by name (sorted). */
  clusters: ClusterInfo[];
  /** For virtualHosts[i].routes[j]: the http route and match entry of the VirtualService it was built from. */
  sources: RouteSource[][];
  /** Why the VirtualService gives the gateway no virtual host of its own, or null when it does. */
  unbound: string | null;
}

function targetPortFor(port: number): number {
  if (port === 80) return 8080;
  if (port === 443) return 8443;
  return port;
}

/** Istio's resolveGatewayName. */
export function resolveGatewayName(name: string, namespace: string | undefined): string {
  if (name === 'mesh') return name;
  const slash = name.indexOf('/');
  if (slash === -1) {
    const dot = name.indexOf('.');
    if (dot === -1) return `${namespace ?? ''}/${name}`;
    const rest = name.slice(dot + 1);
    const next = rest.indexOf('.');
    return `${next === -1 ? rest : rest.slice(0, next)}/${name.slice(0, dot)}`;
  }
  if (name.slice(0, slash) === '.') return `${namespace ?? ''}/${name.slice(slash + 1)}`;
  return name;
}

/** Whether `exportTo` lets a proxy in `namespace` see a VirtualService of `vsNamespace` (push_context.go). */
export function visibleTo(
  exportTo: readonly string[] | undefined,
  vsNamespace: string | undefined,
  namespace: string,
): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  if (exportTo.includes('*')) return true;
  if (exportTo.includes('~')) return false;
  return exportTo.some((e) => (e === '.' ? vsNamespace : e) === namespace);
}

/** Istio's "more specific first" order of host names (host.Names.Less). */
function moreSpecificFirst(a: string, b: string): number {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw !== bw) return aw ? 1 : -1;
  if (a.length !== b.length) return b.length - a.length;
  return byteCompare(a, b);
}

/** Go's net.JoinHostPort. */
function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The route table of the ingress gateway for one VirtualService. Throws ManifestError (kind `unsupported`, the
 * field named) for a destination the local path cannot serve.
 */
export function gatewayRouteTable(
  given: VirtualService,
  destinationRules: readonly DestinationRule[],
  workloads: readonly Workload[],
  options: RouteTableOptions = {},
): GatewayRouteTable {
  // `kubectl apply` puts an object without namespace into the context's namespace: `default` on the kind cluster
  // (scripts/stage.sh names none), where Istio resolves its short names and gateway names.
  const vs: VirtualService =
    given.metadata.namespace === undefined
      ? { ...given, metadata: { ...given.metadata, namespace: DEFAULT_NAMESPACE } }
      : given;
  const gateway = options.gateway ?? DEFAULT_GATEWAY;
  const service = options.service ?? DEFAULT_SERVICE;
  const gatewayNamespace = options.gatewayNamespace ?? GATEWAY_NAMESPACE;
  const server = gateway.spec.servers[0] as Gateway['spec']['servers'][number];
  const listenPort = server.port.number;
  const namespace = vs.metadata.namespace;
  const file = `VirtualService ${namespace ?? ''}/${vs.metadata.name}`;

  const clusters = new Map<string, ClusterInfo>();
  const clusterName = (d: Destination, field: string): string => {
    const host = resolveShortname(d.host, namespace);
    if (host !== service.host) {
      throw new ManifestError(
        file,
        `${field}.host`,
        `destination host "${d.host}" (${host}) is not the app's Service ${service.host}: the gateway would route to that service's cluster, and the local path runs only the app`,
        'unsupported',
      );
    }
    const port = d.port?.number ?? service.port;
    const name = subsetKey(host, port, d.subset);
    if (!clusters.has(name)) clusters.set(name, clusterInfo(name, host, port, d.subset ?? null));
    return name;
  };
  const clusterInfo = (name: string, host: string, port: number, subset: string | null): ClusterInfo => {
    const rules = destinationRules.filter(
      (dr) => resolveShortname(dr.spec.host, dr.metadata.namespace) === host,
    );
    const defined =
      subset === null ? undefined : rules.flatMap((dr) => dr.spec.subsets).find((s) => s.name === subset);
    let missing: string | undefined;
    if (port !== service.port) missing = `the Service ${host} has no port ${port}`;
    else if (subset !== null && defined === undefined)
      missing = `no DestinationRule for ${host} defines subset "${subset}"`;
    const selected =
      missing !== undefined
        ? []
        : workloads.filter((w) => (defined === undefined ? true : subsetSelects(defined, w)));
    const out: ClusterInfo = {
      name,
      host,
      port,
      subset,
      exists: missing === undefined,
      endpoints: selected.map((w) => ({
        workload: `${w.labels.app ?? 'webapp'}-${w.version}`,
        version: w.version,
        labels: { ...w.labels },
      })),
    };
    if (missing !== undefined) out.missing = missing;
    return out;
  };

  const translated = translateHttpRoutes(vs, { clusterName, listenPort });
  const gatewayName = `${gateway.metadata.namespace ?? ''}/${gateway.metadata.name}`;
  const gateways = (vs.spec.gateways.length === 0 ? ['mesh'] : vs.spec.gateways).map((g) =>
    resolveGatewayName(g, namespace),
  );
  let unbound: string | null = null;
  let hostnames: string[] = [];
  if (!gateways.includes(gatewayName)) {
    unbound = `spec.gateways ${JSON.stringify(vs.spec.gateways)} do not name the Gateway ${gatewayName}${gateways.every((g) => g === 'mesh') ? ' (bound to the mesh only: in-mesh callers, not the ingress gateway)' : ''}`;
  } else if (!visibleTo(vs.spec.exportTo, namespace, gatewayNamespace)) {
    unbound = `spec.exportTo ${JSON.stringify(vs.spec.exportTo)} hides the VirtualService from the ingress gateway's namespace ${gatewayNamespace}`;
  } else {
    const vsHosts = vs.spec.hosts.map((h) => resolveShortname(h, namespace));
    const serverHosts = server.hosts.flatMap((h) => {
      const slash = h.indexOf('/');
      if (slash === -1) return [h];
      const ns = h.slice(0, slash);
      return ns === namespace || ns === '*' ? [h.slice(slash + 1)] : [];
    });
    hostnames = [...new Set(intersectHosts(serverHosts, vsHosts).map((h) => h.toLowerCase()))];
    if (hostnames.length === 0) {
      unbound = `no host of spec.hosts ${JSON.stringify(vsHosts)} (resolved) is one the Gateway server accepts (${JSON.stringify(server.hosts)})`;
    }
  }

  const routes = translated.map((t) => t.route);
  const sources = translated.map((t) => t.source);
  // The routes are the same for every host: Istio collapses the virtual hosts into one (EnableRouteCollapse).
  let virtualHosts: VirtualHost[];
  let routeSources: RouteSource[][];
  if (unbound === null) {
    hostnames.sort(moreSpecificFirst);
    const sorted = sortCatchAllLast(routes, sources);
    virtualHosts = [
      {
        name: joinHostPort(hostnames[0] as string, listenPort),
        domains: hostnames,
        routes: sorted.routes,
        includeRequestAttemptCount: true,
      },
    ];
    routeSources = [sorted.sources];
  } else {
    virtualHosts = [{ name: `blackhole:${listenPort}`, domains: ['*'], routes: [] }];
    routeSources = [[]];
    clusters.clear();
  }
  return {
    routeConfiguration: {
      name: `http.${options.targetPort ?? targetPortFor(listenPort)}`,
      virtualHosts,
      validateClusters: false,
      ignorePortInHostMatching: true,
      maxDirectResponseBodySizeBytes: 1024 * 1024,
    },
    clusters: [...clusters.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    sources: routeSources,
    unbound,
  };
}

/** Istio's SortVHostRoutes: catch-all routes move to the end, the others keep their order. */
function sortCatchAllLast(
  routes: Route[],
  sources: RouteSource[],
): { routes: Route[]; sources: RouteSource[] } {
  const idx = routes.map((_, i) => i);
  const isCatchAll = (r: Route) =>
    (r.match.prefix === '/' || r.match.safeRegex?.regex === '.*') && (r.match.headers ?? []).length === 0;
  const order = [
    ...idx.filter((i) => !isCatchAll(routes[i] as Route)),
    ...idx.filter((i) => isCatchAll(routes[i] as Route)),
  ];
  return {
    routes: order.map((i) => routes[i] as Route),
    sources: order.map((i) => sources[i] as RouteSource),
  };
}

/** A request as the gateway receives it. Header names lower case; a header sent several times is a list. */
export interface GatewayRequest {
  method: string;
  /** The request target as received (path and query); characters are bytes (latin1), as Node gives req.url. */
  target: string;
  /** The Host header (`:authority`). */
  authority: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** What the gateway does with a request, before it picks a cluster. */
export type RouteDecision =
  /** Envoy answers 400 itself (path normalisation failed). */
  | { kind: 'rejected'; status: 400; reason: string }
  /** The local gateway does not reproduce what Envoy would do: it refuses (400) and says why. */
  | { kind: 'unsupported'; reason: string }
  /** No virtual host or no route: 404 with an empty body, flag NR. */
  | { kind: 'no-route'; virtualHost: string | null; path: string }
  | {
      kind: 'route';
      virtualHost: string;
      routeIndex: number;
      route: Route;
      source: RouteSource;
      path: string;
    };

/** A route table compiled for {@link routeRequest}. */
export interface CompiledRouteTable {
  readonly table: GatewayRouteTable;
  readonly virtualHosts: readonly {
    readonly virtualHost: VirtualHost;
    readonly routes: readonly CompiledMatch<number>[];
  }[];
}

export function compileRouteTable(table: GatewayRouteTable): CompiledRouteTable {
  return {
    table,
    virtualHosts: table.routeConfiguration.virtualHosts.map((virtualHost) => {
      const compiled = compileEnvoyRoutes(virtualHost.routes);
      return {
        virtualHost,
        routes: compiled.map((c, i) => ({ value: i, test: c.test })),
      };
    }),
  };
}

/** Envoy's decision for a request: path normalisation, virtual host by Host, then the first route that matches. */
export function routeRequest(compiled: CompiledRouteTable, req: GatewayRequest): RouteDecision {
  const normalized = normalizePath(req.target);
  if (normalized.kind === 'rejected') return { kind: 'rejected', status: 400, reason: normalized.reason };
  if (normalized.kind === 'unsupported') return { kind: 'unsupported', reason: normalized.reason };
  const path = normalized.path;
  const vhIndex = selectVirtualHost(
    compiled.virtualHosts.map((v) => v.virtualHost),
    req.authority,
  );
  const vh = compiled.virtualHosts[vhIndex];
  if (vh === undefined) return { kind: 'no-route', virtualHost: null, path };
  let index: number | null;
  try {
    index = firstMatch(vh.routes, { method: req.method, path, headers: req.headers });
  } catch (error) {
    if (error instanceof UnsupportedRequestError) return { kind: 'unsupported', reason: error.message };
    throw error;
  }
  if (index === null) return { kind: 'no-route', virtualHost: vh.virtualHost.name, path };
  return {
    kind: 'route',
    virtualHost: vh.virtualHost.name,
    routeIndex: index,
    route: vh.virtualHost.routes[index] as Route,
    source: compiled.table.sources[vhIndex]?.[index] as RouteSource,
    path,
  };
}

/** The clusters of a route with their weights (a single cluster has weight 1). */
export function routeClusters(route: Route): { name: string; weight: number }[] {
  if (route.route.cluster !== undefined) return [{ name: route.route.cluster, weight: 1 }];
  return route.route.weightedClusters?.clusters.map((c) => ({ name: c.name, weight: c.weight })) ?? [];
}
