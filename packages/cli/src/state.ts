/**
 * Files under .state/ (git-ignored): pid files and ports of the background local path, verification JSON.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { processIdentity } from '@rollouts/local-mesh';

export interface PidFile {
  role: string;
  pid: number;
  port: number;
  /** The script the process was started with (informative: trust is checked against the script the CLI computes). */
  script: string;
  /** The kernel's start time of the process (processIdentity): a reused pid has another. */
  startTime?: string;
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
  /** Which file carries each stage on this local path (absent: virtualservice). */
  api?: 'virtualservice' | 'gateway-api';
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
    .filter((p): p is PidFile => p !== null && Number.isInteger(p.pid) && p.pid > 1);
}

export function removePidFile(root: string, role: string): void {
  rmSync(join(localDir(root), `${role}.pid.json`), { force: true });
}

/** The admin API's token: written by `local up` (mode 0600), sent by the CLI on every stage switch. */
export function adminTokenFile(root: string): string {
  return join(localDir(root), 'admin-token');
}

export function writeAdminToken(root: string, token: string): void {
  mkdirSync(localDir(root), { recursive: true, mode: 0o700 });
  rmSync(adminTokenFile(root), { force: true });
  const fd = openSync(adminTokenFile(root), 'wx', 0o600);
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
}

export function readAdminToken(root: string): string | null {
  try {
    return readFileSync(adminTokenFile(root), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** The stage the background gateway applies now (it rewrites the file on every switch). */
export function stageFile(root: string): string {
  return join(localDir(root), 'stage.json');
}

export function readRecordedStage(root: string): string | null {
  return readJson<{ stage?: string }>(stageFile(root))?.stage ?? null;
}

/** The state of a stopped local path: ports, token, stage and pid files. */
export function removeAllLocalState(root: string): void {
  for (const f of ['ports.json', 'admin-token', 'stage.json'])
    rmSync(join(localDir(root), f), { force: true });
  for (const p of readPidFiles(root)) removePidFile(root, p.role);
}

export class LockedError extends Error {
  override name = 'LockedError';
  constructor(readonly holder: { pid: number; command: string }) {
    super(`another \`rollout ${holder.command}\` (pid ${holder.pid}) is starting or stopping the local path`);
  }
}

/**
 * Takes the local path's lock (.state/local/lock, created exclusively) for `command` and returns its release.
 * A lock whose holder no longer runs (same pid and start time) is stale and taken over; a live one: LockedError.
 */
export function lockLocal(root: string, command: string): () => void {
  mkdirSync(localDir(root), { recursive: true, mode: 0o700 });
  const file = join(localDir(root), 'lock');
  const me = processIdentity(process.pid);
  const mine = { pid: process.pid, startTime: me?.startTime ?? '', command };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, JSON.stringify(mine));
      closeSync(fd);
      return () => {
        const held = readJson<typeof mine>(file);
        if (held?.pid === mine.pid && held.startTime === mine.startTime) rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = readJson<typeof mine>(file);
      if (held === null) {
        // Being written this very moment, or torn by a crash long ago.
        let age = 0;
        try {
          age = Date.now() - statSync(file).mtimeMs;
        } catch {
          continue; // released meanwhile
        }
        if (age < 5000) throw new LockedError({ pid: 0, command: 'local up/down' });
      } else if (processIdentity(held.pid)?.startTime === held.startTime) {
        throw new LockedError(held);
      }
      rmSync(file, { force: true }); // stale: its holder is gone
    }
  }
  throw new Error(`could not take the lock ${file}`);
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
