/**
 * Ports and URLs of the local path, read from the environment once.
 * Defaults follow docs/ARCHITECTURE.md: gateway 8080, v1 3001, v2 3002, admin 15000.
 */

export interface LocalPorts {
  gateway: number;
  admin: number;
  /** One port per workload version (v1, v2, ...). */
  versions: Record<string, number>;
}

export const DEFAULT_PORTS: LocalPorts = { gateway: 8080, admin: 15000, versions: { v1: 3001, v2: 3002 } };

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
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535 || !/^\s*\d+\s*$/.test(raw)) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is not a port: expected an integer from 0 to 65535`,
    );
  }
  return value;
}

/**
 * Ports for the gateway, its admin API and each version in `versions` (default v1, v2).
 * A version without a default port (v3, ...) gets none unless its variable is set.
 */
export function portsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  versions: readonly string[] = Object.keys(DEFAULT_PORTS.versions),
): LocalPorts {
  const out: LocalPorts = {
    gateway: parsePort('GATEWAY_PORT', env.GATEWAY_PORT, DEFAULT_PORTS.gateway),
    admin: parsePort('ADMIN_PORT', env.ADMIN_PORT, DEFAULT_PORTS.admin),
    versions: {},
  };
  for (const version of versions) {
    const name = portEnvName(version);
    const fallback = DEFAULT_PORTS.versions[version];
    const raw = env[name];
    if (fallback === undefined && (raw === undefined || raw === '')) {
      throw new ConfigError(`no port for workload ${version}: set ${name}`);
    }
    out.versions[version] = parsePort(name, raw, fallback ?? 0);
  }
  return out;
}

/** GATEWAY_URL, else http://localhost:<GATEWAY_PORT>, else http://localhost:8080. */
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
  const port = parsePort('GATEWAY_PORT', env.GATEWAY_PORT, DEFAULT_PORTS.gateway);
  return `http://localhost:${port}`;
}

/** The admin API of the local gateway (loopback only). */
export function adminUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const port = parsePort('ADMIN_PORT', env.ADMIN_PORT, DEFAULT_PORTS.admin);
  return `http://127.0.0.1:${port}`;
}
