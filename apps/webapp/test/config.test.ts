import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLES } from './support/paths.js';
import { appEnv, spawnNode, stopAll } from './support/process.js';

afterEach(stopAll);

/** Starts the v1 bundle with `env` and fails the test if it is still running after a few seconds. */
async function runExpectingExit(env: Record<string, string>) {
  const app = spawnNode(BUNDLES.v1, [], appEnv(env));
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 5000);
  const exit = await app.exited;
  clearTimeout(timer);
  return { exit, stderr: app.stderr(), logs: app.logs };
}

describe('bad configuration', () => {
  it.each([
    ['PORT', 'abc', 'an integer from 0 to 65535'],
    ['PORT', '70000', 'an integer from 0 to 65535'],
    ['PORT', '-1', 'an integer from 0 to 65535'],
    ['PORT', '80.5', 'an integer from 0 to 65535'],
    ['HOST', 'not a host', 'an IP address or host name'],
    ['FAULT_ERROR_RATE', '2', 'a number from 0 to 1'],
    ['FAULT_ERROR_RATE', '-0.1', 'a number from 0 to 1'],
    ['FAULT_ERROR_RATE', 'half', 'a number from 0 to 1'],
    ['FAULT_DELAY_MS', '-5', 'milliseconds'],
    ['SHUTDOWN_DRAIN_MS', '-1', 'milliseconds'],
    ['SHUTDOWN_TIMEOUT_MS', '0', 'milliseconds from 1'],
    ['SHUTDOWN_TIMEOUT_MS', '99999999999', 'milliseconds'],
    ['LOG_LEVEL', 'loud', 'one of fatal, error, warn, info, debug, trace, silent'],
    ['APP_COLOR', 'red', "green or blue (the deployment's colour"],
  ])('%s=%s: exits 1 with one line naming the variable and what is allowed', async (name, value, allowed) => {
    const { exit, stderr, logs } = await runExpectingExit({ [name]: value });
    expect(exit.code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${name}=${JSON.stringify(value)}`);
    expect(lines[0]).toContain(allowed);
    expect(logs.some((l) => l.msg === 'listening')).toBe(false);
  });

  it('reports every bad variable at once, one line each', async () => {
    const { exit, stderr } = await runExpectingExit({
      PORT: 'abc',
      FAULT_ERROR_RATE: '2',
      LOG_LEVEL: 'loud',
    });
    expect(exit.code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split('=')[0])).toEqual([
      'webapp: PORT',
      'webapp: LOG_LEVEL',
      'webapp: FAULT_ERROR_RATE',
    ]);
  });

  it('refuses a drain as long as the hard timeout', async () => {
    const { exit, stderr } = await runExpectingExit({
      SHUTDOWN_DRAIN_MS: '5000',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    expect(exit.code).toBe(1);
    expect(stderr).toContain('SHUTDOWN_DRAIN_MS');
    expect(stderr).toContain('SHUTDOWN_TIMEOUT_MS');
  });

  it('a port already in use exits 1 with a clear message', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => blocker.once('listening', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const { exit, stderr } = await runExpectingExit({ PORT: String(port) });
      expect(exit.code).toBe(1);
      expect(stderr).toContain(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      blocker.close();
    }
  });
});

describe('good configuration', () => {
  it('empty values take the defaults and valid values are accepted', async () => {
    const app = spawnNode(
      BUNDLES.v1,
      [],
      appEnv({ LOG_LEVEL: '', FAULT_ERROR_RATE: '0.5', FAULT_DELAY_MS: ' 10 ', SHUTDOWN_DRAIN_MS: '0' }),
    );
    const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      app.onLog((l) => l.msg === 'listening' && resolve(l));
      void app.exited.then(() => reject(new Error(app.stderr())));
    });
    // LOG_LEVEL "" fell back to info (the line was written at level 30)
    expect(listening).toMatchObject({ level: 30, faultErrorRate: 0.5, faultDelayMs: 10 });
    app.child.kill('SIGTERM');
    expect((await app.exited).code).toBe(0);
  });
});
