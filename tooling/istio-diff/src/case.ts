/**
 * A case of the differential test: one VirtualService (written as YAML once) and the requests to route with it.
 * Both sides are derived from that text and the repository's inputs: the oracle gets istio/base, the VirtualService
 * and the chart's Kubernetes objects; our side parses the same texts and builds `gatewayRouteTable` with the same
 * DestinationRule, Gateway and workload labels.
 */
import {
  type GatewayRequest,
  type GatewayRouteTable,
  gatewayRouteTable,
  type HTTPRoute,
  httpRouteTable,
  ManifestError,
  parseHttpRoute,
  parseVirtualService,
  type VirtualService,
} from '@rollouts/stages';
import { parse, stringify } from 'yaml';
import type { OracleInput, OracleRequest } from './oracle.js';
import type { RepoInputs } from './repo.js';

/** A request as sent: header names as written (case kept), a header may appear several times. */
export interface CaseRequest {
  authority: string;
  method: string;
  path: string;
  headers: [name: string, value: string][];
}

export interface DiffCase {
  /** What the case is (a stage file name, `random #12`, ...). */
  label: string;
  /** The VirtualService document, or the HTTPRoute document (api `gateway-api`). */
  yaml: string;
  requests: CaseRequest[];
  /** Which API the document is: VirtualService (default) or Gateway API (an HTTPRoute on istio/base/gateway-api). */
  api?: 'gateway-api';
}

/** The VirtualService file name our side reports in its errors. */
export const CASE_FILE = 'case.yaml';

/** A case from a VirtualService object (or YAML text) and requests. */
export function makeCase(label: string, vs: unknown, requests: CaseRequest[]): DiffCase {
  const yaml = typeof vs === 'string' ? vs : stringify(vs, { lineWidth: 0 });
  return { label, yaml, requests };
}

/** A case from an HTTPRoute object (or YAML text) and requests. */
export function makeHttpRouteCase(label: string, route: unknown, requests: CaseRequest[]): DiffCase {
  return { ...makeCase(label, route, requests), api: 'gateway-api' };
}

/** The oracle's input line: istio/base, the VirtualService, the chart's objects; the requests as written. */
export function oracleInput(repo: RepoInputs, c: DiffCase): OracleInput {
  const docs = [
    ...(c.api === 'gateway-api' ? repo.gatewayApiBase : repo.base).map(([, text]) => text),
    c.yaml,
    ...repo.kubeObjects.map((o) => JSON.stringify(o)),
  ];
  return { config: docs.join('\n---\n'), requests: c.requests.map(oracleRequest) };
}

export function oracleRequest(r: CaseRequest): OracleRequest {
  const out: OracleRequest = { authority: r.authority, method: r.method, path: r.path };
  if (r.headers.length > 0) {
    const headers: Record<string, string[]> = {};
    for (const [name, value] of r.headers) headers[name] = [...(headers[name] ?? []), value];
    out.headers = headers;
  }
  return out;
}

/** The request as the local gateway hands it to `routeRequest`: names lower case, values in order. */
export function gatewayRequest(r: CaseRequest): GatewayRequest {
  const headers: Record<string, string[]> = {};
  for (const [name, value] of r.headers) {
    const key = name.toLowerCase();
    headers[key] = [...(headers[key] ?? []), value];
  }
  return { method: r.method, target: r.path, authority: r.authority, headers };
}

export type OurSide =
  | { kind: 'table'; vs?: VirtualService; httpRoute?: HTTPRoute; table: GatewayRouteTable }
  | { kind: 'refused'; error: ManifestError };

/** Our emulation of the case: the VirtualService parsed and validated, and the gateway's route table. */
export function ourSide(
  repo: RepoInputs,
  c: DiffCase,
  build: typeof gatewayRouteTable = gatewayRouteTable,
): OurSide {
  try {
    if (c.api === 'gateway-api') {
      const httpRoute = parseHttpRoute(parse(c.yaml), CASE_FILE);
      const table = httpRouteTable(httpRoute, repo.services, repo.workloads, { gateway: repo.kubeGateway });
      return { kind: 'table', httpRoute, table };
    }
    const vs = parseVirtualService(parse(c.yaml), CASE_FILE);
    const table = build(vs, repo.destinationRules, repo.workloads, {
      gateway: repo.gateway,
      service: repo.service,
    });
    return { kind: 'table', vs, table };
  } catch (error) {
    if (error instanceof ManifestError) return { kind: 'refused', error };
    throw error;
  }
}
