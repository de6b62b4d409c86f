/**
 * What `rollout local up` records in .state/local/ (git-ignored) for the tools that come after it: the ports it
 * started the local path on (ports.json) and its admin API's token (admin-token). The CLI writes these files; the
 * CLI and `make watch` read them here, so both find the admin API the same way:
 *
 *   ADMIN_PORT (blank: unset), else the port ports.json records (an integer from 1 to 65535, else ignored), else 15000.
 *
 * ROLLOUT_STATE_DIR moves .state (tests keep their files apart from a real local path).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageApi } from '@rollouts/stages';
import { adminUrlFromEnv } from './config.js';

/** ports.json: what `rollout local up` started. */
export interface LocalState {
  gatewayPort: number;
  adminPort: number;
  versions: Record<string, number>;
  startedAt: string;
  /** The demo release fault the workloads run with (the CLI's scenarios), or null / absent: none. */
  scenario?: string | null;
  /** Which file carries each stage on this local path (absent: virtualservice). */
  api?: StageApi;
}

/** <root>/.state, or ROLLOUT_STATE_DIR. */
export function stateDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.ROLLOUT_STATE_DIR || join(root, '.state');
}

/** .state/local: the files of the background local path. */
export function localDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(root, env), 'local');
}

export function localStateFile(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(localDir(root, env), 'ports.json');
}

/** The admin API's token: written by `local up` (mode 0600), sent on every stage switch. */
export function adminTokenFile(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(localDir(root, env), 'admin-token');
}

/** ports.json, or null when there is none (no `rollout local up`) or it does not read as an object. */
export function readLocalState(root: string, env: NodeJS.ProcessEnv = process.env): LocalState | null {
  try {
    const state: unknown = JSON.parse(readFileSync(localStateFile(root, env), 'utf8'));
    return typeof state === 'object' && state !== null ? (state as LocalState) : null;
  } catch {
    return null;
  }
}

/** The token `rollout local up` wrote, or null. */
export function readAdminToken(root: string, env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    return readFileSync(adminTokenFile(root, env), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/**
 * The local gateway's admin API: ADMIN_PORT, else the port `rollout local up` recorded, else 15000. A bad
 * ADMIN_PORT is a ConfigError; a recorded port that is not one is ignored.
 */
export function resolveAdminUrl(root: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.ADMIN_PORT?.trim()) return adminUrlFromEnv(env);
  const recorded: unknown = readLocalState(root, env)?.adminPort;
  if (typeof recorded === 'number' && Number.isInteger(recorded) && recorded >= 1 && recorded <= 65535) {
    return adminUrlFromEnv({ ADMIN_PORT: String(recorded) });
  }
  return adminUrlFromEnv({}); // the default, 15000
}
