/**
 * The differential test: every stage file, then ISTIO_DIFF_RUNS (default 1000) VirtualServices generated with the
 * seed ISTIO_DIFF_SEED (default below), each through our emulation (@rollouts/stages) and Istio's control plane
 * (bin/istio-oracle). Zero differences allowed; the counts are printed and written to .test-results/istio-diff.json.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type CaseResult,
  caseOf,
  type DiffCase,
  describeFailure,
  emptySuite,
  formatCounts,
  makeCase,
  Oracle,
  type RepoInputs,
  repoInputs,
  runCases,
  type Side,
  type SuiteCounts,
  sampleCases,
  shrink,
  tally,
  writeReport,
} from '../src/index.js';
import { resultsFile, root, stageRequests } from './helpers.js';

/** The default seed: fixed, so every run compares the same cases unless ISTIO_DIFF_SEED says otherwise. */
const DEFAULT_SEED = 20260901;
const seed = Number(process.env.ISTIO_DIFF_SEED ?? DEFAULT_SEED);
const runs = Number(process.env.ISTIO_DIFF_RUNS ?? 1000);

let oracle: Oracle | undefined;
let side: Side;
let repo: RepoInputs;
const started = Date.now();
const suites: Record<string, SuiteCounts & { seconds?: number }> = {};
const failures: { suite: string; label: string; differences: unknown[]; smallest?: string }[] = [];

beforeAll(() => {
  repo = repoInputs(root, inject('renderedChart'));
  oracle = Oracle.start(root);
  side = { repo, oracle };
});

afterAll(async () => {
  await oracle?.close();
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

function record(
  name: string,
  cases: readonly DiffCase[],
  results: readonly CaseResult[],
  t0: number,
): SuiteCounts {
  const suite = emptySuite();
  for (const [i, r] of results.entries()) tally(suite, cases[i] as DiffCase, r);
  suites[name] = { ...suite, seconds: Math.round((Date.now() - t0) / 100) / 10 };
  return suite;
}

function failing(results: readonly CaseResult[]): number[] {
  return results.flatMap((r, i) => (r.differences.length > 0 ? [i] : []));
}

describe('stage files (istio/stages)', () => {
  it('Istio and our emulation agree on every stage: route table, endpoints, decisions', async () => {
    const t0 = Date.now();
    const dir = join(root, 'istio', 'stages');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    const cases = files.map((f) => makeCase(f, readFileSync(join(dir, f), 'utf8'), stageRequests()));
    const results = await runCases(side, cases);
    const suite = record('stages', cases, results, t0);
    const bad = failing(results);
    for (const i of bad) {
      const c = cases[i] as DiffCase;
      const r = results[i] as CaseResult;
      console.log(describeFailure(c, r));
      failures.push({ suite: 'stages', label: c.label, differences: r.differences });
    }
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
    const results = await runCases(side, cases);
    record('random', cases, results, t0);
    const bad = failing(results);
    for (const i of bad.slice(0, 5)) {
      const c = cases[i] as DiffCase;
      const r = results[i] as CaseResult;
      console.log(describeFailure(c, r));
      failures.push({ suite: 'random', label: c.label, differences: r.differences });
    }
    if (bad.length > 0) {
      const first = bad[0] as number;
      const smallest = await shrink(side, seed, first);
      if (smallest !== null) {
        const text = describeFailure(smallest.c, smallest.result);
        console.log(
          `smallest input still showing a difference (${smallest.steps} comparisons while shrinking):\n${text}`,
        );
        const entry = failures.find((f) => f.label === `random #${first}`);
        if (entry) entry.smallest = text;
      }
      console.log(`replay: ISTIO_DIFF_SEED=${seed} ISTIO_DIFF_RUNS=${runs}`);
    }
    expect(bad.map((i) => cases[i]?.label)).toEqual([]);
  });
});
