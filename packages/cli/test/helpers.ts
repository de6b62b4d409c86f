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

/** The environment of a test: its own state directory and free ports; no TARGET or GATEWAY_URL from outside. */
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
    GATEWAY_PORT: String(await findFreePort()),
    ADMIN_PORT: String(await findFreePort()),
    V1_PORT: String(await findFreePort()),
    V2_PORT: String(await findFreePort()),
    NO_COLOR: '1',
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
