// The analysis from Prometheus histograms (the cluster path) and the PromQL answers it reads: built from the same
// seeded answers as the exact analysis, bucketed with Istio's boundaries, so the two can be compared.
import { describe, expect, it } from 'vitest';
import {
  analyse,
  analyseHistogram,
  histogramQuantile,
  type MeshSnapshot,
  mulberry32,
  PromQueryError,
  parseVector,
  planAnalysis,
  QUERIES,
  stepCounts,
  type VersionSample,
} from '../src/index.js';
import { FIXTURE_THRESHOLDS } from './fixtures.js';

const ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000];
const plan = planAnalysis(FIXTURE_THRESHOLDS, [
  { stage: 'canary-10', baseline: true },
  { stage: 'canary-100', baseline: false },
]);

function sample(
  version: string,
  n: number,
  o: { ms?: number; extraMs?: number; errorRate?: number; seed: number },
) {
  const random = mulberry32(o.seed);
  const latenciesMs: number[] = [];
  let errors = 0;
  for (let i = 0; i < n; i++) {
    if (random() < (o.errorRate ?? 0)) errors++;
    latenciesMs.push((o.ms ?? 4) * (0.5 + random()) + (o.extraMs ?? 0));
  }
  return { version, requests: n, errors, latenciesMs };
}

/** The sample as Prometheus would hold it: cumulative counts per Istio boundary, then +Inf. */
function bucketed(s: VersionSample): VersionSample {
  const buckets = [...ISTIO_BUCKETS, Number.POSITIVE_INFINITY].map((le) => ({
    le,
    count: s.latenciesMs.filter((v) => v <= le).length,
  }));
  return { ...s, latenciesMs: [], buckets };
}

const check = (r: ReturnType<typeof analyse>, id: string) => r.checks.find((c) => c.id === id);

describe('analyseHistogram', () => {
  it('passes a healthy canary and says how latency was judged', () => {
    const r = analyseHistogram(plan, {
      stage: 'canary-10',
      canary: bucketed(sample('v2', 2000, { seed: 1 })),
      baseline: bucketed(sample('v1', 18000, { seed: 2 })),
      share: 0.1,
    });
    expect(r.checks.map((c) => [c.id, c.verdict])).toEqual([
      ['error-rate', 'pass'],
      ['error-margin', 'pass'],
      ['latency-shift', 'pass'],
      ['latency-p99', 'pass'],
    ]);
    expect(r.verdict).toBe('pass');
    expect(r.latencyMethod).toContain('histogram buckets');
    expect(r.latencyMethod).toContain('Mann-Whitney on bucket edges');
    expect(check(r, 'latency-p99')?.detail).toContain('on the bucket boundary 500 ms');
  });

  it('fails a canary 150 ms slower on the shift, as the exact analysis does', () => {
    const input = {
      stage: 'canary-10',
      canary: sample('v2', 1000, { seed: 3, extraMs: 150 }),
      baseline: sample('v1', 9000, { seed: 4 }),
      share: 0.1,
    };
    const exact = analyse(plan, input);
    const binned = analyseHistogram(plan, {
      ...input,
      canary: bucketed(input.canary),
      baseline: bucketed(input.baseline),
    });
    expect(check(exact, 'latency-shift')?.verdict).toBe('fail');
    expect(check(binned, 'latency-shift')?.verdict).toBe('fail');
    expect(check(binned, 'latency-shift')?.reason).toContain('slower than v1 by more than 50.0 ms');
    expect(binned.verdict).toBe('fail');
  });

  it('keeps the exact error tests: 5 % errors fail the SLO', () => {
    const r = analyseHistogram(plan, {
      stage: 'canary-10',
      canary: bucketed(sample('v2', 1000, { seed: 5, errorRate: 0.05 })),
      baseline: bucketed(sample('v1', 9000, { seed: 6 })),
      share: 0.1,
    });
    expect(check(r, 'error-rate')?.verdict).toBe('fail');
    expect(r.verdict).toBe('fail');
  });

  it('fails a p99 above the SLO from the answers past the 500 ms boundary, without a baseline', () => {
    const s = sample('v2', 2000, { seed: 7 });
    const slow = { ...s, latenciesMs: s.latenciesMs.map((v, i) => (i % 20 === 0 ? v + 800 : v)) };
    const r = analyseHistogram(plan, {
      stage: 'canary-100',
      canary: bucketed(slow),
      baseline: null,
      share: 1,
    });
    expect(check(r, 'latency-p99')?.verdict).toBe('fail');
    expect(check(r, 'latency-p99')?.valueText).toContain('100 of 2000 answers slower than 500 ms');
  });

  it('is inconclusive on too little data, never a pass', () => {
    const r = analyseHistogram(plan, {
      stage: 'canary-10',
      canary: bucketed(sample('v2', 30, { seed: 8 })),
      baseline: bucketed(sample('v1', 270, { seed: 9 })),
      share: 0.1,
    });
    expect(r.verdict).toBe('inconclusive');
    expect(r.missing?.canary).toBeGreaterThan(0);
  });

  it('refuses buckets that do not rise or lack +Inf', () => {
    const bad = { version: 'v2', requests: 3, errors: 0, latenciesMs: [], buckets: [{ le: 5, count: 3 }] };
    expect(() =>
      analyseHistogram(plan, { stage: 'canary-100', canary: bad, baseline: null, share: 1 }),
    ).toThrow('the last histogram bucket must be le="+Inf"');
  });

  it('estimates quantiles as histogram_quantile does', () => {
    const b = [
      { le: 10, count: 50 },
      { le: 20, count: 100 },
      { le: Number.POSITIVE_INFINITY, count: 100 },
    ];
    expect(histogramQuantile(b, 0.5)).toBe(10);
    expect(histogramQuantile(b, 0.75)).toBe(15);
  });
});

