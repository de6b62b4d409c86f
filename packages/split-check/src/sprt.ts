/**
 * Sequential probability ratio test for a traffic share: stops as soon as the evidence is strong enough, so a
 * correct split is usually confirmed with far fewer requests than a fixed-n test needs.
 */

import { binomialTestTwoSided, checkCount, checkProbability } from './binomial.js';
import { checkSpec, deterministicSampleSize, sampleSizeFixed } from './samplesize.js';

/** What a sequential check must achieve. */
export interface SprtOptions {
  /** The proportion the manifest promises (share of requests that reach the version under test). */
  p0: number;
  /** Smallest deviation |p − p0| the test must detect. */
  delta: number;
  /** Probability of rejecting a correct split (two-sided, both one-sided tests together). */
  alpha: number;
  /** Probability of accepting a split that is `delta` off (1 − power). */
  beta: number;
  /**
   * Truncation: at this many trials an undecided test falls back to the exact two-sided binomial test at
   * `alpha`. Defaults to twice the fixed-n sample size for the same alpha, delta and power (see
   * {@link defaultMaxN}).
   */
  maxN?: number;
}

/** Verdict after an update. */
export type SprtDecision = 'continue' | 'accept' | 'reject';

/** One of the one-sided Wald tests: H0 p = p0 against H1 p = p1. */
export interface SprtSide {
  p1: number;
  /** ln((1 − β) / α_side): the log-likelihood ratio at or above which H0 is rejected. */
  upperBound: number;
  /** ln(β / (1 − α_side)): the log-likelihood ratio at or below which this side accepts H0. */
  lowerBound: number;
  /** Current log-likelihood ratio ln L(p1) / L(p0). */
  llr: number;
  decision: SprtDecision;
}

/** Snapshot of a sequential test. */
export interface SprtState {
  decision: SprtDecision;
  successes: number;
  trials: number;
  maxN: number;
  /** 'deterministic' when p0 is 0 or 1. */
  mode: 'sequential' | 'deterministic';
  sides: SprtSide[];
  /** Why the test stopped, in words, once it has. */
  reason: string;
}

/** A running sequential test; feed it cumulative counts. */
export interface Sprt {
  /**
   * Feed the cumulative counts so far (successes = requests that reached the version under test, trials =
   * all requests); both must never decrease between calls. Returns the verdict, which stays fixed once it
   * is 'accept' or 'reject'.
   */
  update(successes: number, trials: number): SprtDecision;
  readonly state: SprtState;
}

/**
 * Default truncation point of a sequential test: twice the fixed-n sample size for the same alpha, delta and
 * power (for p0 = 0 or 1, the deterministic sample size). Truncating at the fixed n itself would double the
 * miss rate: the runs still undecided there are the borderline ones, and the exact test then decides them
 * with much less than its unconditional power. At twice that n fewer than 1 run in 1000 is truncated.
 */
export function defaultMaxN(options: Omit<SprtOptions, 'maxN'>): number {
  const { p0, delta, alpha, beta } = options;
  if (p0 === 0 || p0 === 1) return deterministicSampleSize(delta, 1 - beta);
  return 2 * sampleSizeFixed({ p0, delta, alpha, power: 1 - beta });
}

// count · ln(ratio), with 0 · ln(0) = 0 (an alternative of exactly 0 or 1).
function term(count: number, logRatio: number): number {
  return count === 0 ? 0 : count * logRatio;
}

/**
 * Two one-sided Wald SPRTs, H0 p = p0 against p0 + delta and against p0 − delta, each at alpha/2 (or the full
 * alpha when only one alternative lies in [0, 1]). The test rejects as soon as either side rejects, and
 * accepts once every side has accepted (a side's acceptance is final). At maxN it falls back to the exact
 * binomial test at alpha.
 *
 * p0 = 0 or 1 is deterministic: any contrary observation rejects, and
 * ceil(ln(beta) / ln(1 − delta)) clean observations accept (a share delta off would have shown a contrary
 * one with probability ≥ 1 − beta).
 */
