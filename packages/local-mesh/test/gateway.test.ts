/**
 * The gateway routes real HTTP requests as the stage library says, on fixture manifests beyond the repository's
 * stages: three subsets (v1, v2, v3), subsets by colour and by app label, header exact / prefix / regex,
 * uri exact / prefix / regex, method, withoutHeaders, ORed matches, a three-way split, no route (404), a subset
 * without workload (503), hosts, a dead upstream (503), streamed bodies.
 */
import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { chiSquareGoodnessOfFit } from '@rollouts/split-check';
import { expectedSplit, loadStage, type Profile } from '@rollouts/stages';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertPortsFree, createTableSource, Gateway, listenAs, PortInUseError } from '../src/index.js';
import { countBy, FIXTURE_ROOT, NO_LINT, send, startUpstream, type Upstream } from './helpers.js';

let upstreams: Upstream[];
let gateway: Gateway;
let origin: string;

beforeAll(async () => {
  upstreams = await Promise.all(['v1', 'v2', 'v3'].map(startUpstream));
  const origins = Object.fromEntries(upstreams.map((u) => [u.version, u.origin]));
  gateway = new Gateway({ table: createTableSource(FIXTURE_ROOT, origins, NO_LINT).build('matches') });
  origin = `http://127.0.0.1:${await gateway.listen(0)}`;
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

// Each probe is a request profile; what the gateway must do with it comes from expectedSplit, not from here.
const probes: (Profile & { why: string })[] = [
  { why: 'no header: the three-way split', name: 'default', headers: {} },
  { why: 'header exact', name: 'x-canary', headers: { 'x-canary': 'always' } },
  {
    why: 'header exact, other value: falls through',
    name: 'x-canary other',
    headers: { 'x-canary': 'never' },
  },
  { why: 'header regex, full match', name: 'x-user qa', headers: { 'x-user': 'qa-42' } },
  { why: 'header regex, not a full match', name: 'x-user not qa', headers: { 'x-user': 'qa-42x' } },
  {
    why: 'uri prefix AND header prefix',
    name: 'api blue',
    headers: { 'x-team': 'blue-squad' },
    path: '/api/orders',
  },
  { why: 'uri prefix', name: 'api', headers: {}, path: '/api/orders?id=3' },
  { why: 'uri exact', name: 'version', headers: {}, path: '/version' },
  { why: 'uri exact ignores the query', name: 'version?q', headers: {}, path: '/version?x=1' },
  { why: 'uri exact does not match a longer path', name: 'version/x', headers: {}, path: '/version/x' },
  {
    why: 'second match of the route (method)',
    name: 'delete',
    headers: {},
    method: 'DELETE',
    path: '/anything',
  },
  { why: 'uri regex', name: 'items/17', headers: {}, path: '/items/17' },
  { why: 'uri regex, no match', name: 'items/abc', headers: {}, path: '/items/abc' },
  { why: 'withoutHeaders: header absent', name: 'private', headers: {}, path: '/private/doc' },
  {
    why: 'withoutHeaders: header present',
    name: 'private token',
    headers: { 'x-token': 't' },
    path: '/private/doc',
  },
  { why: 'subset by app label: every workload', name: 'spread', headers: {}, path: '/spread' },
  { why: 'no route matches', name: 'no route', headers: { 'x-no-route': '1' }, path: '/x' },
];

describe('gateway on fixture manifests', () => {
  const stage = loadStage(FIXTURE_ROOT, 'matches');

  for (const probe of probes) {
    it(`routes as the stage library says: ${probe.why}`, async () => {
      const split = expectedSplit(stage, probe);
      const n = 300;
      const answers = await send(origin, n, {
        method: probe.method ?? 'GET',
        path: probe.path ?? '/',
        headers: probe.headers,
      });
      if (split.routeIndex === null) {
        expect(countBy(answers, (a) => String(a.status))).toEqual({ 404: n });
        expect(answers.every((a) => a.body === '')).toBe(true);
        return;
      }
      expect(countBy(answers, (a) => String(a.status))).toEqual({ 200: n });
      const counts = countBy(answers, (a) => a.version ?? '(none)');
      const support = Object.entries(split.versions).filter(([, p]) => p > 0);
      for (const v of Object.keys(counts))
        expect(split.versions[v] ?? 0, `unexpected version ${v}`).toBeGreaterThan(0);
      if (support.length === 1) {
        expect(counts).toEqual({ [(support[0] as [string, number])[0]]: n });
      } else {
        // A random split: the counts fit the expected probabilities (chance of a false alarm: 1e-6).
        const fit = chiSquareGoodnessOfFit(
          support.map(([v]) => counts[v] ?? 0),
          support.map(([, p]) => p),
        );
        expect(fit.pValue).toBeGreaterThan(1e-6);
      }
      // The upstream saw the request as sent (method and path with query).
      const last = answers.at(-1) as { body: string };
      expect(JSON.parse(last.body)).toMatchObject({ method: probe.method ?? 'GET', url: probe.path ?? '/' });
    });
  }

  it('a subset that selects no workload answers 503 "no healthy upstream"', async () => {
    expect(expectedSplit(stage, { name: 'ghost', headers: {}, path: '/ghost' }).unresolved).toEqual({
      ghost: 1,
    });
    const [answer] = await send(origin, 1, { path: '/ghost' });
    expect(answer?.status).toBe(503);
    expect(answer?.body).toBe('no healthy upstream');
  });

  it("applies the route's response headers: set replaces or adds, add appends to the app's value", async () => {
    const [tagged] = await send(origin, 1, { headers: { 'x-canary': 'always' } });
    expect(tagged?.status).toBe(200);
    expect(tagged?.version).toBe('v2');
    expect(tagged?.headers['x-rollouts-stage']).toBe('matches');
    expect(tagged?.headers['content-type']).toBe('application/vnd.fixture+json');
    expect(tagged?.headers['x-trace']).toEqual(['upstream-v2', 'gateway']);
    // A route without headers passes the app's answer through untouched.
    const [plain] = await send(origin, 1, { path: '/api' });
    expect(plain?.headers['x-rollouts-stage']).toBeUndefined();
    expect(plain?.headers['content-type']).toBe('application/json');
    expect(plain?.headers['x-trace']).toBe('upstream-v1');
  });

  it("puts the route's headers on its 503 (as Envoy's router does), none on a 404 (no route)", async () => {
    const [noRoute] = await send(origin, 1, { path: '/x', headers: { 'x-no-route': '1' } });
    expect(noRoute?.status).toBe(404);
    expect(noRoute?.headers['x-rollouts-stage']).toBeUndefined();
    const [ghost] = await send(origin, 1, { path: '/ghost' });
    expect(ghost?.status).toBe(503);
    expect(ghost?.headers['x-rollouts-stage']).toBe('matches');
  });

  it('any Host reaches a stage with hosts "*", its port ignored, as at the ingress gateway', async () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      '127.0.0.1',
      'webapp.rollouts.svc.cluster.local',
      'X.Y',
    ]) {
      const [answer] = await send(origin, 1, { path: '/api', headers: { host } });
      expect(answer?.status, host).toBe(200);
    }
  });

  it('streams request and response bodies and passes headers through', async () => {
    const pool = new Pool(origin);
    const size = 2 * 1024 * 1024;
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < 32; i++) yield Buffer.alloc(size / 32, 97);
      })(),
    );
    const res = await pool.request({
      method: 'POST',
      path: '/api/upload',
      body,
      headers: { 'x-request-id': 'abc' },
    });
    const json = (await res.body.json()) as { bytes: number; version: string };
    await pool.close();
    expect(res.statusCode).toBe(200);
    expect(json).toMatchObject({ bytes: size, version: 'v1' });
    expect(res.headers['x-app-version']).toBe('v1');
    expect(Number(res.headers['x-envoy-upstream-service-time'])).toBeGreaterThanOrEqual(0);
    const seen = upstreams[0]?.seen.find((s) => s.url === '/api/upload');
    // An edge request: Envoy gives it a request id of its own (preserve_external_request_id is false).
    expect(seen?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it("treats client-sent X-Forwarded-* and internal x-envoy-* headers as Istio's edge gateway does", async () => {
    const pool = new Pool(origin);
    const res = await pool.request({
      method: 'GET',
      path: '/forwarded',
      headers: {
        'x-forwarded-for': '203.0.113.7, 198.51.100.1',
        'x-forwarded-proto': 'https',
        'x-envoy-internal': 'true',
        'x-envoy-retry-on': '5xx',
        'x-envoy-upstream-rq-timeout-ms': '1',
        'x-envoy-external-address': '203.0.113.7',
      },
    });
    await res.body.dump();
    await pool.close();
    expect(res.statusCode).toBe(200);
    const seen = upstreams.flatMap((u) => u.seen).find((s) => s.url === '/forwarded');
    // xff_num_trusted_hops 0: the client's list is kept, untrusted, and the connection's address appended ...
    expect(seen?.headers['x-forwarded-for']).toBe('203.0.113.7, 198.51.100.1,127.0.0.1');
    // ... which is the only address a backend may trust; the scheme is the connection's, not the client's word.
    expect(seen?.headers['x-envoy-external-address']).toBe('127.0.0.1');
    expect(seen?.headers['x-forwarded-proto']).toBe('http');
    for (const name of ['x-envoy-internal', 'x-envoy-retry-on', 'x-envoy-upstream-rq-timeout-ms']) {
      expect(seen?.headers[name], name).toBeUndefined();
    }
  });

  it('serves a client that waits for "100 Continue" before sending its body', async () => {
    const url = new URL(origin);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/api/upload',
          headers: { expect: '100-continue', 'content-length': 5 },
        },
        resolve,
      );
      req.on('continue', () => req.end('hello'));
      req.on('error', reject);
    });
    let text = '';
    for await (const chunk of res) text += chunk;
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ version: 'v1', bytes: 5 });
  });

  it('an upstream that is down answers 503 like Envoy, and the others keep working', async () => {
    const [alive3] = await send(origin, 1, { path: '/items/1' });
    expect(alive3?.headers['x-rollouts-stage']).toBe('matches');
    await (upstreams[2] as Upstream).close(); // v3
    const dead = await send(origin, 5, { path: '/items/1' });
    expect(dead.map((a) => a.status)).toEqual([503, 503, 503, 503, 503]);
    // Istio's default retry policy retried the connect failure twice (v3 is the subset's only endpoint).
    expect(dead[0]?.body).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure',
    );
    expect(dead[0]?.headers['x-rollouts-stage']).toBe('matches'); // the route's headers, on the gateway's 503
    const alive = await send(origin, 5, { path: '/api' });
    expect(alive.every((a) => a.status === 200 && a.version === 'v1')).toBe(true);
  });
});

describe('gateway port taken only on [::1]', () => {
  it('listenAs turns EADDRINUSE of the [::1] listener into PortInUseError naming GATEWAY_PORT', async () => {
    const blocker = createServer();
    const port = await new Promise<number | null>((resolve) => {
      blocker.once('error', () => resolve(null));
      blocker.listen(0, '::1', () => resolve((blocker.address() as AddressInfo).port));
    });
    if (port === null) return; // no IPv6 loopback here
    const source = createTableSource(FIXTURE_ROOT, {}, NO_LINT);
    const gateway = new Gateway({ table: source.build('split-25') });
    try {
      await expect(assertPortsFree({ gateway: port })).rejects.toThrow(PortInUseError);
      const listening = listenAs('gateway', port, () => gateway.listen(port));
      await expect(listening).rejects.toThrow(PortInUseError);
      await expect(listening).rejects.toThrow(`port ${port} (gateway) is already in use`);
      await expect(listening).rejects.toThrow('GATEWAY_PORT=');
    } finally {
      await gateway.close();
      blocker.close();
    }
  });
});
