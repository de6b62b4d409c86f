/**
 * Istio's standard metrics, as the ingress gateway would report them (reporter="source"), in a prom-client
 * Registry that is passed in (no global registry).
 * https://istio.io/latest/docs/reference/config/metrics/
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const SOURCE_WORKLOAD = 'local-gateway';

/** Istio's default buckets for istio_request_duration_milliseconds. */
const ISTIO_DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

const LABELS = [
  'reporter',
  'source_workload',
  'source_app',
  'destination_workload',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_canonical_service',
  'destination_canonical_revision',
  'request_protocol',
  'response_code',
  'response_flags',
] as const;

type Label = (typeof LABELS)[number];

export interface DestinationLabels {
  workload: string;
  app: string;
  version: string;
  service: string;
}

/** When no destination was chosen (no route): Istio reports "unknown". */
export const UNKNOWN_DESTINATION: DestinationLabels = {
  workload: 'unknown',
  app: 'unknown',
  version: 'unknown',
  service: 'unknown',
};

export interface GatewayMetrics {
  registry: Registry;
  /** Records one finished request. `flags` follows Envoy's response flags (NR, UF, UH, UT, DC) or "-". */
  record(destination: DestinationLabels, code: number, flags: string, durationMs: number): void;
  stageApplied(stage: string): void;
}

export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  const requests = new Counter({
    name: 'istio_requests_total',
    help: 'Requests handled by the local gateway, as Istio reports them',
    labelNames: LABELS,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'istio_request_duration_milliseconds',
    help: 'Request duration through the local gateway, milliseconds',
    labelNames: LABELS,
    buckets: ISTIO_DURATION_BUCKETS,
    registers: [registry],
  });
  const stageInfo = new Gauge({
    name: 'local_gateway_stage_info',
    help: 'The stage the local gateway applies (value 1)',
    labelNames: ['stage'],
    registers: [registry],
  });
  const switches = new Counter({
    name: 'local_gateway_stage_switches_total',
    help: 'Stage switches applied through the admin API',
    registers: [registry],
  });

  // Label sets are few (destinations x codes); cache the children so a request costs two increments.
  const children = new Map<
    string,
    { count: ReturnType<Counter<Label>['labels']>; hist: ReturnType<Histogram<Label>['labels']> }
  >();
  return {
    registry,
    record(destination, code, flags, durationMs) {
      const key = `${destination.workload}\u0000${destination.version}\u0000${code}\u0000${flags}`;
      let child = children.get(key);
      if (!child) {
        const labels: Record<Label, string> = {
          reporter: 'source',
          source_workload: SOURCE_WORKLOAD,
          source_app: SOURCE_WORKLOAD,
          destination_workload: destination.workload,
          destination_app: destination.app,
          destination_version: destination.version,
          destination_service: destination.service,
          destination_service_name: destination.service,
          destination_canonical_service: destination.app,
          destination_canonical_revision: destination.version,
          request_protocol: 'http',
          response_code: String(code),
          response_flags: flags,
        };
        child = { count: requests.labels(labels), hist: duration.labels(labels) };
        children.set(key, child);
      }
      child.count.inc();
      child.hist.observe(durationMs);
    },
    stageApplied(stage) {
      stageInfo.reset();
      stageInfo.set({ stage }, 1);
      switches.inc();
    },
  };
}
