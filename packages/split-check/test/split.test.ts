// What a split asks a check to do (shared by the local verifier, `rollout expect` and k6), the verification
// table, and the seeded generator every simulation uses.
import { describe, expect, it } from 'vitest';
import {
  binomialAcceptanceBand,
  chiSquareGoodnessOfFit,
  compareVersions,
  countBands,
  formatSplitTable,
  mulberry32,
  splitSupport,
} from '../src/index.js';

describe('compareVersions', () => {
  it('orders digit runs as numbers and the rest by character', () => {
    expect(['v10', 'v2', 'v1', 'green', 'blue', 'v2-rc1', 'v2-rc10', 'v2-rc2'].sort(compareVersions)).toEqual(
      ['blue', 'green', 'v1', 'v2', 'v2-rc1', 'v2-rc2', 'v2-rc10', 'v10'],
    );
    expect(compareVersions('v3', 'v3')).toBe(0);
  });
});

describe('splitSupport', () => {
  it('two versions: the later one is tracked, zero shares are listed but get no traffic', () => {
    expect(splitSupport({ v2: 0.25, v1: 0.75, v3: 0 })).toEqual({
      versions: ['v1', 'v2', 'v3'],
      support: [
        { version: 'v1', p: 0.75 },
        { version: 'v2', p: 0.25 },
      ],
      tested: { version: 'v2', p0: 0.25, other: 'v1' },
    });
  });

  it('one or three versions: nothing is tracked', () => {
    expect(splitSupport({ v1: 0, v2: 1 }).tested).toBeNull();
    expect(splitSupport({ v1: 0.5, v2: 0.3, v3: 0.2 }).tested).toBeNull();
  });
});

describe('countBands', () => {
  it('two versions: the exact band of the later one and its complement for the other', () => {
    const band = binomialAcceptanceBand(3690, 0.25, 1 - 0.0002);
    expect(band).toEqual({ lo: 826, hi: 1021 });
    expect(countBands({ v1: 0.75, v2: 0.25 }, 3690, 0.0002)).toEqual({
      v2: band,
      v1: { lo: 3690 - 1021, hi: 3690 - 826 },
    });
  });

  it('the tracked version can be named; a name that gets no traffic falls back to the later one', () => {
    const asV1 = countBands({ v1: 0.75, v2: 0.25 }, 3690, 0.0002, 'v1');
    expect(asV1.v1).toEqual(binomialAcceptanceBand(3690, 0.75, 1 - 0.0002));
    expect(countBands({ v1: 0.75, v2: 0.25 }, 3690, 0.0002, 'v9')).toEqual(
      countBands({ v1: 0.75, v2: 0.25 }, 3690, 0.0002),
    );
  });

  it('a share of 0 is held at 0, a lone version takes all n', () => {
    expect(countBands({ v1: 1, v2: 0 }, 135, 0.0002)).toEqual({
      v1: { lo: 135, hi: 135 },
      v2: { lo: 0, hi: 0 },
    });
  });

  it('three versions: one exact band per version at alpha / 3', () => {
    const bands = countBands({ v1: 0.5, v2: 0.3, v3: 0.2 }, 1000, 0.003);
    expect(bands.v3).toEqual(binomialAcceptanceBand(1000, 0.2, 1 - 0.001));
    expect(Object.keys(bands).sort()).toEqual(['v1', 'v2', 'v3']);
  });
});

describe('formatSplitTable', () => {
  it('aligns one line per version, names each profile once, heads the interval with its confidence', () => {
    const text = formatSplitTable(
      [
        {
          name: 'default',
          verdict: 'pass',
          rows: [
            {
              version: 'v1',
              expected: 0.75,
              observed: 0.7512,
              interval: { lo: 0.7, hi: 0.8 },
              verdict: 'pass',
            },
            {
              version: 'v2',
              expected: 0.25,
              observed: 0.2488,
              interval: { lo: 0.2, hi: 0.3 },
              verdict: 'pass',
            },
          ],
        },
        {
          name: 'x-canary: always',
          verdict: 'fail',
          rows: [{ version: 'v2', expected: 1, observed: 0.5, interval: null, verdict: 'fail' }],
        },
        { name: 'no answers', verdict: 'fail', rows: [] },
      ],
      0.9998,
    );
    expect(text.split('\n')).toEqual([
      'profile           version  expected  observed  99.98 % interval  verdict',
      'default           v1         75.0 %    75.1 %  70.0 % – 80.0 %   pass',
      '                  v2         25.0 %    24.9 %  20.0 % – 30.0 %   pass',
      'x-canary: always  v2        100.0 %    50.0 %  -                 FAIL',
      'no answers        -               -         -  -                 FAIL',
    ]);
  });
});

describe('mulberry32', () => {
  it('replays the same sequence for a seed, another for another seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(first);
    // Pinned: every seeded simulation and test of the repository depends on this exact sequence.
    expect(first).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    expect(mulberry32(43)()).not.toBe(first[0]);
  });

  it('is uniform on [0, 1): 10 equal bins of 100 000 draws pass chi-square', () => {
    const random = mulberry32(7);
    const bins = new Array<number>(10).fill(0);
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = random();
      if (!(x >= 0 && x < 1)) outside += 1;
      else bins[Math.floor(x * 10)] = (bins[Math.floor(x * 10)] ?? 0) + 1;
    }
    expect(outside).toBe(0);
    expect(chiSquareGoodnessOfFit(bins, new Array(10).fill(0.1)).pValue).toBeGreaterThan(1e-4);
  });
});
