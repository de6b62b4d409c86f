/** The page's logic: windowed counts, the band and the verdict, latency and errors, the stage timeline, squares. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  binomialAcceptanceBand,
  clopperPearson,
  mulberry32,
  planAnalysis,
  readThresholds,
} from '@rollouts/split-check';
import { describe, expect, it } from 'vitest';
import {
  type Answer,
  appendWindow,
  cellOf,
  formatMs,
  isFailure,
  learnColors,
  type ProfileExpectation,
  percent,
  percentile,
  profileKey,
  StageTracker,
  StepSamples,
  shareVerdict,
  shortVersion,
  stepAnalysis,
  switchDelay,
  versionHealth,
  windowCounts,
} from '../src/index.js';

let seq = 0;
function answer(partial: Partial<Answer> = {}): Answer {
  seq++;
  return {
    seq,
    at: 1_700_000_000_000 + seq,
    profile: '',
    status: 200,
    version: 'v1',
    stage: 'canary-25',
    latencyMs: 2,
    color: '#2e7d32',
    error: null,
    ...partial,
  };
}

const CONFIDENCE = 1 - 0.0002;
const CANARY_25: ProfileExpectation = { versions: { v1: 0.75, v2: 0.25 }, noRoute: false, route: 'split' };
const PINNED_V2: ProfileExpectation = { versions: { v2: 1 }, noRoute: false, route: 'canary-override' };

/** n answers of canary-25, k of them v2. */
function split(n: number, k: number, extra: Partial<Answer> = {}): Answer[] {
  return Array.from({ length: n }, (_, i) => answer({ version: i < k ? 'v2' : 'v1', ...extra }));
}

describe('the window', () => {
  it('keeps the last `size` answers, oldest first', () => {
    const a = split(5, 0);
    const w = appendWindow(appendWindow([], a.slice(0, 3), 4), a.slice(3), 4);
    expect(w.map((x) => x.seq)).toEqual(a.slice(1).map((x) => x.seq));
    expect(appendWindow([], a, 10)).toHaveLength(5);
  });

  it('counts only the applied stage and the profile being sent; answers without a version apart', () => {
    const answers = [
      ...split(10, 3),
      ...split(4, 4, { stage: 'stable' }), // before the switch
      ...split(5, 5, { profile: 'x-canary: always' }), // with the override header
      answer({ status: 503, version: null, error: 'HTTP 503' }), // the gateway's own answer, stage header set
      answer({ status: 0, version: null, stage: null, error: 'connection refused' }), // no answer at all
    ];
    expect(windowCounts(answers, 'canary-25', '')).toEqual({
      n: 10,
      counts: { v1: 7, v2: 3 },
      withoutVersion: 2,
    });
    expect(windowCounts(answers, 'canary-25', 'x-canary: always')).toEqual({
      n: 5,
      counts: { v2: 5 },
      withoutVersion: 0,
    });
    expect(windowCounts(answers, 'stable', '').counts).toEqual({ v2: 4 });
  });

  it('counts an error answer that names its version (the app chose it, then failed) in the split', () => {
    const answers = [answer({ version: 'v2', status: 500, error: 'HTTP 500', color: null }), answer()];
    expect(windowCounts(answers, 'canary-25', '').counts).toEqual({ v1: 1, v2: 1 });
  });
});

