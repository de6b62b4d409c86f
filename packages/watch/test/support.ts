/**
 * Test helpers: a fake app (answers like apps/webapp: x-app-version, JSON with `color`; knobs for errors and
 * delay), a gateway with its admin API built from the repository's stage files (as `rollout local up` builds
 * it), and an SSE reader.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type AdminServer, createAdmin, createTableSource, Gateway } from '@rollouts/local-mesh';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface FakeApp {
  version: string;
  origin: string;
  /** Requests received. */
  hits: number;
  /** Most requests in flight at once. */
  maxConcurrent: number;
  /** Share of requests answered 500 (with x-app-version, as the app's FAULT_ERROR_RATE). */
  errorRate: number;
  delayMs: number;
  close(): Promise<void>;
}

const COLORS: Record<string, string> = { v1: '#2e7d32', v2: '#1565c0' };

export async function startFakeApp(version: string): Promise<FakeApp> {
  let concurrent = 0;
  const app: FakeApp = {
    version,
    origin: '',
    hits: 0,
    maxConcurrent: 0,
    errorRate: 0,
    delayMs: 0,
    close: async () => {},
  };
  let errorTick = 0;
  const server: Server = createServer((req, res) => {
    app.hits++;
    concurrent++;
    app.maxConcurrent = Math.max(app.maxConcurrent, concurrent);
    const finish = () => {
      concurrent--;
      // deterministic error pattern: every 1/errorRate-th request fails
      errorTick += app.errorRate;
      const fail = errorTick >= 1;
      if (fail) errorTick -= 1;
      res.setHeader('x-app-version', version);
      res.setHeader('content-type', 'application/json');
      if (fail) {
        res.statusCode = 500;
        res.end(JSON.stringify({ status: 500, error: 'Internal Server Error', message: 'injected fault' }));
      } else {
        res.end(
          JSON.stringify({ app: 'webapp', version, color: COLORS[version] ?? '#616161', url: req.url }),
        );
      }
    };
    if (app.delayMs > 0) setTimeout(finish, app.delayMs);
    else finish();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  app.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return app;
}

export interface FakePath {
  apps: { v1: FakeApp; v2: FakeApp };
  gateway: Gateway;
  admin: AdminServer;
  gatewayUrl: string;
  adminUrl: string;
  close(): Promise<void>;
}

/** v1 and v2 fakes behind a real local gateway (the repository's stages) and its admin API, on free ports. */
export async function startFakePath(stage = 'stable'): Promise<FakePath> {
  const apps = { v1: await startFakeApp('v1'), v2: await startFakeApp('v2') };
  const source = createTableSource(REPO_ROOT, { v1: apps.v1.origin, v2: apps.v2.origin });
  const gateway = new Gateway({ table: source.build(stage) });
  const port = await gateway.listen(0);
  const admin = createAdmin(gateway, source);
  const adminPort = await admin.listen(0);
  return {
    apps,
    gateway,
    admin,
    gatewayUrl: `http://localhost:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    close: async () => {
      await admin.close();
      await gateway.close();
      await Promise.all(Object.values(apps).map((a) => a.close()));
    },
  };
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads a server-sent event stream; `next(name)` waits for the next event of that name. */
export class SseReader {
  readonly events: SseEvent[] = [];
  #abort = new AbortController();
  #waiters: { pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  #cursor = 0;
  done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = this.#run(url, headers);
  }

  async #run(url: string, headers: Record<string, string>): Promise<void> {
    try {
      const res = await fetch(url, { headers, signal: this.#abort.signal });
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.#frame(frame);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted by close()
    }
  }

  #frame(frame: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length === 0) return;
    const e = { event, data: JSON.parse(data.join('\n')) as unknown };
    this.events.push(e);
    for (const w of [...this.#waiters]) {
      if (w.pred(e)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }

  /** The next event (after the ones already returned by next) matching `pred`, waiting up to `timeoutMs`. */
  next(pred: string | ((e: SseEvent) => boolean), timeoutMs = 20_000): Promise<SseEvent> {
    const match = typeof pred === 'string' ? (e: SseEvent) => e.event === pred : pred;
    for (; this.#cursor < this.events.length; this.#cursor++) {
      const e = this.events[this.#cursor] as SseEvent;
      if (match(e)) {
        this.#cursor++;
        return Promise.resolve(e);
      }
    }
    this.#cursor = this.events.length;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${String(pred)} event within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        pred: match,
        resolve: (e) => {
          clearTimeout(timer);
          this.#cursor = this.events.length;
          resolve(e);
        },
      });
    });
  }

  close(): void {
    this.#abort.abort();
  }
}

/** Polls `check` until it returns a value that is not undefined/false, at most `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | undefined | false,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET with any Host header (fetch may not set one). */
export function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
