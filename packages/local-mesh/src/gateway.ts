/**
 * The local gateway: a Node http server that routes each request with the compiled stage (Istio's
 * VirtualService semantics come from @rollouts/stages) and proxies it with undici (one keep-alive Pool per
 * upstream). The routing table is one immutable object swapped by reference: a request reads it once, so a
 * stage switch never changes or fails a request in flight.
 *
 * Answers that Envoy would give, kept here:
 * - no matching route: 404 with an empty body (Envoy's NR response flag), as Istio's ingress gateway does;
 * - no endpoint for the chosen subset: 503 "no healthy upstream" (UH);
 * - upstream refused / reset before headers: 503 "upstream connect error or disconnect/reset before headers" (UF);
 * - upstream too slow: 504 "upstream request timeout" (UT).
 * A route's response headers (`headers.response.set` / `add`) go on answers proxied from a workload only, not on
 * these.
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
import type { ResponseHeaders } from '@rollouts/stages';
import { Pool } from 'undici';
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

export interface WeightedDestination {
  weight: number;
  /** Subset name, or null for the whole host. */
  subset: string | null;
  /** Workloads whose labels match the subset (round robin among them); empty -> 503 no healthy upstream. */
  upstreams: readonly Upstream[];
}

export interface ResolvedRoute {
  /** Index of the http route in the VirtualService. */
  index: number;
  name: string | null;
  destinations: readonly WeightedDestination[];
  /** The route's `headers.response` (set, then add), applied to every answer proxied from a workload. */
  responseHeaders: ResponseHeaders | null;
}

export interface RequestInfo {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** What the gateway applies. Immutable once built; replaced as a whole on a stage switch. */
export interface RoutingTable {
  stage: string;
  appliedAt: string;
  /** Weights forced for testing (the verifier must fail then), or null. */
  overrideWeights: Readonly<Record<string, number>> | null;
  routes: readonly ResolvedRoute[];
  match(request: RequestInfo): ResolvedRoute | null;
}

export interface GatewayOptions {
  table: RoutingTable;
  metrics?: GatewayMetrics;
  /** Upstream timeout for the response headers and between body chunks, ms. Default 30 000. */
  upstreamTimeoutMs?: number;
  /** Random source in [0, 1) for the weighted choice (tests may seed one). Default Math.random. */
  random?: () => number;
}

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

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly server: Server;
  readonly #servers: Server[] = [];
  #table: RoutingTable;
  readonly #pools = new Map<string, Pool>();
  readonly #pickers = new WeakMap<ResolvedRoute, Picker>();
  readonly #roundRobin = new WeakMap<WeightedDestination, number>();
  readonly #random: () => number;
  readonly #timeoutMs: number;

  constructor(options: GatewayOptions) {
    this.#table = options.table;
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
    const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.#handle(req, res));
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

  #pick(route: ResolvedRoute): Upstream | null {
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
    // Envoy's weighted clusters: a uniform draw over the total weight, first bucket it falls in.
    const draw = this.#random() * picker.total;
    let i = 0;
    while (i < picker.cumulative.length - 1 && draw >= (picker.cumulative[i] as number)) i++;
    const destination = picker.destinations[i];
    if (!destination || destination.upstreams.length === 0) return null;
    if (destination.upstreams.length === 1) return destination.upstreams[0] as Upstream;
    const next = this.#roundRobin.get(destination) ?? 0;
    this.#roundRobin.set(destination, next + 1);
    return destination.upstreams[next % destination.upstreams.length] as Upstream;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const table = this.#table; // read once: this request routes with this table
    const path = req.url ?? '/';
    const route = table.match({ method: req.method ?? 'GET', path, headers: req.headers });
    if (!route) {
      req.resume();
      res.writeHead(404, { 'content-length': '0' });
      res.end();
      this.metrics.record(UNKNOWN_DESTINATION, 404, 'NR', performance.now() - started);
      return;
    }
    const upstream = this.#pick(route);
    if (!upstream) {
      req.resume();
      sendText(res, 503, 'no healthy upstream');
      this.metrics.record(UNKNOWN_DESTINATION, 503, 'UH', performance.now() - started);
      return;
    }

    const headers = forwardHeaders(req);
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    let headersAt = 0;
    let code = 0;
    this.#pool(upstream.origin).stream(
      {
        path,
        method: (req.method ?? 'GET') as 'GET',
        headers,
        body: hasBody ? req : null,
        opaque: null,
      },
      ({ statusCode, headers: upstreamHeaders }) => {
        headersAt = performance.now();
        code = statusCode;
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamHeaders)) {
          if (value === undefined || HOP_BY_HOP.has(name)) continue;
          out[name] = value;
        }
        out['x-envoy-upstream-service-time'] = String(Math.round(headersAt - started));
        if (route.responseHeaders) applyResponseHeaders(out, route.responseHeaders);
        res.writeHead(statusCode, out);
        return res;
      },
      (err) => {
        const elapsed = performance.now() - started;
        // The upstream answered before reading the whole request body (e.g. a 404 to a large POST): drain the
        // rest so the client is not left blocked mid-upload, as Envoy does.
        if (hasBody && !req.readableEnded && !req.destroyed) req.resume();
        if (!err) {
          this.metrics.record(upstream, code, '-', elapsed);
          return;
        }
        if (res.headersSent) {
          // Reset after the headers went out: the client sees the reset, as with Envoy (flag UR/DC).
          res.destroy(err);
          this.metrics.record(upstream, code, req.destroyed ? 'DC' : 'UR', elapsed);
          return;
        }
        if (req.destroyed && res.destroyed) {
          this.metrics.record(upstream, 0, 'DC', elapsed);
          return;
        }
        const errorCode = (err as NodeJS.ErrnoException).code ?? '';
        if (errorCode === 'UND_ERR_HEADERS_TIMEOUT') {
          sendText(res, 504, 'upstream request timeout');
          this.metrics.record(upstream, 504, 'UT', elapsed);
        } else {
          const reason = errorCode === 'ECONNREFUSED' ? 'connection failure' : 'connection termination';
          sendText(
            res,
            503,
            `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`,
          );
          this.metrics.record(upstream, 503, 'UF', elapsed);
        }
      },
    );
  }
}

/** Istio's `headers.response` on a proxied answer: `set` replaces the app's value, `add` appends one. */
function applyResponseHeaders(out: Record<string, string | string[]>, ops: ResponseHeaders): void {
  for (const [name, value] of ops.set) out[name] = value;
  for (const [name, value] of ops.add) {
    const had = out[name];
    out[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
}

function sendText(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = req.headers.connection
    ? new Set(req.headers.connection.split(',').map((t) => t.trim().toLowerCase()))
    : null;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens?.has(name)) continue;
    out[name] = value;
  }
  const remote = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
  out['x-forwarded-proto'] ??= 'http';
  out['x-request-id'] ??= randomUUID();
  return out;
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
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
