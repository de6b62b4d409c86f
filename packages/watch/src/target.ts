/**
 * Where `make watch` points: the local path when its gateway's admin API answers (TARGET=local, or TARGET unset
 * and the local path running), else the cluster through GATEWAY_URL (default: defaults.env). The admin API is found as the rollout CLI
 * finds it: ADMIN_PORT, else the port `rollout local up` recorded in .state/local/ports.json, else 15000.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORTS, gatewayUrlFromEnv, parsePort } from '@rollouts/local-mesh';
import { setting } from '@rollouts/stages';

export interface ResolvedTarget {
  target: 'local' | 'cluster';
  reason: string;
  gatewayUrl: string;
  adminUrl: string | null;
  /** The admin API's token `rollout local up` wrote (.state/local/admin-token), or null. */
  adminToken: string | null;
}

export class TargetError extends Error {
  override name = 'TargetError';
}

/** ADMIN_PORT, else .state/local/ports.json (ROLLOUT_STATE_DIR moves .state), else 15000. */
export function adminUrlFor(root: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.ADMIN_PORT?.trim()) {
    return `http://127.0.0.1:${parsePort('ADMIN_PORT', env.ADMIN_PORT, DEFAULT_PORTS.admin)}`;
  }
  const stateDir = env.ROLLOUT_STATE_DIR || join(root, '.state');
  try {
    const state = JSON.parse(readFileSync(join(stateDir, 'local', 'ports.json'), 'utf8')) as {
      adminPort?: unknown;
    };
    if (typeof state.adminPort === 'number' && Number.isInteger(state.adminPort) && state.adminPort > 0) {
      return `http://127.0.0.1:${state.adminPort}`;
    }
  } catch {
    // not started by `rollout local up`
  }
  return `http://127.0.0.1:${DEFAULT_PORTS.admin}`;
}

/** The token `rollout local up` wrote for its admin API (ROLLOUT_STATE_DIR moves .state), or null. */
export function adminTokenFor(root: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const stateDir = env.ROLLOUT_STATE_DIR || join(root, '.state');
  try {
    return readFileSync(join(stateDir, 'local', 'admin-token'), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** GET /stage of the admin API: the gateway's port, or why it did not answer. */
export async function probeAdmin(
  adminUrl: string,
  timeoutMs = 2000,
): Promise<{ ok: true; gatewayPort: number; stage: string } | { ok: false; reason: string }> {
  try {
    const res = await fetch(`${adminUrl}/stage`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { gatewayPort?: unknown; stage?: unknown };
    if (res.status !== 200 || typeof body.gatewayPort !== 'number') {
      return { ok: false, reason: `GET /stage answered ${res.status}` };
    }
    return { ok: true, gatewayPort: body.gatewayPort, stage: String(body.stage) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, reason: e.cause?.code ?? e.message };
  }
}

/**
 * `target`: local, cluster, or auto (TARGET unset). On the local path the traffic goes to the port the gateway
 * reports (as `rollout verify` does), so GATEWAY_PORT=18080 is watched there.
 */
export async function resolveTarget(
  root: string,
  target: 'local' | 'cluster' | 'auto',
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedTarget> {
  // The cluster's gateway: GATEWAY_URL, else defaults.env's (as for the scripts and the CLI).
  const gatewayUrl = gatewayUrlFromEnv({ GATEWAY_URL: setting(root, 'GATEWAY_URL', env) });
  if (target === 'cluster') {
    return { target, reason: 'TARGET=cluster', gatewayUrl, adminUrl: null, adminToken: null };
  }
  const adminUrl = adminUrlFor(root, env);
  const probe = await probeAdmin(adminUrl);
  if (probe.ok) {
    return {
      target: 'local',
      reason: `${target === 'local' ? 'TARGET=local' : 'the local path is running'}: its admin API answered at ${adminUrl}`,
      gatewayUrl: `http://localhost:${probe.gatewayPort}`,
      adminUrl,
      adminToken: adminTokenFor(root, env),
    };
  }
  if (target === 'local') {
    throw new TargetError(
      `the local path is not running (its admin API at ${adminUrl} did not answer: ${probe.reason}).\n` +
        'Start it with `make local-up`, then `make watch` again.',
    );
  }
  return {
    target: 'cluster',
    reason: `TARGET not set and no local path answered at ${adminUrl}: watching the cluster through GATEWAY_URL`,
    gatewayUrl,
    adminUrl: null,
    adminToken: null,
  };
}
