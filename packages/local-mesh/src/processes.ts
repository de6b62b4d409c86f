/**
 * Process management for the local path: port checks, starting the app builds as child processes,
 * waiting for readiness, and stopping processes by pid (and checking that they are gone).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { portEnvName } from './config.js';

export class PortInUseError extends Error {
  override name = 'PortInUseError';
  constructor(
    readonly role: string,
    readonly port: number,
  ) {
    const variable = portEnvName(role);
    super(
      `port ${port} (${role === 'gateway' || role === 'admin' ? role : `workload ${role}`}) is already in use.\n` +
        `Stop whatever listens there (if it is a local path started earlier: rollout local down), or choose ` +
        `other ports with GATEWAY_PORT, ADMIN_PORT or V<N>_PORT, e.g. ${variable}=${suggest(port)}.`,
    );
  }
}

function suggest(port: number): number {
  return port + 10000 <= 65535 ? port + 10000 : port - 10000;
}

/** Resolves true when nothing is listening on host:port (we could bind it), false on EADDRINUSE. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT') resolve(true);
      else reject(err);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Throws PortInUseError for the first port of `roles` that is taken (port 0 is never taken). The roles in
 * `dualStack` (default: the gateway, which listens on 127.0.0.1 and [::1]) are checked on both addresses.
 */
export async function assertPortsFree(
  roles: Record<string, number>,
  dualStack: readonly string[] = ['gateway'],
): Promise<void> {
  const seen = new Map<number, string>();
  for (const [role, port] of Object.entries(roles)) {
    if (port === 0) continue;
    const other = seen.get(port);
    if (other !== undefined) {
      throw new PortInUseError(role, port);
    }
    seen.set(port, role);
    if (!(await isPortFree(port, '127.0.0.1'))) throw new PortInUseError(role, port);
    if (dualStack.includes(role) && !(await isPortFree(port, '::1'))) throw new PortInUseError(role, port);
  }
}

/** Runs `listen`; an EADDRINUSE (on any address, [::1] included) becomes PortInUseError naming the variable. */
export async function listenAs<T>(role: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(role, port);
    throw err;
  }
}

/** The local workloads' SHUTDOWN_DRAIN_MS (the chart's is 5000 ms, for a 2 s × 2 probe). */
export const LOCAL_DRAIN_MS = 1500;

export interface WorkloadProcessOptions {
  version: string;
  port: number;
  /** The app build to run, e.g. apps/webapp/dist/v1/main.js. */
  script: string;
  /** Extra environment (merged over the defaults for the local path). */
  env?: Record<string, string>;
  /** Start in its own process group, not tied to this process (for `rollout local up`). */
  detached?: boolean;
  /** Append stdout and stderr here (detached processes); otherwise stderr is collected for error messages. */
  logFile?: string;
}

export interface WorkloadProcess {
  version: string;
  port: number;
  url: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines the process wrote to stderr (when not detached). */
  stderrTail(): string;
}

export function startWorkload(options: WorkloadProcessOptions): WorkloadProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(options.port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // After SIGTERM, /readyz fails for this long while requests are still served: the readiness probe
    // (supervisor.ts, 2 × 200 ms) takes the workload out of rotation before it closes, as on the cluster.
    SHUTDOWN_DRAIN_MS: String(LOCAL_DRAIN_MS),
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...options.env,
  };
  let stdio: ('ignore' | 'pipe' | number)[];
  if (options.logFile) {
    const fd = openSync(options.logFile, 'a');
    stdio = ['ignore', fd, fd];
  } else {
    stdio = ['ignore', 'ignore', 'pipe'];
  }
  const child = spawn(process.execPath, [options.script], {
    env,
    stdio,
    detached: options.detached ?? false,
  });
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  if (child.pid === undefined) {
    throw new Error(`could not start workload ${options.version} (${options.script})`);
  }
  if (options.detached) child.unref();
  return {
    version: options.version,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    pid: child.pid,
    child,
    exited,
    stderrTail: () => tail.trim().split('\n').slice(-10).join('\n'),
  };
}

/**
 * Polls `${url}${path}` until it answers 200, at most `timeoutMs`.
 * Fails early when `exited` resolves (the process died before becoming ready).
 */