describe('PromQL answers', () => {
  const vector = (result: { metric: Record<string, string>; value: number }[]) => ({
    status: 'success',
    data: {
      resultType: 'vector',
      result: result.map((r) => ({ metric: r.metric, value: [1700000000, String(r.value)] })),
    },
  });

  it('queries by destination_version what the gateway reported', () => {
    const sel = { gateway: 'istio-ingressgateway', app: 'webapp' };
    expect(QUERIES.requests(sel)).toBe(
      'sum by (destination_version, response_code) (istio_requests_total{reporter="source",source_workload="istio-ingressgateway",destination_app="webapp"})',
    );
    expect(QUERIES.durationBuckets(sel)).toContain('istio_request_duration_milliseconds_bucket{');
    expect(QUERIES.durationBuckets(sel)).toContain('sum by (destination_version, le)');
  });

  it('turns two snapshots into the step’s exact counts (the difference, a reset counted from zero)', () => {
    const start: MeshSnapshot = {
      requests: parseVector(
        vector([
          { metric: { destination_version: 'v1', response_code: '200' }, value: 100 },
          { metric: { destination_version: 'v2', response_code: '200' }, value: 50 },
        ]),
      ),
      buckets: [],
    };
    const end: MeshSnapshot = {
      requests: parseVector(
        vector([
          { metric: { destination_version: 'v1', response_code: '200' }, value: 190 },
          { metric: { destination_version: 'v2', response_code: '200' }, value: 7 },
          { metric: { destination_version: 'v2', response_code: '503' }, value: 3 },
          { metric: { destination_version: 'unknown', response_code: '404' }, value: 2 },
        ]),
      ),
      buckets: parseVector(
        vector([
          { metric: { destination_version: 'v2', le: '10' }, value: 8 },
          { metric: { destination_version: 'v2', le: '+Inf' }, value: 10 },
        ]),
      ),
    };
    const counts = stepCounts(start, end, ['v1', 'v2']);
    expect(counts.versions.v1?.requests).toBe(90);
    expect(counts.versions.v2).toMatchObject({ requests: 10, errors: 3 });
    expect(counts.versions.v2?.buckets).toEqual([
      { le: 10, count: 8 },
      { le: Number.POSITIVE_INFINITY, count: 10 },
    ]);
    expect(counts.unattributed).toBe(2);
  });

  it('names Prometheus’ own error', () => {
    expect(() =>
      parseVector({ status: 'error', errorType: 'bad_data', error: 'parse error' }, 'up{'),
    ).toThrow(new PromQueryError('Prometheus answered error to up{: bad_data parse error'));
    expect(() => parseVector({ status: 'success', data: { resultType: 'matrix', result: [] } })).toThrow(
      'where a vector was expected',
    );
  });
});
