/**
 * The local gateway: a Node http server that routes each request by the stage's route table, the Envoy
 * configuration Istio's ingress gateway gets (gatewayRouteTable of @rollouts/stages, compiled once), and proxies it
 * with undici (one keep-alive Pool per upstream). The routing table is one immutable object swapped by reference:
 * a request reads it once, so a stage switch never changes or fails a request in flight.
 *
 * What Envoy does that is emulated here, in its order:
 * - HTTP/1.0 is refused with 426 (Istio does not enable accept_http_10); several Host headers are refused (400);
 * - the path is normalised (normalize_path); a path Envoy rejects gets 400; one whose normalisation is not
 *   reproduced gets 400 with the reason in the body (refused, not guessed);
 * - the virtual host is picked by Host (port ignored), the first route that matches wins (header values joined
 *   with ","); none: 404 with an empty body (flag NR);
 * - one weighted cluster is drawn per request; a cluster Istio would not create answers 503 with an empty body
 *   (NC), one without a running endpoint 503 "no healthy upstream" (UH);
 * - the route's retry policy: failed attempts are retried on another endpoint of the cluster when the policy's
 *   retryOn covers the failure (connect-failure, reset, 5xx, gateway-error, retriable-status-codes,
 *   retriable-4xx, gRPC statuses), with Envoy's jittered back-off; only requests without a body are retried
 *   (Envoy buffers bodies to retry them; this gateway streams them);
 * - the route's timeout (and perTryTimeout): 504 "upstream request timeout" (UT); without one Istio sets none, and
 *   this gateway keeps its own 30 s limit (`upstreamTimeoutMs`) against a hung workload;
 * - the route's response header operations (remove, then set, then add) on every answer of the route, the 503 and
 *   504 the gateway gives itself included, as Envoy's router applies them to its local replies.
 */
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type CompiledRouteTable,
  type GatewayRouteTable,
  type ResponseHeaders,
  type RetryPolicy,
  type Route,
  routeRequest,
} from '@rollouts/stages';
import { type Dispatcher, Pool } from 'undici';
import {
  createGatewayMetrics,
  type DestinationLabels,
  type GatewayMetrics,
  UNKNOWN_DESTINATION,
} from './metrics.js';

/** A running workload the gateway can send requests to. */
export interface Upstream extends DestinationLabels {
  /** http://127.0.0.1:3001 */
  origin: string;
}

/** A cluster of the route table with the running workloads behind it. */
export interface ClusterTarget {
  /** outbound|80|v1|webapp.rollouts.svc.cluster.local */
  name: string;
  /** Subset name, or null for the whole host. */
  subset: string | null;
  /** false: Istio creates no such cluster (503, flag NC). */
  exists: boolean;
  /** Workloads whose labels match the subset and that run (round robin among them); empty: 503 UH. */
  upstreams: readonly Upstream[];
}

export interface WeightedDestination {
  weight: number;
  /** Subset name, or null for the whole host. */
  subset: string | null;
  cluster: ClusterTarget;
  /** The cluster's upstreams (kept for describeRoutes). */
  upstreams: readonly Upstream[];
}

/** The retry policy of a route as the gateway applies it. */
export interface RetryPlan {
  numRetries: number;
  on: ReadonlySet<string>;
  statusCodes: ReadonlySet<number>;
  perTryTimeoutMs: number;
  baseIntervalMs: number;
  /** Envoy's previous_hosts predicate: a retry prefers an endpoint not tried yet. */
  otherHost: boolean;
}

export interface ResolvedRoute {
  /** Index of the http route in the VirtualService. */
  index: number;
  name: string | null;
  /** The Envoy route it was compiled from. */
  route: Route | null;
  destinations: readonly WeightedDestination[];
  /** The route's response header operations (remove, set, add), applied to every answer of the route. */
  responseHeaders: ResponseHeaders | null;
  /** The route's request header operations (same shape), applied to what the upstream gets. */
  requestHeaders?: ResponseHeaders | null;
  retry: RetryPlan | null;
  /** The route timeout in ms; 0: none. */
  timeoutMs: number;
}

