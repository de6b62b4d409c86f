/**
 * The local path in one process: the app builds as child processes (one per version), the gateway and its
 * admin API in this process. `rollout demo` uses it directly; `rollout local up` starts the same pieces as
 * background processes (see gateway-main.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AdminServer, createAdmin } from './admin.js';
import type { LocalPorts } from './config.js';
import { Gateway } from './gateway.js';
import {
  assertPortsFree,
  listenAs,
  startWorkload,
  stopWorkload,
  type WorkloadProcess,
  waitReady,
} from './processes.js';
import { createTableSource, workloadVersions } from './routing.js';

export interface LocalMeshOptions {
  root: string;
  ports: LocalPorts;
  /** Stage applied at start. Default `stable`. */
  stage?: string;
  /**
   * Extra environment per workload version, e.g. the app's fault knobs for a demo scenario:
   * `{v2: {FAULT_ERROR_RATE: '0.05'}}`.
   */
  workloadEnv?: Record<string, Record<string, string>>;
  /** Bound for each workload to answer /readyz, ms. Default 15 000. */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface LocalMesh {
  gateway: Gateway;
  admin: AdminServer;
  workloads: WorkloadProcess[];
  gatewayUrl: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/** apps/webapp/dist/<version>/main.js */
export function appBuild(root: string, version: string): string {
  return join(root, 'apps', 'webapp', 'dist', version, 'main.js');
}

export class MissingBuildError extends Error {
  override name = 'MissingBuildError';
}

export async function startLocalMesh(options: LocalMeshOptions): Promise<LocalMesh> {
  const log = options.log ?? (() => {});
  const { root, ports } = options;
  const versions = workloadVersions(root);
  for (const version of versions) {
    if (ports.versions[version] === undefined) throw new Error(`no port for workload ${version}`);
    if (!existsSync(appBuild(root, version))) {
      throw new MissingBuildError(
        `the ${version} build is missing (${appBuild(root, version)}): run \`make build\` (or pnpm build) first`,
      );
    }
  }
  await assertPortsFree({
    gateway: ports.gateway,
    admin: ports.admin,
    ...Object.fromEntries(versions.map((v) => [v, ports.versions[v] as number])),
  });

  const workloads: WorkloadProcess[] = [];
  let gateway: Gateway | undefined;
  let admin: AdminServer | undefined;
  // Last resort if this process exits without stop() (an uncaught error): no workload may outlive it.
  const killOnExit = () => {
    for (const w of workloads) w.child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await admin?.close();
    await gateway?.close();
    await Promise.all(workloads.map((w) => stopWorkload(w)));
  };
  try {
    const started = performance.now();
    for (const version of versions) {
      const port = ports.versions[version] as number;
      const env = options.workloadEnv?.[version];
      const knobs =
        env && Object.keys(env).length > 0
          ? ` with ${Object.entries(env)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : '';
      log(`starting workload ${version} on 127.0.0.1:${port}${knobs}`);
      workloads.push(
        startWorkload({ version, port, script: appBuild(root, version), ...(env ? { env } : {}) }),
      );
    }
    await Promise.all(
      workloads.map((w) =>
        waitReady(w.url, {
          timeoutMs: options.readyTimeoutMs ?? 15_000,
          exited: w.exited,
          what: `workload ${w.version} (${w.url})`,
        }).catch((err: Error) => {
          const tail = w.stderrTail();
          throw new Error(tail ? `${err.message}; its stderr:\n${tail}` : err.message);
        }),
      ),
    );
    const upstreams = Object.fromEntries(workloads.map((w) => [w.version, w.url]));
    const source = createTableSource(root, upstreams);
    const gw = new Gateway({ table: source.build(options.stage ?? 'stable') });
    gateway = gw;
    const gatewayPort = await listenAs('gateway', ports.gateway, () => gw.listen(ports.gateway));
    const adm = createAdmin(gw, source);
    admin = adm;
    const adminPort = await listenAs('admin', ports.admin, () => adm.listen(ports.admin));
    log(
      `gateway on http://localhost:${gatewayPort} (admin 127.0.0.1:${adminPort}), stage ${gateway.table.stage}; ready in ${((performance.now() - started) / 1000).toFixed(2)} s`,
    );
    return {
      gateway,
      admin,
      workloads,
      gatewayUrl: `http://localhost:${gatewayPort}`,
      adminUrl: `http://127.0.0.1:${adminPort}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The gateway's own entry point, for running it as a background process (`rollout local up`). */
export const GATEWAY_MAIN = fileURLToPath(new URL('./gateway-main.js', import.meta.url));
