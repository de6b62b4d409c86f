/**
 * The differential test of the Gateway API stages: every HTTPRoute stage file, then ISTIO_DIFF_GA_RUNS (default
 * 500) HTTPRoutes generated with the seed ISTIO_DIFF_SEED, each through our emulation (@rollouts/stages
 * parseHttpRoute + httpRouteTable) and Istio's Gateway API translation (bin/istio-oracle: the API server's CRD
 * defaults and checks, then Istio's controller, for the Gateway Istio deploys). Zero differences allowed; the counts
 * are printed and written to .test-results/istio-diff-gateway-api.json.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compareCase,
  describeFailure,
  formatCounts,
  httpRouteCaseOf,
  makeHttpRouteCase,
  oracleInput,
  ourSide,
  runCases,
  sampleHttpRouteCases,
  shrinkHttpRoute,
  writeReport,
} from '../src/index.js';
import { failing, resultsFile, root, seed, stageRequests, startDiffRun } from './helpers.js';

const runs = Number(process.env.ISTIO_DIFF_GA_RUNS ?? 500);

const run = startDiffRun(({ started, suites, failures }) => {
  console.log(
    [
      `istio-diff (Gateway API): seed ${seed} (ISTIO_DIFF_SEED), ${runs} random HTTPRoutes (ISTIO_DIFF_GA_RUNS), ${((Date.now() - started) / 1000).toFixed(1)} s`,
      ...Object.entries(suites).map(([name, s]) => formatCounts(name, s, name === 'random HTTPRoutes')),
    ].join('\n'),
  );
  writeReport(resultsFile('istio-diff-gateway-api'), {
    seed,
    runs,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    suites,
    failures,
  });
});

describe('HTTPRoute stage files (istio/stages/gateway-api)', () => {
  it("Istio's Gateway API translation and our emulation agree on every stage: route table, endpoints, decisions", async () => {
    const t0 = Date.now();
    const dir = join(root, 'istio', 'stages', 'gateway-api');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(files.length).toBeGreaterThanOrEqual(9);
    const cases = files.map((f) =>
      makeHttpRouteCase(`gateway-api/${f}`, readFileSync(join(dir, f), 'utf8'), stageRequests()),
    );
    const results = await runCases(run.side, cases);
    const suite = run.record('HTTPRoute stages', cases, results, t0);
    const bad = failing(results);
    run.keepFailures('stages', cases, results, bad);
    expect(bad.map((i) => cases[i]?.label)).toEqual([]);
    expect(suite.compared).toBe(files.length);
    // Every request of every stage reaches a route of Istio's table by Envoy's rules (the header routes too).
    for (const [i, r] of results.entries()) {
      for (const d of r.decisions) expect(d.onIstioTable?.kind, `${cases[i]?.label}`).toBe('route');
      expect(r.decisions.some((d) => d.istio.kind === 'route')).toBe(true);
    }
  });
});

describe('random HTTPRoutes', () => {
  it(`${runs} generated HTTPRoutes (seed ${seed}): no difference`, async () => {
    const t0 = Date.now();
    const cases = sampleHttpRouteCases(seed, runs).map((g, i) =>
      httpRouteCaseOf(g, `random HTTPRoute #${i}`),
    );
    const results = await runCases(run.side, cases);
    const suite = run.record('random HTTPRoutes', cases, results, t0);
    const bad = failing(results);
    run.keepFailures('random', cases, results, bad.slice(0, 5));
    if (bad.length > 0) {
      const first = bad[0] as number;
      const smallest = await shrinkHttpRoute(run.side, seed, first);
      if (smallest !== null) {
        console.log(
          `smallest input still showing a difference (${smallest.steps} comparisons):\n${describeFailure(smallest.c, smallest.result)}`,
        );
      }
      console.log(`replay: ISTIO_DIFF_SEED=${seed} ISTIO_DIFF_GA_RUNS=${runs}`);
    }
    expect(bad.map((i) => cases[i]?.label)).toEqual([]);
    // The sample reaches what it is meant to: most cases compared in full, Istio's rejections and our refusals seen.
    expect(suite.compared).toBeGreaterThan(runs / 3);
    expect(suite.istioRejections).toBeGreaterThan(0);
  });
});

describe('it can fail', () => {
  it('a wrong Gateway API emulation (file order instead of precedence; plain prefixes) differs from Istio', async () => {
    const cases = sampleHttpRouteCases(seed, 120).map((g, i) => httpRouteCaseOf(g, `wrong #${i}`));
    let right = 0;
    let wrongFound = 0;
    for (const c of cases) {
      const answer = await run.side.oracle.ask(oracleInput(run.repo, c));
      const ours = ourSide(run.repo, c);
      if (ours.kind !== 'table') continue;
      if (compareCase(c, ours, answer).differences.length === 0) right++;
      const vh = ours.table.routeConfiguration.virtualHosts[0];
      if (vh === undefined) continue;
      const rule = (i: number) => ours.table.sources[0]?.[i]?.http ?? 0;
      const wrongRoutes = vh.routes
        .map((r, i) => ({ r, i }))
        .sort((a, b) => rule(a.i) - rule(b.i))
        .map(({ r }) => {
          const { pathSeparatedPrefix, ...match } = r.match;
          return pathSeparatedPrefix === undefined
            ? r
            : { ...r, match: { ...match, prefix: pathSeparatedPrefix } };
        });
      const routes = vh.routes;
      const wrong = {
        ...ours,
        table: {
          ...ours.table,
          routeConfiguration: {
            ...ours.table.routeConfiguration,
            virtualHosts: [{ ...vh, routes: wrongRoutes }],
          },
        },
      };
      if (JSON.stringify(wrongRoutes) === JSON.stringify(routes)) continue;
      if (compareCase(c, wrong, answer).differences.length > 0) wrongFound++;
    }
    expect(right).toBeGreaterThan(20);
    expect(wrongFound).toBeGreaterThan(5);
  });
});
