/**
 * Runs cases through both sides (several cases in flight at the oracle), tallies the outcome, finds the smallest
 * input that still shows a difference (fast-check shrinking from the failing run), and prints and writes the report.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { gatewayRouteTable } from '@rollouts/stages';
import fc from 'fast-check';
import { parse } from 'yaml';
import { type DiffCase, makeCase, makeHttpRouteCase, oracleInput, ourSide } from './case.js';
import { type CaseResult, compareCase, emptyCounts, type RequestCounts } from './compare.js';
import { formatDifferences } from './diff.js';
import { features } from './features.js';
import { type GeneratedCase, generatedCase, resolveRequest } from './generate.js';
import {
  type GeneratedHttpRouteCase,
  generatedHttpRouteCase,
  httpRouteFeatures,
  resolveHttpRouteRequest,
} from './generate-httproute.js';
import type { Oracle } from './oracle.js';
import type { RepoInputs } from './repo.js';

export interface Side {
  repo: RepoInputs;
  oracle: Oracle;
  /** Our table builder; a deliberately wrong one in the test that proves the comparison can fail. */
  build?: typeof gatewayRouteTable;
}

/** Compares one case. */
export async function runCase(side: Side, c: DiffCase): Promise<CaseResult> {
  const answer = await side.oracle.ask(oracleInput(side.repo, c));
  return compareCase(c, ourSide(side.repo, c, side.build), answer);
}

/** Compares many cases, `window` of them in flight at the oracle. Results in the order of the cases. */
export async function runCases(side: Side, cases: readonly DiffCase[], window = 24): Promise<CaseResult[]> {
  const out: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      out[i] = await runCase(side, cases[i] as DiffCase);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, cases.length) }, worker));
  return out;
}

export interface SuiteCounts {
  cases: number;
  /** Both accept, everything compared. */
  compared: number;
  /** Cases Istio rejects (whatever our side says). */
  istioRejections: number;
  /** Istio rejects and we refuse as invalid. */
  bothReject: number;
  /** We refuse as unsupported: field -> cases. */
  unsupported: Record<string, number>;
  /** Of those, how many Istio rejects too. */
  unsupportedIstioRejects: number;
  /** Cases with a difference. */
  differences: number;
  requests: RequestCounts;
  /** What the cases compared in full use (src/features.ts): feature -> cases. */
  features: Record<string, number>;
}

export function emptySuite(): SuiteCounts {
  return {
    cases: 0,
    compared: 0,
    istioRejections: 0,
    bothReject: 0,
    unsupported: {},
    unsupportedIstioRejects: 0,
    differences: 0,
    requests: emptyCounts(),
    features: {},
  };
}

function add(m: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) m[k] = (m[k] ?? 0) + v;
}

export function tally(suite: SuiteCounts, c: DiffCase, r: CaseResult): void {
  suite.cases++;
  if (r.verdict === 'compared') {
    const used = c.api === 'gateway-api' ? httpRouteFeatures(parse(c.yaml)) : features(parse(c.yaml));
    for (const f of used) suite.features[f] = (suite.features[f] ?? 0) + 1;
  }
  if (r.istioErrors !== undefined) suite.istioRejections++;
  if (r.verdict === 'compared') suite.compared++;
  if (r.verdict === 'both-reject') suite.bothReject++;
  if (r.verdict === 'unsupported' && r.unsupported !== undefined) {
    suite.unsupported[r.unsupported.field] = (suite.unsupported[r.unsupported.field] ?? 0) + 1;
    if (r.unsupported.istioRejects) suite.unsupportedIstioRejects++;
  }
  if (r.differences.length > 0) suite.differences++;
  const q = suite.requests;
  q.requests += r.counts.requests;
  q.simulationCompared += r.counts.simulationCompared;
  q.virtualHostOnly += r.counts.virtualHostOnly;
  q.istioTableCompared += r.counts.istioTableCompared;
  add(q.notModelled, r.counts.notModelled);
  add(q.refused, r.counts.refused);
}

/** A failing case as printed: what it is, its VirtualService, its requests, and both sides where they differ. */
export function describeFailure(c: DiffCase, r: CaseResult): string {
  const requests = c.requests
    .map(
      (q, i) =>
        `    ${i}: ${q.method} ${JSON.stringify(q.path)} Host ${JSON.stringify(q.authority)}${q.headers.map(([n, v]) => ` ${n}: ${JSON.stringify(v)}`).join(',')}`,
    )
    .join('\n');
  const ours = r.ourError ? `  our side: refused (${r.ourError.kind}) ${r.ourError.message}\n` : '';
  const istio = r.istioErrors ? `  Istio: rejected: ${r.istioErrors.join('; ')}\n` : '';
  return [
    `case ${c.label}: ${r.differences.length} difference(s)`,
    c.api === 'gateway-api' ? '  HTTPRoute:' : '  VirtualService:',
    c.yaml
      .trimEnd()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n'),
    '  requests:',
    requests,
    `${ours}${istio}  differences (ours / Istio's):`,
    formatDifferences(r.differences, '    '),
  ].join('\n');
}

