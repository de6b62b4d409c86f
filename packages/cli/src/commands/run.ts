/**
 * `rollout run <version>` (`make run-v1`, `make run-v2`): one app build in the foreground, on the port the local
 * path gives that version (vN on V<N>_PORT, default 3000 + N: v1 3001, v2 3002, ...), so several can run at once;
 * PORT overrides it. The version must be one of the chart's (workloadVersions).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  appBuild,
  ConfigError,
  parsePort,
  portEnvName,
  portsFromEnv,
  workloadVersions,
} from '@rollouts/local-mesh';
import type { Io } from '../context.js';
import { CliError, UsageError } from '../errors.js';

export async function runCommand(root: string, io: Io, version: string): Promise<number> {
  const versions = workloadVersions(root);
  if (!versions.includes(version)) {
    throw new UsageError(
      `unknown version ${JSON.stringify(version)}; the chart's versions: ${versions.join(', ')}`,
    );
  }
  let port: number;
  try {
    port = process.env.PORT?.trim()
      ? parsePort('PORT', process.env.PORT, 0)
      : (portsFromEnv(process.env, [version]).versions[version] as number);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const script = appBuild(root, version);
  if (!existsSync(script))
    throw new CliError(`the ${version} build is missing (${script}): run \`make build\` first`);
  const source = process.env.PORT?.trim() ? 'PORT' : portEnvName(version);
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: String(port) },
    stdio: 'inherit',
  });
  // The app drains and exits on SIGINT / SIGTERM itself; pass them on and wait for it.
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  io.out(`${version} on http://localhost:${port} (${source}); Ctrl-C stops it`);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 143)));
    });
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
