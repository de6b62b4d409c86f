/**
 * The local path against an unlucky user and a hostile local page: two `local up` at once, pid files that lie,
 * a killed gateway, a frozen or killed workload, the admin token.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_MAIN, isPortFree, pidAlive, processIdentity } from '@rollouts/local-mesh';
import { afterAll, describe, expect, it } from 'vitest';
import { trustedPid } from '../src/commands/local.js';
import { rollout, rolloutOnFreePorts, start, testEnv } from './helpers.js';

const localDir = (env: NodeJS.ProcessEnv) => join(env.ROLLOUT_STATE_DIR as string, 'local');
const portsOf = (env: NodeJS.ProcessEnv) =>
  ['GATEWAY_PORT', 'ADMIN_PORT', 'V1_PORT', 'V2_PORT'].map((k) => Number(env[k]));

interface Health {
  version: string;
  pid: number | null;
  ready: boolean;
  restarts: number;
  state: string;
}

async function workloads(env: NodeJS.ProcessEnv): Promise<Health[]> {
  const run = await rollout(['status', '--json'], env);
  return (JSON.parse(run.stdout).workloads ?? []) as Health[];
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process leading its own group, running `node <script>` (a stand-in for any unrelated program). */
function bystander(): { pid: number; script: string; stop(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'bystander-'));
  const script = join(dir, 'idle.mjs');
  writeFileSync(script, 'setInterval(() => {}, 1000);\n');
  const child = spawn(process.execPath, [script], { detached: true, stdio: 'ignore' });
  child.unref();
  return {
    pid: child.pid as number,
    script,
    stop: () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

describe('pid files are trusted only for the process this CLI started', () => {
  it('checks the script the CLI computes, the start time, the group and pid > 1', async () => {
    const b = bystander();
    try {
      await until('the bystander to run its script', async () =>
        processIdentity(b.pid)?.argv[1] === b.script ? true : null,
      );
      const identity = processIdentity(b.pid);
      const file = { role: 'gateway', pid: b.pid, port: 1, script: b.script, startedAt: '', log: '' };
      expect(trustedPid({ ...file, startTime: identity?.startTime as string }, b.script)).toBe(true);
      // the script the file names is not trusted: the CLI's own path is
      expect(trustedPid({ ...file, startTime: identity?.startTime as string }, GATEWAY_MAIN)).toBe(false);
      // a reused pid has another start time
      expect(trustedPid({ ...file, startTime: `${identity?.startTime}1` }, b.script)).toBe(false);
      expect(trustedPid(file, b.script)).toBe(false); // no start time recorded
      expect(trustedPid({ ...file, pid: 1, startTime: '1' }, b.script)).toBe(false);
      // the test runner itself does not lead a group of its own here, or runs another script
      const me = processIdentity(process.pid);
      expect(trustedPid({ ...file, pid: process.pid, startTime: me?.startTime as string }, b.script)).toBe(
        false,
      );
    } finally {
      b.stop();
    }
  });

  it('`local down` leaves alone the process a crafted or stale pid file names, and pid 1', async () => {
    const env = await testEnv();
    const b = bystander();
    try {
      await until('the bystander', async () => (processIdentity(b.pid) ? true : null));
      const dir = localDir(env);
      await import('node:fs').then((fs) => fs.mkdirSync(dir, { recursive: true }));
      const crafted = {
        role: 'gateway',
        pid: b.pid,
        port: 1,
        script: b.script, // what the process runs: the CLI does not take the file's word for it
        startTime: processIdentity(b.pid)?.startTime,
        startedAt: new Date().toISOString(),
        log: '',
      };
      writeFileSync(join(dir, 'gateway.pid.json'), JSON.stringify(crafted));
      writeFileSync(join(dir, 'v1.pid.json'), JSON.stringify({ ...crafted, role: 'v1', pid: 1 }));
      const down = await rollout(['local', 'down'], env);
      expect(down.code).toBe(0);
      expect(down.stdout).toContain(
        `gateway: pid ${b.pid} is not the local path this CLI started: left alone`,
      );
      expect(pidAlive(b.pid)).toBe(true);
      expect(existsSync(join(dir, 'gateway.pid.json'))).toBe(false);
    } finally {
      b.stop();
    }
  });
});

describe('rollout local up, twice at once', () => {
  const env = testEnv();
  afterAll(async () => {
    await rollout(['local', 'down'], await env);
  });

  it('one starts the local path, the other says it is running or starting and touches nothing', async () => {
    const e = await env;
    const runs = await Promise.all([start(['local', 'up'], e).done, start(['local', 'up'], e).done]);
    const ok = runs.filter((r) => r.code === 0);
    const refused = runs.filter((r) => r.code !== 0);
    if (ok.length === 0 && runs.every((r) => r.stderr.includes('is already in use'))) return; // ports taken
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.code).toBe(1);
    expect(refused[0]?.stderr).toMatch(/already running|is starting or stopping the local path/);
    // the one that runs is whole: its gateway answers, its two workloads are ready, nothing else holds the ports
    const health = await workloads(e);
    expect(health.map((w) => [w.version, w.ready])).toEqual([
      ['v1', true],
      ['v2', true],
    ]);
    const gateway = JSON.parse(readFileSync(join(localDir(e), 'gateway.pid.json'), 'utf8')).pid as number;
    for (const w of health) expect(processIdentity(w.pid as number)?.pgid).toBe(gateway);

    const down = await rollout(['local', 'down'], e);
    expect(down.code).toBe(0);
    for (const w of health) expect(pidAlive(w.pid as number)).toBe(false);
    expect((await Promise.all(portsOf(e).map((p) => isPortFree(p)))).every(Boolean)).toBe(true);
  });
});

