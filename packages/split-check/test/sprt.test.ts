// Operating characteristics of the sequential test, by seeded simulation: a request reaches the version under
// test with probability p; the test sees cumulative counts after every request (or every batch).
import { describe, expect, it } from 'vitest';
import { binomialAcceptanceBand, createSprt, mulberry32 as prng, type SprtOptions } from '../src/index.js';

interface Outcome {
  decision: 'accept' | 'reject';
  n: number;
}

function simulate(options: SprtOptions, trueP: number, random: () => number, batch = 1): Outcome {
  const test = createSprt(options);
  let successes = 0;
  let trials = 0;
  for (;;) {
    for (let i = 0; i < batch; i++) {
      trials++;
      if (random() < trueP) successes++;
    }
    const d = test.update(successes, trials);
    if (d !== 'continue') return { decision: d, n: trials };
  }
}

function run(options: SprtOptions, trueP: number, sims: number, seed: number, batch = 1) {
  const random = prng(seed);
  let rejects = 0;
  const ns: number[] = [];
  for (let s = 0; s < sims; s++) {
    const o = simulate(options, trueP, random, batch);
    if (o.decision === 'reject') rejects++;
    ns.push(o.n);
  }
  ns.sort((a, b) => a - b);
  return {
    rejects,
    rate: rejects / sims,
    medianN: ns[Math.floor(sims / 2)] as number,
    maxN: ns[sims - 1] as number,
  };
}

/** Largest count a rate of `p` gives in `sims` runs, except with probability 0.0005. */
function upperCount(sims: number, p: number): number {
  return binomialAcceptanceBand(sims, p, 0.999).hi;
}

describe('SPRT operating characteristics (nominal alpha = beta = 0.01, 2000 runs each)', () => {
  const sims = 2000;
  for (const p0 of [0.25, 0.5]) {
    const options = { p0, delta: 0.05, alpha: 0.01, beta: 0.01 };
    it(`p0=${p0}: false rejects under H0 and misses at p0 ± 0.05 stay within their nominal rates`, () => {
      const h0 = run(options, p0, sims, 1);
      const up = run(options, p0 + 0.05, sims, 2);
      const down = run(options, p0 - 0.05, sims, 3);
      const misses = { up: sims - up.rejects, down: sims - down.rejects };
      console.log(
        `[sprt alpha=beta=0.01] p0=${p0}: false-reject ${h0.rate} (${h0.rejects}/${sims}), ` +
          `miss +5pt ${misses.up / sims}, miss -5pt ${misses.down / sims}, median n ${h0.medianN}`,
      );
      expect(h0.rejects).toBeLessThanOrEqual(upperCount(sims, 0.01));
      expect(misses.up).toBeLessThanOrEqual(upperCount(sims, 0.01));
      expect(misses.down).toBeLessThanOrEqual(upperCount(sims, 0.01));
    }, 30_000);
  }
});

describe('SPRT with the repository plan (alpha 0.0002 per stage, beta 0.001, delta 0.05)', () => {
  const sims = 400;
  for (const p0 of [0.25, 0.5]) {
    it(`p0=${p0}: no false reject or miss beyond the nominal rate, median n <= 2000`, () => {
      const options = { p0, delta: 0.05, alpha: 0.0002, beta: 0.001 };
      const h0 = run(options, p0, sims, 10);
      const up = run(options, p0 + 0.05, sims, 11);
      const down = run(options, p0 - 0.05, sims, 12);
      const batched = run(options, p0, sims, 13, 50);
      console.log(
        `[sprt plan] p0=${p0}: false-reject ${h0.rejects}/${sims}, miss +5pt ${sims - up.rejects}/${sims}, ` +
          `miss -5pt ${sims - down.rejects}/${sims}, median n ${h0.medianN} (max ${h0.maxN}), ` +
          `median n at +5pt ${up.medianN}, median n in batches of 50: ${batched.medianN}`,
      );
      expect(h0.rejects).toBeLessThanOrEqual(upperCount(sims, 0.0002));
      expect(sims - up.rejects).toBeLessThanOrEqual(upperCount(sims, 0.001));
      expect(sims - down.rejects).toBeLessThanOrEqual(upperCount(sims, 0.001));
      expect(batched.rejects).toBeLessThanOrEqual(upperCount(sims, 0.0002));
      expect(h0.medianN).toBeLessThanOrEqual(2000);
    }, 30_000);
  }
});

