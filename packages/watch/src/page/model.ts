/**
 * The page's logic, apart from the DOM: the sliding window of answers, the observed share per version against
 * the share the applied stage expects (with the acceptance band of @rollouts/split-check's exact binomial test),
 * errors and latency per version, and the timeline of stage changes. Pure (no DOM, no Node APIs): the browser
 * imports the built module, the server and the unit tests import the same code.
 */
import {
  type AnalysisPlan,
  type AnalysisResult,
  analyse,
  binomialAcceptanceBand,
  clopperPearson,
  compareVersions,
  type VersionSample,
} from '@rollouts/split-check';
import type { Answer, ProfileExpectation, StageChange, StageRoles } from './protocol.js';

/** An answer that is not a 2xx (the gateway's 404/503/504, the app's 500) or no answer at all. */
export function isFailure(answer: Pick<Answer, 'status'>): boolean {
  return answer.status < 200 || answer.status >= 300;
}

/** The last `size` answers of `window` followed by `more`, oldest first. */
export function appendWindow(window: readonly Answer[], more: readonly Answer[], size: number): Answer[] {
  const all = window.concat(more);
  return all.length > size ? all.slice(all.length - size) : all;
}

/** Versions in natural order (v2 before v10). */
export function sortVersions(versions: Iterable<string>): string[] {
  return [...new Set(versions)].sort(compareVersions);
}

export interface WindowCounts {
  /** Answers of the stage and profile that name a version: the sample the share is computed over. */
  n: number;
  /** Per version, among those. */
  counts: Record<string, number>;
  /** Answers of the stage and profile that name no version (gateway errors, no answer): not in n. */
  withoutVersion: number;
}

/**
 * Counts, among `answers`, those of `stage` sent with `profile`, by version. Answers of another stage or profile
 * (before a switch, before the override toggle) are left out: they were drawn from another split.
 * Answers without x-rollouts-stage (no answer at all) count as `withoutVersion` of every stage.
 */
export function windowCounts(answers: readonly Answer[], stage: string, profile: string): WindowCounts {
  const counts: Record<string, number> = {};
  let n = 0;
  let withoutVersion = 0;
  for (const a of answers) {
    if (a.profile !== profile) continue;
    if (a.stage !== stage && !(a.stage === null && a.version === null)) continue;
    if (a.version === null) {
      withoutVersion++;
      continue;
    }
    counts[a.version] = (counts[a.version] ?? 0) + 1;
    n++;
  }
  return { n, counts, withoutVersion };
}

export type RowState = 'inside' | 'outside' | 'collecting';

export interface ShareRow {
  version: string;
  /** Expected share (0 when the stage does not route to this version). */
  expected: number;
  count: number;
  /** count / n (0 when n is 0). */
  observed: number;
  /** The acceptance band of the count at n, as shares: a correct mesh lands outside with probability ≤ α. */
  band: { lo: number; hi: number };
  /** The same band as counts. */
  countBand: { lo: number; hi: number };
  /** Clopper–Pearson interval of the observed share at the same confidence (null while n is 0). */
  interval: { lo: number; hi: number } | null;
  state: RowState;
}

export interface ShareVerdict {
  n: number;
  rows: ShareRow[];
  /** waiting: no answer yet; collecting: fewer than `minN` answers for a split that is random. */
  state: RowState | 'waiting';
}

const bandCache = new Map<string, { lo: number; hi: number }>();

/** binomialAcceptanceBand, memoised (the page asks for the same n, p and confidence many times a second). */
export function countBand(n: number, p: number, confidence: number): { lo: number; hi: number } {
  const key = `${n}|${p}|${confidence}`;
  let band = bandCache.get(key);
  if (band === undefined) {
    band = binomialAcceptanceBand(n, p, confidence);
    if (bandCache.size > 5000) bandCache.clear();
    bandCache.set(key, band);
  }
  return band;
}

/**
 * The observed share of each version against the expected one. A version the stage routes to with a share
 * strictly between 0 and 1 is judged once `minN` answers are in (before: collecting); a share of 0 or 1 is
 * deterministic, so a single answer elsewhere is already outside. Rows: the versions of the expectation, those
 * observed, and `known` ones (every version seen so far, so v2 shows 0 % expected at `stable`).
 */
