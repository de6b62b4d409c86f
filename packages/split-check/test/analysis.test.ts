// The verdict logic of the canary analysis on fixed and seeded samples (no timing, no servers). Rates over many
// runs: packages/local-mesh/bench/analysis-rates.mjs.
import { describe, expect, it } from 'vitest';
import {
  type AnalysisPlan,
  analyse,
  lookSchedule,
  mulberry32,
  parseThresholds,
  planAnalysis,
  runStepAnalysis,
  ThresholdsError,
  type VersionSample,
} from '../src/index.js';
import { FIXTURE_THRESHOLDS } from './fixtures.js';

const STEPS = [
  ...['canary-10', 'canary-25', 'canary-50', 'canary-75', 'blue-preview'].map((stage) => ({
    stage,
    baseline: true,
  })),
  { stage: 'canary-100', baseline: false },
  { stage: 'blue', baseline: false },
];
const plan: AnalysisPlan = planAnalysis(FIXTURE_THRESHOLDS, STEPS);

/** n answers of a version: errors at `errorRate` (seeded), latencies around `ms` (0.5..1.5 × ms) plus `extraMs`. */
function sample(
  version: string,
  n: number,
  options: { errorRate?: number; ms?: number; extraMs?: number; seed?: number } = {},
): VersionSample {
  const random = mulberry32(options.seed ?? 1);
  let errors = 0;
  const latenciesMs: number[] = [];
  for (let i = 0; i < n; i++) {
    if (random() < (options.errorRate ?? 0)) errors++;
    latenciesMs.push((options.ms ?? 2) * (0.5 + random()) + (options.extraMs ?? 0));
  }
  return { version, requests: n, errors, latenciesMs };
}

const check = (r: ReturnType<typeof analyse>, id: string) => r.checks.find((c) => c.id === id);