describe('SPRT edge cases', () => {
  it('p0 = 1 is deterministic: one contrary request rejects, 135 clean ones accept', () => {
    const t = createSprt({ p0: 1, delta: 0.05, alpha: 0.0002, beta: 0.001 });
    expect(t.update(134, 134)).toBe('continue');
    expect(t.update(135, 135)).toBe('accept');
    const r = createSprt({ p0: 1, delta: 0.05, alpha: 0.0002, beta: 0.001 });
    expect(r.update(10, 10)).toBe('continue');
    expect(r.update(10, 11)).toBe('reject');
    expect(r.state.reason).toMatch(/1 of 11/);
  });

  it('p0 = 0 is deterministic the other way round', () => {
    const t = createSprt({ p0: 0, delta: 0.05, alpha: 0.0002, beta: 0.001 });
    expect(t.update(0, 200)).toBe('accept');
    const r = createSprt({ p0: 0, delta: 0.05, alpha: 0.0002, beta: 0.001 });
    expect(r.update(1, 1)).toBe('reject');
  });

  it('p0 near 1 tests one side only, with the whole alpha', () => {
    const t = createSprt({ p0: 0.98, delta: 0.05, alpha: 0.001, beta: 0.001 });
    expect(t.state.sides.map((s) => s.p1)).toEqual([0.98 - 0.05]);
    expect(t.state.sides[0]?.upperBound).toBeCloseTo(Math.log(0.999 / 0.001), 12);
    const atP0 = run({ p0: 0.98, delta: 0.05, alpha: 0.001, beta: 0.001 }, 0.98, 200, 8);
    const off = run({ p0: 0.98, delta: 0.05, alpha: 0.001, beta: 0.001 }, 0.93, 200, 9);
    expect(atP0.rejects).toBeLessThanOrEqual(2);
    expect(off.rejects).toBeGreaterThanOrEqual(198);
  });

  it('p0 + delta = 1 keeps the upper side: all-success traffic is rejected', () => {
    const t = createSprt({ p0: 0.95, delta: 0.05, alpha: 0.001, beta: 0.001 });
    expect(t.state.sides.map((s) => s.p1).sort()).toEqual([0.8999999999999999, 1].sort());
    let d = 'continue';
    for (let n = 1; d === 'continue'; n++) d = t.update(n, n);
    expect(d).toBe('reject');
  });

  it('falls back to the exact binomial test at maxN', () => {
    const t = createSprt({ p0: 0.5, delta: 0.05, alpha: 0.0002, beta: 0.001, maxN: 100 });
    expect(t.update(50, 100)).toBe('accept');
    expect(t.state.reason).toMatch(/exact binomial test at maxN/);
    const r = createSprt({ p0: 0.5, delta: 0.05, alpha: 0.0002, beta: 0.001, maxN: 100 });
    expect(r.update(80, 100)).toBe('reject');
  });

  it('defaults maxN to twice the fixed-n sample size', () => {
    expect(createSprt({ p0: 0.5, delta: 0.05, alpha: 0.0002, beta: 0.001 }).state.maxN).toBe(2 * 4624);
  });

  it('keeps its verdict once decided and refuses counts that go backwards', () => {
    const t = createSprt({ p0: 0.5, delta: 0.05, alpha: 0.01, beta: 0.01 });
    expect(t.update(200, 200)).toBe('reject');
    expect(t.update(200, 400)).toBe('reject');
    expect(() => t.update(100, 400)).toThrow(/cumulative counts/);
    expect(() => t.update(5, 4)).toThrow(/must be <= trials/);
  });
});
