/**
 * Files under .state/ (git-ignored): pid files and ports of the background local path, verification JSON. Where
 * they are, and the reading of ports.json and the admin token, is @rollouts/local-mesh's (local-state.ts: `make
 * watch` reads them too); the CLI writes them.
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
import {
  adminTokenFile,
  type LocalState,
  localDir,
  localStateFile,
  processIdentity,
  stateDir,
} from '@rollouts/local-mesh';

export {
  adminTokenFile,
  type LocalState,
  localDir,
  readAdminToken,
  readLocalState,
  stateDir,
} from '@rollouts/local-mesh';

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

/** Writes the admin API's token (adminTokenFile), mode 0600: the CLI sends it on every stage switch. */
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

/** The stage the background gateway applies now (it rewrites the file on every switch). */
export function stageFile(root: string): string {
  return join(localDir(root), 'stage.json');
}

export function readRecordedStage(root: string): string | null {
  return readJson<{ stage?: string }>(stageFile(root))?.stage ?? null;
}

/** The state of a stopped local path: ports, token, stage and pid files. */
export function removeAllLocalState(root: string): void {
  for (const f of [localStateFile(root), adminTokenFile(root), stageFile(root)]) rmSync(f, { force: true });
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
  writeJson(localStateFile(root), state);
}

export function removeLocalState(root: string): void {
  rmSync(localStateFile(root), { force: true });
}
