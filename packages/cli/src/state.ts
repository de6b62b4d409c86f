/**
 * Files under .state/ (git-ignored): pid files and ports of the background local path, verification JSON.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PidFile {
  role: string;
  pid: number;
  port: number;
  /** The script the process runs: `down` checks it before signalling a pid that may have been reused. */
  script: string;
  startedAt: string;
  log: string;
}

export interface LocalState {
  gatewayPort: number;
  adminPort: number;
  versions: Record<string, number>;
  startedAt: string;
  /** The demo release fault the workloads run with (scenarios.ts), or null / absent: none. */
  scenario?: string | null;
}

/** <root>/.state, or ROLLOUT_STATE_DIR (tests keep their pid files and JSON apart from a real local path). */
export function stateDir(root: string): string {
  return process.env.ROLLOUT_STATE_DIR || join(root, '.state');
}

export function localDir(root: string): string {
  return join(stateDir(root), 'local');
}

export function verifyFile(root: string, stage: string): string {
  return join(stateDir(root), 'verify', `${stage}.json`);
}

export function writeJson(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export function writePidFile(root: string, info: PidFile): void {
  writeJson(join(localDir(root), `${info.role}.pid.json`), info);
}

export function readPidFiles(root: string): PidFile[] {
  let names: string[];
  try {
    names = readdirSync(localDir(root));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.pid.json'))
    .map((n) => readJson<PidFile>(join(localDir(root), n)))
    .filter((p): p is PidFile => p !== null && Number.isInteger(p.pid) && p.pid > 0);
}

export function removePidFile(root: string, role: string): void {
  rmSync(join(localDir(root), `${role}.pid.json`), { force: true });
}

export function writeLocalState(root: string, state: LocalState): void {
  writeJson(join(localDir(root), 'ports.json'), state);
}

export function readLocalState(root: string): LocalState | null {
  return readJson<LocalState>(join(localDir(root), 'ports.json'));
}

export function removeLocalState(root: string): void {
  rmSync(join(localDir(root), 'ports.json'), { force: true });
}