export function shareVerdict(
  window: WindowCounts,
  expected: ProfileExpectation | undefined,
  confidence: number,
  options: { minN?: number; known?: readonly string[] } = {},
): ShareVerdict {
  const minN = options.minN ?? 30;
  const { n, counts } = window;
  const shares = expected?.versions ?? {};
  const versions = sortVersions([...Object.keys(shares), ...Object.keys(counts), ...(options.known ?? [])]);
  const rows: ShareRow[] = versions.map((version) => {
    const p = Math.min(1, Math.max(0, shares[version] ?? 0));
    const count = counts[version] ?? 0;
    const cb = n > 0 ? countBand(n, p, confidence) : { lo: 0, hi: 0 };
    const deterministic = p === 0 || p === 1;
    let state: RowState;
    if (n === 0) state = 'collecting';
    else if (count < cb.lo || count > cb.hi) state = deterministic || n >= minN ? 'outside' : 'collecting';
    else state = deterministic || n >= minN ? 'inside' : 'collecting';
    return {
      version,
      expected: p,
      count,
      observed: n > 0 ? count / n : 0,
      band: n > 0 ? { lo: cb.lo / n, hi: cb.hi / n } : { lo: p, hi: p },
      countBand: cb,
      interval: n > 0 ? clopperPearson(count, n, confidence) : null,
      state,
    };
  });
  let state: ShareVerdict['state'];
  if (n === 0) state = 'waiting';
  else if (rows.some((r) => r.state === 'outside')) state = 'outside';
  else if (rows.some((r) => r.state === 'collecting')) state = 'collecting';
  else state = 'inside';
  return { n, rows, state };
}

/** Nearest-rank percentile of ascending `sorted` values (q in (0, 1]); null when empty. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export interface HealthRow {
  /** The version, or null for answers that named none (the gateway's own errors, no answer). */
  version: string | null;
  answers: number;
  errors: number;
  errorRate: number;
  /** Latency percentiles of every answer of this version (errors included), ms. */
  p50: number | null;
  p99: number | null;
}

/**
 * Error rate and latency per version over `answers` (every stage and profile: they measure the version, not the
 * split). Answers without a version get one row of their own, last, when there are any.
 */
export function versionHealth(answers: readonly Answer[]): HealthRow[] {
  const groups = new Map<string | null, Answer[]>();
  for (const a of answers) {
    const list = groups.get(a.version);
    if (list) list.push(a);
    else groups.set(a.version, [a]);
  }
  const keys: (string | null)[] = sortVersions([...groups.keys()].filter((k): k is string => k !== null));
  if (groups.has(null)) keys.push(null);
  return keys.map((version) => {
    const list = groups.get(version) ?? [];
    const errors = list.filter(isFailure).length;
    const latencies = list.map((a) => a.latencyMs).sort((x, y) => x - y);
    return {
      version,
      answers: list.length,
      errors,
      errorRate: list.length > 0 ? errors / list.length : 0,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
    };
  });
}

/**
 * Follows the stage the answers name. Answers complete out of order around a switch (a request sent before it
 * may finish after one sent after it), so an answer sent before the last change cannot undo it: only an answer
 * with a higher seq than the change's moves the stage again.
 */
export class StageTracker {
  readonly timeline: StageChange[] = [];
  #seq = 0;

  constructor(timeline: readonly StageChange[] = []) {
    for (const change of timeline) this.timeline.push(change);
    this.#seq = timeline.at(-1)?.seq ?? 0;
  }

  get current(): string | null {
    return this.timeline.at(-1)?.stage ?? null;
  }

  /** Returns the change this answer makes, or null. */
  observe(answer: Pick<Answer, 'seq' | 'stage' | 'at'>): StageChange | null {
    if (answer.stage === null) return null;
    if (answer.stage === this.current) {
      return null;
    }
    if (answer.seq < this.#seq) return null;
    const change: StageChange = { stage: answer.stage, from: this.current, at: answer.at, seq: answer.seq };
    this.timeline.push(change);
    this.#seq = answer.seq;
    return change;
  }
}

/**
 * How long after a stage switch was asked (`at`, server clock) the first answer of that stage came back, ms;
 * null while none has.
 */
export function switchDelay(
  request: { stage: string; at: number },
  timeline: readonly StageChange[],
): number | null {
  const change = timeline.find((c) => c.stage === request.stage && c.at >= request.at);
  return change ? change.at - request.at : null;
}

/** Answers kept per version for the analysis (later ones are not added). */
const MAX_SAMPLE = 20_000;

/**
 * What the canary analysis judges: every answer since the applied stage was first seen, of requests without
 * override header (the step's own traffic), per version (5xx counted as errors), and those that reached no
 * version. Starts over when the stage changes.
 */
export class StepSamples {
  stage: string | null = null;
  unattributed = 0;
  #versions = new Map<string, { requests: number; errors: number; latenciesMs: number[] }>();

