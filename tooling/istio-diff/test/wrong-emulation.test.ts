/**
 * The comparison can fail: deliberately wrong emulations (a VirtualService host `localhost` taken as it is instead
 * of Istio's `localhost.<namespace>.svc.cluster.local`; weights rescaled to percentages instead of Istio's as
 * written; 0-weight destinations kept) are compared with the very oracle answers the right emulation agrees with,
 * and every one of them is caught.
 */
import { type GatewayRouteTable, gatewayRouteTable } from '@rollouts/stages';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type CaseRequest,
  type CaseResult,
  caseOf,
  compareCase,
  type DiffCase,
  makeCase,
  Oracle,
  type OracleAnswer,
  oracleInput,
  ourSide,
  type RepoInputs,
  repoInputs,
  sampleCases,
} from '../src/index.js';
import { root } from './helpers.js';

type Build = typeof gatewayRouteTable;

/** Wrong: Istio's short-name resolution skipped, `localhost` stays `localhost`. */
const localhostAsIs: Build = (vs, ...rest) => {
  const table = structuredClone(gatewayRouteTable(vs, ...rest)) as GatewayRouteTable;
  const ns = vs.metadata.namespace ?? 'default';
  for (const vh of table.routeConfiguration.virtualHosts) {
    vh.domains = vh.domains.map((d) => (d === `localhost.${ns}.svc.cluster.local` ? 'localhost' : d));
    vh.name = vh.name.replace(`localhost.${ns}.svc.cluster.local`, 'localhost');
  }
  return table;
};

/** Wrong: weights rescaled to percentages (Istio passes them to Envoy as written, whatever their total). */
const percentWeights: Build = (...args) => {
  const table = structuredClone(gatewayRouteTable(...args)) as GatewayRouteTable;
  for (const vh of table.routeConfiguration.virtualHosts) {
    for (const r of vh.routes) {
      const clusters = r.route.weightedClusters?.clusters ?? [];
      const total = clusters.reduce((a, c) => a + c.weight, 0);
      for (const c of clusters) c.weight = Math.round((c.weight * 100) / total);
    }
  }
  return table;
};

/** Wrong: destinations of weight 0 kept in the weighted clusters (Istio leaves them out). */
const zeroWeightsKept: Build = (vs, ...rest) => {
  const table = structuredClone(gatewayRouteTable(vs, ...rest)) as GatewayRouteTable;
  for (const [vhIndex, vh] of table.routeConfiguration.virtualHosts.entries()) {
    for (const [i, r] of vh.routes.entries()) {
      const source = table.sources[vhIndex]?.[i];
      const http = source === undefined ? undefined : vs.spec.http[source.http];
      const zero = (http?.route ?? []).filter((d) => d.weight === 0);
      if (r.route.weightedClusters === undefined || zero.length === 0) continue;
      const first = r.route.weightedClusters.clusters[0]?.name ?? '';
      for (const d of zero) {
        r.route.weightedClusters.clusters.push({
          name: first.replace(/\|[^|]*\|([^|]*)$/, `|${d.destination.subset ?? ''}|$1`),
          weight: 0,
        });
      }
    }
  }
  return table;
};

const requests: CaseRequest[] = [
  { authority: 'localhost', method: 'GET', path: '/', headers: [] },
  { authority: 'localhost:8080', method: 'GET', path: '/', headers: [] },
];

function vs(hosts: string[], route: unknown[]): unknown {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'webapp', namespace: 'rollouts' },
    spec: { hosts, gateways: ['rollouts/webapp-gateway'], http: [{ name: 'split', route }] },
  };
}

const dest = (subset: string, weight: number) => ({
  destination: { host: 'webapp.rollouts.svc.cluster.local', subset },
  weight,
});

/** Cases aimed at the mistakes, and a seeded sample of generated ones. */
const targeted: DiffCase[] = [
  makeCase('localhost', vs(['localhost'], [dest('v1', 90), dest('v2', 10)]), requests),
  makeCase('weights 20/30', vs(['*'], [dest('v1', 20), dest('v2', 30)]), requests),
  makeCase('weights 3/0/1', vs(['*'], [dest('v1', 3), dest('v2', 0), dest('green', 1)]), requests),
];

let oracle: Oracle | undefined;
let repo: RepoInputs;
let cases: DiffCase[];
let answers: OracleAnswer[];

beforeAll(async () => {
  repo = repoInputs(root, inject('renderedChart'));
  oracle = Oracle.start(root);
  cases = [...targeted, ...sampleCases(4242, 120).map((g, i) => caseOf(g, `random #${i}`))];
  const o = oracle;
  answers = await Promise.all(cases.map((c) => o.ask(oracleInput(repo, c))));
});

afterAll(async () => {
  await oracle?.close();
});

function compareAll(build: Build): CaseResult[] {
  return cases.map((c, i) => compareCase(c, ourSide(repo, c, build), answers[i] as OracleAnswer));
}

function differing(results: CaseResult[]): string[] {
  return results.flatMap((r, i) => (r.differences.length > 0 ? [cases[i]?.label ?? ''] : []));
}

describe('the comparison finds a wrong emulation', () => {
  it('the right emulation agrees on these cases (the control)', () => {
    expect(differing(compareAll(gatewayRouteTable))).toEqual([]);
  });

  it('localhost taken as it is: the domains differ, and Host localhost routes where Istio has no virtual host', () => {
    const results = compareAll(localhostAsIs);
    expect(differing(results)).toContain('localhost');
    const diffs = results[0]?.differences ?? [];
    expect(diffs.some((d) => d.what.endsWith('domains[0]') && d.ours === 'localhost')).toBe(true);
    expect(diffs.some((d) => d.what.includes("decision (Istio's simulation)"))).toBe(true);
  });

  it('weights rescaled to percentages: the weighted clusters differ', () => {
    const results = compareAll(percentWeights);
    const labels = differing(results);
    expect(labels).toContain('weights 20/30');
    expect(labels.filter((l) => l.startsWith('random')).length).toBeGreaterThan(0);
    expect(
      results[1]?.differences.some((d) => /weightedClusters\.clusters\[\d\]\.weight$/.test(d.what)),
    ).toBe(true);
  });

  it('0-weight destinations kept: the weighted clusters differ', () => {
    const labels = differing(compareAll(zeroWeightsKept));
    expect(labels).toContain('weights 3/0/1');
    expect(labels.filter((l) => l.startsWith('random')).length).toBeGreaterThan(0);
  });
});
