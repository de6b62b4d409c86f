#!/usr/bin/env node
/**
 * The local path as a process of its own (what `rollout local up` starts in the background): the gateway, its
 * admin API, and the workloads as its children, kept running and in rotation as kubelet and Istio would
 * (supervisor.ts). It leads its own process group, so the workloads go with it.
 *
 * Environment: ROLLOUT_ROOT (repository root; found from the working directory when unset), GATEWAY_PORT,
 * ADMIN_PORT, V<N>_PORT for each of the chart's versions (default 3000 + N, config.ts), STAGE (applied at start,
 * default stable), and optionally
 *   ADMIN_TOKEN_FILE  a file (mode 0600) holding the token stage switches must carry (default: a fresh token)
 *   STAGE_FILE        where each applied stage is recorded as JSON, so a restarted local path keeps it
 *   LOG_DIR           each workload's output goes to <LOG_DIR>/<version>.log
 *   WORKLOAD_ENV      JSON {version: {NAME: value}}: extra environment per workload (a demo scenario's knobs)
 *   STAGE_API         virtualservice (default) or gateway-api: which file carries each stage
 * Stops on SIGTERM / SIGINT: new connections are refused, requests in flight finish, the workloads drain.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STAGE_APIS, type StageApi } from '@rollouts/stages';
import { ConfigError, portsFromEnv } from './config.js';
import { startLocalMesh } from './mesh.js';
import { PortInUseError } from './processes.js';
import { repoRoot, workloadVersions } from './routing.js';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} local-gateway: ${line}\n`);

function workloadEnv(raw: string | undefined): Record<string, Record<string, string>> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(`WORKLOAD_ENV must be JSON like {"v2": {"FAULT_ERROR_RATE": "0.05"}}, got ${raw}`);
  }
  const ok =
    typeof parsed === 'object' &&
    parsed !== null &&
    Object.values(parsed).every(
      (env) =>
        typeof env === 'object' && env !== null && Object.values(env).every((v) => typeof v === 'string'),
    );
  if (!ok) throw new ConfigError(`WORKLOAD_ENV must map versions to {NAME: "value"} objects, got ${raw}`);
  return parsed as Record<string, Record<string, string>>;
}

function stageApi(raw: string | undefined): StageApi {
  if (!raw) return 'virtualservice';
  if (!(STAGE_APIS as readonly string[]).includes(raw))
    throw new ConfigError(`STAGE_API must be one of ${STAGE_APIS.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as StageApi;
}

async function main(): Promise<void> {
  const root = process.env.ROLLOUT_ROOT || repoRoot(process.cwd());
  const versions = workloadVersions(root);
  const ports = portsFromEnv(process.env, versions);
  const tokenFile = process.env.ADMIN_TOKEN_FILE;
  const stageFile = process.env.STAGE_FILE;
  const logDir = process.env.LOG_DIR;
  const record = (stage: string) => {
    if (stageFile)
      writeFileSync(stageFile, `${JSON.stringify({ stage, appliedAt: new Date().toISOString() })}\n`);
  };
  const mesh = await startLocalMesh({
    root,
    ports,
    stage: process.env.STAGE || 'stable',
    api: stageApi(process.env.STAGE_API),
    workloadEnv: workloadEnv(process.env.WORKLOAD_ENV),
    log,
    ...(tokenFile ? { adminToken: readFileSync(tokenFile, 'utf8').trim() } : {}),
    ...(logDir ? { logFiles: Object.fromEntries(versions.map((v) => [v, join(logDir, `${v}.log`)])) } : {}),
    onApplied: record,
  });
  record(mesh.gateway.table.stage);
  log(
    `pid ${process.pid}: gateway ${mesh.gatewayUrl}, admin ${mesh.adminUrl}, stage ${mesh.gateway.table.stage}`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal}: stopping`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    mesh.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: Error) => {
  const message =
    err instanceof ConfigError || err instanceof PortInUseError ? err.message : (err.stack ?? err.message);
  process.stderr.write(`local-gateway: ${message}\n`);
  process.exit(1);
});
