/**
 * Ports and URLs of the local path, read from the environment once.
 * The gateway's port is GATEWAY_PORT, whose default is in defaults.env (the rollout CLI puts the file's defaults in
 * its environment; the cluster path's host port is the same knob). Defaults here: admin 15000 (ADMIN_PORT), and one
 * rule for the versions: version vN listens on 3000 + N (v1 3001, v2 3002, v3 3003, ...), its V<N>_PORT overriding. Which
 * versions there are is not written here: callers pass the chart's list (workloadVersions, from the `versions` of
 * charts/webapp/values.yaml). A version key that is not v<integer> (e.g. `canary`) has no default and needs its
 * variable (CANARY_PORT).
 */

export interface LocalPorts {
  gateway: number;
  admin: number;
  /** One port per workload version (v1, v2, ...). */
  versions: Record<string, number>;
}

/** The admin API's port; a version's port follows from its name (defaultVersionPort), the gateway's is GATEWAY_PORT. */
export const DEFAULT_PORTS: Readonly<Pick<LocalPorts, 'admin'>> = { admin: 15000 };

/** Version vN's default port is VERSION_PORT_BASE + N. */
const VERSION_PORT_BASE = 3000;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The environment variable that sets a port: GATEWAY_PORT, ADMIN_PORT, V1_PORT, V2_PORT, V3_PORT, ... */
export function portEnvName(role: string): string {
  if (role === 'gateway') return 'GATEWAY_PORT';
  if (role === 'admin') return 'ADMIN_PORT';
  return `${role.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PORT`;
}

export function parsePort(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  return portValue(name, raw);
}

/** GATEWAY_PORT: no default here (defaults.env has it, and the rollout CLI sets it from there). */
function gatewayPort(env: NodeJS.ProcessEnv): number {
  const raw = env.GATEWAY_PORT;
  if (raw === undefined || raw.trim() === '') {
    throw new ConfigError(
      'GATEWAY_PORT is not set: its default is in defaults.env, which the rollout CLI reads',
    );
  }
  return portValue('GATEWAY_PORT', raw);
}

function portValue(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535 || !/^\s*\d+\s*$/.test(raw)) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is not a port: expected an integer from 0 to 65535`,
    );
  }
  return value;
}

/**
 * The port version `vN` listens on when its variable is unset: 3000 + N (v1 3001, v3 3003). null for a key that is
 * not v<integer> written plainly (`canary`, `v2.1.0`, `v01`) or whose port would pass 65535: it needs its variable.
 */
export function defaultVersionPort(version: string): number | null {
  const match = /^v(0|[1-9]\d*)$/.exec(version);
  if (!match) return null;
  const port = VERSION_PORT_BASE + Number(match[1]);
  return port <= 65535 ? port : null;
}

/**
 * Ports for the gateway, its admin API and each of `versions` (the chart's: workloadVersions(root)): vN on
 * 3000 + N unless V<N>_PORT is set; any other key only from its variable, else a ConfigError naming it.
 */
export function portsFromEnv(env: NodeJS.ProcessEnv, versions: readonly string[]): LocalPorts {
  const out: LocalPorts = {
    gateway: gatewayPort(env),
    admin: parsePort('ADMIN_PORT', env.ADMIN_PORT, DEFAULT_PORTS.admin),
    versions: {},
  };
  for (const version of versions) {
    const name = portEnvName(version);
    const fallback = defaultVersionPort(version);
    const raw = env[name];
    if (fallback === null && (raw === undefined || raw.trim() === '')) {
      throw new ConfigError(
        `no port for workload ${version}: set ${name} (only a version named v<N> has a default, 3000 + N)`,
      );
    }
    out.versions[version] = parsePort(name, raw, fallback ?? 0);
  }
  return out;
}

/** GATEWAY_URL, else http://localhost:<GATEWAY_PORT>. */
export function gatewayUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.GATEWAY_URL?.trim();
  if (raw) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(
        `GATEWAY_URL=${JSON.stringify(raw)} is not a URL (example: http://localhost:8080)`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(`GATEWAY_URL must be http:// or https://, got ${JSON.stringify(raw)}`);
    }
    return url.origin;
  }
  return `http://localhost:${gatewayPort(env)}`;
}

/** The admin API of the local gateway (loopback only). */
export function adminUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const port = parsePort('ADMIN_PORT', env.ADMIN_PORT, DEFAULT_PORTS.admin);
  return `http://127.0.0.1:${port}`;
}
