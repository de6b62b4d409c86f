/**
 * The comparison of one case: our side (the VirtualService parsed by @rollouts/stages, `gatewayRouteTable`,
 * `routeRequest`) against the oracle's answer (Istio's validation, the RouteConfiguration the ingress gateway
 * receives, the endpoints of its clusters, and Istio's simulated routing decision per request).
 *
 * 1. Verdict: both accept; or Istio rejects and we refuse with kind `invalid`; or we refuse with kind
 *    `unsupported` naming a field (allowed, counted by reason). Anything else is a difference.
 * 2. Route table: Envoy's RouteConfiguration field by field after {@link normalizeRouteConfiguration} removed the
 *    fields out of scope (README: "What is compared").
 * 3. Endpoints: for every cluster our routes name, whether Istio creates it and the pod labels behind it.
 * 4. Requests: Istio's simulation is not Envoy (tooling/istio-oracle/README.md): it matches domains
 *    case-sensitively, routes by path only, on the raw path. So our decision (`routeRequest`) is compared in full
 *    (virtual host, route, clusters and weights, or 404) only where the simulation models every condition that
 *    decides it: the oracle reports no condition it skipped (`notEvaluated` empty) and our decision is a route or a
 *    404 (the simulation has no path normalisation, so no 400). Otherwise the virtual host alone is compared (for
 *    an authority without upper-case letters), and the reasons are counted. Every request is also routed with
 *    Envoy's rules (our matcher) on Istio's own table and compared in full with our decision on ours.
 */
import {
  compileRouteTable,
  type GatewayRouteTable,
  type ManifestError,
  type RouteConfiguration,
  type RouteDecision,
  routeClusters,
  routeRequest,
  selectVirtualHost,
} from '@rollouts/stages';
import { type CaseRequest, type DiffCase, gatewayRequest, type OurSide } from './case.js';
import { type Difference, diffValues } from './diff.js';
import type { OracleAnswer, OracleDecision } from './oracle.js';
import { sortKeys } from './repo.js';

/**
 * Fields of Envoy's protos left out of the comparison, by where they sit (README: "Out of scope"). Only the typed
 * per-filter configuration Istio may attach for HTTP filters (none of which the local gateway runs); everything
 * else of the RouteConfiguration is compared, Istio's metadata and tracing decorator included.
 */
export const OUT_OF_SCOPE: Record<
  'routeConfiguration' | 'virtualHost' | 'route' | 'routeAction',
  readonly string[]
> = {
  routeConfiguration: [],
  virtualHost: ['typedPerFilterConfig'],
  route: ['typedPerFilterConfig'],
  routeAction: [],
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function omit(o: unknown, keys: readonly string[]): unknown {
  if (!isObj(o)) return o;
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/** Without empty lists: protojson prints no empty repeated field (Istio's `routes` of a blackhole virtual host). */
function dropEmptyLists(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropEmptyLists);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v))
    if (!(Array.isArray(x) && x.length === 0)) out[k] = dropEmptyLists(x);
  return out;
}

/** A RouteConfiguration (ours or Istio's protojson) without the fields out of scope, keys sorted. */
export function normalizeRouteConfiguration(rc: unknown): unknown {
  const out = omit(rc, OUT_OF_SCOPE.routeConfiguration) as Obj;
  if (Array.isArray(out.virtualHosts)) {
    out.virtualHosts = out.virtualHosts.map((vh) => {
      const v = omit(vh, OUT_OF_SCOPE.virtualHost) as Obj;
      if (Array.isArray(v.routes)) {
        v.routes = v.routes.map((r) => {
          const route = omit(r, OUT_OF_SCOPE.route) as Obj;
          // Istio fills queryParameters from a Go map (HTTPRoute query matches): their order is random, and
          // Envoy ANDs them, so they are compared by name.
          if (isObj(route.match) && Array.isArray(route.match.queryParameters)) {
            route.match = {
              ...route.match,
              queryParameters: [...route.match.queryParameters].sort((a, b) =>
                String((a as Obj).name) < String((b as Obj).name) ? -1 : 1,
              ),
            };
          }
          if (isObj(route.route)) route.route = omit(route.route, OUT_OF_SCOPE.routeAction);
          return route;
        });
      }
      return v;
    });
  }
  return sortKeys(dropEmptyLists(out));
}

