/**
 * What the watch server and its page say to each other (types only): the configuration the page loads once
 * (GET /api/config), the answers it streams (GET /api/events, server-sent events), the settings the page changes
 * (POST /api/settings) and the stage switch it asks for (POST /api/stage, local path only).
 */
import type { AnalysisPlan } from '@rollouts/split-check';
import type { StageRoles } from '@rollouts/stages';

/** Who is judged at a stage by the canary analysis (canary, baseline, share): @rollouts/stages' stageRoles. */
export type { StageRoles };

/** One request the server sent through the gateway, and what came back. */
export interface Answer {
  /** Order in which the requests were sent (1, 2, ...). */
  seq: number;
  /** When the answer completed (ms since the epoch, server clock). */
  at: number;
  /** The override headers the request carried ("" for none, else "x-canary: always", joined by ", "). */
  profile: string;
  /** HTTP status; 0 when no answer came (refused, reset, timeout). */
  status: number;
  /** x-app-version of the answer (null when it had none: the gateway's own 404/503, no answer). */
  version: string | null;
  /** x-rollouts-stage of the answer (null when it had none). */
  stage: string | null;
  /** From sending the request to the end of its body, ms. */
  latencyMs: number;
  /** The colour the app put in its JSON answer (`color`), null when the body had none (an error answer). */
  color: string | null;
  /** Why the request failed ("HTTP 500", "connection refused", "timeout", ...), null for a 2xx answer. */
  error: string | null;
}

/** A change of the stage the answers name, in the order the requests were sent. */
export interface StageChange {
  stage: string;
  /** The stage before (null for the first one seen). */
  from: string | null;
  /** When the first answer of the new stage completed (ms since the epoch). */
  at: number;
  /** seq of that answer. */
  seq: number;
}

/** Where the requests of one stage and one profile are expected to go, derived from the stage's manifest. */
export interface ProfileExpectation {
  /** Probability per version (x-app-version); empty when no route matches. */
  versions: Record<string, number>;
  /** No route matches: the gateway answers 404. */
  noRoute: boolean;
  /** The route of the manifest that takes these requests (null: none). */
  route: string | null;
}

export interface StageInfo {
  name: string;
  strategy: string;
  /** The manifest, relative to the repository root. */
  file: string;
  /** The command that applies it from a terminal (what to run on the cluster). */
  command: string;
  /** The stage's own override headers (its request profiles other than the default one). */
  overrides: string[];
  /** Expected split per profile key ("" and every combination of the known override headers). */
  expect: Record<string, ProfileExpectation>;
}

/** An override header the page can send: one found in the stages' routes. */
export interface OverrideHeader {
  /** "x-canary: always" */
  name: string;
  headers: Record<string, string>;
}

/** The canary analysis of @rollouts/split-check, as `make progress` plans it over the stage matrix. */
export interface AnalysisConfig {
  /** The thresholds file read (analysis.yaml at the root: the thresholds' one definition). */
  file: string;
  plan: AnalysisPlan;
  /** Per stage; null where the new version gets no traffic. */
  roles: Record<string, StageRoles | null>;
}

export interface WatchConfig {
  target: 'local' | 'cluster';
  /** Why this target (e.g. "the local gateway's admin API answered at http://127.0.0.1:15000"). */
  targetReason: string;
  gatewayUrl: string;
  /** True when the page may switch stages (the local path's admin API). */
  canSwitch: boolean;
  stages: StageInfo[];
  /** Stage files that do not load, with the reason (they get no button). */
  brokenStages: { name: string; error: string }[];
  overrides: OverrideHeader[];
  /** Confidence of the acceptance band: 1 − the α per check of `make verify`. */
  confidence: number;
  /** The α per check it comes from. */
  alpha: number;
  /** Answers the grid shows and the share is computed over. */
  windowSize: number;
  rate: { min: number; max: number };
  /** Requests in flight at most; more are not sent (the rate drops instead). */
  maxInFlight: number;
  /** Null when the thresholds file does not load (`analysisError` says why). */
  analysis: AnalysisConfig | null;
  analysisError: string | null;
}

export interface WatchSettings {
  /** Requests per second. */
  rate: number;
  /** Names of the override headers sent with every request. */
  overrides: string[];
}

export interface TrafficStatus {
  /** Requests are being sent (at least one page watches). */
  sending: boolean;
  subscribers: number;
  sent: number;
  answered: number;
  failed: number;
  inFlight: number;
  /** Requests not sent because `maxInFlight` were still waiting. */
  skipped: number;
}

/** The first event of the stream, and what a page that reconnects starts from. */
export interface Snapshot {
  settings: WatchSettings;
  timeline: StageChange[];
  /** The last `windowSize` answers, oldest first. */
  answers: Answer[];
  status: TrafficStatus;
}

/** What a stage switch asked from the page returned (also broadcast to every page). */
export interface SwitchResult {
  stage: string;
  ok: boolean;
  status: number;
  message: string;
  findings: string[];
  at: number;
}

/** The profile key of a set of override header names: sorted, joined by ", " ("" for none). */
export function profileKey(names: readonly string[]): string {
  return [...new Set(names)].sort().join(', ');
}
