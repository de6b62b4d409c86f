/**
 * What the gateway does as Istio's ingress gateway (Envoy) does, beyond choosing a route: Host resolution and
 * matching, a VirtualService bound to the mesh only, clusters Istio would not create (503 NC), Istio's default
 * retry policy and a route's own, route and per-try timeouts, path normalisation, HTTP/1.0, response header
 * removal; and what it refuses rather than guess.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTableSource, Gateway } from '../src/index.js';
import { FIXTURE_ROOT, NO_LINT, send } from './helpers.js';

interface Behaving {
  version: string;
  origin: string;
  server: Server;
  /** Requests per path prefix. */
  hits: Map<string, number>;
}

/** An upstream whose answer depends on the path: /flaky and /per-try fail a first attempt, /no-retry always. */
async function behavingUpstream(version: string): Promise<Behaving> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `/${(req.url ?? '/').split('/')[1]?.split('?')[0] ?? ''}`;
    const n = (hits.get(key) ?? 0) + 1;
    hits.set(key, n);
    const ok = () => {
      res.writeHead(200, {
        'x-app-version': version,
        'x-trace': 'upstream',
        'x-attempt': String(req.headers['x-envoy-attempt-count']),
      });
      res.end(JSON.stringify({ version, url: req.url }));
    };
    const first = req.headers['x-envoy-attempt-count'] === '1';
    if (key === '/flaky' && first) {
      res.writeHead(503, { 'x-app-version': version });
      res.end('busy');
    } else if (key === '/no-retry') {
      res.writeHead(503, { 'x-app-version': version });
      res.end('busy');
    } else if (key === '/slow') {
      setTimeout(ok, 1500).unref();
    } else if (key === '/per-try' && first) {
      setTimeout(ok, 1500).unref();
    } else ok();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { version, origin: `http://127.0.0.1:${port}`, server, hits };
}

let upstreams: Behaving[];
let gateway: Gateway;
let origin: string;
let port: number;
const source = () =>
  createTableSource(FIXTURE_ROOT, Object.fromEntries(upstreams.map((u) => [u.version, u.origin])), NO_LINT);

beforeAll(async () => {
  upstreams = await Promise.all(['v1', 'v2', 'v3'].map(behavingUpstream));
  gateway = new Gateway({ table: source().build('behaviours') });
  port = await gateway.listen(0);
  origin = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await gateway?.close();
  for (const u of upstreams) {
    u.server.closeAllConnections();
    u.server.close();
  }
});

/** Sends raw bytes (a request line Node's client would not send) and returns the status line and body. */
function raw(request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
    });
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', reject);
  });
}

describe('clusters, retries and timeouts', () => {
  it('a subset the DestinationRule does not define: 503 with an empty body (NC), the route headers on it', async () => {
    const [a] = await send(origin, 1, { path: '/no-cluster' });
    expect(a?.status).toBe(503);
    expect(a?.body).toBe('');
    expect(a?.headers['x-rollouts-stage']).toBe('behaviours');
  });

  it("a route's retries (5xx, 2 attempts) turn a first 503 into the second attempt's 200", async () => {
    const answers = await send(origin, 20, { path: '/flaky' });
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    // Each request took two attempts; the second carried x-envoy-attempt-count: 2.
    expect(upstreams[0]?.hits.get('/flaky')).toBe(40);
    expect(answers.every((a) => a.headers['x-attempt'] === '2')).toBe(true);
  });

  it('attempts: 0 disables retries: the 503 is the answer', async () => {
    const [a] = await send(origin, 1, { path: '/no-retry' });
    expect(a?.status).toBe(503);
    expect(a?.body).toBe('busy');
    expect(upstreams[0]?.hits.get('/no-retry')).toBe(1);
    expect(a?.headers['x-rollouts-stage']).toBe('behaviours');
  });

  it('the route timeout (0.3s) answers 504 "upstream request timeout" (UT)', async () => {
    const started = performance.now();
    const [a] = await send(origin, 1, { path: '/slow' });
    expect(a?.status).toBe(504);
    expect(a?.body).toBe('upstream request timeout');
    expect(performance.now() - started).toBeLessThan(1200);
  });

  it('a per-try timeout with gateway-error retries: the second attempt answers', async () => {
    const [a] = await send(origin, 1, { path: '/per-try' });
    expect(a?.status).toBe(200);
    expect(a?.headers['x-attempt']).toBe('2');
  });

  it("Istio's default retry policy: a connect failure is retried on another endpoint of the cluster", async () => {
    const down = upstreams[2] as Behaving; // v3, one of the three endpoints of subset "all"
    const spare = createTableSource(
      FIXTURE_ROOT,
      { ...Object.fromEntries(upstreams.map((u) => [u.version, u.origin])), v3: 'http://127.0.0.1:1' },
      NO_LINT,
    );
    gateway.apply(spare.build('behaviours'));
    try {
      const answers = await send(origin, 60, { path: '/spread' });
      expect(answers.map((a) => a.status)).toEqual(Array(60).fill(200));
      expect(new Set(answers.map((a) => a.version))).toEqual(new Set(['v1', 'v2']));
      expect(down.hits.get('/spread')).toBeUndefined();
    } finally {
      gateway.apply(source().build('behaviours'));
    }
  });
});

