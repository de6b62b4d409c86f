import { describe, expect, it } from 'vitest';
import { createSprt, planCheck, planVerification } from '../src/index.js';

const RANDOM_STAGES = ['canary-10', 'canary-25', 'canary-50', 'canary-75', 'blue-preview'];

describe('verification plan', () => {
  it('splits the family alpha over the random stages (Bonferroni) and sizes every check', () => {
    const plan = planVerification({ randomStages: RANDOM_STAGES });
    expect(plan).toMatchObject({
      familyAlpha: 0.001,
      delta: 0.05,
      power: 0.999,
      beta: 0.001,
      randomStages: 5,
      randomStageNames: RANDOM_STAGES,
      deterministicN: 135,
      worstCaseFixedN: 4624,
    });
    expect(plan.alphaPerStage).toBeCloseTo(0.0002, 15);
  });

  it('accepts a count and custom numbers', () => {
    const plan = planVerification({ randomStages: 2, familyAlpha: 0.01, delta: 0.1, power: 0.99 });
    expect(plan.alphaPerStage).toBeCloseTo(0.005, 15);
    expect(plan.deterministicN).toBe(44);
    expect(planVerification({ randomStages: 0 }).alphaPerStage).toBe(0.001);
  });

  it('gives each share its fixed n, acceptance band and SPRT options', () => {
    const plan = planVerification({ randomStages: 5 });
    const c10 = planCheck(plan, 0.1);
    expect(c10).toMatchObject({ kind: 'binomial', fixedN: 1999, band: { lo: 152, hi: 251 } });
    expect(c10.sprt).toMatchObject({ p0: 0.1, delta: 0.05, beta: 0.001, maxN: 2 * 1999 });
    expect(planCheck(plan, 0.5)).toMatchObject({ fixedN: 4624, band: { lo: 2186, hi: 2438 } });
    const header = planCheck(plan, 1);
    expect(header).toMatchObject({ kind: 'deterministic', fixedN: 135, band: { lo: 135, hi: 135 } });
    expect(createSprt(header.sprt).update(135, 135)).toBe('accept');
  });

  it('rejects bad input', () => {
    expect(() => planVerification({ randomStages: -1 })).toThrow(/randomStages/);
    expect(() => planVerification({ randomStages: 1, familyAlpha: 0 })).toThrow(/familyAlpha/);
    expect(() => planCheck(planVerification({ randomStages: 1 }), 2)).toThrow(/p0 must be a probability/);
  });
});
