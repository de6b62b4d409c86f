import { Counter, collectDefaultMetrics, Histogram, type Registry } from 'prom-client';

/** Route label for requests that matched no route (404s, errors raised before routing). */
export const UNMATCHED_ROUTE = 'unmatched';

const LABELS = ['route', 'method', 'status_code'] as const;

export interface HttpMetrics {
  record(route: string, method: string, statusCode: number, seconds: number): void;
}

/** Registers the process metrics and the HTTP RED metrics on `registry` (never on prom-client's global one). */
export function registerMetrics(registry: Registry, version: string): HttpMetrics {
  registry.setDefaultLabels({ app: 'webapp', version });
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route template, method and status code',
    labelNames: LABELS,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving the request to the end of the response, by route template, method and status code',
    labelNames: LABELS,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  return {
    record(route, method, statusCode, seconds) {
      const labels = { route, method, status_code: statusCode };
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
  };
}
