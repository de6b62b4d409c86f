/**
 * The watch server: serves the page (static files from this package, the page's modules from dist/page, and
 * @rollouts/split-check's built ESM, nothing from elsewhere), sends the traffic itself and streams each answer to
 * the page as server-sent events.
 *
 *   GET  /                 the page
 *   GET  /api/config       target, gateway, stages with their expected split per override profile, band settings
 *   GET  /api/events       SSE: snapshot, answers (batched every 100 ms), stage, settings, switch, status
 *   GET  /api/status       traffic counters
 *   POST /api/settings     {"rate": 20, "overrides": ["x-canary: always"]}
 *   POST /api/stage        {"stage": "canary-25"}: the local path's admin API (PUT /stage); on the cluster 409
 *                          with the `make` command to run instead
 *
 * Why the server sends the requests (and not the browser through a proxy): the count and the pace of requests
 * are set in one place and bounded there, however many tabs watch; latency is measured next to the gateway, not
 * through a browser's timer throttling and connection limit; and the page never needs to reach the gateway.
 * Requests are sent only while at least one page is connected to /api/events; the page disconnects while its
 * tab is hidden.
 *
 * Protection: it listens on loopback only; every request must name this server in Host (a DNS-rebinding page
 * cannot reach it under another name); a POST must be JSON and, when it comes from a browser, from this
 * server's own origin (a page elsewhere cannot switch stages). The admin API it calls has the protection its
 * own README gives it: loopback only.
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenOn } from '@rollouts/local-mesh';
import { type Expectations, headersFor, loadAnalysis, loadExpectations } from './expectations.js';
import { appendWindow, StageTracker } from './page/model.js';
import {
  type Answer,
  profileKey,
  type Snapshot,
  type SwitchResult,
  type TrafficStatus,
  type WatchConfig,
  type WatchSettings,
} from './page/protocol.js';
import { Traffic } from './traffic.js';

export interface WatchOptions {
  /** The repository root (istio/stages, istio/base, the chart's values). */
  root: string;
  target: 'local' | 'cluster';
  targetReason?: string;
  /** Where the traffic goes. */
  gatewayUrl: string;
  /** The local path's admin API (target local), e.g. http://127.0.0.1:15000. */
  adminUrl?: string | null;
  /** Its token (.state/local/admin-token), sent on a stage switch; the page itself never sees it. */
  adminToken?: string | null;
  /** 0 picks a free port. Default 0. */
  port?: number;
  /** Requests per second at start. Default 20. */
  rate?: number;
  /** Highest rate the page may set. Default 100. */
  maxRate?: number;
  maxInFlight?: number;
  /** Answers in the grid and in the share's window. Default 400. */
  windowSize?: number;
  /** Per request, ms. Default 5000. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface WatchServer {
  /** http://localhost:<port> (or http://127.0.0.1:<port> when [::1] is not available). */
  url: string;
  port: number;
  config: WatchConfig;
  traffic: Traffic;
  settings(): WatchSettings;
  status(): TrafficStatus;
  close(): Promise<void>;
}

export class WatchPortInUseError extends Error {
  override name = 'WatchPortInUseError';
  constructor(readonly port: number) {
    super(
      `port ${port} (the watch page) is already in use: stop what listens there, or choose another port ` +
        `with WATCH_PORT, e.g. WATCH_PORT=${port + 1} (WATCH_PORT=0 picks a free one)`,
    );
  }
}

const MAX_BODY = 16 * 1024;
const MAX_SUBSCRIBERS = 32;
const FLUSH_MS = 100;

