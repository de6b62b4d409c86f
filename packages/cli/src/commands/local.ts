/**
 * `rollout local up|down`: the local path as one background process (the gateway, with v1 and v2 as its children,
 * kept running and in rotation as kubelet and Istio would: local-mesh's gateway-main.ts), with its pid file, ports,
 * admin token and applied stage in .state/local/. Both commands hold the folder's lock while they run, so two of
 * them never start or stop the local path at once.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import {
  appBuild,
  assertPortsFree,
  GATEWAY_MAIN,
  groupMembers,
  newAdminToken,
  pidAlive,
  portEnvName,
  processIdentity,
  stopPid,
  waitReady,
  workloadVersions,
} from '@rollouts/local-mesh';
import { type Io, localPorts, resolveApi, seconds, stageByName } from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';
import { describeScenario, resolveScenario } from '../scenarios.js';
import {
  adminTokenFile,
  LockedError,
  localDir,
  lockLocal,
  type PidFile,
  readLocalState,
  readPidFiles,
  readRecordedStage,
  removeAllLocalState,
  stageFile,
  writeAdminToken,
  writeLocalState,
  writePidFile,
} from '../state.js';

/**
 * Whether a pid file names the process this CLI started, and not a process that reuses its pid or a file someone
 * edited: the pid is above 1, the process runs `node <script>` with the script this CLI computes itself (not the
 * one the file names), it started when the file says, and it leads its own process group.
 */
export function trustedPid(p: PidFile, script: string): boolean {
  if (!Number.isInteger(p.pid) || p.pid <= 1 || p.pid === process.pid) return false;
  const identity = processIdentity(p.pid);
  if (identity === null) return false;
  return (
    identity.argv[1] === script &&
    identity.argv.length === 2 &&
    p.startTime !== undefined &&
    identity.startTime === p.startTime &&
    identity.pgid === p.pid
  );
}

/** The processes left in the group of a dead gateway that run one of this repository's app builds. */
function strayWorkloads(root: string, pgid: number): number[] {
  const builds = new Set(workloadVersions(root).map((v) => appBuild(root, v)));
  return groupMembers(pgid).filter((pid) => {
    const argv = processIdentity(pid)?.argv ?? [];
    return argv.length === 2 && builds.has(argv[1] as string);
  });
}

