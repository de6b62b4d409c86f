/** Runs the built CLI (dist/main.js) as users and the Makefile do. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '@rollouts/local-mesh';

export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a test: its own state directory and free ports, TARGET=local (the tests drive the local path;
 * a cluster test passes --target cluster), and no GATEWAY_URL, KUBE_CONTEXT or CLUSTER_NAME from outside.
 */
export async function testEnv(extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    'TARGET',
    'GATEWAY_URL',
    'GATEWAY_PORT',
    'ADMIN_PORT',
    'V1_PORT',
    'V2_PORT',
    'KUBE_CONTEXT',
    'CLUSTER_NAME',
    'ROLLOUT_FAMILY_ALPHA',
    'ROLLOUT_DELTA',
    'ROLLOUT_POWER',
  ])
    delete env[k];
  return {
    ...env,
    ROLLOUT_STATE_DIR: mkdtempSync(join(tmpdir(), 'rollout-test-')),
    ...Object.fromEntries(
      await Promise.all(PORT_VARIABLES.map(async (k) => [k, String(await findFreePort())])),
    ),
    NO_COLOR: '1',
    TARGET: 'local',
    ...extra,
  };
}

export function start(
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; done: Promise<Run>; output(): string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout };
}

export function rollout(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return start(args, env).done;
}

const PORT_VARIABLES = ['GATEWAY_PORT', 'ADMIN_PORT', 'V1_PORT', 'V2_PORT'] as const;

/**
 * Runs a command that starts the local path (`local up`, `demo`) on the test's ports; when another process on a
 * busy machine took one of them between the choice and the bind ("is already in use"), the test gets new ports
 * (written into `env`, so later commands use them) and the command runs again, up to 4 times.
 */
export async function rolloutOnFreePorts(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  for (let attempt = 1; ; attempt++) {
    const run = await rollout(args, env);
    if (run.code === 0 || attempt === 4 || !run.stderr.includes('is already in use')) return run;
    for (const k of PORT_VARIABLES) env[k] = String(await findFreePort());
  }
}

/** Resolves when the child's stdout contains `text`. */
export function waitForOutput(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer | string) => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('close', () => reject(new Error(`exited before printing ${JSON.stringify(text)}:\n${seen}`)));
  });
}
