#!/usr/bin/env node
/**
 * What a workload dying under load costs on the local path, as on a cluster with one pod per version: v2 is
 * killed (SIGKILL) or stopped (SIGTERM) at canary-50 while 8 clients send requests; the supervisor starts it
 * again and it rejoins the rotation once ready. Prints, per signal: how long v2 was out, the requests in that
 * window, how many failed, and the share of the window's requests v2 would have had (the failures can only be
 * that share: v1's requests never fail, and the split does not move).
 *
 *   node packages/local-mesh/bench/workload-kill.mjs        (after `make build`; ROUNDS=3 by default)
 *
 * `measureKill` is also what test/workload-failure.test.ts checks.
 */
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

/**
 * Sends GET / with `clients` in parallel; after `before` answers, sends `signal` to the workload of `version`,
 * waits until the supervisor has it ready again, then sends `after` more answers' worth and stops.
 * Every request: {start, end, status, version, body}; times from performance.now().
 */
export async function measureKill(
  mesh,
  { version = 'v2', signal = 'SIGKILL', before = 400, after = 400, clients = 8 } = {},
) {
  const workload = mesh.workloads.find((w) => w.version === version);
  const pool = new Pool(mesh.gatewayUrl, { connections: clients });
  const requests = [];
  let killAt = null;
  let backAt = null;
  let afterBack = 0;
  let oldPid = null;
  const restartsBefore = workload.health().restarts;
  const unsubscribe = workload.onChange(() => {
    if (killAt !== null && backAt === null && workload.ready && workload.pid !== oldPid)
      backAt = performance.now();
  });
  const worker = async () => {
    while (backAt === null || afterBack < after) {
      const start = performance.now();
      let status = 0;
      let answeredBy;
      let body = '';
      try {
        const res = await pool.request({ method: 'GET', path: '/' });
        status = res.statusCode;
        answeredBy = res.headers['x-app-version'];
        body = status === 200 ? '' : await res.body.text();
        if (status === 200) await res.body.dump();
      } catch (err) {
        body = err.message;
      }
      const end = performance.now();
      requests.push({ start, end, status, version: answeredBy, body });
      if (backAt !== null && start > backAt) afterBack++;
      if (killAt === null && requests.length >= before) {
        oldPid = workload.pid;
        killAt = performance.now();
        process.kill(oldPid, signal);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  unsubscribe();
  await pool.close();
  const window = requests.filter((r) => r.end >= killAt && r.start <= backAt);
  return {
    signal,
    killAt,
    backAt,
    outMs: backAt - killAt,
    restarts: workload.health().restarts - restartsBefore,
    newPid: workload.pid,
    oldPid,
    requests,
    beforeKill: requests.filter((r) => r.end < killAt),
    afterBack: requests.filter((r) => r.start > backAt),
    window,
    failed: window.filter((r) => r.status !== 200),
    v1InWindow: window.filter((r) => r.status === 200 && r.version === 'v1').length,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { findFreePort, repoRoot, startLocalMesh } = await import('../dist/index.js');
  const rounds = Number(process.env.ROUNDS ?? 3);
  const root = repoRoot();
  console.log(
    'signal   v2 out (ms)  requests in window  failed  failed share  v2 share of window (expected 50 %)',
  );
  for (const signal of ['SIGKILL', 'SIGTERM']) {
    for (let round = 0; round < rounds; round++) {
      // a fresh local path each round, so every round starts from the first back-off step
      const ports = {
        gateway: await findFreePort(),
        admin: await findFreePort(),
        versions: { v1: await findFreePort(), v2: await findFreePort() },
      };
      const mesh = await startLocalMesh({ root, ports, stage: 'canary-50' });
      try {
        const m = await measureKill(mesh, { signal });
        const n = m.window.length;
        const pct = (x) => `${((100 * x) / Math.max(n, 1)).toFixed(1)} %`;
        const outside = [...m.beforeKill, ...m.afterBack].filter((r) => r.status !== 200).length;
        console.log(
          `${signal.padEnd(8)} ${m.outMs.toFixed(0).padStart(11)}  ${String(n).padStart(18)}  ${String(m.failed.length).padStart(6)}  ${pct(m.failed.length).padStart(12)}  ${pct(n - m.v1InWindow).padStart(10)}` +
            `   (failures outside the window: ${outside}; of ${m.requests.length} requests)`,
        );
      } finally {
        await mesh.stop();
      }
    }
  }
}
