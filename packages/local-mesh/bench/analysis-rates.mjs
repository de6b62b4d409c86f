#!/usr/bin/env node
// Operating characteristics of the canary analysis over repeated rollouts (not a test: it takes minutes).
//
//   node packages/local-mesh/bench/analysis-rates.mjs                 (after `make build`; RUNS=2000 by default)
//   RUNS=5000 REAL=20 node packages/local-mesh/bench/analysis-rates.mjs
//
// 1. Measures the app's own latency: starts the local path (the real v1/v2 builds and the gateway), applies
//    canary-50 and records SAMPLE requests per version (status and latency, as the verifier sees them).
// 2. Simulates RUNS canary rollouts (canary-10 → 25 → 50 → 75 → 100, bake 0 as in `rollout demo`) per release:
//    each request goes to v2 with the stage's share, fails with the version's error rate, and takes a latency
//    drawn from that version's measured ones (plus the release's extra delay). Every step runs the same code as
//    `rollout progress`: the split check's traffic first (its sequential test decides how many requests it
//    sends), then split-check's runStepAnalysis with the thresholds of analysis.yaml. Releases:
//      healthy            v1 and v2 as measured, no errors              → false-abort rate (goal ≤ 0.1 %)
//      healthy, 0.3 %     both versions with 0.3 % errors               → false-abort rate with real noise
//      errors 2 %         v2 2 % errors, v1 0 %                         → detection (goal ≥ 99 %)
//      slower 100 ms      v2 100 ms slower than measured                 → detection (goal ≥ 99 %)
//    A rollout is aborted when a step's analysis fails or stays inconclusive (both roll back).
// 3. With REAL=N: N rollouts per release through the real local path (v2 started with FAULT_ERROR_RATE=0.02 or
//    FAULT_DELAY_MS=100), steps as `rollout progress --bake 0` runs them.
//
// Prints every rate with its exact 95 % Clopper-Pearson interval and the requests each rollout took; writes
// .state/bench/analysis-rates.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  clopperPearson,
  createSprt,
  mulberry32,
  planAnalysis,
  planCheck,
  readThresholds,
  runStepAnalysis,
} from '@rollouts/split-check';
import { analysisSteps, listStages, paths } from '@rollouts/stages';
import {
  findFreePort,
  LoadClient,
  repoRoot,
  StepTraffic,
  stageExpectation,
  startLocalMesh,
  verificationPlan,
  verifyStage,
} from '../dist/index.js';

const RUNS = Number(process.env.RUNS ?? 2000);
const REAL = Number(process.env.REAL ?? 0);
const SAMPLE = Number(process.env.SAMPLE ?? 20000);
const SEED = Number(process.env.SEED ?? 1);

const root = repoRoot(process.cwd());
const thresholds = readThresholds(readFileSync(paths.analysis(root), 'utf8'));
const summaries = listStages(root);
const plan = planAnalysis(thresholds, analysisSteps(summaries));
const splitPlan = verificationPlan(root);
const steps = summaries
  .filter((s) => s.strategy === 'canary' && s.newVersionShare > 0)
  .sort((a, b) => a.newVersionShare - b.newVersionShare)
  .map((s) => ({ stage: s.name, share: s.newVersionShare }));
const log = (line) => console.log(`analysis-rates: ${line}`);
log(
  `plan: ${plan.tests} tests over ${plan.steps.length} steps, ${plan.looks} looks, alpha ${plan.alpha.toExponential(3)}, beta ${plan.beta.toPrecision(3)}, first look ${plan.minCanary.comparison} / ${plan.minCanary.sloOnly} canary requests`,
);

const ports = async () => ({
  gateway: await findFreePort(),
  admin: await findFreePort(),
  versions: { v1: await findFreePort(), v2: await findFreePort() },
});