export interface RequestInfo {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Every value of every header (Node's headersDistinct); `headers` is used when absent. */
  headersDistinct?: Readonly<Record<string, string[] | undefined>>;
}

/** What the gateway does with a request. */
export type GatewayDecision =
  /** `path`: the normalised path (and query) the upstream gets, as Envoy forwards it. */
  | { kind: 'route'; route: ResolvedRoute; path: string }
  | { kind: 'no-route' }
  | { kind: 'rejected'; status: number; body: string; flag: string };

/** What the gateway applies. Immutable once built; replaced as a whole on a stage switch. */
export interface RoutingTable {
  stage: string;
  appliedAt: string;
  /** Weights forced for testing (the verifier must fail then), or null. */
  overrideWeights: Readonly<Record<string, number>> | null;
  /** The route table the gateway routes by (Envoy's shape), or null for a table built by hand (tests). */
  routeTable: GatewayRouteTable | null;
  routes: readonly ResolvedRoute[];
  decide(request: RequestInfo): GatewayDecision;
}

/**
 * A RoutingTable's decision: Envoy's routing decision on the compiled route table (routeRequest of
 * @rollouts/stages), `routes` being the resolved routes of its virtual host (one per Envoy route, in order).
 */
export function decideWith(
  compiled: CompiledRouteTable,
  routes: readonly ResolvedRoute[],
): (request: RequestInfo) => GatewayDecision {
  return (request) => {
    const hosts = request.headersDistinct?.host;
    if (hosts !== undefined && hosts.length > 1) {
      return { kind: 'rejected', status: 400, body: refusedBody('several Host headers'), flag: '-' };
    }
    const d = routeRequest(compiled, {
      method: request.method,
      target: request.path,
      authority: request.headers.host ?? '',
      headers: request.headersDistinct ?? request.headers,
    });
    if (d.kind === 'route') {
      const r = routes[d.routeIndex];
      return r ? { kind: 'route', route: r, path: d.path } : { kind: 'no-route' };
    }
    if (d.kind === 'no-route') return { kind: 'no-route' };
    if (d.kind === 'rejected') return { kind: 'rejected', status: d.status, body: '', flag: '-' };
    return { kind: 'rejected', status: 400, body: refusedBody(d.reason), flag: '-' };
  };
}

export function refusedBody(reason: string): string {
  return `local gateway: request refused, not emulated: ${reason}\n`;
}

export interface GatewayOptions {
  table: RoutingTable;
  metrics?: GatewayMetrics;
  /** The gateway's own limit for an upstream's response headers and between body chunks, ms. Default 30 000. */
  upstreamTimeoutMs?: number;
  /** Random source in [0, 1) for the weighted choice and the retry back-off (tests may seed one). */
  random?: () => number;
  /**
   * Whether an upstream is in rotation now (its workload runs and passes its readiness probe), as Istio's EDS
   * keeps only ready endpoints. Default: every upstream is.
   */
  ready?: (upstream: Upstream) => boolean;
}

/** Methods Envoy treats as idempotent: a request that died with a reused connection is safe to send again. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * undici's errors for a connection the upstream closed or reset before any answer came back: on a kept-alive
 * connection this is most often the upstream going away between requests (Envoy's connection-pool race).
 */
const CLOSED_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node's server has already answered "100 Continue"; undici refuses to send the header upstream.
  'expect',
]);

interface Picker {
  cumulative: number[];
  total: number;
  destinations: readonly WeightedDestination[];
}

/** gRPC status codes of Envoy's retry-on-gRPC policies. */
const GRPC_RETRY: Record<string, string> = {
  '1': 'cancelled',
  '4': 'deadline-exceeded',
  '8': 'resource-exhausted',
  '13': 'internal',
  '14': 'unavailable',
};

type Failure = 'connect-failure' | 'reset' | 'timeout';

/** Whether the retry policy retries a failure before response headers (Envoy's wouldRetryFromReset). */
function retriesFailure(plan: RetryPlan, failure: Failure): boolean {
  const on = plan.on;
  if (on.has('5xx') || on.has('gateway-error')) return true;
  if (failure === 'timeout') return false;
  if (on.has('reset')) return true;
  return failure === 'connect-failure' && (on.has('connect-failure') || on.has('reset-before-request'));
}

