#!/usr/bin/env node
// Operating characteristics of the cluster path's canary analysis (from Prometheus histogram buckets), simulated
// (not a test: it takes minutes). The same step loop as `rollout progress --target cluster` (runStepAnalysis with
// analyseHistogram and the thresholds of analysis.yaml) over canary rollouts canary-10 → 25 → 50 → 75 → 100, each
// request counted as Istio's ingress gateway counts it: its version, its status and the bucket of
// istio_request_duration_milliseconds (Istio's default boundaries) its latency falls in.
//
//   node packages/split-check/bench/histogram-rates.mjs            (after `make build`; RUNS=1000 by default)
//
// Latencies: log-normal with the local path's measured median and p99 (MEDIAN_MS=12, P99_MS=52: the figures of
// packages/local-mesh/bench/analysis-rates.mjs on 2 busy cores). Releases: healthy (goal: ≤ 0.1 % rolled back),
// v2 with 2 % errors (v1 0 %), v2 100 ms slower (goals: ≥ 99 % rolled back). Rates with exact 95 % intervals.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  analyseHistogram,
  clopperPearson,
  mulberry32,
  normalQuantile,
  planAnalysis,
  readThresholds,
  runStepAnalysis,
} from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { analysisSteps, listStages, paths } = await import(
  join(root, 'packages', 'stages', 'dist', 'index.js')
);
const RUNS = Number(process.env.RUNS ?? 1000);
const MEDIAN_MS = Number(process.env.MEDIAN_MS ?? 12);
const P99_MS = Number(process.env.P99_MS ?? 52);
const SEED = Number(process.env.SEED ?? 1);
const BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000];

const thresholds = readThresholds(readFileSync(paths.analysis(root), 'utf8'));
const summaries = listStages(root);
const plan = planAnalysis(thresholds, analysisSteps(summaries));
const steps = summaries
  .filter((s) => s.strategy === 'canary' && s.newVersionShare > 0)
  .sort((a, b) => a.newVersionShare - b.newVersionShare);
const sigma = Math.log(P99_MS / MEDIAN_MS) / normalQuantile(0.99);

function sampleOf(version) {
  return { version, requests: 0, errors: 0, latenciesMs: [], counts: new Array(BUCKETS.length + 1).fill(0) };
}

function withBuckets(s) {
  let cum = 0;
  const buckets = BUCKETS.map((le, i) => {
    cum += s.counts[i];
    return { le, count: cum };
  });
  buckets.push({ le: Number.POSITIVE_INFINITY, count: s.requests });
  return { version: s.version, requests: s.requests, errors: s.errors, latenciesMs: [], buckets };
}

async function rollout(release, random) {
  const normal = () => {
    // Box-Muller
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  let requests = 0;
  for (const step of steps) {
    const share = step.newVersionShare;
    const canary = sampleOf('v2');
    const baseline = share < 1 ? sampleOf('v1') : null;
    const collect = async (n) => {
      for (let i = 0; i < n; i++) {
        const isCanary = random() < share;
        const s = isCanary ? canary : baseline;
        if (!s) continue;
        s.requests++;
        if (random() < (isCanary ? release.canaryErrors : 0)) s.errors++;
        const ms = MEDIAN_MS * Math.exp(sigma * normal()) + (isCanary ? release.extraMs : 0);
        let b = BUCKETS.findIndex((le) => ms <= le);
        if (b < 0) b = BUCKETS.length;
        s.counts[b]++;
      }
      requests += n;
    };
    const r = await runStepAnalysis({
      plan,
      stage: step.name,
      share,
      baseline: baseline !== null,
      samples: () => ({
        canary: withBuckets(canary),
        baseline: baseline ? withBuckets(baseline) : null,
        unattributed: 0,
      }),
      collect,
      judge: analyseHistogram,
    });
    if (r.result.verdict !== 'pass') {
      const failed = r.result.checks.filter((c) => c.verdict !== 'pass').map((c) => `${c.id}:${c.verdict}`);
      return { rolledBack: true, at: step.name, failed, requests };
    }
  }
  return { rolledBack: false, at: null, failed: [], requests };
}

const pct = (x) => `${(x * 100).toFixed(2)} %`;
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? '-' : s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))];
};
const releases = [
  { name: 'healthy', canaryErrors: 0, extraMs: 0 },
  { name: 'v2 2 % errors, v1 0 %', canaryErrors: 0.02, extraMs: 0 },
  { name: 'v2 100 ms slower', canaryErrors: 0, extraMs: 100 },
];
console.log(
  `histogram-rates: ${RUNS} rollouts per release (${steps.map((s) => s.name).join(' → ')}), latency log-normal median ${MEDIAN_MS} ms, p99 ${P99_MS} ms, Istio's buckets; thresholds of analysis.yaml`,
);
const started = performance.now();
for (const [i, release] of releases.entries()) {
  const random = mulberry32(SEED + i);
  const results = [];
  for (let r = 0; r < RUNS; r++) results.push(await rollout(release, random));
  const back = results.filter((x) => x.rolledBack);
  const ci = clopperPearson(back.length, RUNS, 0.95);
  const where = {};
  const tests = {};
  for (const x of back) {
    where[x.at] = (where[x.at] ?? 0) + 1;
    for (const t of x.failed) tests[t] = (tests[t] ?? 0) + 1;
  }
  const reqs = results.map((x) => x.requests);
  console.log(
    `histogram-rates: ${release.name}: rolled back ${back.length}/${RUNS} = ${pct(back.length / RUNS)} (95 % CI ${pct(ci.lo)}–${pct(ci.hi)}); where ${JSON.stringify(where)}; tests ${JSON.stringify(tests)}; requests per rollout median ${quantile(reqs, 0.5)}, p90 ${quantile(reqs, 0.9)}`,
  );
}
console.log(`histogram-rates: ${((performance.now() - started) / 1000).toFixed(0)} s`);
