/**
 * Where `make watch` points: the local path when its gateway's admin API answers (TARGET=local, or TARGET unset
 * and the local path running), else the cluster through GATEWAY_URL (default: defaults.env). The admin API and its
 * token are found as the rollout CLI finds them (local-mesh's local-state.ts): ADMIN_PORT, else the port `rollout
 * local up` recorded in .state/local/ports.json, else 15000.
 */
import { gatewayUrlFromEnv, readAdminToken, resolveAdminUrl } from '@rollouts/local-mesh';
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
  const adminUrl = resolveAdminUrl(root, env);
  const probe = await probeAdmin(adminUrl);
  if (probe.ok) {
    return {
      target: 'local',
      reason: `${target === 'local' ? 'TARGET=local' : 'the local path is running'}: its admin API answered at ${adminUrl}`,
      gatewayUrl: `http://localhost:${probe.gatewayPort}`,
      adminUrl,
      adminToken: readAdminToken(root, env),
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
