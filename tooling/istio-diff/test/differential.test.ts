/**
 * The differential test: every stage file, then ISTIO_DIFF_RUNS (default 1000) VirtualServices generated with the
 * seed ISTIO_DIFF_SEED (default: DEFAULT_SEED of helpers.ts), each through our emulation (@rollouts/stages) and
 * Istio's control plane (bin/istio-oracle). Zero differences allowed; the counts are printed and written to
 * .test-results/istio-diff.json.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  caseOf,
  describeFailure,
  formatCounts,
  makeCase,
  runCases,
  type SuiteCounts,
  sampleCases,
  shrink,
  writeReport,
} from '../src/index.js';
import { failing, resultsFile, root, seed, stageRequests, startDiffRun } from './helpers.js';

const runs = Number(process.env.ISTIO_DIFF_RUNS ?? 1000);

const run = startDiffRun(({ started, suites, failures, oracle }) => {
  const lines = Object.entries(suites).map(([name, s]) => formatCounts(name, s, name === 'random'));
  console.log(
    [
      `istio-diff: seed ${seed} (ISTIO_DIFF_SEED), ${runs} random cases (ISTIO_DIFF_RUNS), ${((Date.now() - started) / 1000).toFixed(1)} s`,
      ...lines,
    ].join('\n'),
  );
  const all = Object.values(suites);
  const sum = (f: (s: SuiteCounts) => number) => all.reduce((a, s) => a + f(s), 0);
  const merged = (f: (s: SuiteCounts) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(f(s))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  writeReport(resultsFile('istio-diff'), {
    seed,
    runs,
    totals: {
      cases: sum((s) => s.cases),
      comparedInFull: sum((s) => s.compared),
      istioRejections: sum((s) => s.istioRejections),
      refusedAsInvalidToo: sum((s) => s.bothReject),
      refusedAsUnsupported: merged((s) => s.unsupported),
      casesWithDifferences: sum((s) => s.differences),
      requests: sum((s) => s.requests.requests),
      requestsComparedInFullWithSimulation: sum((s) => s.requests.simulationCompared),
      requestsComparedByVirtualHostOnly: sum((s) => s.requests.virtualHostOnly),
      requestsRoutedOnIstioTable: sum((s) => s.requests.istioTableCompared),
      requestsNotModelledBySimulation: merged((s) => s.requests.notModelled),
      requestsRefusedByUs: merged((s) => s.requests.refused),
    },
    seconds: Math.round((Date.now() - started) / 100) / 10,
    oracleAnswers: oracle?.answered ?? 0,
    suites,
    failures,
  });
});

describe('stage files (istio/stages)', () => {
  it('Istio and our emulation agree on every stage: route table, endpoints, decisions', async () => {
    const t0 = Date.now();
    const dir = join(root, 'istio', 'stages');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    const cases = files.map((f) => makeCase(f, readFileSync(join(dir, f), 'utf8'), stageRequests()));
    const results = await runCases(run.side, cases);
    const suite = run.record('stages', cases, results, t0);
    const bad = failing(results);
    run.keepFailures('stages', cases, results, bad);
    expect(bad.map((i) => cases[i]?.label)).toEqual([]);
    // Every stage is accepted by both sides and compared in full.
    expect(suite.compared).toBe(files.length);

    // Host localhost:8080 (what curl and the verifiers send) reaches a route of every stage in Istio's output: in
    // Istio's simulation, and with Envoy's rules (which read the headers the simulation skips) on Istio's table.
    for (const [i, r] of results.entries()) {
      const plain = r.decisions.find(
        (d) => d.request.authority === 'localhost:8080' && d.request.headers.length === 0,
      );
      expect(plain, cases[i]?.label).toBeDefined();
      expect(plain?.istio.kind, `${cases[i]?.label}: Istio's simulation`).toBe('route');
      expect(plain?.onIstioTable?.kind, `${cases[i]?.label}: Envoy's rules on Istio's table`).toBe('route');
    }
  });
});

describe('random VirtualServices', () => {
  it(`${runs} generated cases (seed ${seed}): no difference`, async () => {
    const t0 = Date.now();
    console.log(`istio-diff: generating ${runs} cases with seed ${seed}`);
    const generated = sampleCases(seed, runs);
    const cases = generated.map((g, i) => caseOf(g, `random #${i}`));
    const results = await runCases(run.side, cases);
    run.record('random', cases, results, t0);
    const bad = failing(results);
    run.keepFailures('random', cases, results, bad.slice(0, 5));
    if (bad.length > 0) {
      const first = bad[0] as number;
      const smallest = await shrink(run.side, seed, first);
      if (smallest !== null) {
        const text = describeFailure(smallest.c, smallest.result);
        console.log(
          `smallest input still showing a difference (${smallest.steps} comparisons while shrinking):\n${text}`,
        );
        const entry = run.failures.find((f) => f.label === `random #${first}`);
        if (entry) entry.smallest = text;
      }
      console.log(`replay: ISTIO_DIFF_SEED=${seed} ISTIO_DIFF_RUNS=${runs}`);
    }
    expect(bad.map((i) => cases[i]?.label)).toEqual([]);
  });
});
