import { hostname as osHostname } from 'node:os';
import express, { type ErrorRequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BuildInfo } from './build-info.js';
import type { AppConfig } from './config.js';
import { registerMetrics, UNMATCHED_ROUTE } from './metrics.js';
import { pageColor, releaseFor } from './release.js';

export interface AppDeps {
  build: BuildInfo;
  config: Pick<AppConfig, 'faultErrorRate' | 'faultDelayMs' | 'color'>;
  /** Metrics go here; the caller owns it (tests pass a fresh one per app). */
  registry: Registry;
  logger: Logger;
  /** Source of uniform numbers in [0, 1) for the error-rate fault knob; seeded in tests. */
  random?: () => number;
  /** True once shutdown has begun: /readyz then answers 503. */
  isShuttingDown?: () => boolean;
  /** Reported in `/`; defaults to the machine's (the pod's) host name. */
  hostname?: string;
}

/** An error whose status and message may be shown to the client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const BODY_LIMIT = '16kb';
/** Probes and scrapes are not request-logged: they would drown the useful lines. */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const JSON_TYPE = 'application/json; charset=utf-8';

/** Builds the Express app. It never listens: main.ts does, tests use supertest. */
export function createApp(deps: AppDeps): express.Express {
  const { build, config, registry, logger } = deps;
  const random = deps.random ?? Math.random;
  const isShuttingDown = deps.isShuttingDown ?? (() => false);
  const release = releaseFor(build.version);
  const metrics = registerMetrics(registry, build.version);

  // `/` answers are the same for every request: render them once.
  const info = {
    app: 'webapp',
    version: build.version,
    color: pageColor(config.color),
    message: release.message,
    hostname: deps.hostname ?? osHostname(),
    ...(release.features ? { features: release.features } : {}),
  };
  const rootJson = JSON.stringify(info);
  const rootHtml = renderPage(info, release.features);
  const versionJson = JSON.stringify({
    version: build.version,
    buildTime: build.buildTime,
    gitSha: build.gitSha,
  });

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  // First, so that every answer (404, 413, 500 included) carries the version and is never cached: a cached
  // answer would hide which version served a request.
  app.use((req, res, next) => {
    res.setHeader('x-app-version', build.version);
    res.setHeader('cache-control', 'no-store');
    const start = performance.now();
    res.once('finish', () => {
      const route = req.route ? `${req.baseUrl}${req.route.path}` : UNMATCHED_ROUTE;
      metrics.record(route, req.method, res.statusCode, (performance.now() - start) / 1000);
    });
    next();
  });

  // With LOG_LEVEL=silent no request line would ever be written, so skip the per-request logger work entirely.
  if (logger.isLevelEnabled('fatal')) {
    app.use((req, res, next) => {
      if (QUIET_PATHS.has(pathOf(req.url))) {
        next();
        return;
      }
      const started = process.hrtime.bigint();
      const header = req.headers['x-request-id'];
      const id =
        typeof header === 'string' && header.length > 0 && header.length <= 128 ? header : nextRequestId();
      // One line per request when the response is finished (or the client went away): pino serialises it
      // without per-request child loggers, which keeps logging at info cheap.
      res.once('close', () => {
        const status = res.statusCode;
        const level = res.locals.error || status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
        if (!logger.isLevelEnabled(level)) return;
        logger[level](
          {
            req: { id, method: req.method, url: req.originalUrl, remoteAddress: req.socket.remoteAddress },
            res: { statusCode: status },
            responseTime: Number(process.hrtime.bigint() - started) / 1e6,
            aborted: !res.writableFinished || undefined,
            err: res.locals.error,
          },
          'request completed',
        );
      });
      next();
    });
  }

  app.use(helmet());
  app.use(express.json({ limit: BODY_LIMIT }));

  const sendJson = (res: express.Response, status: number, body: string) =>
    res.status(status).setHeader('content-type', JSON_TYPE).end(body);

  app.get('/', async (req, res) => {
    if (config.faultDelayMs > 0) await delay(config.faultDelayMs);
    if (config.faultErrorRate > 0 && random() < config.faultErrorRate) {
      throw new HttpError(500, 'injected fault (FAULT_ERROR_RATE)');
    }
    res.vary('Accept');
    if (req.accepts(['application/json', 'text/html']) === 'text/html') {
      res.status(200).type('html').end(rootHtml);
    } else {
      sendJson(res, 200, rootJson);
    }
  });

  app.get('/version', (_req, res) => {
    sendJson(res, 200, versionJson);
  });

  app.get('/healthz', (_req, res) => {
    sendJson(res, 200, '{"status":"ok"}');
  });

  app.get('/readyz', (_req, res) => {
    if (isShuttingDown()) sendJson(res, 503, '{"status":"shutting down"}');
    else sendJson(res, 200, '{"status":"ready"}');
  });

  app.get('/metrics', async (_req, res) => {
    const text = await registry.metrics();
    res.status(200).setHeader('content-type', registry.contentType).end(text);
  });

  app.use((req, _res, next) => {
    next(new HttpError(404, `no route for ${req.method} ${pathOf(req.originalUrl)}`));
  });

  const onError: ErrorRequestHandler = (err, _req, res, next) => {
    const status = statusOf(err);
    // Only messages meant for clients are shown; never a stack trace.
    const exposed = err instanceof HttpError || (status < 500 && err?.expose === true);
    const message = exposed && typeof err.message === 'string' ? err.message : defaultMessage(status);
    // The request log line then carries the real error (with its stack); 4xx are logged without.
    if (status >= 500) res.locals.error = err;
    if (res.headersSent) {
      next(err);
      return;
    }
    sendJson(res, status, JSON.stringify({ status, error: defaultMessage(status), message }));
  };
  app.use(onError);

  return app;
}

let requestCounter = 0;
function nextRequestId(): number {
  requestCounter = (requestCounter + 1) & 0x7fffffff;
  return requestCounter;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function statusOf(err: unknown): number {
  const e = err as { status?: unknown; statusCode?: unknown } | null;
  const status = typeof e?.status === 'number' ? e.status : e?.statusCode;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
    ? status
    : 500;
}

const MESSAGES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
};
function defaultMessage(status: number): string {
  return MESSAGES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function renderPage(
  info: { version: string; color: string; message: string; hostname: string },
  features?: string[],
) {
  const v = escapeHtml(info.version);
  const list = features?.length
    ? `<ul>${features.map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>webapp ${v}</title>
<style>
body{margin:0;min-height:100vh;display:grid;place-items:center;font-family:system-ui,sans-serif;background:${escapeHtml(info.color)};color:#fff}
main{text-align:center;padding:2rem}h1{font-size:5rem;margin:0}p{font-size:1.25rem}
</style>
</head>
<body>
<main>
<h1>${v}</h1>
<p>${escapeHtml(info.message)}</p>
${list}
<p>served by <code>${escapeHtml(info.hostname)}</code></p>
</main>
</body>
</html>
`;
}