/** Whether the retry policy retries an answer (Envoy's shouldRetryHeaders). */
function retriesAnswer(
  plan: RetryPlan,
  status: number,
  headers: Dispatcher.ResponseData['headers'],
): boolean {
  const on = plan.on;
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  if (on.has('retriable-status-codes') && plan.statusCodes.has(status)) return true;
  if (on.has('envoy-ratelimited') && headers['x-envoy-ratelimited'] !== undefined) return true;
  const grpc = headers['grpc-status'];
  const code = Array.isArray(grpc) ? grpc[0] : grpc;
  const contentType = String(headers['content-type'] ?? '');
  if (code !== undefined && contentType.startsWith('application/grpc')) {
    const policy = GRPC_RETRY[code];
    if (policy !== undefined && on.has(policy)) return true;
  }
  return false;
}

function failureOf(err: unknown, perTryTimedOut: boolean): Failure {
  if (perTryTimedOut) return 'timeout';
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND')
    return 'connect-failure';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout';
  return 'reset';
}

/** Turns an Envoy RetryPolicy into what the gateway applies (null: no retries). */
export function retryPlan(
  policy: RetryPolicy | undefined,
  durationMs: (d: string) => number,
): RetryPlan | null {
  if (policy === undefined) return null;
  return {
    numRetries: policy.numRetries,
    on: new Set(policy.retryOn.split(',').filter((t) => t !== '')),
    statusCodes: new Set(policy.retriableStatusCodes ?? []),
    perTryTimeoutMs: policy.perTryTimeout === undefined ? 0 : durationMs(policy.perTryTimeout),
    baseIntervalMs: policy.retryBackOff === undefined ? 25 : durationMs(policy.retryBackOff.baseInterval),
    otherHost: (policy.retryHostPredicate ?? []).length > 0,
  };
}

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly server: Server;
  readonly #servers: Server[] = [];
  #table: RoutingTable;
  readonly #pools = new Map<string, Pool>();
  readonly #pickers = new WeakMap<ResolvedRoute, Picker>();
  readonly #roundRobin = new WeakMap<ClusterTarget, number>();
  readonly #random: () => number;
  readonly #timeoutMs: number;
  readonly #ready: (upstream: Upstream) => boolean;

  constructor(options: GatewayOptions) {
    this.#table = options.table;
    this.#ready = options.ready ?? (() => true);
    this.metrics = options.metrics ?? createGatewayMetrics();
    this.metrics.stageApplied(options.table.stage);
    this.#random = options.random ?? Math.random;
    this.#timeoutMs = options.upstreamTimeoutMs ?? 30_000;
    this.server = this.#newServer();
  }

  get table(): RoutingTable {
    return this.#table;
  }

  /** Atomic switch: requests that already chose an upstream keep it; new requests see the new table. */
  apply(table: RoutingTable): void {
    this.#table = table;
    this.metrics.stageApplied(table.stage);
  }

  /**
   * Listens on host:port (default 127.0.0.1, port 0 = any). With `dualStackLoopback` (default true when host is
   * 127.0.0.1) it also listens on [::1] with the same port, so http://localhost works whichever address
   * localhost resolves to first.
   */
  async listen(port: number, host = '127.0.0.1', dualStackLoopback = host === '127.0.0.1'): Promise<number> {
    await listenOn(this.server, port, host);
    this.#servers.push(this.server);
    const bound = (this.server.address() as AddressInfo).port;
    if (dualStackLoopback) {
      const v6 = this.#newServer();
      try {
        await listenOn(v6, bound, '::1');
        this.#servers.push(v6);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // No IPv6 loopback on this machine: IPv4 alone is fine.
        if (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT' && code !== 'EINVAL') {
          await this.close();
          throw err;
        }
      }
    }
    return bound;
  }

  get port(): number {
    const address = this.server.address() as AddressInfo | null;
    return address?.port ?? 0;
  }

  /** Stops accepting, lets requests in flight finish, closes idle connections and the upstream pools. */
  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      ),
    );
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()));
    this.#pools.clear();
  }

  #newServer(): Server {
    const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      this.#handle(req, res).catch((err: Error) => {
        if (!res.headersSent) sendText(res, 500, `local gateway error: ${err.message}`, null);
        else res.destroy(err);
      });
    });
    server.headersTimeout = 65_000;
    return server;
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        connectTimeout: 5_000,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /** Envoy's weighted clusters: a uniform draw over the total weight, first bucket it falls in. */
  #pickDestination(route: ResolvedRoute): WeightedDestination | null {
    let picker = this.#pickers.get(route);
    if (!picker) {
      const cumulative: number[] = [];
      let total = 0;
      for (const d of route.destinations) {
        total += Math.max(0, d.weight);
        cumulative.push(total);
      }
      picker = { cumulative, total, destinations: route.destinations };
      this.#pickers.set(route, picker);
    }
    if (picker.total <= 0) return null;
    const draw = this.#random() * picker.total;
    let i = 0;
    while (i < picker.cumulative.length - 1 && draw >= (picker.cumulative[i] as number)) i++;
    return picker.destinations[i] ?? null;
  }

  /** The cluster's endpoints in rotation now. */
  #healthy(cluster: ClusterTarget): readonly Upstream[] {
    return cluster.upstreams.filter((u) => this.#ready(u));
  }

  /** Round robin over the cluster's ready endpoints; a retry skips endpoints already tried while others are left. */
  #pickUpstream(
    cluster: ClusterTarget,
    all: readonly Upstream[],
    tried: ReadonlySet<Upstream>,
    otherHost: boolean,
  ): Upstream {
    if (all.length === 1) return all[0] as Upstream;
    const candidates = otherHost && tried.size < all.length ? all.filter((u) => !tried.has(u)) : all;
    const next = this.#roundRobin.get(cluster) ?? 0;
    this.#roundRobin.set(cluster, next + 1);
    return candidates[next % candidates.length] as Upstream;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const table = this.#table; // read once: this request routes with this table
    if (req.httpVersion === '1.0') {
      req.resume();
      sendText(res, 426, '', null);
      this.metrics.record(UNKNOWN_DESTINATION, 426, '-', performance.now() - started);
      return;
    }
    const path = req.url ?? '/';
    const decision = table.decide({
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      headersDistinct: req.headersDistinct,
    });
    if (decision.kind === 'no-route') {
      req.resume();
      res.writeHead(404, { 'content-length': '0' });
      res.end();
      this.metrics.record(UNKNOWN_DESTINATION, 404, 'NR', performance.now() - started);
      return;
    }
    if (decision.kind === 'rejected') {
      req.resume();
      sendText(res, decision.status, decision.body, null);
      this.metrics.record(UNKNOWN_DESTINATION, decision.status, decision.flag, performance.now() - started);
      return;
    }
    const route = decision.route;
    const ops = route.responseHeaders;
    const destination = this.#pickDestination(route);
    if (destination === null || !destination.cluster.exists) {
      req.resume();
      sendText(res, 503, '', ops);
      this.metrics.record(UNKNOWN_DESTINATION, 503, 'NC', performance.now() - started);
      return;
    }
    const cluster = destination.cluster;
    if (this.#healthy(cluster).length === 0) {
      // No ready endpoint: the share this cluster was drawn for fails at once; the split is not changed.
      req.resume();
      sendText(res, 503, 'no healthy upstream', ops);
      this.metrics.record(UNKNOWN_DESTINATION, 503, 'UH', performance.now() - started);
      return;
    }
    await this.#forward(req, res, route, cluster, decision.path, started);
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    route: ResolvedRoute,
    cluster: ClusterTarget,
    path: string,
    started: number,
  ): Promise<void> {
    const ops = route.responseHeaders;
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    const plan = route.retry;
    const maxAttempts = 1 + (plan !== null && !hasBody ? plan.numRetries : 0);
    // The route timeout spans every attempt and the whole response (Envoy's route timeout).
    const routeAbort = new AbortController();
    let routeTimedOut = false;
    const routeTimer =
      route.timeoutMs > 0
        ? setTimeout(() => {
            routeTimedOut = true;
            routeAbort.abort();
          }, route.timeoutMs)
        : null;
    const clientGone = () => routeAbort.abort();
    res.once('close', clientGone);
    const finish = () => {
      if (routeTimer) clearTimeout(routeTimer);
      res.off('close', clientGone);
    };
    const tried = new Set<Upstream>();
    const baseHeaders = forwardHeaders(req);
    // Envoy's router applies the route's request_headers_to_remove / _to_add to what goes upstream.
    if (route.requestHeaders) applyResponseHeaders(baseHeaders, route.requestHeaders);
    let upstream: Upstream = cluster.upstreams[0] as Upstream;
    try {
      for (let attempt = 1; ; attempt++) {
        const healthy = this.#healthy(cluster);
        if (healthy.length === 0) {
          // Every endpoint left rotation while this request was being retried.
          if (hasBody && !req.readableEnded && !req.destroyed) req.resume();
          sendText(res, 503, 'no healthy upstream', ops);
          this.metrics.record(UNKNOWN_DESTINATION, 503, 'UH', performance.now() - started);
          return;
        }
        upstream = this.#pickUpstream(cluster, healthy, tried, plan?.otherHost === true);
        tried.add(upstream);
        const attemptAbort = new AbortController();
        let perTryTimedOut = false;
        const perTry =
          plan !== null && plan.perTryTimeoutMs > 0
            ? setTimeout(() => {
                perTryTimedOut = true;
                attemptAbort.abort();
              }, plan.perTryTimeoutMs)
            : null;
        const onRouteAbort = () => attemptAbort.abort();
        routeAbort.signal.addEventListener('abort', onRouteAbort, { once: true });
        let answer: Dispatcher.ResponseData;
        try {
          answer = await this.#pool(upstream.origin).request({
            path,
            method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
            headers: { ...baseHeaders, 'x-envoy-attempt-count': String(attempt) },
            body: hasBody ? req : null,
            signal: attemptAbort.signal,
          });
        } catch (err) {
          if (perTry) clearTimeout(perTry);
          routeAbort.signal.removeEventListener('abort', onRouteAbort);
          if (hasBody && !req.readableEnded && !req.destroyed) req.resume();
          const elapsed = performance.now() - started;
          if (req.destroyed && res.destroyed) {
            this.metrics.record(upstream, 0, 'DC', elapsed);
            return;
          }
          if (routeTimedOut) {
            sendText(res, 504, 'upstream request timeout', ops);
            this.metrics.record(upstream, 504, 'UT', elapsed);
            return;
          }
          const failure = failureOf(err, perTryTimedOut);
          // A kept-alive connection the upstream closed under an idempotent request without a body, before any
          // answer: nothing was processed, so the retry policy sees a connect failure (Istio's default policy
          // retries those).
          const staleConnection =
            failure === 'reset' &&
            !hasBody &&
            IDEMPOTENT.has(req.method ?? 'GET') &&
            CLOSED_CONNECTION.has((err as NodeJS.ErrnoException).code ?? '');
          if (
            attempt < maxAttempts &&
            plan !== null &&
            retriesFailure(plan, staleConnection ? 'connect-failure' : failure)
          ) {
            await this.#backOff(plan, attempt);
            continue;
          }
          if (failure === 'timeout') {
            sendText(res, 504, 'upstream request timeout', ops);
            this.metrics.record(upstream, 504, 'UT', elapsed);
          } else {
            const reason = failure === 'connect-failure' ? 'connection failure' : 'connection termination';
            const retried = attempt > 1 ? 'retried and the latest reset reason' : 'reset reason';
            sendText(
              res,
              503,
              `upstream connect error or disconnect/reset before headers. ${retried}: ${reason}`,
              ops,
            );
            this.metrics.record(upstream, 503, 'UF', elapsed);
          }
          return;
        }
        if (perTry) clearTimeout(perTry);
        if (
          attempt < maxAttempts &&
          plan !== null &&
          retriesAnswer(plan, answer.statusCode, answer.headers)
        ) {
          routeAbort.signal.removeEventListener('abort', onRouteAbort);
          await answer.body.dump({ limit: 64 * 1024 }).catch(() => {});
          await this.#backOff(plan, attempt);
          continue;
        }
        await this.#relay(req, res, answer, upstream, started, ops, routeAbort.signal, () => routeTimedOut);
        routeAbort.signal.removeEventListener('abort', onRouteAbort);
        return;
      }
    } finally {
      finish();
    }
  }

  /** Envoy's fully jittered exponential back-off: a random wait in [0, (2^n - 1) × base], at most 10 × base. */
  #backOff(plan: RetryPlan, retry: number): Promise<void> {
    const ceiling = Math.min((2 ** retry - 1) * plan.baseIntervalMs, 10 * plan.baseIntervalMs);
    return new Promise((resolve) => setTimeout(resolve, Math.floor(this.#random() * ceiling)));
  }

  async #relay(
    req: IncomingMessage,
    res: ServerResponse,
    answer: Dispatcher.ResponseData,
    upstream: Upstream,
    started: number,
    ops: ResponseHeaders | null,
    signal: AbortSignal,
    timedOut: () => boolean,
  ): Promise<void> {
    const headersAt = performance.now();
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      out[name] = value;
    }
    out['x-envoy-upstream-service-time'] = String(Math.round(headersAt - started));
    if (ops) applyResponseHeaders(out, ops);
    if (res.destroyed) {
      answer.body.destroy();
      this.metrics.record(upstream, answer.statusCode, 'DC', performance.now() - started);
      return;
    }
    res.writeHead(answer.statusCode, out);
    try {
      for await (const chunk of answer.body) {
        if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
        if (signal.aborted) break;
      }
      if (signal.aborted) throw new Error(timedOut() ? 'route timeout' : 'client gone');
      res.end();
      // The upstream answered before reading the whole request body (e.g. a 404 to a large POST): drain the rest
      // so the client is not left blocked mid-upload, as Envoy does.
      if (!req.readableEnded && !req.destroyed) req.resume();
      this.metrics.record(upstream, answer.statusCode, '-', performance.now() - started);
    } catch (err) {
      answer.body.destroy();
      // Reset after the headers went out: the client sees the reset, as with Envoy (UT / UR / DC).
      res.destroy(err as Error);
      const flag = timedOut() ? 'UT' : req.destroyed ? 'DC' : 'UR';
      this.metrics.record(upstream, answer.statusCode, flag, performance.now() - started);
    }
  }
}

