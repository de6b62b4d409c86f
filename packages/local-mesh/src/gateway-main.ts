#!/usr/bin/env node
/**
 * The local gateway as a process of its own (what `rollout local up` starts in the background).
 * Environment: ROLLOUT_ROOT (repository root; found from the working directory when unset), GATEWAY_PORT,
 * ADMIN_PORT, V1_PORT, V2_PORT (the workloads, already running), STAGE (applied at start, default stable).
 * Stops on SIGTERM / SIGINT: new connections are refused, requests in flight finish.
 */
import { createAdmin } from './admin.js';
import { ConfigError, portsFromEnv } from './config.js';
import { Gateway } from './gateway.js';
import { listenAs, PortInUseError } from './processes.js';
import { createTableSource, repoRoot, workloadVersions } from './routing.js';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} local-gateway: ${line}\n`);

async function main(): Promise<void> {
  const root = process.env.ROLLOUT_ROOT || repoRoot(process.cwd());
  const versions = workloadVersions(root);
  const ports = portsFromEnv(process.env, versions);
  const upstreams = Object.fromEntries(versions.map((v) => [v, `http://127.0.0.1:${ports.versions[v]}`]));
  const source = createTableSource(root, upstreams);
  const gateway = new Gateway({ table: source.build(process.env.STAGE || 'stable') });
  const gatewayPort = await listenAs('gateway', ports.gateway, () => gateway.listen(ports.gateway));
  const admin = createAdmin(gateway, source, log);
  const adminPort = await listenAs('admin', ports.admin, () => admin.listen(ports.admin));
  log(
    `listening on http://localhost:${gatewayPort}, admin 127.0.0.1:${adminPort}, stage ${gateway.table.stage}, upstreams ${JSON.stringify(upstreams)}`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal}: stopping`);
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    Promise.all([admin.close(), gateway.close()]).then(() => process.exit(0));
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