/** packages/watch: one level above both src/ (tests) and dist/ (the build). */
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STATIC_DIR = join(PACKAGE_ROOT, 'static');
const PAGE_DIR = join(PACKAGE_ROOT, 'dist', 'page');
const SPLIT_CHECK_DIR = dirname(createRequire(import.meta.url).resolve('@rollouts/split-check'));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** A file name inside one directory: letters, digits, dots, dashes; no path. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export async function startWatchServer(options: WatchOptions): Promise<WatchServer> {
  const log = options.log ?? (() => {});
  const windowSize = options.windowSize ?? 400;
  const maxRate = options.maxRate ?? 100;
  const adminUrl = options.target === 'local' ? (options.adminUrl ?? null) : null;
  const command = (stage: string) =>
    options.target === 'local' ? `make ${stage} TARGET=local` : `make ${stage}`;
  const expectations: Expectations = loadExpectations(options.root, command);
  const gatewayUrl = new URL(options.gatewayUrl).origin;
  let analysis: WatchConfig['analysis'] = null;
  let analysisError: string | null = null;
  try {
    analysis = loadAnalysis(options.root);
  } catch (err) {
    analysisError = `${(err as Error).message}`;
    log(`canary analysis not shown: ${analysisError}`);
  }
  const config: WatchConfig = {
    target: options.target,
    targetReason: options.targetReason ?? '',
    gatewayUrl,
    canSwitch: adminUrl !== null,
    stages: expectations.stages,
    brokenStages: expectations.brokenStages,
    overrides: expectations.overrides,
    confidence: expectations.confidence,
    alpha: expectations.alpha,
    windowSize,
    rate: { min: 1, max: maxRate },
    maxInFlight: options.maxInFlight ?? 8,
    analysis,
    analysisError,
  };
  const settings: WatchSettings = {
    rate: clampRate(options.rate ?? 20, maxRate),
    overrides: [],
  };
  const indexHtml = readFileSync(join(STATIC_DIR, 'index.html'), 'utf8');
  const csp = contentSecurityPolicy(indexHtml);

  let recent: Answer[] = [];
  const tracker = new StageTracker();
  const subscribers = new Set<ServerResponse>();
  let pending: Answer[] = [];
  let flushTimer: NodeJS.Timeout | null = null;

  const traffic = new Traffic({
    gatewayUrl,
    rate: settings.rate,
    maxInFlight: config.maxInFlight,
    timeoutMs: options.timeoutMs ?? 5000,
    headers: () => ({
      profile: profileKey(settings.overrides),
      headers: headersFor(config.overrides, settings.overrides),
    }),
    onAnswer: (answer) => {
      recent = appendWindow(recent, [answer], windowSize);
      const change = tracker.observe(answer);
      if (change) {
        log(`stage ${change.stage} (was ${change.from ?? 'unknown'})`);
        broadcast('stage', change);
      }
      pending.push(answer);
      flushTimer ??= setTimeout(flush, FLUSH_MS);
    },
  });

  function flush(): void {
    flushTimer = null;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    broadcast('answers', batch);
  }

  function status(): TrafficStatus {
    const s = traffic.stats();
    return {
      sending: s.running,
      subscribers: subscribers.size,
      sent: s.sent,
      answered: s.answered,
      failed: s.failed,
      inFlight: s.inFlight,
      skipped: s.skipped,
    };
  }

  function broadcast(event: string, data: unknown): void {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of subscribers) res.write(frame);
  }

  const statusTimer = setInterval(() => {
    if (subscribers.size > 0) broadcast('status', status());
  }, 1000);
  const pingTimer = setInterval(() => {
    for (const res of subscribers) res.write(': ping\n\n');
  }, 15_000);
  statusTimer.unref();
  pingTimer.unref();

  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: Error) => {
      log(`error: ${err.stack ?? err.message}`);
      json(res, 500, { error: err.message });
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      return json(res, 421, { error: `this server answers only as ${[...allowedHosts].join(', ')}` });
    }
    const url = new URL(req.url ?? '/', 'http://watch');
    const path = url.pathname;
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/' || path === '/index.html')
        return sendText(res, indexHtml, TYPES['.html'] as string, csp);
      if (path === '/api/config') return json(res, 200, config);
      if (path === '/api/status') return json(res, 200, { ...status(), settings });
      if (path === '/api/events') return subscribe(req, res);
      if (path.startsWith('/static/')) return sendFile(res, STATIC_DIR, path.slice('/static/'.length));
      if (path.startsWith('/page/')) return sendFile(res, PAGE_DIR, path.slice('/page/'.length));
      if (path.startsWith('/vendor/split-check/')) {
        return sendFile(res, SPLIT_CHECK_DIR, path.slice('/vendor/split-check/'.length));
      }
      return json(res, 404, { error: `not found: ${path}` });
    }
    if (req.method === 'POST' && (path === '/api/settings' || path === '/api/stage')) {
      const refused = refusePost(req);
      if (refused) return json(res, refused.status, { error: refused.error });
      const body = await readJson(req);
      if (!body.ok) return json(res, body.status, { error: body.error });
      return path === '/api/settings' ? postSettings(res, body.value) : postStage(res, body.value);
    }
    res.setHeader('allow', 'GET, HEAD, POST');
    return json(res, 405, { error: `${req.method} ${path} is not allowed` });
  }

  /** A POST from a browser must come from this page; any POST must be JSON (no form can send it cross-site). */
  function refusePost(req: IncomingMessage): { status: number; error: string } | null {
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) {
      return {
        status: 403,
        error: `requests from ${origin} are refused: only this page may change the stream`,
      };
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return { status: 403, error: `cross-site request refused (sec-fetch-site: ${site})` };
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      return { status: 415, error: 'the body must be JSON (content-type: application/json)' };
    }
    return null;
  }

  function postSettings(res: ServerResponse, body: unknown): undefined {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return json(res, 400, {
        error: 'body must be JSON like {"rate": 20, "overrides": ["x-canary: always"]}',
      });
    }
    const { rate, overrides } = body as { rate?: unknown; overrides?: unknown };
    if (rate !== undefined) {
      if (
        typeof rate !== 'number' ||
        !Number.isFinite(rate) ||
        rate < config.rate.min ||
        rate > config.rate.max
      ) {
        return json(res, 400, {
          error: `rate must be a number of requests per second from ${config.rate.min} to ${config.rate.max}`,
        });
      }
    }
    const known = config.overrides.map((o) => o.name);
    if (overrides !== undefined) {
      if (
        !Array.isArray(overrides) ||
        !overrides.every((o): o is string => typeof o === 'string' && known.includes(o))
      ) {
        return json(res, 400, {
          error: `overrides must be a list of the stages' override headers: ${known.map((k) => JSON.stringify(k)).join(', ')}`,
        });
      }
    }
    if (typeof rate === 'number') {
      settings.rate = rate;
      traffic.setRate(rate);
    }
    if (Array.isArray(overrides)) settings.overrides = known.filter((k) => overrides.includes(k));
    log(`settings: ${settings.rate} req/s, overrides [${settings.overrides.join(', ')}]`);
    broadcast('settings', settings);
    return json(res, 200, settings);
  }

  async function postStage(res: ServerResponse, body: unknown): Promise<void> {
    const stage = (body as { stage?: unknown } | null)?.stage;
    if (typeof stage !== 'string')
      return json(res, 400, { error: 'body must be JSON like {"stage": "canary-25"}' });
    const info = config.stages.find((s) => s.name === stage);
    if (!info) {
      return json(res, 400, {
        error: `unknown stage ${JSON.stringify(stage)}; valid stages: ${config.stages.map((s) => s.name).join(', ')}`,
      });
    }
    if (adminUrl === null) {
      return json(res, 409, {
        error: `the page switches stages on the local path only; on the cluster run: ${info.command}`,
        command: info.command,
      });
    }
    const result = await switchStage(adminUrl, options.adminToken ?? null, stage);
    log(`switch to ${stage}: ${result.status} ${result.message}`);
    broadcast('switch', result);
    return json(
      res,
      result.ok ? 200 : result.status >= 400 && result.status < 600 ? result.status : 502,
      result,
    );
  }

  function subscribe(req: IncomingMessage, res: ServerResponse): undefined {
    if (subscribers.size >= MAX_SUBSCRIBERS) {
      return json(res, 503, { error: `at most ${MAX_SUBSCRIBERS} pages may watch at once` });
    }
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    const snapshot: Snapshot = { settings, timeline: tracker.timeline, answers: recent, status: status() };
    res.write(`retry: 2000\n\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    subscribers.add(res);
    if (subscribers.size === 1) {
      log('a page is watching: sending');
      traffic.start();
    }
    const leave = () => {
      if (!subscribers.delete(res)) return;
      if (subscribers.size === 0) {
        log('no page is watching: paused');
        traffic.stop();
      }
    };
    req.on('close', leave);
    res.on('close', leave);
  }

  const v4 = createServer(handler);
  const servers: Server[] = [v4];
  const requested = options.port ?? 0;
  try {
    await listenOn(v4, requested, '127.0.0.1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new WatchPortInUseError(requested);
    throw err;
  }
  const port = (v4.address() as AddressInfo).port;
  let dualStack = false;
  const v6 = createServer(handler);
  try {
    await listenOn(v6, port, '::1');
    servers.push(v6);
    dualStack = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' && requested !== 0) {
      await new Promise<void>((resolve) => v4.close(() => resolve()));
      throw new WatchPortInUseError(requested);
    }
    // no IPv6 loopback here (or the free port was taken on [::1]): 127.0.0.1 only
  }
  allowedHosts = new Set([`localhost:${port}`, `127.0.0.1:${port}`, ...(dualStack ? [`[::1]:${port}`] : [])]);
  allowedOrigins = new Set([...allowedHosts].map((h) => `http://${h}`));

  let closed = false;
  return {
    url: dualStack ? `http://localhost:${port}` : `http://127.0.0.1:${port}`,
    port,
    config,
    traffic,
    settings: () => ({ ...settings, overrides: [...settings.overrides] }),
    status,
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(statusTimer);
      clearInterval(pingTimer);
      if (flushTimer) clearTimeout(flushTimer);
      for (const res of subscribers) res.end();
      subscribers.clear();
      await traffic.close();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}

/** Asks the local gateway's admin API to switch (PUT /stage, as `rollout apply --target local` does). */
async function switchStage(adminUrl: string, token: string | null, stage: string): Promise<SwitchResult> {
  const at = Date.now();
  let res: Response;
  let body: { error?: string; findings?: string[]; stage?: string; previous?: string } = {};
  try {
    res = await fetch(`${adminUrl}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ stage }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = { error: text };
    }
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return {
      stage,
      ok: false,
      status: 502,
      message: `the local gateway's admin API at ${adminUrl} did not answer (${e.cause?.code ?? e.message}): is the local path running? make local-up`,
      findings: [],
      at,
    };
  }
  if (res.status === 200) {
    return {
      stage,
      ok: true,
      status: 200,
      message: `applied ${body.stage ?? stage}${body.previous ? ` (was ${body.previous})` : ''}`,
      findings: [],
      at,
    };
  }
  return {
    stage,
    ok: false,
    status: res.status,
    message: body.error ?? `admin API answered ${res.status}`,
    findings: Array.isArray(body.findings) ? body.findings.map(String) : [],
    at,
  };
}

function clampRate(rate: number, max: number): number {
  return Math.min(max, Math.max(1, rate));
}

/** The page's policy: its own files only; the one inline script (the import map) by its hash. */
export function contentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] as string)
        .digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sendText(res: ServerResponse, text: string, type: string, csp?: string): void {
  const headers: Record<string, string | number> = {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (csp) headers['content-security-policy'] = csp;
  res.writeHead(200, headers);
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** One file directly inside `dir` (no sub-directories, no dot files, nothing outside it). */
function sendFile(res: ServerResponse, dir: string, name: string): undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    return json(res, 400, { error: 'bad path' });
  }
  const type = TYPES[extname(decoded)];
  if (!FILE_NAME.test(decoded) || type === undefined) return json(res, 404, { error: `not found: ${name}` });
  const file = join(dir, decoded);
  if (!existsSync(file)) {
    const hint = dir === PAGE_DIR ? ' (the page is built by `make build`)' : '';
    return json(res, 404, { error: `not found: ${name}${hint}` });
  }
  const real = realpathSync(file);
  if (!real.startsWith(realpathSync(dir) + sep)) return json(res, 404, { error: `not found: ${name}` });
  const body = readFileSync(real);
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function readJson(
  req: IncomingMessage,
): Promise<{ ok: true; value: unknown } | { ok: false; status: number; error: string }> {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > MAX_BODY) return { ok: false, status: 413, error: 'body too large' };
  }
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, status: 400, error: 'the body is not JSON' };
  }
}

function json(res: ServerResponse, status: number, body: unknown): undefined {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}