describe('the local path keeps its workloads running, as kubelet would', () => {
  const env = testEnv();
  afterAll(async () => {
    await rollout(['local', 'down'], await env);
  });

  it('writes the admin token with mode 0600; a stage switch without it is refused', async () => {
    const e = await env;
    const up = await rolloutOnFreePorts(['local', 'up'], e);
    expect(up.code, up.stderr).toBe(0);
    const token = join(localDir(e), 'admin-token');
    expect(statSync(token).mode & 0o777).toBe(0o600);
    expect(statSync(localDir(e)).mode & 0o077).toBe(0);
    const bare = await fetch(`http://127.0.0.1:${e.ADMIN_PORT}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ stage: 'canary-100' }),
    });
    expect(bare.status).toBe(401);
    const apply = await rollout(['apply', 'canary-50', '--no-verify'], e);
    expect(apply.code, apply.stderr).toBe(0);
  });

  it('a frozen workload leaves rotation: `rollout status` names it and exits 1; it is back once it answers', async () => {
    const e = await env;
    const v2 = (await workloads(e)).find((w) => w.version === 'v2') as Health;
    process.kill(v2.pid as number, 'SIGSTOP');
    try {
      const run = await until('status to report v2 down', async () => {
        const r = await rollout(['status'], e);
        return r.code === 1 ? r : null;
      });
      expect(run.stdout).toContain('workload v2: DOWN (failing its readiness probe)');
      expect(run.stderr).toContain('v2 not ready: the share the stage sends there fails with 503');
      const answer = await until('a 503 from the gateway', async () => {
        const res = await fetch(`http://127.0.0.1:${e.GATEWAY_PORT}/`, { headers: { 'x-canary': 'always' } });
        const text = await res.text();
        return res.status === 503 ? text : null;
      });
      expect(answer).toBe('no healthy upstream');
    } finally {
      process.kill(v2.pid as number, 'SIGCONT');
    }
    await until('v2 ready again', async () => ((await rollout(['status'], e)).code === 0 ? true : null));
    expect((await workloads(e)).find((w) => w.version === 'v2')?.restarts).toBe(0);
  });

  it('a killed workload is started again and gets traffic once ready', async () => {
    const e = await env;
    const before = (await workloads(e)).find((w) => w.version === 'v2') as Health;
    process.kill(before.pid as number, 'SIGKILL');
    const after = await until('v2 to be back', async () => {
      const v2 = (await workloads(e)).find((w) => w.version === 'v2');
      return v2?.ready && v2.pid !== before.pid ? v2 : null;
    });
    expect(after.restarts).toBe(1);
    const res = await fetch(`http://127.0.0.1:${e.GATEWAY_PORT}/`, { headers: { 'x-canary': 'always' } });
    expect(res.headers.get('x-app-version')).toBe('v2');
    await res.arrayBuffer();
  });

  it('a killed gateway: the next `local up` stops its stray workloads and keeps the stage that was applied', async () => {
    const e = await env;
    const gateway = JSON.parse(readFileSync(join(localDir(e), 'gateway.pid.json'), 'utf8')).pid as number;
    const strays = (await workloads(e)).map((w) => w.pid as number);
    process.kill(gateway, 'SIGKILL');
    await until('the gateway to be gone', async () => (pidAlive(gateway) ? null : true));
    const up = await rolloutOnFreePorts(['local', 'up'], e);
    expect(up.code, up.stderr).toBe(0);
    for (const pid of strays) {
      expect(up.stdout).toContain(`stopping workload pid ${pid}, left running by a local path`);
      expect(pidAlive(pid)).toBe(false);
    }
    expect(up.stdout).toContain('keeping stage canary-50');
    expect((await rollout(['status'], e)).stdout).toMatch(/^local: stage canary-50/);
    const down = await rollout(['local', 'down'], e);
    expect(down.code).toBe(0);
    expect((await rollout(['local', 'up', '--stage', 'stable'], e)).code).toBe(0);
    expect((await rollout(['status'], e)).stdout).toMatch(/^local: stage stable/);
  });
});