/** A routing decision in one shape for both sides. */
export type Decision =
  | { kind: 'route'; virtualHost: string; route: string; clusters: { name: string; weight: number }[] }
  | { kind: 'no-virtual-host' }
  | { kind: 'no-route'; virtualHost: string }
  | { kind: 'rejected'; status: number }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'other'; what: string };

export function ourDecision(d: RouteDecision): Decision {
  switch (d.kind) {
    case 'route':
      return {
        kind: 'route',
        virtualHost: d.virtualHost,
        route: d.route.name ?? '',
        // A single cluster is weight 100, as the oracle reports it.
        clusters:
          d.route.route.cluster !== undefined
            ? [{ name: d.route.route.cluster, weight: 100 }]
            : routeClusters(d.route).map((c) => ({ name: c.name, weight: c.weight })),
      };
    case 'no-route':
      return d.virtualHost === null
        ? { kind: 'no-virtual-host' }
        : { kind: 'no-route', virtualHost: d.virtualHost };
    case 'rejected':
      return { kind: 'rejected', status: d.status };
    case 'unsupported':
      return { kind: 'unsupported', reason: d.reason };
  }
}

export function istioDecision(d: OracleDecision): Decision {
  if (d.error === 'no virtual host matched') return { kind: 'no-virtual-host' };
  if (d.error === 'no route matched' && d.virtualHost !== null)
    return { kind: 'no-route', virtualHost: d.virtualHost };
  if (
    d.error === null &&
    d.route !== null &&
    d.virtualHost !== null &&
    d.directResponse === null &&
    d.redirect === null
  )
    return { kind: 'route', virtualHost: d.virtualHost, route: d.route, clusters: d.clusters };
  return { kind: 'other', what: JSON.stringify(d) };
}

/** Why the simulation does not decide a request as Envoy would, from the oracle's `notEvaluated` notes. */
export function notModelledReason(note: string): string {
  if (note.includes('header match {"name":":method"'))
    return 'method match (not evaluated by the simulation)';
  if (note.includes(': header match ')) return 'header match (not evaluated by the simulation)';
  if (note.includes(': query parameter match ')) return 'query parameter match (not evaluated)';
  if (note.includes('case-insensitive path match')) return 'ignoreUriCase (the simulation is case-sensitive)';
  if (note.includes(': regex ')) return 'regex path (the simulation searches, Envoy matches the whole path)';
  if (note.includes('path_separated_prefix')) return 'path_separated_prefix';
  if (note.startsWith('request path has a query')) return 'query string with path matchers (raw path)';
  if (note.startsWith('request path has dot segments'))
    return 'path normalisation (not done by the simulation)';
  if (note.startsWith('authority has upper-case'))
    return 'authority case (domains compared case-sensitively)';
  if (note.startsWith('authority is an IPv6 literal')) return IPV6_REASON;
  return note.replace(/^route\[\d+\] "[^"]*": /, '');
}

export const IPV6_REASON = 'IPv6 literal authority (the simulation strips the brackets, Envoy keeps them)';

/** The gateway table of Istio's RouteConfiguration, so our matcher (Envoy's rules) can route on it. */
function istioTable(rc: RouteConfiguration): GatewayRouteTable {
  const virtualHosts = (rc.virtualHosts ?? []).map((vh) => ({ ...vh, routes: vh.routes ?? [] }));
  return {
    routeConfiguration: { ...rc, virtualHosts },
    clusters: [],
    sources: virtualHosts.map((vh) => vh.routes.map(() => ({ http: -1, match: null }))),
    unbound: null,
  };
}

export type Verdict =
  /** Both accept; everything compared. */
  | 'compared'
  /** Istio rejects, we refuse as invalid. */
  | 'both-reject'
  /** We refuse as unsupported (allowed). */
  | 'unsupported'
  /** A difference: in the verdict, the route table, the endpoints or a decision. */
  | 'different';

export interface RequestCounts {
  /** Requests of accepted cases. */
  requests: number;
  /** Our decision compared in full with Istio's simulation. */
  simulationCompared: number;
  /** Only the virtual host compared with Istio's simulation. */
  virtualHostOnly: number;
  /** Our decision compared with Envoy's rules applied to Istio's own table. */
  istioTableCompared: number;
  /** Why a request's decision was not compared in full with the simulation: reason -> requests. */
  notModelled: Record<string, number>;
  /** Requests our side refuses (not emulated): reason -> requests. */
  refused: Record<string, number>;
}