describe('the band and the verdict', () => {
  it('is the exact acceptance band of split-check at the window n, and the Clopper–Pearson interval', () => {
    const v = shareVerdict(windowCounts(split(400, 100), 'canary-25', ''), CANARY_25, CONFIDENCE);
    const band = binomialAcceptanceBand(400, 0.25, CONFIDENCE);
    const v2 = v.rows.find((r) => r.version === 'v2');
    expect(v2?.countBand).toEqual(band);
    expect(v2?.band).toEqual({ lo: band.lo / 400, hi: band.hi / 400 });
    expect(v2?.interval).toEqual(clopperPearson(100, 400, CONFIDENCE));
    expect(v2?.observed).toBe(0.25);
    expect(v.state).toBe('inside');
    expect(v.rows.map((r) => [r.version, r.expected, r.state])).toEqual([
      ['v1', 0.75, 'inside'],
      ['v2', 0.25, 'inside'],
    ]);
  });

  it('is outside when the count leaves the band, and says which version', () => {
    const band = binomialAcceptanceBand(400, 0.25, CONFIDENCE);
    const low = shareVerdict(windowCounts(split(400, band.lo - 1), 'canary-25', ''), CANARY_25, CONFIDENCE);
    expect(low.state).toBe('outside');
    expect(low.rows.every((r) => r.state === 'outside')).toBe(true);
    const edge = shareVerdict(windowCounts(split(400, band.lo), 'canary-25', ''), CANARY_25, CONFIDENCE);
    expect(edge.state).toBe('inside');
    const high = shareVerdict(windowCounts(split(400, band.hi + 1), 'canary-25', ''), CANARY_25, CONFIDENCE);
    expect(high.state).toBe('outside');
  });

  it('collects before minN answers of a random split, but a deterministic one fails at the first stray answer', () => {
    expect(shareVerdict(windowCounts(split(10, 3), 'canary-25', ''), CANARY_25, CONFIDENCE).state).toBe(
      'collecting',
    );
    expect(shareVerdict(windowCounts([], 'canary-25', ''), CANARY_25, CONFIDENCE).state).toBe('waiting');
    const pinned = (k: number) =>
      shareVerdict(windowCounts(split(5, k, { profile: 'x' }), 'canary-25', 'x'), PINNED_V2, CONFIDENCE);
    expect(pinned(5).state).toBe('inside');
    const stray = pinned(4);
    expect(stray.state).toBe('outside');
    expect(stray.rows.find((r) => r.version === 'v1')).toMatchObject({
      expected: 0,
      count: 1,
      state: 'outside',
    });
  });

  it('shows every known version, 0 % expected included (v2 at stable)', () => {
    const stable: ProfileExpectation = { versions: { v1: 1, v2: 0 }, noRoute: false, route: 'split' };
    const v = shareVerdict(
      windowCounts(split(50, 0, { stage: 'stable' }), 'stable', ''),
      stable,
      CONFIDENCE,
      {
        known: ['v2', 'v1'],
      },
    );
    expect(v.rows.map((r) => [r.version, r.expected, r.count, r.state])).toEqual([
      ['v1', 1, 50, 'inside'],
      ['v2', 0, 0, 'inside'],
    ]);
  });

  it('a correct 25 % split stays inside in (nearly) every window; one 15 points off is outside in nearly all', () => {
    const random = mulberry32(20260513);
    const windows = 2000;
    const run = (p: number) => {
      let inside = 0;
      for (let w = 0; w < windows; w++) {
        let k = 0;
        for (let i = 0; i < 400; i++) if (random() < p) k++;
        const counts = { n: 400, counts: { v1: 400 - k, v2: k }, withoutVersion: 0 };
        if (shareVerdict(counts, CANARY_25, CONFIDENCE).state === 'inside') inside++;
      }
      return inside;
    };
    // α = 0.0002 per window: about 0.4 of 2000 correct windows fall outside.
    expect(run(0.25)).toBeGreaterThanOrEqual(windows - 3);
    expect(run(0.4)).toBeLessThanOrEqual(windows * 0.01);
  });
});