  /** Adds the answers of `stage` sent without header; a new stage starts the samples over. */
  add(answers: readonly Answer[], stage: string | null): void {
    if (stage !== this.stage) {
      this.stage = stage;
      this.unattributed = 0;
      this.#versions.clear();
    }
    if (stage === null) return;
    for (const a of answers) {
      if (a.profile !== '') continue;
      if (a.stage === null && a.version === null) {
        this.unattributed++; // no answer at all
        continue;
      }
      if (a.stage !== stage) continue;
      if (a.version === null) {
        this.unattributed++;
        continue;
      }
      let s = this.#versions.get(a.version);
      if (!s) {
        s = { requests: 0, errors: 0, latenciesMs: [] };
        this.#versions.set(a.version, s);
      }
      if (s.requests >= MAX_SAMPLE) continue;
      s.requests++;
      if (a.status >= 500) s.errors++;
      s.latenciesMs.push(a.latencyMs);
    }
  }

  sample(version: string): VersionSample {
    const s = this.#versions.get(version);
    return s ? { version, ...s } : { version, requests: 0, errors: 0, latenciesMs: [] };
  }
}

/**
 * The canary analysis of the step's answers so far (split-check's `analyse`, with the plan of `make progress`):
 * null at a stage without canary traffic. The page looks continuously, not at the requests fixed in advance, so
 * it shows where the analysis stands; `make progress` decides.
 */
export function stepAnalysis(
  plan: AnalysisPlan,
  roles: StageRoles | null | undefined,
  samples: StepSamples,
): AnalysisResult | null {
  if (!roles || samples.stage === null) return null;
  return analyse(plan, {
    stage: samples.stage,
    canary: samples.sample(roles.canary),
    baseline: roles.baseline === null ? null : samples.sample(roles.baseline),
    share: roles.share,
    unattributed: samples.unattributed,
  });
}

export interface Cell {
  kind: 'version' | 'error' | 'unknown';
  /** What the square shows inside (readable without colour): the version, or ✕ for an error. */
  label: string;
  /** Background colour: the version's colour from the app's answer; null for errors (their own style). */
  color: string | null;
  /** Tooltip and accessible name. */
  title: string;
}

/**
 * What one square shows. The colour is the one the app put in its answer (learned per version in `colors`,
 * since an error answer carries none); an error (any non-2xx, no answer) is a square of its own kind whatever
 * the version, and names the version when there was one.
 */
export function cellOf(answer: Answer, colors: Readonly<Record<string, string>>): Cell {
  const version = answer.version;
  const latency = `${answer.latencyMs.toFixed(1)} ms`;
  if (isFailure(answer)) {
    const what = answer.error ?? (answer.status > 0 ? `HTTP ${answer.status}` : 'no answer');
    return {
      kind: 'error',
      label: '✕',
      color: null,
      title: `error: ${what}${version ? ` from ${version}` : ''}, ${latency}`,
    };
  }
  if (version === null) {
    return { kind: 'unknown', label: '?', color: null, title: `HTTP ${answer.status} without x-app-version` };
  }
  return {
    kind: 'version',
    label: shortVersion(version),
    color: answer.color ?? colors[version] ?? null,
    title: `${version}, HTTP ${answer.status}, ${latency}${answer.stage ? `, stage ${answer.stage}` : ''}`,
  };
}

/** "v2" → "2": the square's label; other names are cut to 3 characters. */
export function shortVersion(version: string): string {
  const m = /^v(\d{1,3})$/.exec(version);
  return m ? (m[1] as string) : version.slice(0, 3);
}

/** Colours per version learned from answers (the app's `color`); later answers win. */
export function learnColors(colors: Record<string, string>, answers: readonly Answer[]): boolean {
  let changed = false;
  for (const a of answers) {
    if (a.version !== null && a.color !== null && colors[a.version] !== a.color) {
      colors[a.version] = a.color;
      changed = true;
    }
  }
  return changed;
}

/** "25 %", "74.8 %", "0.4 %": whole percentages without decimals, others with one. */
export function percent(share: number): string {
  const v = Math.round(share * 1000) / 10;
  return Number.isInteger(v) ? `${v} %` : `${v.toFixed(1)} %`;
}

/** "3.2 ms", "41 ms", "1.2 s", "—" for null. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
