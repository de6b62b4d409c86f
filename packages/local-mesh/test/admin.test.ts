/** The admin API: stage switch (atomic, validated), forced weights, Istio metrics, readiness. */
import { Readable } from 'node:stream';
import { type Dispatcher, Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin, createTableSource, Gateway } from '../src/index.js';
import { countBy, FIXTURE_ROOT, NO_LINT, send, startUpstream, type Upstream } from './helpers.js';

let upstreams: Upstream[];
let gateway: Gateway;
let admin: ReturnType<typeof createAdmin>;
let origin: string;
let adminOrigin: string;

/** A request to the admin API; a body goes as JSON with the admin token unless `headers` say otherwise. */
async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${adminOrigin}${path}`, {
    method: method as Dispatcher.HttpMethod,
    headers: {
      ...(body !== undefined
        ? { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` }
        : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: text.startsWith('{') ? JSON.parse(text) : null };
}

beforeAll(async () => {
  upstreams = await Promise.all(['v1', 'v2', 'v3'].map(startUpstream));
  const source = createTableSource(
    FIXTURE_ROOT,
    Object.fromEntries(upstreams.map((u) => [u.version, u.origin])),
    NO_LINT,
  );
  gateway = new Gateway({ table: source.build('split-25') });
  origin = `http://127.0.0.1:${await gateway.listen(0)}`;
  admin = createAdmin(gateway, source);
  adminOrigin = `http://127.0.0.1:${await admin.listen(0)}`;
});

