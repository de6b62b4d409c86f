/**
 * The analysis of one step of a rollout as it runs: wait for the first look's canary requests, analyse, and, while
 * the result is inconclusive, collect up to the next look and analyse again. The looks sit at canary request
 * counts fixed before the step starts (n0, 4·n0, 16·n0, ..., capped by the step's request budget), never at
 * counts chosen from what was seen, so the Bonferroni split of the levels over the looks holds. The local path
 * (rollout progress / demo) and the simulation benchmark both run this same loop; only `collect` differs. An
 * undecided step ends at its last look (the budget), never earlier.
 */

import {
  type AnalysisInput,
  type AnalysisPlan,
  type AnalysisResult,
  type AnalysisVerdict,
  analyse,
  type VersionSample,
} from './analysis.js';

export interface StepSamples {
  canary: VersionSample;
  baseline: VersionSample | null;
  unattributed: number;
}

export interface StepAnalysisOptions {
  plan: AnalysisPlan;
  stage: string;
  /** The canary's expected share of the step's requests (0 < share ≤ 1). */
  share: number;
  /** Whether the step has baseline traffic (share < 1). */
  baseline: boolean;
  /** Everything collected at this step so far (the split check's traffic included). */
  samples(): StepSamples;
  /** Sends about `requests` more requests at this step; resolves once they were answered. */
  collect(requests: number): Promise<void>;
  /** The analysis of a look: `analyse` (every answer's latency) unless given (analyseHistogram: the cluster). */
  judge?: (plan: AnalysisPlan, input: AnalysisInput) => AnalysisResult;
  /** Checked between collections: an aborted step throws its reason. */
  signal?: { readonly aborted: boolean; readonly reason?: unknown };
}

export interface StepLook {
  /** Canary requests this look waited for (the schedule's), and what it had. */
  target: number;
  canaryRequests: number;
  totalRequests: number;
  verdict: AnalysisVerdict;
  /** The look's reasons (its failed or undecided tests). */
  reasons: string[];
}

export interface StepAnalysis {
  result: AnalysisResult;
  looks: StepLook[];
  schedule: number[];
  /** Why the step stopped undecided before its last look, if it did. */
  stopped: string | null;
}

/**
 * Canary request counts of the looks: n0 · 4^k (n0: the fewest with which a perfect canary passes), at most
 * `plan.looks` of them, the last capped at the canary's share of maxRequestsPerStep.
 */
export function lookSchedule(plan: AnalysisPlan, step: { baseline: boolean; share: number }): number[] {
  const n0 = step.baseline ? plan.minCanary.comparison : plan.minCanary.sloOnly;
  const cap = Math.max(1, Math.floor(plan.thresholds.decision.maxRequestsPerStep * step.share));
  const out: number[] = [];
  for (let k = 0; k < plan.looks; k++) {
    const target = n0 * 4 ** k;
    if (target >= cap) {
      out.push(cap);
      break;
    }
    out.push(target);
  }
  return out;
}

export async function runStepAnalysis(options: StepAnalysisOptions): Promise<StepAnalysis> {
  const { plan, share } = options;
  if (!(share > 0 && share <= 1)) throw new RangeError(`share must be in (0, 1], got ${share}`);
  const schedule = lookSchedule(plan, options);
  const looks: StepLook[] = [];
  let result: AnalysisResult | null = null;
  let stopped: string | null = null;
  const total = (s: StepSamples) => s.canary.requests + (s.baseline?.requests ?? 0) + s.unattributed;
  const budget = plan.thresholds.decision.maxRequestsPerStep;
  for (const [i, target] of schedule.entries()) {
    if (options.signal?.aborted) throw options.signal.reason;
    // Collect until the look's canary count (the split of each batch is random: top up until it is reached).
    for (;;) {
      // Numbers, not the samples: a collector may grow the same objects in place.
      const s = options.samples();
      const canaryBefore = s.canary.requests;
      const totalBefore = total(s);
      if (canaryBefore >= target || s.unattributed > 0 || totalBefore >= budget) break;
      const more = Math.min(budget - totalBefore, Math.ceil(((target - canaryBefore) / share) * 1.02) + 16);
      await options.collect(more);
      if (options.signal?.aborted) throw options.signal.reason;
      if (total(options.samples()) === totalBefore) break; // nothing came back: analyse what there is
    }
    const s = options.samples();
    result = (options.judge ?? analyse)(plan, {
      stage: options.stage,
      canary: s.canary,
      baseline: options.baseline ? s.baseline : null,
      share,
      unattributed: s.unattributed,
    });
    looks.push({
      target,
      canaryRequests: s.canary.requests,
      totalRequests: total(s),
      verdict: result.verdict,
      reasons: result.reasons,
    });
    if (result.verdict !== 'inconclusive') break;
    if (i === schedule.length - 1) {
      stopped = `no decision after ${looks.length} look(s) and ${total(s)} requests (the step's budget is ${budget})`;
      break;
    }
    // An undecided look goes on to the next one, whatever the estimate of the missing requests says: at an early
    // look that estimate rests on a handful of errors (5 in 600 where the rate is 0.3 %) and would give up on
    // healthy canaries.
  }
  return { result: result as AnalysisResult, looks, schedule, stopped };
}
