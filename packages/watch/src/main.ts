#!/usr/bin/env node
/**
 * `make watch`: starts the watch server on localhost and prints its URL; Ctrl-C stops it.
 *
 *   WATCH_TARGET / TARGET   local, cluster, or auto (unset: the local path when it runs, else the cluster)
 *   GATEWAY_URL             the cluster's gateway (default http://localhost:8080); on the local path the port the
 *                           local gateway reports
 *   ADMIN_PORT              the local gateway's admin API (else .state/local/ports.json, else 15000)
 *   WATCH_PORT              the page's port (default 8090; 0 picks a free one)
 *   WATCH_RATE              requests per second at start (default 20; the page changes it)
 */
import { ConfigError, parsePort } from '@rollouts/local-mesh';
import { findRepoRoot } from '@rollouts/stages';
import { startWatchServer, WatchPortInUseError } from './server.js';
import { resolveTarget, TargetError } from './target.js';

export const DEFAULT_WATCH_PORT = 8090;

function fail(message: string, code = 1): never {
  process.stderr.write(`watch: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const env = process.env;
  let root: string;
  try {
    root = findRepoRoot(env.ROLLOUT_ROOT || process.cwd());
  } catch (err) {
    fail(`${(err as Error).message}: run it inside the repository (or set ROLLOUT_ROOT)`, 2);
  }
  const rawTarget = (env.WATCH_TARGET || env.TARGET || 'auto').trim();
  if (rawTarget !== 'local' && rawTarget !== 'cluster' && rawTarget !== 'auto') {
    fail(`TARGET must be local or cluster, got ${JSON.stringify(rawTarget)}`, 2);
  }
  let port: number;
  let rate: number;
  try {
    port = parsePort('WATCH_PORT', env.WATCH_PORT, DEFAULT_WATCH_PORT);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  rate = 20;
  if (env.WATCH_RATE?.trim()) {
    rate = Number(env.WATCH_RATE);
    if (!Number.isFinite(rate) || rate < 1 || rate > 100) {
      fail(
        `WATCH_RATE=${JSON.stringify(env.WATCH_RATE)} is invalid: expected requests per second from 1 to 100`,
        2,
      );
    }
  }
  let resolved: Awaited<ReturnType<typeof resolveTarget>>;
  try {
    resolved = await resolveTarget(root, rawTarget, env);
  } catch (err) {
    if (err instanceof TargetError || err instanceof ConfigError) fail(err.message);
    throw err;
  }
  let server: Awaited<ReturnType<typeof startWatchServer>>;
  try {
    server = await startWatchServer({
      root,
      target: resolved.target,
      targetReason: resolved.reason,
      gatewayUrl: resolved.gatewayUrl,
      adminUrl: resolved.adminUrl,
      adminToken: resolved.adminToken,
      port,
      rate,
      log: (line) => process.stderr.write(`watch: ${line}\n`),
    });
  } catch (err) {
    if (err instanceof WatchPortInUseError) fail(err.message);
    throw err;
  }
  const out = process.stdout;
  out.write(`\n  Live traffic page: ${server.url}/\n\n`);
  out.write(`  target ${resolved.target} (${resolved.reason})\n`);
  out.write(
    `  gateway ${resolved.gatewayUrl}; ${rate} requests/s while a page watches, none while none does\n`,
  );
  out.write(
    resolved.target === 'local'
      ? '  stage buttons switch the local gateway through its admin API\n'
      : '  stage buttons show the `make <stage>` command to run\n',
  );
  out.write('  Ctrl-C stops it.\n\n');
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`watch: ${signal}: stopping\n`);
    const timer = setTimeout(() => process.exit(0), 5000);
    timer.unref();
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: Error) => fail(err.stack ?? err.message));
