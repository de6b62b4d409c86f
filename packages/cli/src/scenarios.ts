/**
 * Demo release faults: a bad new version to show that the canary analysis catches it. Each scenario sets the app's
 * fault knobs (apps/webapp: FAULT_ERROR_RATE, FAULT_DELAY_MS) on the new version only, on the local path. This is
 * the one place they are defined; `SCENARIO=` (make) and `--scenario` (rollout demo, local up, progress) name them.
 * On the cluster path the same knobs go into the chart values (helmSetValues: scripts/scenario.sh, make up).
 */
import { UsageError } from './errors.js';

export interface Scenario {
  name: string;
  /** What the release does wrong, in words. */
  description: string;
  /** Environment per workload version. */
  env: Record<string, Record<string, string>>;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'bad-v2',
    description: 'v2 answers 5 % of requests with 500 (FAULT_ERROR_RATE=0.05); v1 is healthy',
    env: { v2: { FAULT_ERROR_RATE: '0.05' } },
  },
  {
    name: 'slow-v2',
    description: 'v2 answers every request 150 ms later (FAULT_DELAY_MS=150); v1 is healthy',
    env: { v2: { FAULT_DELAY_MS: '150' } },
  },
];

/** --scenario, else $SCENARIO, else none (a healthy release). An unknown name is bad input (exit 2). */
export function resolveScenario(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Scenario | null {
  const fromFlag = flag !== undefined;
  const name = (flag ?? env.SCENARIO ?? '').trim();
  if (name === '' || name === 'none' || name === 'healthy') return null;
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (scenario) return scenario;
  throw new UsageError(
    `unknown scenario ${JSON.stringify(name)}${fromFlag ? '' : ' (SCENARIO)'}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (or none: a healthy release)`,
  );
}

/** "bad-v2: v2 answers 5 % of requests with 500 ...". */
export function describeScenario(scenario: Scenario | null): string {
  return scenario ? `${scenario.name}: ${scenario.description}` : 'none (a healthy release)';
}

/**
 * The chart values of a scenario on the cluster path (`helm --set-string`, one `key=value` each): every fault knob
 * any scenario sets, per version, under versions.<version>.env, with the scenario's value or "0" (the app's "off",
 * the chart's default). A healthy release (null) resets every knob, so the values never keep an earlier fault.
 */
export function helmSetValues(scenario: Scenario | null): string[] {
  const out: string[] = [];
  const knobs = new Map<string, Set<string>>();
  for (const s of SCENARIOS)
    for (const [version, env] of Object.entries(s.env))
      for (const k of Object.keys(env)) knobs.set(version, (knobs.get(version) ?? new Set()).add(k));
  for (const [version, names] of [...knobs.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    for (const name of [...names].sort())
      out.push(`versions.${version}.env.${name}=${scenario?.env[version]?.[name] ?? '0'}`);
  }
  return out;
}
