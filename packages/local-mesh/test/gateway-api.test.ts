/**
 * The local gateway routing Gateway API HTTPRoutes: the repository's HTTPRoute stages with the real app builds
 * (each verified against the split derived from its own file), and a hand-written HTTPRoute for what the stages do
 * not use (path, method and query matches, RequestHeaderModifier, ResponseHeaderModifier).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRouteStageNames, httpRouteStageRouteTable, loadHttpRouteStageFile } from '@rollouts/stages';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTable,
  findFreePort,
  Gateway,
  LoadClient,
  type LocalMesh,
  stageExpectation,
  startLocalMesh,
  verificationPlan,
  verifyStage,
} from '../src/index.js';
import { REPO_ROOT, startUpstream, type Upstream } from './helpers.js';

describe('the HTTPRoute stages on the local path (API=gateway-api)', () => {
  let mesh: LocalMesh;
  beforeAll(async () => {
    mesh = await startLocalMesh({
      root: REPO_ROOT,
      api: 'gateway-api',
      ports: {
        gateway: await findFreePort(),
        admin: await findFreePort(),
        versions: { v1: await findFreePort(), v2: await findFreePort() },
      },
    });
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  it('every HTTPRoute stage routes real traffic as the split derived from its file says', async () => {
    const names = httpRouteStageNames(REPO_ROOT);
    expect(names.length).toBeGreaterThanOrEqual(9);
    const client = new LoadClient({ origin: mesh.gatewayUrl });
    try {
      for (const stage of names) {
        const res = await fetch(`${mesh.adminUrl}/stage`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
          body: JSON.stringify({ stage }),
        });
        expect(res.status, stage).toBe(200);
        expect(((await res.json()) as { api: string }).api).toBe('gateway-api');
        const result = await verifyStage({
          client,
          plan: verificationPlan(REPO_ROOT),
          expectation: stageExpectation(REPO_ROOT, stage, 'gateway-api'),
        });
        expect(result.verdict, `${stage}: ${JSON.stringify(result.profiles.map((p) => p.reason))}`).toBe(
          'pass',
        );
      }
    } finally {
      await client.close();
    }
  });

  it('an unknown HTTPRoute stage is refused with the list of HTTPRoute stages', async () => {
    const res = await fetch(`${mesh.adminUrl}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
      body: JSON.stringify({ stage: 'canary-33' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { validStages: string[] }).validStages).toEqual(
      httpRouteStageNames(REPO_ROOT),
    );
  });
});

const ROUTE = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: webapp, namespace: rollouts, labels: {rollouts/strategy: canary}}
spec:
  parentRefs: [{name: webapp-gateway}]
  rules:
    - name: api-writes
      matches:
        - path: {type: PathPrefix, value: /api}
          method: POST
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-route, value: writes}]
            add: [{name: x-added, value: one}]
            remove: [x-drop]
      backendRefs: [{name: webapp-v2, port: 80}]
    - name: by-query
      matches:
        - queryParams: [{name: preview, value: "yes"}]
      backendRefs: [{name: webapp-v2, port: 80}]
    - name: default
      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{name: x-trace, value: gateway}]
            add: [{name: x-extra, value: a}]
            remove: [x-app-version]
      backendRefs: [{name: webapp-v1, port: 80}]
`;

describe('an HTTPRoute with matches and header modifiers', () => {
  let upstreams: Upstream[];
  let gateway: Gateway;
  let origin: string;
  beforeAll(async () => {
    upstreams = await Promise.all(['v1', 'v2'].map(startUpstream));
    const file = join(mkdtempSync(join(tmpdir(), 'httproute-')), 'hand-written.yaml');
    writeFileSync(file, ROUTE);
    const table = httpRouteStageRouteTable(loadHttpRouteStageFile(REPO_ROOT, file));
    const origins = Object.fromEntries(upstreams.map((u) => [u.version, u.origin]));
    gateway = new Gateway({ table: buildTable('hand-written', table, origins, null) });
    origin = `http://127.0.0.1:${await gateway.listen(0)}`;
  });
  afterAll(async () => {
    await gateway?.close();
    await Promise.all((upstreams ?? []).map((u) => u.close()));
  });

  async function send(method: string, path: string, headers: Record<string, string> = {}) {
    const pool = new Pool(origin);
    const res = await pool.request({ method: method as 'GET', path, headers });
    const body = await res.body.text();
    await pool.close();
    return { status: res.statusCode, headers: res.headers, body };
  }

  it('a path prefix with a method match, and the request header modifier on what the upstream gets', async () => {
    const r = await send('POST', '/api/items', {
      'x-drop': 'secret',
      'x-route': 'client',
      'x-added': 'zero',
    });
    expect(JSON.parse(r.body).version).toBe('v2');
    const seen = upstreams[1]?.seen.find((s) => s.url === '/api/items');
    expect(seen?.headers['x-route']).toBe('writes');
    expect(seen?.headers['x-added']).toBe('zero, one');
    expect(seen?.headers['x-drop']).toBeUndefined();
    // the prefix is path-separated: /apiary is not under /api, and GET is not POST
    expect(JSON.parse((await send('POST', '/apiary')).body).version).toBe('v1');
    expect(JSON.parse((await send('GET', '/api/items')).body).version).toBe('v1');
  });

  it('a query parameter match', async () => {
    expect(JSON.parse((await send('GET', '/?preview=yes')).body).version).toBe('v2');
    expect(JSON.parse((await send('GET', '/?preview=no')).body).version).toBe('v1');
  });

  it('the response header modifier on every answer of its rule', async () => {
    const r = await send('GET', '/');
    expect(r.status).toBe(200);
    expect(r.headers['x-trace']).toBe('gateway');
    expect(r.headers['x-extra']).toBe('a');
    expect(r.headers['x-app-version']).toBeUndefined();
  });
});
