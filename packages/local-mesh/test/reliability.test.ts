/**
 * The local path with the real app builds (apps/webapp/dist/v1, v2) and the repository's stages: no request fails
 * across stage switches under load; bad switches change nothing; a taken port is named; a workload killed
 * mid-verification fails the verification without hanging it.
 */
import { createServer, type Server } from 'node:net';
import { listStages } from '@rollouts/stages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findFreePort,
  isPortFree,
  LoadClient,
  type LocalMesh,
  PortInUseError,
  pidAlive,
  stageExpectation,
  startLocalMesh,
  verificationPlan,
  verifyStage,
} from '../src/index.js';
import { REPO_ROOT } from './helpers.js';

async function freePorts() {
  return {
    gateway: await findFreePort(),
    admin: await findFreePort(),
    versions: { v1: await findFreePort(), v2: await findFreePort() },
  };
}

async function put(mesh: LocalMesh, body: unknown) {
  const res = await fetch(`${mesh.adminUrl}/stage`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('local path under load', () => {
  let mesh: LocalMesh;

  beforeAll(async () => {
    mesh = await startLocalMesh({ root: REPO_ROOT, ports: await freePorts() });
  });
  afterAll(async () => {
    const pids = (mesh?.workloads ?? []).map((w) => w.pid).filter((p): p is number => p !== null);
    await mesh?.stop();
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  });

  it('switches through every stage twice under continuous load with 0 failed requests', async () => {
    const stages = listStages(REPO_ROOT).map((s) => s.name);
    const client = new LoadClient({ origin: mesh.gatewayUrl, concurrency: 16 });
    const load = client.continuous({ headers: {} });
    const switches: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const stage of stages) {
        expect((await put(mesh, { stage })).status).toBe(200);
        switches.push(stage);
        await load.until(load.completed() + 150); // let traffic flow under this stage
      }
    }
    const result = await load.stop();
    await client.close();
    expect(switches).toHaveLength(stages.length * 2);
    expect(result.failures).toEqual([]);
    expect(result.completed).toBeGreaterThanOrEqual(stages.length * 2 * 150);
    expect(Object.keys(result.counts).sort()).toEqual(['v1', 'v2']);
  });

  it('every answer names the applied stage in x-rollouts-stage (its manifest sets it), and follows the switch', async () => {
    for (const stage of listStages(REPO_ROOT).map((s) => s.name)) {
      expect((await put(mesh, { stage })).status).toBe(200);
      const profiles: Record<string, string>[] = [{}, { 'x-canary': 'always' }, { 'x-preview': 'blue' }];
      for (const headers of profiles) {
        const res = await fetch(`${mesh.gatewayUrl}/`, { headers });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        expect(res.headers.get('x-rollouts-stage'), `${stage} ${JSON.stringify(headers)}`).toBe(stage);
      }
    }
  });

  it('an unknown stage gets 400 and the applied stage does not change', async () => {
    expect((await put(mesh, { stage: 'canary-25' })).status).toBe(200);
    const bad = await put(mesh, { stage: 'canary-33' });
    expect(bad.status).toBe(400);
    expect(bad.json.validStages).toEqual(listStages(REPO_ROOT).map((s) => s.name));
    const now = (await (await fetch(`${mesh.adminUrl}/stage`)).json()) as { stage: string };
    expect(now.stage).toBe('canary-25');
  });

  it('a workload killed mid-verification fails it with failed requests, without hanging', async () => {
    expect((await put(mesh, { stage: 'canary-50' })).status).toBe(200);
    const v2 = mesh.workloads.find((w) => w.version === 'v2');
    let seen = 0;
    const killed = v2?.pid as number;
    const onRequest = () => {
      if (++seen === 300) process.kill(killed, 'SIGKILL');
    };
    mesh.gateway.server.on('request', onRequest);
    const client = new LoadClient({ origin: mesh.gatewayUrl, timeoutMs: 2000 });
    const started = performance.now();
    const result = await verifyStage({
      client,
      plan: verificationPlan(REPO_ROOT),
      expectation: stageExpectation(REPO_ROOT, 'canary-50'),
    });
    mesh.gateway.server.off('request', onRequest);
    await client.close();
    expect(pidAlive(killed)).toBe(false);
    expect(result.verdict).toBe('fail');
    expect(result.failedRequests).toBeGreaterThan(0);
    expect(result.profiles[0]?.reason).toMatch(/failed request/);
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});

describe('start-up', () => {
  it('a port in use is named with the variable that moves it, and nothing is left running', async () => {
    const ports = await freePorts();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(ports.versions.v2, '127.0.0.1', resolve));
    try {
      const error = await startLocalMesh({ root: REPO_ROOT, ports }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toMatch(
        new RegExp(`port ${ports.versions.v2} \\(workload v2\\) is already in use`),
      );
      expect((error as Error).message).toMatch(/V2_PORT=/);
      // Nothing started: the other ports are still free.
      expect(await isPortFree(ports.versions.v1)).toBe(true);
      expect(await isPortFree(ports.gateway)).toBe(true);
    } finally {
      blocker.close();
    }
  });
});
