import {
  createServer,
  type RequestListener,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AppConfig } from './config.js';

/** Above the idle timeouts of common proxies (Envoy/Istio 1 h is off by default, AWS ALB 60 s, nginx 60 s). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;

export interface Lifecycle {
  /** True from the first SIGTERM/SIGINT on; the app's /readyz answers 503. */
  readonly shuttingDown: boolean;
}

export interface RunningServer {
  server: Server;
  port: number;
}

type ServeConfig = Pick<AppConfig, 'port' | 'host' | 'shutdownDrainMs' | 'shutdownTimeoutMs'>;

/**
 * Graceful shutdown, in the order a mesh needs it:
 * 1. on SIGTERM/SIGINT, readiness fails at once (the endpoint is taken out of rotation) but requests are still served;
 * 2. after SHUTDOWN_DRAIN_MS the listener closes, idle keep-alive connections are closed, responses still in flight
 *    carry `Connection: close` so no client reuses a closing connection;
 * 3. exit 0 once the last connection is gone, or exit 1 when SHUTDOWN_TIMEOUT_MS (counted from the signal) passes.
 * A second signal exits at once with status 1.
 */
export function createLifecycle(
  config: ServeConfig,
  logger: Logger,
  exit: (code: number) => never,
  version: string,
) {
  const state = { shuttingDown: false, closing: false };
  const inFlight = new Set<ServerResponse>();
  let server: Server | undefined;

  const track = (_req: unknown, res: ServerResponse) => {
    if (state.closing) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (state.closing) server?.closeIdleConnections();
    });
  };

  function shutdown(signal: NodeJS.Signals): void {
    if (state.shuttingDown) {
      logger.warn({ signal }, 'second signal during shutdown, exiting now');
      exit(1);
    }
    state.shuttingDown = true;
    logger.info({ signal, drainMs: config.shutdownDrainMs }, 'shutdown started, readiness now fails');

    setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs, inFlight: inFlight.size }, 'shutdown timed out');
      exit(1);
    }, config.shutdownTimeoutMs).unref();

    setTimeout(() => {
      state.closing = true;
      for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      logger.info({ inFlight: inFlight.size }, 'drain over, closing the server');
      if (!server) exit(0);
      server.close((err) => {
        if (err) logger.error({ err }, 'server close failed');
        else logger.info('server closed');
        exit(err ? 1 : 0);
      });
      server.closeIdleConnections();
    }, config.shutdownDrainMs);
  }

  return {
    state: state as Lifecycle,
    isShuttingDown: () => state.shuttingDown,
    shutdown,

    /** Creates the HTTP server for `app`, listens, and wires SIGTERM/SIGINT. */
    listen(app: RequestListener): Promise<RunningServer> {
      const s = createServer();
      server = s;
      s.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      s.headersTimeout = HEADERS_TIMEOUT_MS;
      s.on('request', track); // before the app, so that it sees every request first
      s.on('request', app);
      s.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
        answerClientError(err, socket, version),
      );
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
      return new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(config.port, config.host, () => {
          s.off('error', reject);
          resolve({ server: s, port: (s.address() as AddressInfo).port });
        });
      });
    },
  };
}

/**
 * Requests Node rejects before Express sees them (malformed, headers too large, too slow) still get a JSON answer
 * with the version header, instead of Node's bare one.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, version: string): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const reason = STATUS_CODES[status] ?? 'Bad Request';
  const body = JSON.stringify({ status, error: reason, message: reason });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      `x-app-version: ${version}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'cache-control: no-store\r\n' +
      'connection: close\r\n\r\n' +
      body,
  );
}