export async function waitReady(
  url: string,
  options: { path?: string; timeoutMs?: number; exited?: Promise<unknown>; what?: string } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const what = options.what ?? url;
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  let lastError = 'no answer yet';
  void options.exited?.then(() => {
    dead = true;
  });
  while (!dead) {
    try {
      const res = await request(`${url}${options.path ?? '/readyz'}`, {
        headersTimeout: 1000,
        bodyTimeout: 1000,
        reset: true,
      });
      await res.body.dump();
      if (res.statusCode === 200) return;
      lastError = `status ${res.statusCode}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${what} did not become ready within ${timeoutMs} ms (${lastError})`);
    }
    await delay(25);
  }
  throw new Error(`${what} exited before it became ready`);
}

/**
 * True when a process with this pid exists (and we may signal it) and has not exited. A zombie (exited, not yet
 * reaped by its parent, e.g. a detached process whose parent is an init that does not reap) counts as gone.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc (macOS): its init reaps orphans promptly
  }
}

/**
 * Sends SIGTERM to the pid (its process group when `group`), waits until it is gone, and sends SIGKILL after
 * `graceMs`. Resolves true when the process is gone, false if it survived SIGKILL as well.
 */
export async function stopPid(
  pid: number,
  options: { graceMs?: number; group?: boolean } = {},
): Promise<boolean> {
  const graceMs = options.graceMs ?? 5000;
  const target = options.group ? -pid : pid;
  const send = (signal: NodeJS.Signals) => {
    try {
      process.kill(target, signal);
    } catch {
      // already gone
    }
  };
  if (!pidAlive(pid)) return true;
  send('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await delay(20);
  if (!pidAlive(pid)) return true;
  send('SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (pidAlive(pid) && Date.now() < killDeadline) await delay(20);
  return !pidAlive(pid);
}

/** Ports this process has handed out, so two calls never return the same one. */
const handedOut = new Set<number>();

/** The lowest port the kernel picks for outgoing connections (Linux' ip_local_port_range; 32768 elsewhere). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 11000) return low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152, BSD and macOS use it; 32768 is safe for both.
  }
  return 32768;
}

/**
 * A port that is free on 127.0.0.1 and [::1] now, for tests and benchmarks that must pass ports to children.
 * Drawn at random below the kernel's ephemeral range: a port the OS hands out (listen on 0) is also a source port
 * for outgoing connections, so on a busy machine another process's connection can take it before the child binds
 * it. Below that range only a listener can take it, and callers that start children still retry on a collision.
 */
export async function findFreePort(): Promise<number> {
  const low = 10000;
  const high = ephemeralLow() - 1;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if ((await isPortFree(port, '127.0.0.1')) && (await isPortFree(port, '::1'))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found between ${low} and ${high} after 200 tries`);
}

/** What identifies a running process beyond its pid (pids are reused): its start time, group and arguments. */
export interface ProcessIdentity {
  pid: number;
  /** Opaque: the kernel's start time (clock ticks since boot on Linux, `ps -o lstart` elsewhere). */
  startTime: string;
  /** Process group id. */
  pgid: number;
  argv: string[];
}

/** The identity of a live process, or null when there is none with that pid (or it is a zombie). */
export function processIdentity(pid: number): ProcessIdentity | null {
  if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    // fields[0] is field 3 of proc_pid_stat(5): pgrp is field 5, starttime field 22.
    return { pid, pgid: Number(fields[2]), startTime: String(fields[19]), argv };
  } catch {
    // no /proc (macOS, BSD): ps gives the same facts
    const r = spawnSync('ps', ['-o', 'pgid=', '-o', 'lstart=', '-o', 'command=', '-p', String(pid)], {
      encoding: 'utf8',
    });
    const m = /^\s*(\d+)\s+(\S+\s+\S+\s+\d+\s+[\d:]+\s+\d+)\s+(.*)$/.exec(r.stdout.trim());
    if (r.status !== 0 || !m) return null;
    return { pid, pgid: Number(m[1]), startTime: m[2] as string, argv: (m[3] as string).split(' ') };
  }
}

/** Pids of the live processes in process group `pgid` (Linux; elsewhere via ps). */
export function groupMembers(pgid: number): number[] {
  if (!Number.isInteger(pgid) || pgid <= 1) return [];
  try {
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const identity = processIdentity(Number(name));
      if (identity?.pgid === pgid) out.push(identity.pid);
    }
    return out;
  } catch {
    const r = spawnSync('ps', ['-A', '-o', 'pid=', '-o', 'pgid='], { encoding: 'utf8' });
    return r.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter(([, g]) => g === pgid)
      .map(([p]) => p as number);
  }
}
