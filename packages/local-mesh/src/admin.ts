/**
 * The admin API of the local gateway, on loopback like Envoy's admin interface:
 *   GET  /stage    -> {stage, appliedAt, overrideWeights, gatewayPort}
 *   PUT  /stage    {"stage": "canary-25"}                               -> switch atomically, 200 {stage, appliedAt, previous}
 *                  only with `Authorization: Bearer <token>` (the token `rollout local up` writes to
 *                  .state/local/admin-token, mode 0600) and `content-type: application/json`
 *   PUT  /stage    {"stage": "canary-25", "overrideWeights": {"v2": 20, "v1": 80}}
 *                  forces the weights of the route whose destinations are exactly those subsets (a test hook: the
 *                  verifier must then fail). Unknown stage or bad body -> 400; a stage the checks of the cluster
 *                  path refuse (Istio's validation, a field not emulated, lint errors) -> 422 {error, findings};
 *                  nothing changes either way.
 *   GET  /routes   -> the applied route table: Envoy's RouteConfiguration, the clusters with the local workloads
 *                  behind them, and a summary per route (weights, upstreams)
 *   GET  /metrics  -> Prometheus text: istio_requests_total, istio_request_duration_milliseconds, ...
 *   GET  /workloads -> each workload's health: {workloads: [{version, ready, pid, restarts, ...}]}
 *   GET  /ready    -> 200 {ready: true, ...}
 *
 * Loopback is not a boundary on its own: a page open in the user's browser can send requests to 127.0.0.1, and a
 * DNS-rebinding page can make its own host name point there. So every request must name this API by its loopback
 * address (Host 127.0.0.1:<port> or localhost:<port>), none may carry an Origin (this API serves no pages), and the
 * one request that changes anything needs the token, a JSON body and PUT. Reads need no token: they change nothing
 * and Prometheus scrapes /metrics.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StageApi } from '@rollouts/stages';
import type { Gateway, RoutingTable } from './gateway.js';

/** Builds routing tables; throws BadStageError for an unknown stage, a refused stage or an invalid override. */
export interface TableSource {
  build(stage: string, overrideWeights?: Record<string, number> | null): RoutingTable;
}

/**
 * A stage the admin API refuses: 400 (unknown stage, bad override; `validStages` listed when known) or 422 (the
 * stage file is refused by the checks of the cluster path; `findings` names each).
 */
export class BadStageError extends Error {
  override name = 'BadStageError';
  constructor(
    message: string,
    readonly validStages: readonly string[] = [],
    readonly status: 400 | 422 = 400,
    readonly findings: readonly string[] = [],
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;

export interface AdminServer {
  server: Server;
  /** The bearer token a stage switch must carry. */
  readonly token: string;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

/** A fresh admin token: 32 random bytes, base64url. */
export function newAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

export interface AdminOptions {
  log?: (line: string) => void;
  /** The token PUT /stage requires; default: a fresh one (read it from `admin.token`). */
  token?: string;
  /** Called after each stage switch (e.g. to record the applied stage). */
  onApplied?: (table: RoutingTable) => void;
  /** Each workload's health, for GET /workloads (absent: the endpoint answers an empty list). */
  workloads?: () => readonly unknown[];
  /** Which API carries the stages (shown in GET /stage). Default virtualservice. */
  api?: StageApi;
}

export function createAdmin(gateway: Gateway, source: TableSource, options: AdminOptions = {}): AdminServer {
  const log = options.log ?? (() => {});
  const api = options.api ?? 'virtualservice';
  const token = options.token ?? newAdminToken();
  if (token.length < 16) throw new Error('the admin token must be at least 16 characters');
  const expected = Buffer.from(`Bearer ${token}`);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => json(res, 500, { error: err.message }));
  });

  /** The Host names this API answers to: its loopback address and port (no other name can be rebound here). */
  function hostAllowed(host: string | undefined): boolean {
    const port = (server.address() as AddressInfo | null)?.port;
    return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  }

