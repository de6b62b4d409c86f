#!/usr/bin/env node
// Benchmark (not a test): throughput and latency through the local gateway against the app directly, measured
// in the same run on the same machine.
//
//   pnpm --filter @rollouts/local-mesh bench        (after `pnpm build`)
//
// 1. Throughput: autocannon, CONNECTIONS keep-alive connections for DURATION seconds, to v1 directly and to
//    the gateway with stage `stable` (every request to v1), alternating ROUNDS times; ratio = gateway / direct.
// 2. Latency: LATENCY_N sequential requests on one keep-alive connection, alternating direct / gateway request
//    by request so both see the same machine state; added median latency = median(gateway) - median(direct).
// Goals (issue 5): ratio >= 0.5, added median latency <= 1 ms. Knobs: DURATION (5), CONNECTIONS (32), ROUNDS (2),
// LATENCY_N (3000). Writes .state/bench/gateway.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { findFreePort, repoRoot, startLocalMesh } from '../dist/index.js';

const DURATION = Number(process.env.DURATION ?? 5);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const LATENCY_N = Number(process.env.LATENCY_N ?? 3000);

const root = repoRoot(process.cwd());
const ports = {
  gateway: await findFreePort(),
  admin: await findFreePort(),
  versions: { v1: await findFreePort(), v2: await findFreePort() },
};
const log = (line) => console.log(`bench: ${line}`);
const mesh = await startLocalMesh({ root, ports, stage: 'stable', log });
const direct = mesh.workloads.find((w) => w.version === 'v1').url;
const gateway = `http://127.0.0.1:${ports.gateway}`;

function cannon(url, duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url: `${url}/`, connections: CONNECTIONS, duration, pipelining: 1 }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

async function latencies() {
  const a = new Pool(direct, { connections: 1 });
  const b = new Pool(gateway, { connections: 1 });
  const one = async (pool) => {
    const t = performance.now();
    const res = await pool.request({ path: '/', method: 'GET' });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    return performance.now() - t;
  };
  for (let i = 0; i < 200; i++) {
    await one(a);
    await one(b);
  }
  const da = [];
  const db = [];
  for (let i = 0; i < LATENCY_N; i++) {
    if (i % 2 === 0) {
      da.push(await one(a));
      db.push(await one(b));
    } else {
      db.push(await one(b));
      da.push(await one(a));
    }
  }
  await a.close();
  await b.close();
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.floor(s.length / 2)];
  };
  const p99 = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * 0.99)];
  return { direct: { median: median(da), p99: p99(da) }, gateway: { median: median(db), p99: p99(db) } };
}

try {
  log(`warm-up (1 s each), then ${ROUNDS} rounds of ${DURATION} s per target, ${CONNECTIONS} connections`);
  await cannon(direct, 1);
  await cannon(gateway, 1);
  const rps = { direct: [], gateway: [] };
  let errors = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, url] of [
      ['direct', direct],
      ['gateway', gateway],
    ]) {
      const result = await cannon(url, DURATION);
      errors += result.errors + result.non2xx + result.timeouts;
      rps[name].push(result.requests.average);
      log(
        `round ${r + 1} ${name.padEnd(7)} ${result.requests.average.toFixed(0)} req/s, latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
      );
    }
  }
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const ratio = mean(rps.gateway) / mean(rps.direct);
  log(`latency: ${LATENCY_N} sequential requests per target, interleaved`);
  const lat = await latencies();
  const added = lat.gateway.median - lat.direct.median;
  const summary = {
    cpus: cpus().length,
    node: process.version,
    durationSeconds: DURATION,
    connections: CONNECTIONS,
    rounds: ROUNDS,
    throughput: { directRps: mean(rps.direct), gatewayRps: mean(rps.gateway), ratio, goal: '>= 0.5' },
    latencyMs: { ...lat, addedMedian: added, goal: '<= 1' },
    failedRequests: errors,
  };
  console.log('');
  console.log(
    `throughput  direct ${summary.throughput.directRps.toFixed(0)} req/s, gateway ${summary.throughput.gatewayRps.toFixed(0)} req/s, ratio ${ratio.toFixed(2)} (goal >= 0.5: ${ratio >= 0.5 ? 'met' : 'MISSED'})`,
  );
  console.log(
    `latency     direct median ${lat.direct.median.toFixed(3)} ms, gateway median ${lat.gateway.median.toFixed(3)} ms, added ${added.toFixed(3)} ms (goal <= 1 ms: ${added <= 1 ? 'met' : 'MISSED'})`,
  );
  console.log(`failed requests: ${errors}`);
  const file = join(root, '.state', 'bench', 'gateway.json');
  mkdirSync(join(root, '.state', 'bench'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  log(`wrote ${file}`);
} finally {
  await mesh.stop();
}