describe('analyse', () => {
  it('passes a healthy canary once it has the first look’s requests, every test in both directions', () => {
    const r = analyse(plan, {
      stage: 'canary-10',
      canary: sample('v2', 637, { seed: 2 }),
      baseline: sample('v1', 5733, { seed: 3 }),
      share: 0.1,
    });
    expect(r.checks.map((c) => [c.id, c.verdict])).toEqual([
      ['error-rate', 'pass'],
      ['error-margin', 'pass'],
      ['latency-shift', 'pass'],
      ['latency-p99', 'pass'],
    ]);
    expect(r.verdict).toBe('pass');
    expect(r.missing).toBeNull();
    expect(r.summary).toMatch(
      /^v2 errors 0\.00 % vs v1 0\.00 % \(SLO 1\.00 %\), p99 .* ms vs .* ms \(SLO 500 ms\), median [+−][\d.]+ ms: pass$/,
    );
  });

  it('is inconclusive with too little data, never a pass, and says how many requests are missing', () => {
    const r = analyse(plan, {
      stage: 'canary-10',
      canary: sample('v2', 300, { seed: 2 }),
      baseline: sample('v1', 2700, { seed: 3 }),
      share: 0.1,
    });
    expect(r.verdict).toBe('inconclusive');
    expect(check(r, 'error-rate')?.verdict).toBe('inconclusive');
    expect(check(r, 'latency-p99')?.verdict).toBe('inconclusive');
    // 0 errors: the error-margin test needs 637 canary requests in all, i.e. 337 more, 3370 at a 10 % share.
    expect(r.missing).toEqual({ canary: 337, total: 3370 });
    expect(r.reasons.at(-1)).toBe(
      'inconclusive: about 3370 more requests at this step (337 more for v2) would decide',
    );
  });

  it('fails a canary with 5 % errors on the SLO and the margin, and says by how much', () => {
    const r = analyse(plan, {
      stage: 'canary-10',
      canary: { ...sample('v2', 1000, { seed: 4 }), errors: 52 },
      baseline: sample('v1', 9000, { seed: 5 }),
      share: 0.1,
    });
    expect(r.verdict).toBe('fail');
    const slo = check(r, 'error-rate');
    expect(slo?.verdict).toBe('fail');
    expect(slo?.excess).toBeCloseTo(0.042, 10);
    expect(slo?.lower).toBeGreaterThan(0.01);
    expect(slo?.reason).toMatch(
      /^v2 error rate 5\.20 % is above the SLO of 1\.00 % by 4\.20 points \(at least [\d.]+ % with 99\.9986 % confidence\)$/,
    );
    expect(check(r, 'error-margin')?.verdict).toBe('fail');
    expect(check(r, 'latency-shift')?.verdict).toBe('pass');
    expect(r.summary).toMatch(/^v2 errors 5\.20 % vs v1 0\.00 % .*: FAIL$/);
  });

  it('fails a canary 150 ms slower on the latency shift (margin 50 ms), its p99 still inside the SLO', () => {
    const r = analyse(plan, {
      stage: 'canary-10',
      canary: sample('v2', 640, { extraMs: 150, seed: 6 }),
      baseline: sample('v1', 5760, { seed: 7 }),
      share: 0.1,
    });
    const shift = check(r, 'latency-shift');
    expect(shift?.verdict).toBe('fail');
    expect(shift?.value).toBeGreaterThan(149);
    expect(shift?.excess).toBeGreaterThan(99);
    expect(shift?.reason).toMatch(
      /^v2 is slower than v1 by more than 50\.0 ms: median \+15\d ms, past the margin by 10\d\.\d ms \(Mann-Whitney p < 1e-300, level 1\.39e-5\)$/,
    );
    expect(check(r, 'latency-p99')?.verdict).toBe('pass');
    expect(r.verdict).toBe('fail');
  });

  it('neither passes nor fails a canary exactly at the latency margin: the shift test stays undecided', () => {
    const r = analyse(plan, {
      stage: 'canary-50',
      canary: sample('v2', 3000, { extraMs: 50, seed: 8 }),
      baseline: sample('v1', 3000, { seed: 8 }),
      share: 0.5,
    });
    expect(check(r, 'latency-shift')?.verdict).toBe('inconclusive');
    expect(r.verdict).toBe('inconclusive');
  });

  it('fails a p99 above the SLO from the order statistics', () => {
    const canary = sample('v2', 2000, { seed: 9 });
    const slow = canary.latenciesMs.map((v, i) => (i % 20 === 0 ? 800 + v : v)); // 5 % of answers take 800 ms
    const r = analyse(plan, {
      stage: 'canary-100',
      canary: { ...canary, latenciesMs: slow },
      baseline: null,
      share: 1,
    });
    expect(r.checks.map((c) => c.id)).toEqual(['error-rate', 'latency-p99']);
    const p99 = check(r, 'latency-p99');
    expect(p99?.verdict).toBe('fail');
    expect(p99?.lower).toBeGreaterThan(500);
    expect(r.verdict).toBe('fail');
    expect(r.summary).not.toContain(' vs ');
  });

  it('judges a canary against its baseline: 1.5 % errors where v1 has 1.2 % is inside the 1-point margin, yet past the SLO', () => {
    const r = analyse(plan, {
      stage: 'canary-50',
      canary: { ...sample('v2', 40000, { seed: 10 }), errors: 600 },
      baseline: { ...sample('v1', 40000, { seed: 11 }), errors: 480 },
      share: 0.5,
    });
    expect(check(r, 'error-margin')?.verdict).toBe('pass');
    expect(check(r, 'error-rate')?.verdict).toBe('fail');
  });

  it('fails requests that reached no version', () => {
    const r = analyse(plan, {
      stage: 'canary-25',
      canary: sample('v2', 700),
      baseline: sample('v1', 2100),
      share: 0.25,
      unattributed: 3,
    });
    expect(check(r, 'traffic')?.verdict).toBe('fail');
    expect(r.verdict).toBe('fail');
  });

  it('says when a canary is too close to a limit to decide', () => {
    const r = analyse(plan, {
      stage: 'canary-100',
      canary: { ...sample('v2', 10000), errors: 100 }, // exactly the SLO
      baseline: null,
      share: 1,
    });
    expect(r.verdict).toBe('inconclusive');
    expect(r.missing).toBeNull();
    expect(r.reasons.at(-1)).toMatch(/too close to a limit/);
  });
});

