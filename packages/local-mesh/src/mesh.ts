/**
 * The local path in one process: the app builds as child processes (one per version), the gateway and its
 * admin API in this process. `rollout demo` uses it directly; `rollout local up` starts the same pieces as
 * background processes (see gateway-main.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWorkloads, type StageApi } from '@rollouts/stages';
import { type AdminServer, createAdmin } from './admin.js';
import type { LocalPorts } from './config.js';
import { Gateway, type Upstream } from './gateway.js';
import { assertPortsFree, listenAs } from './processes.js';
import { createTableSource } from './routing.js';
import { SupervisedWorkload, type SupervisedWorkloadOptions, workloadsHealth } from './supervisor.js';

/** The tokens of the admin APIs this process started or was told about, by admin URL. */
const adminTokens = new Map<string, string>();

/** Records the token of the admin API at `url` (what `rollout local up` wrote to .state/local/admin-token). */
export function registerAdminToken(url: string, token: string): void {
  adminTokens.set(url, token);
}

/** The token registered for the admin API at `url`: what a stage switch there must carry, when known. */
export function registeredAdminToken(url: string): string | undefined {
  return adminTokens.get(url);
}

export interface LocalMeshOptions {
  root: string;
  ports: LocalPorts;
  /** Stage applied at start. Default `stable`. */
  stage?: string;
  /** Which file carries each stage: its VirtualService (default) or its Gateway API HTTPRoute. */
  api?: StageApi;
  /**
   * Extra environment per workload version, e.g. the app's fault knobs for a demo scenario:
   * `{v2: {FAULT_ERROR_RATE: '0.05'}}`.
   */
  workloadEnv?: Record<string, Record<string, string>>;
  /** Bound for each workload to answer /readyz, ms. Default 15 000. */
  readyTimeoutMs?: number;
  /** The workloads' readiness probe and restart back-off (supervisor.ts; defaults LOCAL_PROBE, LOCAL_BACKOFF). */
  probe?: SupervisedWorkloadOptions['probe'];
  backoff?: SupervisedWorkloadOptions['backoff'];
  /** Where each workload's output goes (`version` -> file); default: kept in memory for error messages. */
  logFiles?: Record<string, string>;
  /** The admin API's token (default: a fresh one). */
  adminToken?: string;
  /** Called after each stage switch through the admin API. */
  onApplied?: (stage: string) => void;
  log?: (line: string) => void;
}

export interface LocalMesh {
  gateway: Gateway;
  admin: AdminServer;
  /** The workloads, kept running and in or out of rotation by their readiness (supervisor.ts). */
  workloads: SupervisedWorkload[];
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
  const chartWorkloads = loadWorkloads(root);
  const versions = chartWorkloads.map((w) => w.version);
  const colors = new Map(chartWorkloads.map((w) => [w.version, w.labels.color]));
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

  const workloads: SupervisedWorkload[] = [];
  let gateway: Gateway | undefined;
  let admin: AdminServer | undefined;
  // Last resort if this process exits without stop() (an uncaught error): no workload may outlive it.
  const killOnExit = () => {
    for (const w of workloads) {
      if (w.pid !== null) {
        try {
          process.kill(w.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  };
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await admin?.close();
    await gateway?.close();
    await Promise.all(workloads.map((w) => w.stop()));
  };
  try {
    const started = performance.now();
    for (const version of versions) {
      const port = ports.versions[version] as number;
      // The colour the chart gives its pods (APP_COLOR paints the page), then the scenario's knobs.
      const color = colors.get(version);
      const extra = options.workloadEnv?.[version];
      const env = color || extra ? { ...(color ? { APP_COLOR: color } : {}), ...extra } : undefined;
      const knobs =
        env && Object.keys(env).length > 0
          ? ` with ${Object.entries(env)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`
          : '';
      const logFile = options.logFiles?.[version];
      log(`starting workload ${version} on 127.0.0.1:${port}${knobs}${logFile ? ` (log ${logFile})` : ''}`);
      workloads.push(
        new SupervisedWorkload({
          version,
          port,
          script: appBuild(root, version),
          log,
          ...(env ? { env } : {}),
          ...(logFile ? { logFile } : {}),
          ...(options.probe ? { probe: options.probe } : {}),
          ...(options.backoff ? { backoff: options.backoff } : {}),
        }),
      );
    }
    await Promise.all(workloads.map((w) => w.firstReady(options.readyTimeoutMs ?? 15_000)));
    const upstreams = Object.fromEntries(workloads.map((w) => [w.version, w.url]));
    const byOrigin = new Map(workloads.map((w) => [w.url, w]));
    const api = options.api ?? 'virtualservice';
    const source = createTableSource(root, upstreams, { api });
    const gw = new Gateway({
      table: source.build(options.stage ?? 'stable'),
      ready: (u: Upstream) => byOrigin.get(u.origin)?.ready ?? true,
    });
    gateway = gw;
    const gatewayPort = await listenAs('gateway', ports.gateway, () => gw.listen(ports.gateway));
    const adm = createAdmin(gw, source, {
      log,
      ...(options.adminToken ? { token: options.adminToken } : {}),
      onApplied: (table) => options.onApplied?.(table.stage),
      workloads: () => workloadsHealth(workloads),
      api,
    });
    admin = adm;
    const adminPort = await listenAs('admin', ports.admin, () => adm.listen(ports.admin));
    registerAdminToken(`http://127.0.0.1:${adminPort}`, adm.token);
    log(
      `gateway on http://localhost:${gatewayPort} (admin 127.0.0.1:${adminPort}), stage ${gateway.table.stage}${api === 'gateway-api' ? ' (Gateway API HTTPRoutes)' : ''}; ready in ${((performance.now() - started) / 1000).toFixed(2)} s`,
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
