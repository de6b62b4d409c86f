// Exact sample sizes cross-checked with a SciPy implementation of the same search (first n whose exact power,
// with the band at 1 - alpha, reaches the target at p0 - delta and p0 + delta).
import { describe, expect, it } from 'vitest';
import { deterministicSampleSize, fixedTestPower, sampleSizeFixed, sampleSizeNormal } from '../src/index.js';

describe('fixed-n sample size', () => {
  it.each([
    [0.5, 0.1, 0.05, 0.8, 194, 199],
    [0.1, 0.05, 0.0002, 0.999, 1970, 1999],
    [0.25, 0.05, 0.0002, 0.999, 3664, 3690],
    [0.5, 0.05, 0.0002, 0.999, 4616, 4624],
    [0.05, 0.05, 0.01, 0.9, 358, 390],
  ])('p0=%d delta=%d alpha=%d power=%d: normal %d, exact %d', (p0, delta, alpha, power, normal, exact) => {
    expect(sampleSizeNormal({ p0, delta, alpha, power })).toBe(normal);
    const n = sampleSizeFixed({ p0, delta, alpha, power });
    expect(n).toBe(exact);
    for (const p1 of [p0 - delta, p0 + delta].filter((p) => p >= 0 && p <= 1)) {
      expect(fixedTestPower(n, p0, alpha, p1)).toBeGreaterThanOrEqual(power);
    }
    const short = [p0 - delta, p0 + delta].filter((p) => p >= 0 && p <= 1);
    expect(short.some((p1) => fixedTestPower(n - 1, p0, alpha, p1) < power)).toBe(true);
  });

  it('is symmetric in p0 and 1 - p0', () => {
    const spec = { delta: 0.05, alpha: 0.0002, power: 0.999 };
    expect(sampleSizeFixed({ ...spec, p0: 0.75 })).toBe(sampleSizeFixed({ ...spec, p0: 0.25 }));
  });

  it('deterministic shares need ceil(ln(1 - power) / ln(1 - delta)) clean requests', () => {
    expect(deterministicSampleSize(0.05, 0.999)).toBe(135);
    expect(sampleSizeFixed({ p0: 1, delta: 0.05, alpha: 0.0002, power: 0.999 })).toBe(135);
    expect(sampleSizeFixed({ p0: 0, delta: 0.1, alpha: 0.05, power: 0.99 })).toBe(44);
  });

  it('rejects bad specs', () => {
    expect(() => sampleSizeFixed({ p0: 0.5, delta: 0, alpha: 0.05, power: 0.9 })).toThrow(/delta must be in/);
    expect(() => sampleSizeFixed({ p0: 0.5, delta: 0.1, alpha: 1, power: 0.9 })).toThrow(/alpha must be in/);
    expect(() => sampleSizeFixed({ p0: 0.5, delta: 0.6, alpha: 0.05, power: 0.9 })).toThrow(/no alternative/);
  });
});