afterAll(async () => {
  await admin?.close();
  await gateway?.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

describe('admin API', () => {
  it('GET /stage names the applied stage; GET /ready answers 200', async () => {
    const stage = await call('GET', '/stage');
    expect(stage.status).toBe(200);
    expect(stage.json).toMatchObject({ stage: 'split-25', overrideWeights: null });
    expect(Date.parse(stage.json.appliedAt)).not.toBeNaN();
    expect((await call('GET', '/ready')).status).toBe(200);
  });

  describe('refuses what a web page or another local user could send, and nothing changes', () => {
    const force = { stage: 'split-25', overrideWeights: { v1: 0, v2: 100 } };
    const unchanged = async () => {
      const now = (await call('GET', '/stage')).json;
      expect(now).toMatchObject({ stage: 'split-25', overrideWeights: null });
    };
    beforeAll(async () => {
      expect((await call('PUT', '/stage', { stage: 'split-25' })).status).toBe(200);
    });

    it('the page\'s "simple" request: a text/plain POST with forced weights and no token (405)', async () => {
      const r = await call('POST', '/stage', JSON.stringify(force), {
        'content-type': 'text/plain',
        authorization: '',
      });
      expect(r.status).toBe(405);
      expect(r.json.error).toContain('POST /stage is not allowed');
      await unchanged();
    });

    it('a request with an Origin, even with the token (403)', async () => {
      const r = await call('PUT', '/stage', force, { origin: 'http://evil.example' });
      expect(r.status).toBe(403);
      expect(r.json.error).toContain('Origin');
      await unchanged();
    });

    it('a body that is not JSON (415)', async () => {
      const r = await call('PUT', '/stage', JSON.stringify(force), { 'content-type': 'text/plain' });
      expect(r.status).toBe(415);
      await unchanged();
    });

    it('no token, or a wrong one (401)', async () => {
      for (const authorization of [
        '',
        `Bearer ${admin.token.slice(1)}x`,
        admin.token,
        `Basic ${admin.token}`,
      ]) {
        const r = await call('PUT', '/stage', force, { authorization });
        expect(r.status, authorization).toBe(401);
        expect(r.json.error).toContain('admin token');
      }
      await unchanged();
    });

    it('a Host that is not the loopback address and port (DNS rebinding), for reads too (403)', async () => {
      const port = new URL(adminOrigin).port;
      for (const host of [
        `rebind.attacker.example:${port}`,
        '127.0.0.1',
        `127.0.0.1:${Number(port) + 1}`,
        '',
      ]) {
        const put = await call('PUT', '/stage', force, { host });
        expect(put.status, host).toBe(403);
        expect(put.json.error).toContain('not this admin API');
        expect((await call('GET', '/routes', undefined, { host })).status, host).toBe(403);
      }
      await unchanged();
      expect((await call('GET', '/stage', undefined, { host: `localhost:${port}` })).status).toBe(200);
    });

    it('an admin API refuses a token shorter than 16 characters', () => {
      expect(() => createAdmin(gateway, { build: () => gateway.table }, { token: 'short' })).toThrow(
        /at least 16/,
      );
    });
  });

  it('PUT /stage switches: the next requests follow the new stage', async () => {
    const before = await send(origin, 20);
    expect(countBy(before, (a) => String(a.headers['x-rollouts-stage']))).toEqual({ 'split-25': 20 });
    const put = await call('PUT', '/stage', { stage: 'all-v3' });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ stage: 'all-v3', previous: 'split-25' });
    const answers = await send(origin, 50);
    expect(countBy(answers, (a) => a.version ?? '-')).toEqual({ v3: 50 });
    expect(countBy(answers, (a) => String(a.headers['x-rollouts-stage']))).toEqual({ 'all-v3': 50 });
    expect((await call('GET', '/stage')).json.stage).toBe('all-v3');
  });

  it('an unknown stage gets 400 with the valid stages, and nothing changes', async () => {
    const before = (await call('GET', '/stage')).json;
    const put = await call('PUT', '/stage', { stage: 'canary-33' });
    expect(put.status).toBe(400);
    expect(put.json.error).toMatch(/unknown stage "canary-33"/);
    expect(put.json.validStages).toEqual(expect.arrayContaining(['split-25', 'matches', 'all-v3']));
    expect((await call('GET', '/stage')).json).toEqual(before);
    expect(countBy(await send(origin, 20), (a) => a.version ?? '-')).toEqual({ v3: 20 });
  });

  it('a body that is not {"stage": ...} gets 400', async () => {
    expect((await call('PUT', '/stage', 'not json')).status).toBe(400);
    expect((await call('PUT', '/stage', { name: 'x' })).status).toBe(400);
    expect((await call('PUT', '/stage', { stage: 'split-25', overrideWeights: { v1: -1 } })).status).toBe(
      400,
    );
  });

  it('forced weights (test hook) override the split and show in GET /stage', async () => {
    const put = await call('PUT', '/stage', { stage: 'split-25', overrideWeights: { v1: 0, v2: 100 } });
    expect(put.status).toBe(200);
    expect((await call('GET', '/stage')).json.overrideWeights).toEqual({ v1: 0, v2: 100 });
    expect(countBy(await send(origin, 50), (a) => a.version ?? '-')).toEqual({ v2: 50 });
    const routes = await call('GET', '/routes');
    expect(routes.json.routes[0].destinations.map((d: { weight: number }) => d.weight)).toEqual([0, 100]);
  });

  it('forced weights that name no route of the stage get 400', async () => {
    const put = await call('PUT', '/stage', { stage: 'split-25', overrideWeights: { v1: 50, v3: 50 } });
    expect(put.status).toBe(400);
    expect(put.json.error).toMatch(/name no route/);
  });

  it('GET /metrics has Istio standard metrics per destination version and response code', async () => {
    await call('PUT', '/stage', { stage: 'matches' });
    await send(origin, 10, { path: '/api' }); // v1
    await send(origin, 3, { path: '/x', headers: { 'x-no-route': '1' } }); // 404
    const res = await call('GET', '/metrics');
    expect(res.status).toBe(200);
    const line = (...labels: string[]) =>
      res.text
        .split('\n')
        .find((l) => l.startsWith('istio_requests_total{') && labels.every((x) => l.includes(x)));
    const v1 = line('destination_version="v1"', 'response_code="200"', 'source_workload="local-gateway"');
    expect(v1).toBeDefined();
    expect(v1).toContain('destination_workload="webapp-v1"');
    expect(v1).toContain('reporter="source"');
    const nr = line('response_code="404"');
    expect(nr).toContain('response_flags="NR"');
    expect(Number(nr?.split(' ').at(-1))).toBe(3);
    expect(res.text).toContain('istio_request_duration_milliseconds_bucket{');
    expect(res.text).toContain('local_gateway_stage_info{stage="matches"} 1');
  });

  it('unknown admin endpoints get 404 with the list', async () => {
    const res = await call('GET', '/nope');
    expect(res.status).toBe(404);
    expect(res.json.endpoints).toContain('PUT /stage');
  });

  it('a switch does not disturb requests in flight: each keeps the upstream it chose', async () => {
    await call('PUT', '/stage', { stage: 'all-v3' });
    const pool = new Pool(origin, { connections: 8 });
    // A large upload to v3 is in flight while the stage switches to split-25 (v1/v2).
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const body = Readable.from(
      (async function* () {
        yield Buffer.alloc(1024, 98);
        await gate;
        yield Buffer.alloc(1024, 98);
      })(),
    );
    const pending = pool.request({ method: 'POST', path: '/', body });
    // Wait until v3 has the request's headers (the request is routed), then switch.
    const v3 = upstreams[2] as Upstream;
    await new Promise<void>((resolve) => {
      const onReq = () => {
        v3.server.off('request', onReq);
        resolve();
      };
      v3.server.on('request', onReq);
    });
    expect((await call('PUT', '/stage', { stage: 'split-25' })).status).toBe(200);
    release();
    const res = await pending;
    const json = (await res.body.json()) as { version: string; bytes: number };
    await pool.close();
    expect(res.statusCode).toBe(200);
    expect(json).toEqual({ version: 'v3', method: 'POST', url: '/', bytes: 2048 });
    const after = countBy(await send(origin, 40), (a) => a.version ?? '-');
    expect(after.v3).toBeUndefined();
  });
});