describe('runStepAnalysis', () => {
  /** A simulated step: each request goes to the canary with `share`, errors and latencies as `sample` makes them. */
  function simulatedStep(share: number, canary: { errorRate?: number; extraMs?: number }, seed: number) {
    const random = mulberry32(seed);
    const c: VersionSample = { version: 'v2', requests: 0, errors: 0, latenciesMs: [] };
    const b: VersionSample = { version: 'v1', requests: 0, errors: 0, latenciesMs: [] };
    let collected = 0;
    return {
      samples: () => ({ canary: c, baseline: b, unattributed: 0 }),
      collect: async (n: number) => {
        collected += n;
        for (let i = 0; i < n; i++) {
          const toCanary = random() < share;
          const s = toCanary ? c : b;
          s.requests++;
          if (toCanary && random() < (canary.errorRate ?? 0)) s.errors++;
          (s.latenciesMs as number[]).push(2 * (0.5 + random()) + (toCanary ? (canary.extraMs ?? 0) : 0));
        }
      },
      collected: () => collected,
    };
  }

  it('looks at canary counts fixed in advance: 637, 4 × 637, ... capped by the budget', () => {
    expect(lookSchedule(plan, { baseline: true, share: 0.1 })).toEqual([637, 2548, 6000]);
    expect(lookSchedule(plan, { baseline: true, share: 0.5 })).toEqual([637, 2548, 10192]);
    expect(lookSchedule(plan, { baseline: false, share: 1 })).toEqual([568, 2272, 9088]);
  });

  it('passes a healthy canary at the first look', async () => {
    const step = simulatedStep(0.1, {}, 21);
    const r = await runStepAnalysis({ plan, stage: 'canary-10', share: 0.1, baseline: true, ...step });
    expect(r.result.verdict).toBe('pass');
    expect(r.looks).toHaveLength(1);
    expect(r.looks[0]?.canaryRequests).toBeGreaterThanOrEqual(637);
  });

  it('tops up until the look’s canary count is reached, also when the collector grows its samples in place', async () => {
    // The canary gets half the share the step expects: the first batch brings about half the look's requests.
    const step = simulatedStep(0.05, {}, 24);
    const r = await runStepAnalysis({ plan, stage: 'canary-10', share: 0.1, baseline: true, ...step });
    expect(r.looks[0]?.canaryRequests).toBeGreaterThanOrEqual(637);
    expect(r.result.verdict).toBe('pass');
  });

  it('fails a canary with 5 % errors at the first look', async () => {
    const step = simulatedStep(0.1, { errorRate: 0.05 }, 22);
    const r = await runStepAnalysis({ plan, stage: 'canary-10', share: 0.1, baseline: true, ...step });
    expect(r.result.verdict).toBe('fail');
    expect(r.looks).toHaveLength(1);
  });

  it('stops undecided, never passing, when the canary sits at a limit', async () => {
    const step = simulatedStep(0.25, { extraMs: FIXTURE_THRESHOLDS.latency.marginMs }, 23);
    const r = await runStepAnalysis({ plan, stage: 'canary-25', share: 0.25, baseline: true, ...step });
    expect(r.result.verdict).toBe('inconclusive');
    expect(r.stopped).not.toBeNull();
    expect(step.collected()).toBeLessThanOrEqual(FIXTURE_THRESHOLDS.decision.maxRequestsPerStep);
  });
});

describe('parseThresholds', () => {
  it('gives back a valid object unchanged (the fixture, as readThresholds read it)', () => {
    expect(parseThresholds(structuredClone(FIXTURE_THRESHOLDS))).toEqual(FIXTURE_THRESHOLDS);
  });

  it('names every bad, missing or unknown value', () => {
    const bad = {
      errorRate: { slo: 5, margin: 0.01, extra: 1 },
      latency: { p99SloMs: '500 ms', marginMs: 50 },
      decision: { falseAbort: 0.001, miss: 0.01, looks: 2.5 },
      other: {},
    };
    let error: unknown;
    try {
      parseThresholds(bad);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ThresholdsError);
    expect((error as ThresholdsError).problems).toEqual([
      'unknown key other (expected errorRate, latency, decision)',
      'unknown key errorRate.extra (expected slo, margin)',
      'errorRate.slo must be a share in (0, 0.5], e.g. 0.01 for 1 %; got 5',
      'latency.p99SloMs must be milliseconds, > 0, e.g. 500; got "500 ms"',
      'decision.looks must be an integer from 1 to 10; got 2.5',
      'decision.maxRequestsPerStep: missing (an integer from 1000 to 10000000)',
    ]);
  });
});