  function authorized(header: string | undefined): boolean {
    const given = Buffer.from(header ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req.headers.host)) {
      return json(res, 403, {
        error: `Host ${JSON.stringify(req.headers.host ?? '')} is not this admin API's address: call it as 127.0.0.1:${(server.address() as AddressInfo).port}`,
      });
    }
    if (req.headers.origin !== undefined) {
      return json(res, 403, {
        error: 'the admin API takes no requests from web pages (Origin header present)',
      });
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case 'GET /stage':
        return json(res, 200, { ...describeStage(gateway), api });
      case 'PUT /stage': {
        if (!authorized(req.headers.authorization)) {
          return json(res, 401, {
            error:
              'a stage switch needs the admin token: send Authorization: Bearer <token>, the token in .state/local/admin-token (`rollout apply` does)',
          });
        }
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'application/json') {
          return json(res, 415, { error: 'send the body as JSON (content-type: application/json)' });
        }
        return putStage(req, res);
      }
      case 'GET /workloads':
        return json(res, 200, { workloads: options.workloads?.() ?? [] });
      case 'GET /routes':
        return json(res, 200, describeRoutes(gateway.table));
      case 'GET /metrics': {
        const body = await gateway.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': gateway.metrics.registry.contentType });
        res.end(body);
        return;
      }
      case 'GET /ready':
        return json(res, 200, { ready: true, stage: gateway.table.stage, gatewayPort: gateway.port });
      default:
        if (url.pathname === '/stage') {
          res.setHeader('allow', 'GET, PUT');
          return json(res, 405, {
            error: `${req.method} /stage is not allowed: GET reads the stage, PUT switches it`,
          });
        }
        return json(res, 404, {
          error: `no admin endpoint ${route}`,
          endpoints: [
            'GET /stage',
            'PUT /stage',
            'GET /routes',
            'GET /workloads',
            'GET /metrics',
            'GET /ready',
          ],
        });
    }
  }

  async function putStage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) {
      raw += chunk;
      if (raw.length > MAX_BODY) return json(res, 413, { error: 'body too large' });
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return json(res, 400, { error: 'body must be JSON like {"stage": "canary-25"}' });
    }
    if (
      typeof body !== 'object' ||
      body === null ||
      typeof (body as { stage?: unknown }).stage !== 'string'
    ) {
      return json(res, 400, { error: 'body must be JSON like {"stage": "canary-25"}' });
    }
    const { stage, overrideWeights } = body as { stage: string; overrideWeights?: unknown };
    if (overrideWeights !== undefined && overrideWeights !== null && !isWeights(overrideWeights)) {
      return json(res, 400, { error: 'overrideWeights must map subset names to non-negative numbers' });
    }
    let table: RoutingTable;
    try {
      table = source.build(stage, (overrideWeights as Record<string, number> | undefined) ?? null);
    } catch (err) {
      if (err instanceof BadStageError) {
        log(`refused stage ${stage}: ${err.message}`);
        return json(res, err.status, {
          error: err.message,
          validStages: err.validStages,
          findings: err.findings,
        });
      }
      throw err;
    }
    const previous = gateway.table.stage;
    gateway.apply(table);
    options.onApplied?.(table);
    log(
      `applied stage ${table.stage}${table.overrideWeights ? ` with forced weights ${JSON.stringify(table.overrideWeights)}` : ''} (was ${previous})`,
    );
    return json(res, 200, { ...describeStage(gateway), api, previous });
  }

  return {
    server,
    token,
    listen: (port, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host, exclusive: true }, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function isWeights(value: unknown): value is Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return (
    entries.length > 0 && entries.every(([, v]) => typeof v === 'number' && Number.isFinite(v) && v >= 0)
  );
}

export function describeStage(gateway: Gateway) {
  const t = gateway.table;
  return {
    stage: t.stage,
    appliedAt: t.appliedAt,
    overrideWeights: t.overrideWeights,
    gatewayPort: gateway.port,
  };
}

export function describeRoutes(table: RoutingTable) {
  const origins = new Map(
    table.routes.flatMap((r) => r.destinations.map((d) => [d.cluster.name, d.cluster.upstreams] as const)),
  );
  return {
    stage: table.stage,
    appliedAt: table.appliedAt,
    overrideWeights: table.overrideWeights,
    routeConfiguration: table.routeTable?.routeConfiguration ?? null,
    clusters: (table.routeTable?.clusters ?? []).map((c) => ({
      ...c,
      upstreams: (origins.get(c.name) ?? []).map((u) => ({
        workload: u.workload,
        version: u.version,
        origin: u.origin,
      })),
    })),
    routes: table.routes.map((r) => ({
      index: r.index,
      name: r.name,
      timeoutMs: r.timeoutMs,
      retries: r.retry === null ? 0 : r.retry.numRetries,
      destinations: r.destinations.map((d) => ({
        cluster: d.cluster.name,
        subset: d.subset,
        weight: d.weight,
        upstreams: d.upstreams.map((u) => ({ workload: u.workload, version: u.version, origin: u.origin })),
      })),
    })),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