export interface CaseResult {
  verdict: Verdict;
  differences: Difference[];
  /** For `unsupported`: the field (indices removed) with the first clause of the problem, and the problem. */
  unsupported?: { field: string; reason: string; istioRejects: boolean };
  istioErrors?: string[];
  ourError?: ManifestError;
  counts: RequestCounts;
  /** Per request: Istio's simulated decision and ours, for the assertions of a test. */
  decisions: { request: CaseRequest; ours: Decision; istio: Decision; onIstioTable: Decision | null }[];
}

export function emptyCounts(): RequestCounts {
  return {
    requests: 0,
    simulationCompared: 0,
    virtualHostOnly: 0,
    istioTableCompared: 0,
    notModelled: {},
    refused: {},
  };
}

function bump(m: Record<string, number>, key: string, by = 1): void {
  m[key] = (m[key] ?? 0) + by;
}

/**
 * `spec.http[2].route[0].destination.host` -> `spec.http[].route[].destination.host`; the name of a response
 * header operation -> `<name>`.
 */
export function fieldPattern(field: string): string {
  return field.replace(/\[\d+\]/g, '[]').replace(/(headers\.response\.(?:set|add))\..*$/, '$1.<name>');
}

/** A refusal's reason as counted: the field pattern and the first clause of the problem. */
export function refusalReason(e: ManifestError): string {
  const problem = e.problem.split(/[;:(]/)[0]?.trim() ?? '';
  return `${fieldPattern(e.field)}: ${problem.length > 90 ? `${problem.slice(0, 90)}…` : problem}`;
}

function describeRequest(r: CaseRequest, i: number): string {
  const headers = r.headers.map(([n, v]) => `${n}: ${v}`).join(', ');
  return `request ${i} (${r.method} ${r.path} Host ${r.authority}${headers ? `; ${headers}` : ''})`;
}

function hasUpperAscii(s: string): boolean {
  return /[A-Z]/.test(s);
}

/** Compares our side of a case with the oracle's answer. */
export function compareCase(c: DiffCase, ours: OurSide, answer: OracleAnswer): CaseResult {
  const counts = emptyCounts();
  const result: CaseResult = { verdict: 'compared', differences: [], counts, decisions: [] };
  if (ours.kind === 'refused') {
    const e = ours.error;
    result.ourError = e;
    if (!answer.ok) result.istioErrors = answer.errors;
    if (e.kind === 'unsupported') {
      result.verdict = 'unsupported';
      result.unsupported = { field: refusalReason(e), reason: e.problem, istioRejects: !answer.ok };
      if (!e.field.startsWith('spec')) {
        result.verdict = 'different';
        result.differences.push({
          what: 'unsupported refusal names no spec field',
          ours: e.message,
          istio: '',
        });
      }
      return result;
    }
    if (!answer.ok && e.kind === 'invalid') {
      result.verdict = 'both-reject';
      return result;
    }
    result.verdict = 'different';
    result.differences.push({
      what: 'verdict',
      ours: `refused (${e.kind}): ${e.message}`,
      istio: answer.ok ? 'accepted' : `rejected: ${answer.errors.join('; ')}`,
    });
    return result;
  }
  if (!answer.ok) {
    result.verdict = 'different';
    result.istioErrors = answer.errors;
    result.differences.push({
      what: 'verdict',
      ours: 'accepted',
      istio: `rejected: ${answer.errors.join('; ')}`,
    });
    return result;
  }

  const table = ours.table;
  // 2. The route table, field by field.
  const oursRc = normalizeRouteConfiguration(table.routeConfiguration);
  const istioRcs = answer.routes.map(normalizeRouteConfiguration);
  result.differences.push(
    ...diffValues([oursRc], istioRcs, '').map((d) => ({ ...d, what: `routes${d.what}` })),
  );

  // 3. Endpoints of every cluster our routes name.
  for (const cluster of table.clusters) {
    const theirs = answer.clusters[cluster.name];
    const where = `cluster ${cluster.name}`;
    if (theirs === undefined) {
      result.differences.push({ what: `${where}: named by the routes`, ours: true, istio: false });
      continue;
    }
    if (cluster.exists === (theirs.missing === true)) {
      result.differences.push({
        what: `${where}: exists`,
        ours: cluster.exists,
        istio: theirs.missing !== true,
      });
    }
    const ourLabels = cluster.endpoints.map((e) => JSON.stringify(sortKeys(e.labels))).sort();
    const istioLabels = theirs.endpoints.map((e) => JSON.stringify(sortKeys(e.podLabels ?? {}))).sort();
    if (JSON.stringify(ourLabels) !== JSON.stringify(istioLabels)) {
      result.differences.push({
        what: `${where}: endpoints (pod labels)`,
        ours: ourLabels,
        istio: istioLabels,
      });
    }
  }
  for (const name of Object.keys(answer.clusters)) {
    if (!table.clusters.some((cl) => cl.name === name)) {
      result.differences.push({ what: `cluster ${name}: named by the routes`, ours: false, istio: true });
    }
  }

  // 4. Requests.
  const compiled = compileRouteTable(table);
  const theirRc = answer.routes.find((r) => r.name === table.routeConfiguration.name) as
    | RouteConfiguration
    | undefined;
  let onIstio: ReturnType<typeof compileRouteTable> | null = null;
  if (theirRc !== undefined) {
    try {
      onIstio = compileRouteTable(istioTable(theirRc));
    } catch (error) {
      result.differences.push({
        what: "Istio's table cannot be routed with our matcher",
        ours: '',
        istio: (error as Error).message,
      });
    }
  }
  for (const [i, request] of c.requests.entries()) {
    const sim = answer.requests[i];
    if (sim === undefined) {
      result.differences.push({
        what: `${describeRequest(request, i)}: no answer`,
        ours: '',
        istio: '(none)',
      });
      continue;
    }
    counts.requests++;
    const req = gatewayRequest(request);
    const ourD = ourDecision(routeRequest(compiled, req));
    const istioD = istioDecision(sim);
    const onIstioD = onIstio === null ? null : ourDecision(routeRequest(onIstio, req));
    result.decisions.push({ request, ours: ourD, istio: istioD, onIstioTable: onIstioD });
    const where = describeRequest(request, i);
    if (ourD.kind === 'unsupported') {
      bump(counts.refused, ourD.reason.replace(/"[^"]*"/g, '…').replace(/0x[0-9a-f]+/g, '0x…'));
      continue;
    }
    if (onIstioD !== null) {
      counts.istioTableCompared++;
      const d = diffValues(ourD, onIstioD);
      if (d.length > 0) {
        result.differences.push({
          what: `${where}: decision by Envoy's rules on Istio's table`,
          ours: ourD,
          istio: onIstioD,
        });
      }
    }
    // Go's SplitHostPort strips the brackets of an IPv6 literal, Envoy keeps them: "[::1]:8080" is "::1" to the
    // simulation, "[::1]" to Envoy (HeaderUtility::getPortStart). The oracle notes it too; checked here as well,
    // so an oracle without that note cannot make such a request count as compared in full.
    const ipv6Literal = request.authority.startsWith('[');
    const exact =
      !ipv6Literal &&
      sim.notEvaluated.length === 0 &&
      (ourD.kind === 'route' || ourD.kind === 'no-route' || ourD.kind === 'no-virtual-host');
    if (exact) {
      counts.simulationCompared++;
      if (diffValues(ourD, istioD).length > 0) {
        result.differences.push({
          what: `${where}: decision (Istio's simulation)`,
          ours: ourD,
          istio: istioD,
        });
      }
      continue;
    }
    const reasons = new Set(sim.notEvaluated.map(notModelledReason));
    if (ipv6Literal) reasons.add(IPV6_REASON);
    if (ourD.kind === 'rejected')
      reasons.add('path rejected by normalisation (400; the simulation does not normalise)');
    for (const r of reasons) bump(counts.notModelled, r);
    if (!hasUpperAscii(request.authority) && !ipv6Literal) {
      counts.virtualHostOnly++;
      const index = selectVirtualHost(table.routeConfiguration.virtualHosts, request.authority);
      const ourVh = index === -1 ? null : (table.routeConfiguration.virtualHosts[index]?.name ?? null);
      if (ourVh !== sim.virtualHost) {
        result.differences.push({
          what: `${where}: virtual host (Istio's simulation)`,
          ours: ourVh,
          istio: sim.virtualHost,
        });
      }
    }
  }
  if (result.differences.length > 0) result.verdict = 'different';
  return result;
}
