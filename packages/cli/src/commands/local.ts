/**
 * `rollout local up|down`: v1, v2 and the gateway as background processes, with pid files in .state/local/.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import {
  appBuild,
  assertPortsFree,
  ConfigError,
  GATEWAY_MAIN,
  pidAlive,
  portEnvName,
  portsFromEnv,
  startWorkload,
  stopPid,
  waitReady,
  workloadVersions,
} from '@rollouts/local-mesh';
import { type Io, seconds, stageByName } from '../context.js';
import { CliError, EXIT_FAIL, EXIT_OK, UsageError } from '../errors.js';
import { describeScenario, resolveScenario } from '../scenarios.js';
import {
  localDir,
  type PidFile,
  readLocalState,
  readPidFiles,
  removeLocalState,
  removePidFile,
  writeLocalState,
  writePidFile,
} from '../state.js';

/** Whether `pid` still runs `script` (a pid file may outlive its process and the pid be reused). */
export function pidRunsScript(pid: number, script: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(script);
  } catch {
    const r = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return r.status === 0 && r.stdout.includes(script);
  }
}

function tail(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function localUp(
  root: string,
  io: Io,
  options: { stage?: string; scenario?: string },
): Promise<number> {
  const stage = stageByName(root, options.stage ?? 'stable').name;
  const scenario = resolveScenario(options.scenario);
  const running = readPidFiles(root).filter((p) => pidRunsScript(p.pid, p.script));
  if (running.length > 0) {
    const state = readLocalState(root);
    const roles = running.map((p) => `${p.role} pid ${p.pid}`).join(', ');
    if (running.some((p) => p.role === 'gateway') && running.length >= 3) {
      const has = state?.scenario ?? null;
      if (has !== (scenario?.name ?? null)) {
        throw new UsageError(
          `the local path is already up with scenario ${has ?? 'none'}, not ${scenario?.name ?? 'none'}: \`rollout local down\` first`,
        );
      }
      io.out(
        `the local path is already up (${roles}; gateway http://localhost:${state?.gatewayPort}, admin 127.0.0.1:${state?.adminPort}): nothing to do. \`rollout local down\` stops it.`,
      );
      return EXIT_OK;
    }
    io.out(`a partial local path is running (${roles}): stopping it first`);
    await localDown(root, io);
  }
  for (const p of readPidFiles(root)) removePidFile(root, p.role); // stale

  const versions = workloadVersions(root);
  let ports: ReturnType<typeof portsFromEnv>;
  try {
    ports = portsFromEnv(process.env, versions);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
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
  if (ports.gateway === 0 || ports.admin === 0)
    throw new UsageError('GATEWAY_PORT and ADMIN_PORT must not be 0 for `rollout local up`');

  const dir = localDir(root);
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const startedPids: PidFile[] = [];
  const cleanup = async () => {
    for (const p of startedPids.reverse()) {
      await stopPid(p.pid, { group: true, graceMs: 3000 });
      removePidFile(root, p.role);
    }
    removeLocalState(root);
  };
  try {
    if (scenario) io.out(`scenario ${describeScenario(scenario)}`);
    const waits: Promise<void>[] = [];
    for (const version of versions) {
      const port = ports.versions[version] as number;
      const log = join(dir, `${version}.log`);
      const env = scenario?.env[version];
      const knobs = env
        ? ` with ${Object.entries(env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : '';
      io.out(`starting workload ${version} on 127.0.0.1:${port}${knobs} (log ${log})`);
      const w = startWorkload({
        version,
        port,
        script: appBuild(root, version),
        detached: true,
        logFile: log,
        ...(env ? { env } : {}),
      });
      const info: PidFile = {
        role: version,
        pid: w.pid,
        port,
        script: appBuild(root, version),
        startedAt: new Date().toISOString(),
        log,
      };
      writePidFile(root, info);
      startedPids.push(info);
      waits.push(
        waitReady(w.url, {
          exited: w.exited,
          timeoutMs: 15_000,
          what: `workload ${version} (${w.url})`,
        }).catch((err: Error) => {
          throw new CliError(`${err.message}; the end of ${log}:\n${tail(log)}`);
        }),
      );
    }
    await Promise.all(waits);

    const log = join(dir, 'gateway.log');
    io.out(
      `starting the gateway on http://localhost:${ports.gateway} (admin 127.0.0.1:${ports.admin}, stage ${stage}, log ${log})`,
    );
    const fd = openSync(log, 'a');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ROLLOUT_ROOT: root,
      GATEWAY_PORT: String(ports.gateway),
      ADMIN_PORT: String(ports.admin),
      STAGE: stage,
    };
    for (const v of versions) env[portEnvName(v)] = String(ports.versions[v]);
    const child = spawn(process.execPath, [GATEWAY_MAIN], { env, detached: true, stdio: ['ignore', fd, fd] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.unref();
    if (child.pid === undefined) throw new CliError('could not start the gateway process');
    const info: PidFile = {
      role: 'gateway',
      pid: child.pid,
      port: ports.gateway,
      script: GATEWAY_MAIN,
      startedAt: new Date().toISOString(),
      log,
    };
    writePidFile(root, info);
    startedPids.push(info);
    await waitReady(`http://127.0.0.1:${ports.admin}`, {
      path: '/ready',
      exited,
      timeoutMs: 10_000,
      what: 'the gateway',
    }).catch((err: Error) => {
      throw new CliError(`${err.message}; the end of ${log}:\n${tail(log)}`);
    });
    writeLocalState(root, {
      gatewayPort: ports.gateway,
      adminPort: ports.admin,
      versions: ports.versions,
      startedAt: new Date().toISOString(),
      scenario: scenario?.name ?? null,
    });
    io.out(
      `local path up in ${seconds(performance.now() - started)}: gateway http://localhost:${ports.gateway}, stage ${stage}. ` +
        'Next: `make canary-10 TARGET=local`, `rollout status`, `rollout local down`.',
    );
    return EXIT_OK;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A directory as users should read it: relative to the repository when inside it (".state/local/"), else absolute. */
function shownDir(root: string, dir: string): string {
  const rel = relative(root, dir);
  return `${rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir}${sep}`;
}

export async function localDown(root: string, io: Io): Promise<number> {
  const pids = readPidFiles(root).sort((a, b) => (a.role === 'gateway' ? -1 : b.role === 'gateway' ? 1 : 0));
  if (pids.length === 0) {
    io.out(
      `the local path is not running (no pid files in ${shownDir(root, localDir(root))}): nothing to stop`,
    );
    removeLocalState(root);
    return EXIT_OK;
  }
  let survivors = 0;
  for (const p of pids) {
    if (!pidAlive(p.pid)) {
      io.out(`${p.role}: pid ${p.pid} already gone`);
    } else if (!pidRunsScript(p.pid, p.script)) {
      io.out(`${p.role}: pid ${p.pid} now runs something else: left alone`);
    } else {
      const gone = await stopPid(p.pid, { group: true, graceMs: 5000 });
      if (gone) io.out(`stopped ${p.role} (pid ${p.pid})`);
      else {
        survivors++;
        io.err(`${p.role} (pid ${p.pid}) is still running after SIGTERM and SIGKILL`);
        continue;
      }
    }
    removePidFile(root, p.role);
  }
  if (survivors > 0) return EXIT_FAIL;
  removeLocalState(root);
  io.out('the local path is down');
  return EXIT_OK;
}
