/** Test helpers: tiny upstreams that answer like the app (x-app-version), and the fixture repository. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

export const FIXTURE_ROOT = fileURLToPath(new URL('./fixtures/three-way', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/**
 * The fixture's DestinationRule has a subset that selects no workload (to show the gateway's 503), which lint
 * refuses before a stage is applied; tests of the gateway itself build its tables without that check.
 */
export const NO_LINT = { lint: false } as const;

export interface Upstream {
  version: string;
  server: Server;
  origin: string;
  /** Requests this upstream received (method, url, headers, body length). */
  seen: { method: string; url: string; headers: IncomingHttpHeaders; bytes: number }[];
  close(): Promise<void>;
}

/**
 * An HTTP server answering every request with x-app-version: <version>, x-trace: upstream-<version> and a JSON
 * echo of the request.
 */
export async function startUpstream(version: string): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes });
      const body = JSON.stringify({ version, method: req.method, url: req.url, bytes });
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-app-version': version,
        'x-trace': `upstream-${version}`,
      });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    version,
    server,
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Answer {
  status: number;
  version: string | undefined;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Sends `n` requests (16 in flight) and returns every answer. */
export async function send(
  origin: string,
  n: number,
  request: { method?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<Answer[]> {
  const pool = new Pool(origin, { connections: 16 });
  const out: Answer[] = [];
  let issued = 0;
  const worker = async () => {
    while (issued < n) {
      issued++;
      const res = await pool.request({
        method: (request.method ?? 'GET') as 'GET',
        path: request.path ?? '/',
        headers: request.headers ?? {},
      });
      const body = await res.body.text();
      const v = res.headers['x-app-version'];
      out.push({ status: res.statusCode, version: Array.isArray(v) ? v[0] : v, body, headers: res.headers });
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, n) }, worker));
  await pool.close();
  return out;
}

export function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}