describe('errors and latency per version', () => {
  it('nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 0.5)).toBe(50);
    expect(percentile(values, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });

  it('error rate and p50/p99 per version, answers without a version in a row of their own, last', () => {
    const answers = [
      ...Array.from({ length: 98 }, (_, i) => answer({ version: 'v2', latencyMs: i + 1 })),
      answer({ version: 'v2', status: 500, error: 'HTTP 500', latencyMs: 99, color: null }),
      answer({ version: 'v2', status: 500, error: 'HTTP 500', latencyMs: 100, color: null }),
      answer({ version: 'v10', latencyMs: 3 }),
      answer({ version: 'v1', latencyMs: 5 }),
      answer({ version: null, stage: null, status: 0, error: 'timeout', latencyMs: 5000 }),
    ];
    const rows = versionHealth(answers);
    expect(rows.map((r) => r.version)).toEqual(['v1', 'v2', 'v10', null]);
    expect(rows[1]).toEqual({ version: 'v2', answers: 100, errors: 2, errorRate: 0.02, p50: 50, p99: 99 });
    expect(rows[3]).toMatchObject({ answers: 1, errors: 1, errorRate: 1, p50: 5000 });
    expect(isFailure({ status: 404 })).toBe(true);
    expect(isFailure({ status: 204 })).toBe(false);
  });
});

describe('the stage timeline', () => {
  it('records each change once, in the order the requests were sent; a late answer of the old stage does not undo it', () => {
    const t = new StageTracker();
    expect(t.observe({ seq: 1, stage: 'stable', at: 1 })?.stage).toBe('stable');
    expect(t.observe({ seq: 2, stage: 'stable', at: 2 })).toBeNull();
    expect(t.observe({ seq: 4, stage: 'canary-25', at: 4 })).toEqual({
      stage: 'canary-25',
      from: 'stable',
      at: 4,
      seq: 4,
    });
    expect(t.observe({ seq: 3, stage: 'stable', at: 5 })).toBeNull(); // sent before the switch
    expect(t.observe({ seq: 5, stage: null, at: 6 })).toBeNull(); // no answer
    expect(t.current).toBe('canary-25');
    expect(t.observe({ seq: 6, stage: 'stable', at: 7 })?.from).toBe('canary-25'); // a rollback
    expect(t.timeline.map((c) => c.stage)).toEqual(['stable', 'canary-25', 'stable']);
    expect(switchDelay({ stage: 'canary-25', at: 3 }, t.timeline)).toBe(1);
    expect(switchDelay({ stage: 'canary-25', at: 5 }, t.timeline)).toBeNull(); // not seen since
    const resumed = new StageTracker(t.timeline);
    expect(resumed.current).toBe('stable');
    expect(resumed.observe({ seq: 5, stage: 'canary-50', at: 8 })).toBeNull();
  });
});

describe('the canary analysis of the step', () => {
  // Fixed numbers the samples below are made for, whatever the repository's analysis.yaml says.
  const thresholds = readThresholds(
    [
      'errorRate:',
      '  slo: 0.01',
      '  margin: 0.01',
      'latency:',
      '  p99SloMs: 500',
      '  marginMs: 50',
      'decision:',
      '  falseAbort: 0.001',
      '  miss: 0.01',
      '  looks: 3',
      '  maxRequestsPerStep: 60000',
    ].join('\n'),
  );
  const plan = planAnalysis(thresholds, [
    { stage: 'canary-25', baseline: true },
    { stage: 'canary-100', baseline: false },
  ]);
  const roles = { canary: 'v2', baseline: 'v1', share: 0.25 };

  it('collects the step’s own answers since the stage was first seen; a new stage starts over', () => {
    const samples = new StepSamples();
    samples.add(split(10, 4), 'canary-25');
    samples.add([answer({ version: 'v2', status: 500, error: 'HTTP 500', color: null })], 'canary-25');
    samples.add(split(3, 3, { profile: 'x-canary: always' }), 'canary-25'); // an override: not the step's traffic
    samples.add(split(2, 2, { stage: 'stable' }), 'canary-25'); // sent before the switch
    samples.add([answer({ status: 503, version: null, error: 'HTTP 503' })], 'canary-25');
    samples.add([answer({ status: 0, version: null, stage: null, error: 'timeout' })], 'canary-25');
    expect(samples.sample('v2')).toMatchObject({ requests: 5, errors: 1 });
    expect(samples.sample('v1')).toMatchObject({ requests: 6, errors: 0 });
    expect(samples.unattributed).toBe(2);
    samples.add(split(2, 1, { stage: 'canary-50' }), 'canary-50');
    expect(samples.sample('v2').requests).toBe(1);
    expect(samples.unattributed).toBe(0);
  });

  it("is split-check's analyse: inconclusive with little data, FAIL for a failing canary, pass for a healthy one", () => {
    const few = new StepSamples();
    few.add(split(40, 10), 'canary-25');
    expect(stepAnalysis(plan, roles, few)?.verdict).toBe('inconclusive');

    const failing = new StepSamples();
    failing.add(
      Array.from({ length: 200 }, (_, i) =>
        answer(i % 4 === 0 ? { version: 'v2', status: i % 8 === 0 ? 500 : 200 } : { version: 'v1' }),
      ),
      'canary-25',
    );
    const failed = stepAnalysis(plan, roles, failing);
    expect(failed?.verdict).toBe('fail');
    expect(failed?.reasons[0]).toContain('v2 error rate');

    const random = mulberry32(7);
    const healthy = new StepSamples();
    healthy.add(
      Array.from({ length: 8000 }, () =>
        answer({ version: random() < 0.25 ? 'v2' : 'v1', latencyMs: 2 + random() }),
      ),
      'canary-25',
    );
    expect(stepAnalysis(plan, roles, healthy)?.verdict).toBe('pass');
    expect(stepAnalysis(plan, null, healthy)).toBeNull(); // stable: no canary traffic
  });
});

describe('squares', () => {
  it("take the colour from the app's answer, errors their own kind and a label readable without colour", () => {
    const colors: Record<string, string> = {};
    const ok = answer({ version: 'v2', color: '#1565c0' });
    expect(learnColors(colors, [ok])).toBe(true);
    expect(learnColors(colors, [ok])).toBe(false);
    expect(cellOf(ok, colors)).toMatchObject({ kind: 'version', label: '2', color: '#1565c0' });
    const failed = answer({ version: 'v2', status: 500, color: null, error: 'HTTP 500' });
    expect(cellOf(failed, colors)).toMatchObject({ kind: 'error', label: '✕', color: null });
    expect(cellOf(failed, colors).title).toContain('HTTP 500 from v2');
    expect(
      cellOf(answer({ version: null, status: 0, stage: null, error: 'timeout' }), colors).title,
    ).toContain('timeout');
    expect(cellOf(answer({ version: null }), colors).kind).toBe('unknown');
    expect(shortVersion('v12')).toBe('12');
    expect(shortVersion('canary')).toBe('can');
  });

  it('formats', () => {
    expect(percent(0.25)).toBe('25 %');
    expect(percent(0.7481)).toBe('74.8 %');
    expect(percent(1)).toBe('100 %');
    expect(formatMs(2.345)).toBe('2.3 ms');
    expect(formatMs(41.2)).toBe('41 ms');
    expect(formatMs(1234)).toBe('1.2 s');
    expect(formatMs(null)).toBe('—');
    expect(profileKey(['x-preview: blue', 'x-canary: always', 'x-canary: always'])).toBe(
      'x-canary: always, x-preview: blue',
    );
  });
});

describe('the page modules', () => {
  it('import nothing but each other and @rollouts/split-check (no Node API, no other package; types aside)', () => {
    const dir = fileURLToPath(new URL('../src/page/', import.meta.url));
    const loaded = ['./model.js', './protocol.js', '@rollouts/split-check'];
    const typeOnly = /\bimport type\s[^;]*?\bfrom\s+'([^']+)';/g;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(`${dir}${file}`, 'utf8');
      const specifiers = [...text.replace(typeOnly, '').matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]);
      for (const s of specifiers) expect(loaded, `${file} imports ${s}`).toContain(s);
      // `import type` is erased when the page is built (tsc): the browser never fetches @rollouts/stages.
      for (const [, s] of text.matchAll(typeOnly))
        expect([...loaded, '@rollouts/stages'], `${file} imports types of ${s}`).toContain(s);
      expect(text, file).not.toMatch(/\bprocess\.|\bBuffer\b|require\(/);
    }
  });
});
