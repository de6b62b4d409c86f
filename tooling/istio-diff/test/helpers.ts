import { join } from 'node:path';
import { findRepoRoot } from '@rollouts/stages';
import { afterAll, beforeAll, inject } from 'vitest';
import {
  type CaseRequest,
  type CaseResult,
  type DiffCase,
  describeFailure,
  emptySuite,
  Oracle,
  type RepoInputs,
  repoInputs,
  type Side,
  type SuiteCounts,
  tally,
} from '../src/index.js';

export const root = findRepoRoot(new URL('.', import.meta.url).pathname);

/** The default seed: fixed, so every run compares the same cases unless ISTIO_DIFF_SEED says otherwise. */
export const DEFAULT_SEED = 20260901;
export const seed = Number(process.env.ISTIO_DIFF_SEED ?? DEFAULT_SEED);

/** A case with differences, as the report lists it. */
export interface Failure {
  suite: string;
  label: string;
  differences: unknown[];
  smallest?: string;
}

/** One test file's run: the oracle its tests share, and the suites' counts and failures for its report. */
export class DiffRun {
  readonly started = Date.now();
  readonly suites: Record<string, SuiteCounts & { seconds?: number }> = {};
  readonly failures: Failure[] = [];
  oracle: Oracle | undefined;
  // Set before the file's tests run (startDiffRun).
  repo!: RepoInputs;
  side!: Side;

  /** Tallies the results of suite `name`, begun at `t0`. */
  record(name: string, cases: readonly DiffCase[], results: readonly CaseResult[], t0: number): SuiteCounts {
    const suite = emptySuite();
    for (const [i, r] of results.entries()) tally(suite, cases[i] as DiffCase, r);
    this.suites[name] = { ...suite, seconds: Math.round((Date.now() - t0) / 100) / 10 };
    return suite;
  }

  /** Prints the cases `indices` of suite `suite` and keeps them for the report. */
  keepFailures(
    suite: string,
    cases: readonly DiffCase[],
    results: readonly CaseResult[],
    indices: readonly number[],
  ): void {
    for (const i of indices) {
      const c = cases[i] as DiffCase;
      const r = results[i] as CaseResult;
      console.log(describeFailure(c, r));
      this.failures.push({ suite, label: c.label, differences: r.differences });
    }
  }
}

/**
 * The run of a test file: starts one oracle before the file's tests and ends it after them, then calls `report`
 * (which prints and writes the file's counts).
 */
export function startDiffRun(report: (run: DiffRun) => void): DiffRun {
  const run = new DiffRun();
  beforeAll(() => {
    run.repo = repoInputs(root, inject('renderedChart'));
    run.oracle = Oracle.start(root);
    run.side = { repo: run.repo, oracle: run.oracle };
  });
  afterAll(async () => {
    await run.oracle?.close();
    report(run);
  });
  return run;
}

/** The indices of the results with differences. */
export function failing(results: readonly CaseResult[]): number[] {
  return results.flatMap((r, i) => (r.differences.length > 0 ? [i] : []));
}

/** Where the report goes: TEST_RESULTS_DIR (make test), else .test-results/ at the root. */
export function resultsFile(name: string): string {
  const dir = process.env.TEST_RESULTS_DIR ?? join(root, '.test-results');
  return join(dir, `${name}${process.env.TEST_RESULTS_SUFFIX ?? ''}.json`);
}

/** The requests every stage file is checked with: the Hosts a user sends, with and without override headers. */
export function stageRequests(): CaseRequest[] {
  const hosts = ['localhost', 'localhost:8080', '127.0.0.1:8080', 'webapp.rollouts.svc.cluster.local'];
  const headers: [string, string][][] = [
    [],
    [['x-canary', 'always']],
    [['X-Canary', 'always']],
    [['x-preview', 'blue']],
    [['X-PREVIEW', 'blue']],
    [
      ['x-canary', 'always'],
      ['x-preview', 'blue'],
    ],
  ];
  const out: CaseRequest[] = [];
  for (const authority of hosts) {
    for (const h of headers) out.push({ authority, method: 'GET', path: '/', headers: h });
  }
  out.push({ authority: 'localhost:8080', method: 'GET', path: '/healthz?probe=1', headers: [] });
  return out;
}
