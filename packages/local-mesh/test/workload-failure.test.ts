/**
 * A workload that dies under load, with the real app builds at canary-50: it is started again by itself, and
 * while it is out only its own share of the requests fails (v1's never do, and the split does not move), as with
 * one pod per version behind Istio. A SIGTERM'd workload drains: nothing that reached it fails.
 */
import { binomialTestTwoSided } from '@rollouts/split-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module shared with the benchmark that prints these figures
import { measureKill } from '../bench/workload-kill.mjs';
import { findFreePort, type LocalMesh, startLocalMesh } from '../src/index.js';
import { REPO_ROOT } from './helpers.js';

interface Sent {
  start: number;
  end: number;
  status: number;
  version: string | undefined;
  body: string;
}
interface Measured {
  outMs: number;
  restarts: number;
  oldPid: number;
  newPid: number;
  beforeKill: Sent[];
  afterBack: Sent[];
  window: Sent[];
  failed: Sent[];
  v1InWindow: number;
}

let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await startLocalMesh({
    root: REPO_ROOT,
    ports: {
      gateway: await findFreePort(),
      admin: await findFreePort(),
      versions: { v1: await findFreePort(), v2: await findFreePort() },
    },
    stage: 'canary-50',
  });
});
afterAll(async () => {
  await mesh?.stop();
});

function expectOnlyV2sShare(m: Measured): void {
  expect(m.restarts).toBe(1);
  expect(m.newPid).not.toBe(m.oldPid);
  expect(m.beforeKill.filter((r) => r.status !== 200)).toEqual([]);
  expect(m.afterBack.filter((r) => r.status !== 200)).toEqual([]);
  expect(m.afterBack.some((r) => r.version === 'v2')).toBe(true);
  // v1 kept its half of the window's requests: the failures are v2's share only.
  const n = m.window.length;
  expect(binomialTestTwoSided(m.v1InWindow, n, 0.5)).toBeGreaterThan(1e-6);
  expect(m.failed.every((r) => r.status === 503)).toBe(true);
  expect(m.failed.length).toBeLessThanOrEqual(n - m.v1InWindow);
}

describe('a workload that dies under load', () => {
  it('SIGKILL: v2 is started again by itself; only requests bound for v2 fail meanwhile', async () => {
    const m = (await measureKill(mesh, { signal: 'SIGKILL' })) as Measured;
    expectOnlyV2sShare(m);
    expect(m.failed.length).toBeGreaterThan(0);
    // once the exit is seen, v2's share is answered at once, as Envoy does with no healthy endpoint
    expect(m.failed.some((r) => r.body === 'no healthy upstream')).toBe(true);
  });

  it('SIGTERM: v2 drains (every request that reached it is answered), leaves rotation, and comes back', async () => {
    const m = (await measureKill(mesh, { signal: 'SIGTERM' })) as Measured;
    expectOnlyV2sShare(m);
    // nothing was reset or refused by the draining v2: the only failures are the gateway's own
    // "no healthy upstream" while v2 had no ready endpoint
    expect(m.failed.filter((r) => r.body !== 'no healthy upstream')).toEqual([]);
  });
});