describe('paths, case and headers', () => {
  it('ignoreUriCase: the prefix matches whatever the case', async () => {
    const [a] = await send(origin, 1, { path: '/casex/page' });
    expect(a?.version).toBe('v2');
  });

  it('the path is normalised before matching (dot segments, escaped unreserved characters), query kept', async () => {
    const [a] = await send(origin, 1, { path: '/x/../%63asex/./page?q=%2F' });
    expect(a?.version).toBe('v2');
    // The upstream gets the normalised path, as Envoy forwards it.
    expect(JSON.parse(a?.body ?? '{}').url).toBe('/casex/page?q=%2F');
  });

  it('a path Envoy rejects (an escaped NUL) gets 400; one not emulated (a backslash) gets 400 with the reason', async () => {
    expect((await raw('GET /a%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(400);
    const refused = await raw('GET /a\\b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('local gateway: request refused, not emulated: the raw character "\\\\"');
  });

  it('HTTP/1.0 gets 426 (Istio does not enable HTTP/1.0 on the gateway)', async () => {
    expect((await raw('GET / HTTP/1.0\r\nHost: x\r\n\r\n')).status).toBe(426);
  });

  it('headers.response.remove drops a header the app sent', async () => {
    const [a] = await send(origin, 1, { path: '/remove' });
    expect(a?.status).toBe(200);
    expect(a?.headers['x-trace']).toBeUndefined();
    expect(a?.headers['x-rollouts-stage']).toBe('behaviours');
  });

  it('headers.response set / add with an empty value change nothing, as Envoy skips them (differential test)', async () => {
    const [a] = await send(origin, 1, { path: '/empty-value' });
    expect(a?.status).toBe(200);
    expect(a?.headers['x-trace']).toBe('upstream');
    expect(a?.headers['x-empty']).toBeUndefined();
    expect(a?.headers['x-rollouts-stage']).toBe('behaviours');
  });
});

describe('hosts as Istio reads them', () => {
  it('short names get the namespace and svc.cluster.local; IPs and *.suffix wildcards stay', async () => {
    gateway.apply(source().build('hosts'));
    try {
      const status = async (host: string) => (await send(origin, 1, { headers: { host } }))[0]?.status;
      expect(await status('webapp.rollouts.svc.cluster.local')).toBe(200);
      expect(await status('WebApp.Rollouts.svc.cluster.local:8080')).toBe(200);
      expect(await status('localhost.rollouts.svc.cluster.local')).toBe(200);
      expect(await status('127.0.0.1:8080')).toBe(200);
      expect(await status('a.example.com')).toBe(200);
      // As written in the file, but not as Istio reads it:
      expect(await status('localhost')).toBe(404);
      expect(await status('localhost:8080')).toBe(404);
      expect(await status('webapp')).toBe(404);
      expect(await status('example.com')).toBe(404);
    } finally {
      gateway.apply(source().build('behaviours'));
    }
  });

  it('a VirtualService bound to the mesh only gives the gateway no route: 404 for every request', async () => {
    gateway.apply(source().build('mesh-only'));
    try {
      const answers = await send(origin, 5, { headers: { host: 'webapp.rollouts.svc.cluster.local' } });
      expect(answers.map((a) => a.status)).toEqual([404, 404, 404, 404, 404]);
      expect(gateway.table.routeTable?.routeConfiguration.virtualHosts).toEqual([
        { name: 'blackhole:80', domains: ['*'], routes: [] },
      ]);
    } finally {
      gateway.apply(source().build('behaviours'));
    }
  });
});
