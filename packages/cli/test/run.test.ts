/** `rollout run <version>` (make run-v1 / run-v2): one build in the foreground on its local-path port. */
import { describe, expect, it } from 'vitest';
import { rollout, start, testEnv, waitForOutput } from './helpers.js';

/** The version the app on `port` reports, once it accepts connections (polled for up to ~10 s). */
async function versionOnceServing(port: string): Promise<string | undefined> {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/version`);
      return ((await res.json()) as { version: string }).version;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return undefined;
}

describe('rollout run', () => {
  it('runs v2 on V2_PORT, answers as v2, and stops on Ctrl-C', async () => {
    const env = await testEnv({ SHUTDOWN_DRAIN_MS: '0' });
    const run = start(['run', 'v2'], env);
    await waitForOutput(run.child, `v2 on http://localhost:${env.V2_PORT} (V2_PORT)`);
    expect(await versionOnceServing(env.V2_PORT as string)).toBe('v2');
    run.child.kill('SIGINT');
    const done = await run.done;
    expect(done.code).toBe(0);
  });

  it('PORT wins over V1_PORT', async () => {
    const env = await testEnv({ SHUTDOWN_DRAIN_MS: '0' });
    const run = start(['run', 'v1'], { ...env, PORT: env.ADMIN_PORT });
    await waitForOutput(run.child, `v1 on http://localhost:${env.ADMIN_PORT} (PORT)`);
    expect(await versionOnceServing(env.ADMIN_PORT as string)).toBe('v1');
    run.child.kill('SIGTERM');
    expect((await run.done).code).toBe(0);
  });

  it('an unknown version or a bad port is bad input (exit 2), nothing started', async () => {
    const env = await testEnv();
    const unknown = await rollout(['run', 'v9'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown version "v9"; the chart\'s versions: v1, v2');
    const bad = await rollout(['run', 'v1'], { ...env, V1_PORT: 'http' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('V1_PORT="http" is not a port');
  });
});