async function applyStage(mesh, stage) {
  const res = await fetch(`${mesh.adminUrl}/stage`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${mesh.admin.token}` },
    body: JSON.stringify({ stage }),
  });
  if (res.status !== 200) throw new Error(`admin answered ${res.status}: ${await res.text()}`);
}

// 1. The app's latency, per version, through the gateway as the verifier measures it.
async function measureLatency() {
  const mesh = await startLocalMesh({ root, ports: await ports(), stage: 'canary-50' });
  const client = new LoadClient({ origin: mesh.gatewayUrl });
  const pools = { v1: [], v2: [] };
  let failed = 0;
  try {
    const profile = stageExpectation(root, 'canary-50').profiles[0];
    await client.run({
      maxCount: SAMPLE,
      path: '/',
      headers: profile.headers,
      onSample: (s) => {
        if (typeof s.outcome === 'string' && pools[s.outcome]) pools[s.outcome].push(s.latencyMs);
        else failed++;
      },
    });
  } finally {
    await client.close();
    await mesh.stop();
  }
  if (failed > 0) throw new Error(`${failed} requests failed while measuring latency`);
  const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];
  for (const [v, xs] of Object.entries(pools))
    log(
      `measured ${v}: ${xs.length} answers, p50 ${q(xs, 0.5).toFixed(2)} ms, p90 ${q(xs, 0.9).toFixed(2)} ms, p99 ${q(xs, 0.99).toFixed(2)} ms, max ${q(xs, 1).toFixed(1)} ms`,
    );
  return pools;
}

// 2. Simulated rollouts.
function simulatedStep(random, pools, release, share) {
  const make = (version) => ({ version, requests: 0, errors: 0, latenciesMs: [] });
  const canary = make('v2');
  const baseline = share < 1 ? make('v1') : null;
  let requests = 0;
  const one = () => {
    requests++;
    const toCanary = share >= 1 || random() < share;
    const s = toCanary ? canary : baseline;
    const pool = pools[s.version];
    s.requests++;
    if (random() < (toCanary ? release.canaryErrors : release.baselineErrors)) s.errors++;
    s.latenciesMs.push(pool[Math.floor(random() * pool.length)] + (toCanary ? release.canaryExtraMs : 0));
    return toCanary;
  };
  return {
    canary,
    baseline,
    requests: () => requests,
    one,
    samples: () => ({ canary, baseline, unattributed: 0 }),
    collect: async (n) => {
      for (let i = 0; i < n; i++) one();
    },
  };
}

async function simulateRollout(random, pools, release) {
  let total = 0;
  for (const [i, { stage, share }] of steps.entries()) {
    const step = simulatedStep(random, pools, release, share);
    // The split check's default profile: its sequential test on the routing decides how many requests it sends.
    if (share < 1) {
      const sprt = createSprt(planCheck(splitPlan, share).sprt);
      let k = 0;
      for (let n = 1; ; n++) {
        if (step.one()) k++;
        if (sprt.update(k, n) !== 'continue') break;
      }
    } else {
      await step.collect(splitPlan.deterministicN);
    }
    const r = await runStepAnalysis({ plan, stage, share, baseline: share < 1, ...step });
    total += step.requests();
    if (r.result.verdict !== 'pass')
      return { aborted: true, step: i, stage, verdict: r.result.verdict, requests: total, checks: failed(r) };
  }
  return { aborted: false, requests: total };
}

const failed = (r) => r.result.checks.filter((c) => c.verdict !== 'pass').map((c) => `${c.id}:${c.verdict}`);

function summarise(label, outcomes, goal) {
  const n = outcomes.length;
  const aborted = outcomes.filter((o) => o.aborted);
  const atFirst = aborted.filter((o) => o.step === 0);
  const failedAtFirst = atFirst.filter((o) => o.verdict === 'fail');
  const rate = (k) => ({ k, n, rate: k / n, ci95: n > 0 ? clopperPearson(k, n, 0.95) : null });
  const sortedReq = (xs) => xs.map((o) => o.requests).sort((a, b) => a - b);
  const med = (xs) => (xs.length ? xs[Math.floor(xs.length / 2)] : null);
  const p90 = (xs) => (xs.length ? xs[Math.floor(xs.length * 0.9)] : null);
  const reasons = {};
  for (const o of aborted) for (const c of o.checks) reasons[c] = (reasons[c] ?? 0) + 1;
  const byStage = {};
  for (const o of aborted) byStage[o.stage] = (byStage[o.stage] ?? 0) + 1;
  return {
    label,
    goal,
    runs: n,
    aborted: rate(aborted.length),
    abortedAtFirstStep: rate(atFirst.length),
    failedAtFirstStep: rate(failedAtFirst.length),
    abortedByStage: byStage,
    reasons,
    requestsPerRollout: { median: med(sortedReq(outcomes)), p90: p90(sortedReq(outcomes)) },
    requestsUntilAbort: { median: med(sortedReq(aborted)), p90: p90(sortedReq(aborted)) },
  };
}

function print(s) {
  const pct = (x) => `${(x * 100).toFixed(2)} %`;
  const r = (x) => `${x.k}/${x.n} = ${pct(x.rate)} (95 % CI ${pct(x.ci95.lo)}–${pct(x.ci95.hi)})`;
  log(
    `${s.label}: rolled back ${r(s.aborted)}; at canary-10 ${r(s.abortedAtFirstStep)}, of which failed (not inconclusive) ${s.failedAtFirstStep.k}`,
  );
  log(
    `  requests per rollout: median ${s.requestsPerRollout.median}, p90 ${s.requestsPerRollout.p90}; until the rollback: median ${s.requestsUntilAbort.median ?? '-'}, p90 ${s.requestsUntilAbort.p90 ?? '-'}; by stage ${JSON.stringify(s.abortedByStage)}; tests ${JSON.stringify(s.reasons)}`,
  );
}

const RELEASES = [
  { label: 'healthy', goal: 'rolled back ≤ 0.1 %', canaryErrors: 0, baselineErrors: 0, canaryExtraMs: 0 },
  {
    label: 'healthy, both 0.3 % errors',
    goal: 'rolled back ≤ 0.1 %',
    canaryErrors: 0.003,
    baselineErrors: 0.003,
    canaryExtraMs: 0,
  },
  {
    label: 'v2 2 % errors, v1 0 %',
    goal: 'rolled back ≥ 99 %',
    canaryErrors: 0.02,
    baselineErrors: 0,
    canaryExtraMs: 0,
    env: { FAULT_ERROR_RATE: '0.02' },
  },
  {
    label: 'v2 100 ms slower',
    goal: 'rolled back ≥ 99 %',
    canaryErrors: 0,
    baselineErrors: 0,
    canaryExtraMs: 100,
    env: { FAULT_DELAY_MS: '100' },
  },
];

// 3. Real rollouts through the local path.
async function realRollouts(release, runs) {
  const mesh = await startLocalMesh({
    root,
    ports: await ports(),
    stage: 'stable',
    ...(release.env ? { workloadEnv: { v2: release.env } } : {}),
  });
  const client = new LoadClient({ origin: mesh.gatewayUrl });
  const outcomes = [];
  try {
    for (let run = 0; run < runs; run++) {
      let total = 0;
      let outcome = null;
      for (const [i, { stage, share }] of steps.entries()) {
        await applyStage(mesh, stage);
        const expectation = stageExpectation(root, stage);
        const profile = expectation.profiles[0];
        const traffic = new StepTraffic({ client, profile, canary: 'v2', baseline: share < 1 ? 'v1' : null });
        const split = await verifyStage({
          client,
          plan: splitPlan,
          expectation,
          serverErrorsAsAnswers: true,
          onSample: (p, s) => (p === profile ? traffic.record(s) : undefined),
        });
        if (split.verdict !== 'pass')
          throw new Error(
            `split check failed at ${stage}: ${split.profiles.map((p) => p.reason).join('; ')}`,
          );
        const r = await runStepAnalysis({
          plan,
          stage,
          share,
          baseline: share < 1,
          samples: () => traffic.samples(),
          collect: (n) => traffic.collect(n),
        });
        total += split.requests + traffic.sent;
        if (r.result.verdict !== 'pass') {
          outcome = {
            aborted: true,
            step: i,
            stage,
            verdict: r.result.verdict,
            requests: total,
            checks: failed(r),
          };
          break;
        }
      }
      outcomes.push(outcome ?? { aborted: false, requests: total });
      await applyStage(mesh, 'stable');
      if ((run + 1) % 5 === 0) log(`real ${release.label}: ${run + 1}/${runs}`);
    }
  } finally {
    await client.close();
    await mesh.stop();
  }
  return outcomes;
}

const started = performance.now();
const pools = await measureLatency();
const simulated = [];
for (const [i, release] of RELEASES.entries()) {
  const random = mulberry32(SEED * 1000 + i);
  const outcomes = [];
  const t0 = performance.now();
  for (let run = 0; run < RUNS; run++) {
    outcomes.push(await simulateRollout(random, pools, release));
    if ((run + 1) % 500 === 0)
      log(`${release.label}: ${run + 1}/${RUNS} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const s = summarise(`simulated, ${release.label}`, outcomes, release.goal);
  print(s);
  simulated.push(s);
}
const real = [];
if (REAL > 0) {
  for (const release of RELEASES.filter((r) => r.baselineErrors === 0)) {
    const s = summarise(`real local path, ${release.label}`, await realRollouts(release, REAL), release.goal);
    print(s);
    real.push(s);
  }
}
const file = join(root, '.state', 'bench', 'analysis-rates.json');
mkdirSync(join(root, '.state', 'bench'), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify({ runs: RUNS, real: REAL, seed: SEED, thresholds, plan: { ...plan, thresholds: undefined }, latencySample: SAMPLE, simulated, realRuns: real, seconds: (performance.now() - started) / 1000 }, null, 2)}\n`,
);
log(`wrote ${file} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
