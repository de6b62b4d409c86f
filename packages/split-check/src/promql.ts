/**
 * The PromQL of the canary analysis, written once: the cluster path (`rollout progress --target cluster`, against
 * the Istio addon's Prometheus) and the local path's three-way check (a real Prometheus scraping the local gateway
 * and both apps) run these same queries. Also the reading of Prometheus' HTTP API answers and the step's samples
 * from two instant snapshots of the counters (the difference of the counter values at the step's start and end,
 * which is exact, where `increase()` would extrapolate).
 *
 * Pure: no Node APIs, no dependencies.
 */
import type { HistogramBucket, VersionSample } from './analysis.js';

/** Which requests: those the gateway reported (reporter="source") for the app. */
export interface MeshSelector {
  /** source_workload of the gateway: istio-ingressgateway on the cluster, local-gateway on the local path. */
  gateway: string;
  /** destination_app: webapp. */
  app: string;
}

/**
 * The ingress gateway's workload as Istio's telemetry labels it: the classic gateway (VirtualService stages), the
 * Deployment Istio creates for the Gateway API Gateway webapp-gateway (HTTPRoute stages), and the local gateway's.
 */
export const CLUSTER_GATEWAY_WORKLOAD = 'istio-ingressgateway';
export const GATEWAY_API_GATEWAY_WORKLOAD = 'webapp-gateway-istio';
export const LOCAL_GATEWAY_WORKLOAD = 'local-gateway';

const quote = (v: string) => JSON.stringify(v);

function matchers(sel: MeshSelector): string {
  return `reporter="source",source_workload=${quote(sel.gateway)},destination_app=${quote(sel.app)}`;
}

/** The analysis' queries (instant vectors). */
export const QUERIES = {
  /** Requests the gateway sent on, by version and status code (5xx are the errors). */
  requests: (sel: MeshSelector) =>
    `sum by (destination_version, response_code) (istio_requests_total{${matchers(sel)}})`,
  /** The gateway's latency histogram by version (cumulative counts per boundary `le`, ms). */
  durationBuckets: (sel: MeshSelector) =>
    `sum by (destination_version, le) (istio_request_duration_milliseconds_bucket{${matchers(sel)}})`,
  /** What the apps themselves counted, by version (the three-way check): requests of one route. */
  appRequests: (app: string, route: string) =>
    `sum by (version) (http_requests_total{app=${quote(app)},route=${quote(route)}})`,
} as const;

/** One series of an instant vector. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export class PromQueryError extends Error {
  override readonly name = 'PromQueryError';
}

/**
 * The samples of a Prometheus /api/v1/query answer (resultType vector). An error answer, another result type or a
 * malformed body throws PromQueryError with Prometheus' own message.
 */
export function parseVector(body: unknown, query = ''): PromSample[] {
  const what = query ? ` to ${query}` : '';
  const b = body as { status?: unknown; error?: unknown; errorType?: unknown; data?: unknown };
  if (typeof b !== 'object' || b === null)
    throw new PromQueryError(`Prometheus answered no JSON object${what}`);
  if (b.status !== 'success')
    throw new PromQueryError(
      `Prometheus answered ${String(b.status)}${what}: ${String(b.errorType ?? '')} ${String(b.error ?? '')}`.trim(),
    );
  const data = b.data as { resultType?: unknown; result?: unknown } | undefined;
  if (data?.resultType !== 'vector' || !Array.isArray(data.result))
    throw new PromQueryError(
      `Prometheus answered ${String(data?.resultType)} where a vector was expected${what}`,
    );
  return data.result.map((r: { metric?: unknown; value?: unknown }) => {
    const value = Array.isArray(r.value) ? Number(r.value[1]) : Number.NaN;
    if (typeof r.metric !== 'object' || r.metric === null || Number.isNaN(value))
      throw new PromQueryError(`Prometheus answered a malformed sample${what}: ${JSON.stringify(r)}`);
    return { metric: r.metric as Record<string, string>, value };
  });
}

/** What the analysis reads at one instant: the answers of both queries. */
export interface MeshSnapshot {
  requests: PromSample[];
  buckets: PromSample[];
}

const keyOf = (m: Record<string, string>, labels: readonly string[]) =>
  labels.map((l) => m[l] ?? '').join('\u0000');

/**
 * end − start per series (matched by the labels), as counters: a series that fell (a restarted pod) counts from
 * zero, a series new at the end counts whole.
 */
export function counterDelta(
  start: readonly PromSample[],
  end: readonly PromSample[],
  labels: readonly string[],
) {
  const before = new Map(start.map((s) => [keyOf(s.metric, labels), s.value]));
  return end.map((s) => {
    const was = before.get(keyOf(s.metric, labels)) ?? 0;
    return { metric: s.metric, value: s.value >= was ? s.value - was : s.value };
  });
}

/** Per version: answers, 5xx and the latency buckets of a step, and the requests that reached none of `versions`. */
export interface StepCounts {
  versions: Record<string, VersionSample & { buckets: HistogramBucket[] }>;
  /** Requests with another destination_version (unknown: no route, no healthy upstream). */
  unattributed: number;
}

/** The step's samples from the snapshots at its start and end. */
export function stepCounts(start: MeshSnapshot, end: MeshSnapshot, versions: readonly string[]): StepCounts {
  const out: StepCounts = { versions: {}, unattributed: 0 };
  for (const v of versions)
    out.versions[v] = { version: v, requests: 0, errors: 0, latenciesMs: [], buckets: [] };
  for (const s of counterDelta(start.requests, end.requests, ['destination_version', 'response_code'])) {
    const n = Math.round(s.value);
    const target = out.versions[s.metric.destination_version ?? ''];
    if (!target) {
      out.unattributed += n;
      continue;
    }
    target.requests += n;
    if (/^5\d\d$/.test(s.metric.response_code ?? '')) target.errors += n;
  }
  const perVersion = new Map<string, Map<number, number>>();
  for (const s of counterDelta(start.buckets, end.buckets, ['destination_version', 'le'])) {
    const v = s.metric.destination_version ?? '';
    if (!out.versions[v]) continue;
    const le = s.metric.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.metric.le);
    if (Number.isNaN(le))
      throw new PromQueryError(`a bucket without a numeric le: ${JSON.stringify(s.metric)}`);
    const m = perVersion.get(v) ?? new Map<number, number>();
    m.set(le, (m.get(le) ?? 0) + Math.round(s.value));
    perVersion.set(v, m);
  }
  for (const v of versions) {
    const sample = out.versions[v] as StepCounts['versions'][string];
    const m = perVersion.get(v) ?? new Map<number, number>();
    if (!m.has(Number.POSITIVE_INFINITY)) m.set(Number.POSITIVE_INFINITY, sample.requests);
    // Cumulative counts must not fall with le (they cannot, but a scrape between two series could): keep a
    // running maximum.
    let max = 0;
    sample.buckets = [...m.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([le, count]) => {
        max = Math.max(max, count);
        return { le, count: max };
      });
  }
  return out;
}

/** The answers per version of an instant vector by `label` (the app's own counts: version). */
export function countsBy(samples: readonly PromSample[], label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    const k = s.metric[label] ?? '';
    out[k] = (out[k] ?? 0) + Math.round(s.value);
  }
  return out;
}