/** Envoy's route header operations on a header map: remove, then set (replace), then add (append). */
function applyResponseHeaders(out: Record<string, string | string[]>, ops: ResponseHeaders): void {
  for (const name of ops.remove) delete out[name];
  for (const [name, value] of ops.set) out[name] = value;
  for (const [name, value] of ops.add) {
    const had = out[name];
    out[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
}

/** An answer the gateway gives itself; the route's response headers apply when a route was chosen. */
function sendText(res: ServerResponse, status: number, body: string, ops: ResponseHeaders | null): void {
  if (res.destroyed) return;
  const headers: Record<string, string | string[]> =
    body === ''
      ? { 'content-length': '0' }
      : { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) };
  if (ops) applyResponseHeaders(headers, ops);
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * Request headers an edge Envoy strips from external requests (Envoy's cleanInternalHeaders): a client must not
 * steer retries, timeouts, tracing or stats, or claim to be internal.
 */
const EDGE_STRIPPED = [
  'x-envoy-decorator-operation',
  'x-envoy-downstream-service-cluster',
  'x-envoy-downstream-service-node',
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
  'x-envoy-internal',
  'x-envoy-external-address',
];

/**
 * The headers sent upstream, as Istio's ingress gateway sets them. Its connection manager has
 * use_remote_address: true, xff_num_trusted_hops: 0 (meshConfig gatewayTopology.numTrustedProxies unset) and,
 * since Envoy 1.33, no internal address ranges, so every request is an external one:
 * - x-forwarded-for: the client's value is kept but not trusted; the connection's address is appended;
 * - x-envoy-external-address: the connection's address, the only client address a backend may trust;
 * - x-forwarded-proto: replaced by the connection's scheme (http), whatever the client sent;
 * - x-request-id: a new one (preserve_external_request_id is false);
 * - the internal x-envoy-* headers are removed.
 */
export function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = req.headers.connection
    ? new Set(req.headers.connection.split(',').map((t) => t.trim().toLowerCase()))
    : null;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens?.has(name)) continue;
    out[name] = value;
  }
  for (const name of EDGE_STRIPPED) delete out[name];
  const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const xff = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(',') : xff},${remote}` : remote;
  out['x-envoy-external-address'] = remote;
  out['x-forwarded-proto'] = 'http';
  out['x-request-id'] = randomUUID();
  return out;
}

/** Listens exclusively on host:port; resolves once listening, rejects with the listen error (EADDRINUSE, ...). */
export function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}
