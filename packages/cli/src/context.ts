/** What every command needs: the repository root, output, the target, and the local gateway's admin API. */
import {
  ConfigError,
  gatewayUrlFromEnv,
  type LocalPorts,
  type PlanRequest,
  portsFromEnv,
  readAdminToken,
  registerAdminToken,
  registeredAdminToken,
  resolveAdminUrl,
  workloadVersions,
} from '@rollouts/local-mesh';
import {
  findRepoRoot,
  listStages,
  loadStage,
  ManifestError,
  STAGE_APIS,
  type Stage,
  type StageApi,
  setting,
  stageNames,
  UnknownStageError,
} from '@rollouts/stages';
import { CliError, EXIT_USAGE, UsageError } from './errors.js';

export interface Io {
  out(line?: string): void;
  err(line: string): void;
}

export const stdio: Io = {
  out: (line = '') => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export function repoRoot(): string {
  const fromEnv = process.env.ROLLOUT_ROOT;
  try {
    return findRepoRoot(fromEnv || process.cwd());
  } catch (err) {
    throw new CliError(
      `${(err as Error).message}: run rollout inside the repository (or set ROLLOUT_ROOT)`,
      EXIT_USAGE,
    );
  }
}

/** Loads a stage by name; an unknown name is bad input (exit 2, the valid stages listed). */
export function stageByName(root: string, name: string): Stage {
  try {
    return loadStage(root, name);
  } catch (err) {
    if (err instanceof UnknownStageError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Checks that a stage file of that name exists (unknown: bad input, exit 2) without loading it: a file that does not
 * load is refused later, where its findings are reported (the gateway's checks before applying it).
 */
export function requireStageName(root: string, name: string): void {
  const names = stageNames(root);
  if (names.includes(name)) return;
  let valid = names;
  try {
    valid = listStages(root).map((s) => s.name);
  } catch {
    // the file names, unordered
  }
  throw new UsageError(new UnknownStageError(name, valid).message);
}

export type Target = 'local' | 'cluster';

/**
 * A shared knob (TARGET, API, KUBE_CONTEXT, GATEWAY_URL, ...): the environment's value, else defaults.env's, the
 * one place their defaults are written (scripts/lib.sh reads the same file).
 */
export function knob(key: string, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return setting(repoRoot(), key, env);
  } catch (err) {
    if (err instanceof ManifestError) throw new CliError(err.message);
    throw err;
  }
}

/** --target, else TARGET (defaults.env: cluster, as `make <stage>`). */
export function resolveTarget(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Target {
  const value = flag ?? knob('TARGET', env);
  if (value !== 'local' && value !== 'cluster') {
    throw new UsageError(
      `${flag !== undefined ? '--target' : 'TARGET'} must be local or cluster, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** --api, else API (defaults.env: virtualservice): which file carries each stage. */
export function resolveApi(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): StageApi {
  const value = flag ?? knob('API', env);
  if (!(STAGE_APIS as readonly string[]).includes(value)) {
    throw new UsageError(
      `${flag !== undefined ? '--api' : 'API'} must be ${STAGE_APIS.join(' or ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as StageApi;
}

/** The kube context of the cluster path: KUBE_CONTEXT (defaults.env: kind-${CLUSTER_NAME}). */
export function kubeContext(env: NodeJS.ProcessEnv = process.env): string {
  return knob('KUBE_CONTEXT', env);
}

/** The cluster's ingress gateway as the host sees it: GATEWAY_URL (defaults.env: http://localhost:${GATEWAY_PORT}). */
export function clusterGatewayUrl(env: NodeJS.ProcessEnv = process.env): string {
  try {
    return gatewayUrlFromEnv({ GATEWAY_URL: knob('GATEWAY_URL', env) });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * The ports a local path of this command's own listens on: GATEWAY_PORT, ADMIN_PORT and V<N>_PORT for each of the
 * chart's versions (local-mesh's portsFromEnv); a bad value is bad input (exit 2).
 */
export function localPorts(root: string): LocalPorts {
  try {
    return portsFromEnv(process.env, workloadVersions(root));
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * The running local path's admin API: ADMIN_PORT, else the port `rollout local up` recorded, else 15000
 * (local-mesh's resolveAdminUrl, as `make watch` finds it); a bad ADMIN_PORT is bad input (exit 2).
 */
export function adminUrl(root: string): string {
  let url: string;
  try {
    url = resolveAdminUrl(root);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  // The token `rollout local up` wrote: adminCall sends it on a stage switch.
  const token = readAdminToken(root);
  if (token) registerAdminToken(url, token);
  return url;
}

export interface AppliedStage {
  stage: string;
  appliedAt: string;
  overrideWeights: Record<string, number> | null;
  gatewayPort: number;
}

export class GatewayDownError extends CliError {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(
      `the local gateway is not running (its admin API at ${url} did not answer: ${reason}).\n` +
        'Start it with `make local-up` (or `rollout local up`); `make demo` runs everything in one go.',
    );
  }
}

export async function adminCall(
  url: string,
  method: 'GET' | 'PUT',
  path: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<{ status: number; json: unknown }> {
  let res: Response;
  let text: string;
  try {
    const token = registeredAdminToken(url);
    res = await fetch(`${url}${path}`, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body !== undefined
        ? {
            body: JSON.stringify(body),
            headers: {
              'content-type': 'application/json',
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
          }
        : {}),
    });
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new GatewayDownError(url, e.cause?.code ?? e.message);
  }
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

export async function appliedStage(url: string): Promise<AppliedStage> {
  const { status, json } = await adminCall(url, 'GET', '/stage');
  if (status !== 200)
    throw new CliError(`admin API ${url}/stage answered ${status}: ${JSON.stringify(json)}`);
  return json as AppliedStage;
}

/** Seconds with two decimals. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** The plan's inputs, their flag, environment variable and allowed range. */
const PLAN_INPUTS = [
  {
    key: 'familyAlpha',
    flag: '--family-alpha',
    env: 'ROLLOUT_FAMILY_ALPHA',
    ok: (v: number) => v > 0 && v <= 0.5,
    range: 'a probability in (0, 0.5]: the chance that a correct mesh fails any check of the stage matrix',
  },
  {
    key: 'delta',
    flag: '--delta',
    env: 'ROLLOUT_DELTA',
    ok: (v: number) => v >= 0.01 && v <= 0.5,
    range: 'a share in [0.01, 0.5]: the deviation of a split that must be caught (0.05 = 5 points)',
  },
  {
    key: 'power',
    flag: '--power',
    env: 'ROLLOUT_POWER',
    ok: (v: number) => v >= 0.5 && v < 1,
    range: 'a probability in [0.5, 1): the chance that a split --delta off is caught',
  },
] as const;

export type PlanFlags = Partial<Record<'family-alpha' | 'delta' | 'power', string>>;

/**
 * --family-alpha / --delta / --power, else ROLLOUT_FAMILY_ALPHA / ROLLOUT_DELTA / ROLLOUT_POWER, else the
 * defaults (0.001, 0.05, 0.999). A value that is not a number in range is bad input (exit 2).
 */
export function planRequest(flags: PlanFlags, env: NodeJS.ProcessEnv = process.env): PlanRequest {
  const out: PlanRequest = {};
  for (const input of PLAN_INPUTS) {
    const fromFlag = flags[input.flag.slice(2) as keyof PlanFlags];
    const raw = fromFlag ?? (env[input.env] || undefined);
    if (raw === undefined) continue;
    const source = fromFlag !== undefined ? input.flag : input.env;
    const value = /^\s*[0-9.eE+-]+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isFinite(value) || !input.ok(value)) {
      throw new UsageError(`${source} must be ${input.range}; got ${JSON.stringify(raw)}`);
    }
    out[input.key] = value;
  }
  return out;
}

/**
 * An AbortSignal that SIGINT and SIGTERM abort (reason: the signal's name) while `dispose` has not been called;
 * the process then does not die at once, so the command can stop cleanly and exit 130 / 143.
 */
export function abortOnSignals(onSignal?: (signal: NodeJS.Signals) => void): {
  signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  const handler = (signal: NodeJS.Signals) => {
    onSignal?.(signal);
    controller.abort(signal);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * A duration: "2s", "500ms", "1.5m", or a plain number of seconds. Bad input (exit 2) names the option, e.g.
 * "--bake must be a duration like 5s, 500ms or 1m; got \"soon\"".
 */
export function parseDuration(name: string, raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(raw);
  if (!m) throw new UsageError(`${name} must be a duration like 5s, 500ms or 1m; got ${JSON.stringify(raw)}`);
  const value = Number(m[1]);
  const ms = m[2] === 'ms' ? value : m[2] === 'm' ? value * 60_000 : value * 1000;
  if (ms > 3_600_000) throw new UsageError(`${name} must be at most 1 hour; got ${JSON.stringify(raw)}`);
  return ms;
}