/** The case of a generated value. */
export function caseOf(g: GeneratedCase, label: string): DiffCase {
  return makeCase(
    label,
    g.vs,
    g.requests.map((choice) => resolveRequest(g.vs, choice)),
  );
}

/** The case of a generated HTTPRoute. */
export function httpRouteCaseOf(g: GeneratedHttpRouteCase, label: string): DiffCase {
  return makeHttpRouteCase(
    label,
    g.route,
    g.requests.map((r) => resolveHttpRouteRequest(g.route, r)),
  );
}

/** The seeded sample of generated HTTPRoute cases. */
export function sampleHttpRouteCases(seed: number, runs: number): GeneratedHttpRouteCase[] {
  return fc.sample(generatedHttpRouteCase, { seed, numRuns: runs });
}

/** {@link shrink} for the generated HTTPRoutes. */
export function shrinkHttpRoute(
  side: Side,
  seed: number,
  index: number,
  budget = 300,
): Promise<Shrunk | null> {
  const toCase = (g: GeneratedHttpRouteCase) => httpRouteCaseOf(g, `shrunk from random HTTPRoute #${index}`);
  return shrinkFrom(generatedHttpRouteCase, toCase, side, seed, index, budget);
}

/** fast-check's seeded sample: the same values `fc.check` with that seed runs, in order. */
export function sampleCases(seed: number, runs: number): GeneratedCase[] {
  return fc.sample(generatedCase, { seed, numRuns: runs });
}

/**
 * The smallest case that still shows a difference, shrinking from run `index` of the seeded sequence (fast-check
 * replays it by seed and path). Shrinking stops after `budget` comparisons.
 */
export function shrink(side: Side, seed: number, index: number, budget = 300): Promise<Shrunk | null> {
  const toCase = (g: GeneratedCase) => caseOf(g, `shrunk from random #${index}`);
  return shrinkFrom(generatedCase, toCase, side, seed, index, budget);
}

/** The smallest case found while shrinking, its result, and how many comparisons shrinking took. */
export interface Shrunk {
  c: DiffCase;
  result: CaseResult;
  steps: number;
}

/** {@link shrink} of the cases `toCase` makes of the values of `arbitrary`. */
async function shrinkFrom<G>(
  arbitrary: fc.Arbitrary<G>,
  toCase: (g: G) => DiffCase,
  side: Side,
  seed: number,
  index: number,
  budget: number,
): Promise<Shrunk | null> {
  let steps = 0;
  let smallest: { c: DiffCase; result: CaseResult } | null = null;
  await fc.check(
    fc.asyncProperty(arbitrary, async (g) => {
      if (steps >= budget) return true;
      steps++;
      const c = toCase(g);
      const result = await runCase(side, c);
      if (result.differences.length === 0) return true;
      smallest = { c, result };
      return false;
    }),
    { seed, path: String(index), numRuns: index + 1 },
  );
  return smallest === null ? null : { ...(smallest as { c: DiffCase; result: CaseResult }), steps };
}

export function formatCounts(name: string, s: SuiteCounts, withFeatures = false): string {
  const q = s.requests;
  const lines = [
    `${name}: ${s.cases} cases: ${s.compared} compared in full, ${s.istioRejections} rejected by Istio (${s.bothReject} refused as invalid by us too), ${Object.values(s.unsupported).reduce((a, b) => a + b, 0)} refused by us as unsupported (${s.unsupportedIstioRejects} of them rejected by Istio too), ${s.differences} with differences`,
    `  requests: ${q.requests}: ${q.simulationCompared} decisions compared in full with Istio's simulation, ${q.virtualHostOnly} by virtual host only, ${q.istioTableCompared} routed by Envoy's rules on Istio's table too`,
  ];
  const list = (title: string, m: Record<string, number>) => {
    const entries = Object.entries(m).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) return;
    lines.push(`  ${title}:`);
    for (const [k, v] of entries) lines.push(`    ${String(v).padStart(5)}  ${k}`);
  };
  list('unsupported (refused by us, by field)', s.unsupported);
  list('requests not compared in full with the simulation, by reason', q.notModelled);
  list('requests refused by our gateway (not emulated), by reason', q.refused);
  if (withFeatures) list('what the cases compared in full use (cases)', s.features);
  return lines.join('\n');
}

export function writeReport(file: string, report: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}
