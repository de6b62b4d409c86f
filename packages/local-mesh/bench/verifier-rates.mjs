#!/usr/bin/env node
// Pass and fail rates of the verifier over repeated runs (not a test: it takes minutes).
//
//   RUNS=300 node packages/local-mesh/bench/verifier-rates.mjs      (after `pnpm build`)
//
// Starts the local path (the real v1/v2 builds and the gateway), applies canary-25 and verifies it RUNS times
// as it is (a correct mesh: every run should pass; the plan allows 1 false failure in 5000 per check) and RUNS
// times with the gateway forced to 20 % v2 (a mesh 5 points off: every run should fail; the plan allows 1 miss
// in 1000). Prints both rates with exact 95 % Clopper-Pearson intervals and the requests per run, and writes
// .state/bench/verifier-rates.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clopperPearson } from '@rollouts/split-check';
import {
  findFreePort,
  LoadClient,
  repoRoot,
  stageExpectation,
  startLocalMesh,
  verificationPlan,
  verifyStage,
} from '../dist/index.js';

const RUNS = Number(process.env.RUNS ?? 300);
const STAGE = process.env.STAGE ?? 'canary-25';
const FORCED = JSON.parse(process.env.FORCED ?? '{"v1":80,"v2":20}');

const root = repoRoot(process.cwd());
const ports = {
  gateway: await findFreePort(),
  admin: await findFreePort(),
  versions: { v1: await findFreePort(), v2: await findFreePort() },
};
const mesh = await startLocalMesh({ root, ports, stage: STAGE, log: (l) => console.log(`rates: ${l}`) });
const plan = verificationPlan(root);
const expectation = stageExpectation(root, STAGE);
const client = new LoadClient({ origin: mesh.gatewayUrl });

async function apply(body) {
  const res = await fetch(`${mesh.adminUrl}/stage`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`admin answered ${res.status}: ${await res.text()}`);
}

async function series(label, body) {
  await apply(body);
  let passed = 0;
  const requests = [];
  const started = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const r = await verifyStage({ client, plan, expectation });
    if (r.failedRequests > 0)
      throw new Error(`run ${i}: failed requests: ${r.profiles.map((p) => p.reason).join('; ')}`);
    if (r.verdict === 'pass') passed++;
    requests.push(r.profiles[0].requests);
    if ((i + 1) % 50 === 0) console.log(`rates: ${label}: ${i + 1}/${RUNS} runs, ${passed} passed`);
  }
  requests.sort((a, b) => a - b);
  const ci = clopperPearson(passed, RUNS, 0.95);
  return {
    label,
    runs: RUNS,
    passed,
    failed: RUNS - passed,
    passRate: passed / RUNS,
    passRate95: ci,
    medianRequests: requests[Math.floor(RUNS / 2)],
    p90Requests: requests[Math.floor(RUNS * 0.9)],
    seconds: (performance.now() - started) / 1000,
  };
}

try {
  const correct = await series(`${STAGE} as applied`, { stage: STAGE });
  const wrong = await series(`${STAGE} forced to ${JSON.stringify(FORCED)}`, {
    stage: STAGE,
    overrideWeights: FORCED,
  });
  const pct = (x) => `${(x * 100).toFixed(2)} %`;
  for (const s of [correct, wrong]) {
    console.log(
      `${s.label}: ${s.passed}/${s.runs} passed (${pct(s.passRate)}, 95 % CI ${pct(s.passRate95.lo)}–${pct(s.passRate95.hi)}), ` +
        `default profile median ${s.medianRequests} requests (p90 ${s.p90Requests}), ${s.seconds.toFixed(0)} s`,
    );
  }
  const file = join(root, '.state', 'bench', 'verifier-rates.json');
  mkdirSync(join(root, '.state', 'bench'), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ stage: STAGE, forced: FORCED, plan, correct, wrong }, null, 2)}\n`);
  console.log(`rates: wrote ${file}`);
} finally {
  await client.close();
  await mesh.stop();
}