function tail(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Runs `body` holding the local path's lock; another command holding it is an error (exit 1), nothing touched. */
async function withLock<T>(root: string, command: string, body: () => Promise<T>): Promise<T> {
  let release: () => void;
  try {
    release = lockLocal(root, command);
  } catch (err) {
    if (err instanceof LockedError) {
      throw new CliError(`${err.message}: wait for it to finish, then try again (nothing was changed)`);
    }
    throw err;
  }
  try {
    return await body();
  } finally {
    release();
  }
}

export function localUp(
  root: string,
  io: Io,
  options: { stage?: string; scenario?: string; api?: string },
): Promise<number> {
  return withLock(root, 'local up', () => up(root, io, options));
}

async function up(
  root: string,
  io: Io,
  options: { stage?: string; scenario?: string; api?: string },
): Promise<number> {
  if (options.stage !== undefined) stageByName(root, options.stage);
  const scenario = resolveScenario(options.scenario);
  const api = resolveApi(options.api);
  const previous = readPidFiles(root).find((p) => p.role === 'gateway');
  if (previous && trustedPid(previous, GATEWAY_MAIN)) {
    const state = readLocalState(root);
    throw new CliError(
      `the local path is already running (gateway pid ${previous.pid}, http://localhost:${state?.gatewayPort ?? previous.port}, ` +
        `scenario ${state?.scenario ?? 'none'}): nothing was changed. \`rollout status\` shows it, \`rollout local down\` stops it.`,
    );
  }
  // A local path that died without `local down`: its stage is kept, its stray workloads are stopped.
  const recorded = previous ? readRecordedStage(root) : null;
  if (previous?.startTime !== undefined) {
    for (const pid of strayWorkloads(root, previous.pid)) {
      io.out(
        `stopping workload pid ${pid}, left running by a local path that stopped without \`local down\``,
      );
      await stopPid(pid, { graceMs: 3000 });
    }
  }
  removeAllLocalState(root);
  const stage = stageByName(root, options.stage ?? recorded ?? 'stable').name;
  if (options.stage === undefined && recorded !== null) {
    io.out(`keeping stage ${stage}, the one applied when the local path stopped (--stage picks another)`);
  }

  const versions = workloadVersions(root);
  const ports = localPorts(root);
  if (ports.gateway === 0 || ports.admin === 0)
    throw new UsageError('GATEWAY_PORT and ADMIN_PORT must not be 0 for `rollout local up`');
  for (const v of versions) {
    if (!existsSync(appBuild(root, v)))
      throw new CliError(`the ${v} build is missing (${appBuild(root, v)}): run \`make build\` first`);
  }
  if (!existsSync(GATEWAY_MAIN))
    throw new CliError(`the gateway is not built (${GATEWAY_MAIN}): run \`make build\` first`);
  await assertPortsFree({
    gateway: ports.gateway,
    admin: ports.admin,
    ...Object.fromEntries(versions.map((v) => [v, ports.versions[v] as number])),
  });

  const dir = localDir(root);
  const started = performance.now();
  if (scenario) io.out(`scenario ${describeScenario(scenario)}`);
  if (api === 'gateway-api')
    io.out('API=gateway-api: each stage is its HTTPRoute, istio/stages/gateway-api/<stage>.yaml');
  for (const version of versions) {
    const env = scenario?.env[version];
    const knobs = env
      ? ` with ${Object.entries(env)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : '';
    io.out(
      `starting workload ${version} on 127.0.0.1:${ports.versions[version]}${knobs} (log ${join(dir, `${version}.log`)})`,
    );
  }
  const log = join(dir, 'gateway.log');
  io.out(
    `starting the gateway on http://localhost:${ports.gateway} (admin 127.0.0.1:${ports.admin}, stage ${stage}, log ${log}); it restarts a workload that exits`,
  );
  writeAdminToken(root, newAdminToken());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ROLLOUT_ROOT: root,
    GATEWAY_PORT: String(ports.gateway),
    ADMIN_PORT: String(ports.admin),
    STAGE: stage,
    ADMIN_TOKEN_FILE: adminTokenFile(root),
    STAGE_FILE: stageFile(root),
    LOG_DIR: dir,
    WORKLOAD_ENV: JSON.stringify(scenario?.env ?? {}),
    STAGE_API: api,
  };
  for (const v of versions) env[portEnvName(v)] = String(ports.versions[v]);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [GATEWAY_MAIN], { env, detached: true, stdio: ['ignore', fd, fd] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.unref();
  if (child.pid === undefined) {
    removeAllLocalState(root);
    throw new CliError('could not start the gateway process');
  }
  const info: PidFile = {
    role: 'gateway',
    pid: child.pid,
    port: ports.gateway,
    script: GATEWAY_MAIN,
    startedAt: new Date().toISOString(),
    log,
    ...(processIdentity(child.pid)?.startTime ? { startTime: processIdentity(child.pid)?.startTime } : {}),
  };
  writePidFile(root, info);
  try {
    await waitReady(`http://127.0.0.1:${ports.admin}`, {
      path: '/ready',
      exited,
      timeoutMs: 30_000,
      what: 'the local path (gateway and workloads)',
    });
  } catch (err) {
    await stopPid(child.pid, { graceMs: 3000 });
    for (const pid of groupMembers(child.pid)) await stopPid(pid, { graceMs: 1000 });
    removeAllLocalState(root);
    throw new CliError(`${(err as Error).message}; the end of ${log}:\n${tail(log)}`);
  }
  writeLocalState(root, {
    gatewayPort: ports.gateway,
    adminPort: ports.admin,
    versions: ports.versions,
    startedAt: new Date().toISOString(),
    scenario: scenario?.name ?? null,
    api,
  });
  io.out(
    `local path up in ${seconds(performance.now() - started)}: gateway http://localhost:${ports.gateway}, stage ${stage}. ` +
      'Next: `make canary-10 TARGET=local`, `make status TARGET=local`, `make local-down`.',
  );
  return EXIT_OK;
}

/** A directory as users should read it: relative to the repository when inside it (".state/local/"), else absolute. */
function shownDir(root: string, dir: string): string {
  const rel = relative(root, dir);
  return `${rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir}${sep}`;
}

export function localDown(root: string, io: Io): Promise<number> {
  return withLock(root, 'local down', () => down(root, io));
}

async function down(root: string, io: Io): Promise<number> {
  const pids = readPidFiles(root);
  if (pids.length === 0) {
    io.out(
      `the local path is not running (no pid files in ${shownDir(root, localDir(root))}): nothing to stop`,
    );
    removeAllLocalState(root);
    return EXIT_OK;
  }
  let survivors = 0;
  for (const p of pids) {
    if (p.role !== 'gateway' || !trustedPid(p, GATEWAY_MAIN)) {
      // Never signal a process this CLI cannot prove it started: a stale file's pid may belong to anything now.
      io.out(
        pidAlive(p.pid)
          ? `${p.role}: pid ${p.pid} is not the local path this CLI started: left alone`
          : `${p.role}: pid ${p.pid} already gone`,
      );
    } else {
      // The gateway stops its workloads itself (they drain); only then is the whole group killed if need be.
      const gone = await stopPid(p.pid, { graceMs: 10_000 });
      if (gone) io.out(`stopped the local path (gateway pid ${p.pid} and its workloads)`);
      else {
        survivors++;
        io.err(`the gateway (pid ${p.pid}) is still running after SIGTERM and SIGKILL`);
        continue;
      }
    }
    if (p.startTime !== undefined) {
      for (const pid of strayWorkloads(root, p.pid)) {
        const gone = await stopPid(pid, { graceMs: 3000 });
        io.out(gone ? `stopped stray workload pid ${pid}` : `workload pid ${pid} survived SIGKILL`);
        if (!gone) survivors++;
      }
    }
  }
  if (survivors > 0) return EXIT_FAIL;
  removeAllLocalState(root);
  io.out('the local path is down');
  return EXIT_OK;
}