describe('the p99 SLO with a baseline: the canary fails it only when the baseline meets it', () => {
  /** n answers around `ms`, a share `slowShare` of them `slowMs` later (seeded). */
  function withTail(version: string, n: number, slowShare: number, seed: number, slowMs = 600) {
    const s = sample(version, n, { seed });
    const random = mulberry32(seed + 1000);
    return { ...s, latenciesMs: s.latenciesMs.map((v) => (random() < slowShare ? v + slowMs : v)) };
  }

  it('a breach shared with the baseline is not the canary’s failure, and is said plainly', () => {
    // An overloaded machine: 3 % of both versions' answers take 600 ms more, the canary no slower than v1.
    const r = analyse(plan, {
      stage: 'canary-75',
      canary: withTail('v2', 6000, 0.03, 41),
      baseline: withTail('v1', 2000, 0.03, 42),
      share: 0.75,
    });
    const p99 = check(r, 'latency-p99');
    expect(p99?.value).toBeGreaterThan(500);
    expect(p99?.shared).toBe(true);
    expect(p99?.verdict).toBe('pass');
    expect(p99?.reason).toContain("but so is v1's");
    expect(p99?.reason).toContain('the machine is slow for both versions, not the release');
    expect(r.notes).toEqual([p99?.reason]);
    expect(r.summary).toContain("p99 SLO breached by v1 too (the machine's, not the release's)");
    expect(r.verdict).toBe('pass');
  });

  it('the same canary fails when its baseline meets the SLO', () => {
    const r = analyse(plan, {
      stage: 'canary-75',
      canary: withTail('v2', 6000, 0.03, 41),
      baseline: sample('v1', 2000, { seed: 42 }),
      share: 0.75,
    });
    const p99 = check(r, 'latency-p99');
    expect(p99?.verdict).toBe('fail');
    expect(p99?.shared).toBeUndefined();
    expect(p99?.reason).toContain("while v1's p99");
    expect(r.notes).toEqual([]);
    expect(r.verdict).toBe('fail');
  });

  it('a slower canary on a slow machine is still caught by the comparison with the baseline', () => {
    const slow = withTail('v2', 3000, 0.03, 43);
    const r = analyse(plan, {
      stage: 'canary-50',
      canary: { ...slow, latenciesMs: slow.latenciesMs.map((v) => v + 150) },
      baseline: withTail('v1', 3000, 0.03, 44),
      share: 0.5,
    });
    expect(check(r, 'latency-p99')?.shared).toBe(true);
    expect(check(r, 'latency-shift')?.verdict).toBe('fail');
    expect(r.verdict).toBe('fail');
  });

  it('a canary past the SLO while the baseline is not yet shown inside it is inconclusive, not a failure', () => {
    // v1 has 1 % slow answers: its p99 sits on the SLO and 400 answers decide neither way.
    const r = analyse(plan, {
      stage: 'canary-50',
      canary: withTail('v2', 3000, 0.05, 45),
      baseline: withTail('v1', 400, 0.01, 46),
      share: 0.5,
    });
    const p99 = check(r, 'latency-p99');
    expect(p99?.verdict).toBe('inconclusive');
    expect(p99?.reason).toContain("whether the breach is the release's or the machine's is not yet decided");
    expect(r.verdict).not.toBe('pass');
  });

  it('without a baseline (canary-100) the SLO alone judges', () => {
    const r = analyse(plan, {
      stage: 'canary-100',
      canary: withTail('v2', 3000, 0.03, 47),
      baseline: null,
      share: 1,
    });
    expect(check(r, 'latency-p99')?.verdict).toBe('fail');
    expect(r.notes).toEqual([]);
  });
});