export function createSprt(options: SprtOptions): Sprt {
  const { p0, delta, alpha, beta } = options;
  checkProbability('p0', p0);
  checkSpec({ p0, delta, alpha, power: 1 - beta });
  if (!(beta > 0 && beta < 1)) throw new RangeError(`beta must be in (0, 1), got ${beta}`);
  const deterministic = p0 === 0 || p0 === 1;
  const maxN = options.maxN ?? defaultMaxN({ p0, delta, alpha, beta });
  checkCount('maxN', maxN);
  if (maxN === 0) throw new RangeError('maxN must be > 0');

  const alternatives: number[] = [];
  if (!deterministic) {
    if (p0 + delta <= 1) alternatives.push(p0 + delta);
    if (p0 - delta >= 0) alternatives.push(p0 - delta);
    if (alternatives.length === 0) {
      throw new RangeError(`no alternative p0 ± delta lies in [0, 1] (p0=${p0}, delta=${delta})`);
    }
  }
  const sideAlpha = alpha / Math.max(1, alternatives.length);
  const sides: SprtSide[] = alternatives.map((p1) => ({
    p1,
    upperBound: Math.log((1 - beta) / sideAlpha),
    lowerBound: Math.log(beta / (1 - sideAlpha)),
    llr: 0,
    decision: 'continue',
  }));
  const logs = alternatives.map((p1) => ({
    success: Math.log(p1 / p0),
    failure: Math.log((1 - p1) / (1 - p0)),
  }));
  const cleanNeeded = deterministicSampleSize(delta, 1 - beta);

  const state: SprtState = {
    decision: 'continue',
    successes: 0,
    trials: 0,
    maxN,
    mode: deterministic ? 'deterministic' : 'sequential',
    sides,
    reason: '',
  };

  function decide(decision: SprtDecision, reason: string): SprtDecision {
    state.decision = decision;
    state.reason = reason;
    return decision;
  }

  function update(successes: number, trials: number): SprtDecision {
    checkCount('successes', successes);
    checkCount('trials', trials);
    if (successes > trials) throw new RangeError(`successes (${successes}) must be <= trials (${trials})`);
    if (
      trials < state.trials ||
      successes < state.successes ||
      trials - successes < state.trials - state.successes
    ) {
      throw new RangeError(
        `update() takes cumulative counts: got ${successes}/${trials} after ${state.successes}/${state.trials}`,
      );
    }
    state.successes = successes;
    state.trials = trials;
    if (state.decision !== 'continue') return state.decision;
    const failures = trials - successes;

    if (deterministic) {
      const contrary = p0 === 0 ? successes : failures;
      if (contrary > 0)
        return decide('reject', `${contrary} of ${trials} requests went where p0=${p0} sends none`);
      if (trials >= Math.min(cleanNeeded, maxN)) return decide('accept', `${trials} requests, none contrary`);
      return 'continue';
    }

    for (const [i, side] of sides.entries()) {
      const l = logs[i] as { success: number; failure: number };
      side.llr = term(successes, l.success) + term(failures, l.failure);
      if (side.decision !== 'continue') continue;
      if (side.llr >= side.upperBound) side.decision = 'reject';
      else if (side.llr <= side.lowerBound) side.decision = 'accept';
    }
    const rejected = sides.find((s) => s.decision === 'reject');
    if (rejected) {
      return decide('reject', `likelihood ratio favours p=${round(rejected.p1)} over p0=${round(p0)}`);
    }
    if (sides.every((s) => s.decision === 'accept')) {
      return decide('accept', `likelihood ratio favours p0=${round(p0)} over p0 ± ${round(delta)}`);
    }
    if (trials >= maxN) {
      const pValue = binomialTestTwoSided(successes, trials, p0);
      return pValue < alpha
        ? decide('reject', `exact binomial test at maxN: p-value ${pValue.toPrecision(3)} < ${alpha}`)
        : decide('accept', `exact binomial test at maxN: p-value ${pValue.toPrecision(3)} >= ${alpha}`);
    }
    return 'continue';
  }

  return {
    update,
    get state() {
      return state;
    },
  };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
