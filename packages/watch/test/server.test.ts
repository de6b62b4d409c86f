/**
 * The watch server over HTTP: what it serves (only its own files and split-check's ESM), what it refuses, the
 * traffic it sends (only while a page listens, at the rate set, bounded in flight), how it reads answers, the
 * override headers, and stage switches through the local path's admin API (and not on the cluster).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort, verificationPlan } from '@rollouts/local-mesh';
import { readThresholds } from '@rollouts/split-check';
import { listStages } from '@rollouts/stages';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  colorOf,
  contentSecurityPolicy,
  resolveTarget,
  type SwitchResult,
  startWatchServer,
  TargetError,
  type WatchConfig,
  type WatchServer,
} from '../src/index.js';
import {
  type FakePath,
  getWithHost,
  postJson,
  REPO_ROOT,
  SseReader,
  startFakePath,
  waitFor,
} from './support.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let path: FakePath;
let watch: WatchServer;
const readers: SseReader[] = [];

function reader(): SseReader {
  const r = new SseReader(`${watch.url}/api/events`);
  readers.push(r);
  return r;
}

async function answers(
  r: SseReader,
  min: number,
  pred: (a: Answer) => boolean = () => true,
): Promise<Answer[]> {
  const out: Answer[] = [];
  while (out.length < min) {
    const e = await r.next('answers');
    out.push(...(e.data as Answer[]).filter(pred));
  }
  return out;
}

beforeAll(async () => {
  path = await startFakePath('stable');
  watch = await startWatchServer({
    root: REPO_ROOT,
    target: 'local',
    targetReason: 'test',
    gatewayUrl: path.gatewayUrl,
    adminUrl: path.adminUrl,
    adminToken: path.admin.token,
    rate: 50,
  });
});

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await waitFor(() => watch.status().subscribers === 0, 10_000, 'the pages to leave');
  await postJson(`${watch.url}/api/settings`, { rate: 50, overrides: [] });
  await fetch(`${path.adminUrl}/stage`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${path.admin.token}` },
    body: JSON.stringify({ stage: 'stable' }),
  });
  path.apps.v1.errorRate = 0;
  path.apps.v2.errorRate = 0;
  path.apps.v2.delayMs = 0;
});

afterAll(async () => {
  await watch?.close();
  await path?.close();
});

describe('what it serves', () => {
  it('the page, with a policy that allows its own files and the import map only', async () => {
    const res = await fetch(`${watch.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/page/app.js">');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toBe(contentSecurityPolicy(html));
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("connect-src 'self'");
    // nothing from another host: no absolute URL in the page
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('every module the page imports, transitively, from this server (split-check by the import map)', async () => {
    const html = await (await fetch(`${watch.url}/`)).text();
    const importMap = JSON.parse(/<script type="importmap">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}') as {
      imports: Record<string, string>;
    };
    const seen = new Set<string>();
    const queue = ['/page/app.js'];
    while (queue.length > 0) {
      const url = queue.shift() as string;
      if (seen.has(url)) continue;
      seen.add(url);
      const res = await fetch(`${watch.url}${url}`);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type'), url).toBe('text/javascript; charset=utf-8');
      const text = await res.text();
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1] as string;
        const target = importMap.imports[spec] ?? new URL(spec, `http://x${url}`).pathname;
        expect(target.startsWith('/'), `${url} imports ${spec}`).toBe(true);
        queue.push(target);
      }
    }
    expect([...seen]).toEqual(
      expect.arrayContaining(['/page/app.js', '/page/model.js', '/vendor/split-check/index.js']),
    );
    expect((await fetch(`${watch.url}/static/style.css`)).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );
  });

  it('nothing else: no path outside its directories, no other Host', async () => {
    for (const p of [
      '/page/..%2Fmain.js',
      '/page/%2e%2e/server.js',
      '/static/../package.json',
      '/vendor/split-check/..%2F..%2Fpackage.json',
      '/static/.hidden.css',
      '/page/nothing.js',
      '/etc/passwd',
    ]) {
      expect((await fetch(`${watch.url}${p}`)).status, p).toBe(404);
    }
    // a page of another name resolving to 127.0.0.1 (DNS rebinding) is not answered
    expect(await getWithHost(`${watch.url}/api/config`, 'attacker.example')).toBe(421);
    expect(await getWithHost(`${watch.url}/api/config`, `127.0.0.1:${watch.port}`)).toBe(200);
    const put = await fetch(`${watch.url}/api/settings`, { method: 'PUT', body: '{}' });
    expect(put.status).toBe(405);
  });

  it('the configuration: stages in walk-through order, each with its split per override header', async () => {
    const config = (await (await fetch(`${watch.url}/api/config`)).json()) as WatchConfig;
    expect(config.target).toBe('local');
    expect(config.canSwitch).toBe(true);
    expect(config.stages.map((s) => s.name)).toEqual(listStages(REPO_ROOT).map((s) => s.name));
    expect(config.overrides.map((o) => o.name)).toEqual(['x-canary: always', 'x-preview: blue']);
    const c25 = config.stages.find((s) => s.name === 'canary-25');
    expect(c25?.expect['']?.versions).toEqual({ v1: 0.75, v2: 0.25 });
    expect(c25?.expect['x-canary: always']?.versions).toEqual({ v2: 1 });
    // a header the stage has no route for goes where requests without it go
    expect(c25?.expect['x-preview: blue']?.versions).toEqual({ v1: 0.75, v2: 0.25 });
    expect(c25?.command).toBe('make canary-25 TARGET=local');
    const preview = config.stages.find((s) => s.name === 'blue-preview');
    expect(preview?.overrides).toEqual(['x-preview: blue']);
    expect(preview?.expect['x-preview: blue']?.versions).toEqual({ v2: 1 });
    expect(config.alpha).toBe(verificationPlan(REPO_ROOT).alphaPerStage);
    expect(config.confidence).toBe(1 - config.alpha);
  });

  it("the canary analysis as make progress plans it: analysis.yaml's thresholds over the analysed steps", async () => {
    const config = (await (await fetch(`${watch.url}/api/config`)).json()) as WatchConfig;
    expect(config.analysisError).toBeNull();
    const analysis = config.analysis;
    expect(analysis?.file).toBe('analysis.yaml');
    expect(analysis?.plan.thresholds).toEqual(
      readThresholds(readFileSync(join(REPO_ROOT, 'analysis.yaml'), 'utf8')),
    );
    expect(analysis?.plan.steps).toEqual(
      listStages(REPO_ROOT)
        .filter((s) => s.newVersionShare > 0)
        .map((s) => ({ stage: s.name, baseline: s.newVersionShare < 1 })),
    );
    expect(analysis?.roles.stable).toBeNull();
    expect(analysis?.roles.green).toBeNull();
    expect(analysis?.roles['canary-25']).toEqual({ canary: 'v2', baseline: 'v1', share: 0.25 });
    expect(analysis?.roles['blue-preview']).toEqual({ canary: 'v2', baseline: 'v1', share: 0.1 });
    expect(analysis?.roles['canary-100']).toEqual({ canary: 'v2', baseline: null, share: 1 });
  });
});

describe('the traffic', () => {
  it('is sent only while a page listens', async () => {
    const before = path.apps.v1.hits + path.apps.v2.hits;
    await new Promise((r) => setTimeout(r, 400));
    expect(path.apps.v1.hits + path.apps.v2.hits).toBe(before);
    expect(watch.status().sending).toBe(false);
    const r = reader();
    const snapshot = await r.next('snapshot');
    expect(snapshot.data).toMatchObject({ settings: { rate: 50, overrides: [] } });
    const got = await answers(r, 5);
    expect(watch.status()).toMatchObject({ sending: true, subscribers: 1 });
    r.close();
    await waitFor(() => watch.status().subscribers === 0, 10_000, 'the page to leave');
    expect(watch.status().sending).toBe(false);
    await watch.traffic.idle();
    const stopped = path.apps.v1.hits + path.apps.v2.hits;
    await new Promise((r) => setTimeout(r, 400));
    expect(path.apps.v1.hits + path.apps.v2.hits).toBe(stopped);
    expect(got[0]).toMatchObject({
      status: 200,
      version: 'v1',
      stage: 'stable',
      color: '#2e7d32',
      error: null,
    });
    expect(got[0]?.latencyMs).toBeGreaterThan(0);
    // a page that comes back starts from the last answers and the timeline
    const again = reader();
    const resumed = (await again.next('snapshot')).data as {
      answers: Answer[];
      timeline: { stage: string }[];
    };
    expect(resumed.answers.length).toBeGreaterThanOrEqual(5);
    expect(resumed.timeline.map((t) => t.stage)).toContain('stable');
  });

  it('keeps the rate it is set to, and never more requests in flight than its bound', async () => {
    expect((await postJson(`${watch.url}/api/settings`, { rate: 10 })).status).toBe(200);
    const r = reader();
    await r.next('snapshot');
    await answers(r, 1);
    const start = watch.status().sent;
    const t0 = Date.now();
    await new Promise((res) => setTimeout(res, 2000));
    const sent = watch.status().sent - start;
    const seconds = (Date.now() - t0) / 1000;
    expect(sent).toBeLessThanOrEqual(Math.ceil(10 * seconds) + 2);
    expect(sent).toBeGreaterThanOrEqual(Math.floor(10 * seconds * 0.5)); // a busy machine may delay timers

    // a slow v2 at canary-100: the rate drops, requests do not pile up
    await fetch(`${path.adminUrl}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${path.admin.token}` },
      body: JSON.stringify({ stage: 'canary-100' }),
    });
    path.apps.v2.delayMs = 400;
    path.apps.v2.maxConcurrent = 0;
    await postJson(`${watch.url}/api/settings`, { rate: 100 });
    await waitFor(() => watch.status().skipped > 20, 20_000, 'skipped slots');
    expect(path.apps.v2.maxConcurrent).toBeLessThanOrEqual(watch.config.maxInFlight);
    expect(watch.status().inFlight).toBeLessThanOrEqual(watch.config.maxInFlight);
  });

  it('reads errors as they come: the app’s 500 names its version, the gateway’s 503 none', async () => {
    const own = await startFakePath('canary-100');
    const w = await startWatchServer({
      root: REPO_ROOT,
      target: 'local',
      gatewayUrl: own.gatewayUrl,
      rate: 50,
    });
    try {
      own.apps.v2.errorRate = 0.5;
      const r = new SseReader(`${w.url}/api/events`);
      readers.push(r);
      const failed = await answers(r, 3, (a) => a.status === 500);
      expect(failed[0]).toMatchObject({
        status: 500,
        version: 'v2',
        stage: 'canary-100',
        color: null,
        error: 'HTTP 500',
      });
      // v2 gone: the gateway answers 503 itself (no x-app-version), with the stage's response header
      await own.apps.v2.close();
      const gone = await answers(r, 2, (a) => a.status === 503);
      expect(gone[0]).toMatchObject({ version: null, stage: 'canary-100', error: 'HTTP 503' });
      r.close();
    } finally {
      await w.close();
      await own.close();
    }
  });

  it('no gateway at all: answers with status 0 and the reason', async () => {
    const port = await findFreePort();
    const lone = await startWatchServer({
      root: REPO_ROOT,
      target: 'cluster',
      gatewayUrl: `http://127.0.0.1:${port}`,
    });
    try {
      const r = new SseReader(`${lone.url}/api/events`);
      readers.push(r);
      const e = await r.next('answers');
      expect((e.data as Answer[])[0]).toMatchObject({
        status: 0,
        version: null,
        error: 'connection refused',
      });
    } finally {
      await lone.close();
    }
  });

  it('sends the override headers the page turns on, and only the stages’ own', async () => {
    await fetch(`${path.adminUrl}/stage`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${path.admin.token}` },
      body: JSON.stringify({ stage: 'canary-25' }),
    });
    const r = reader();
    await r.next('snapshot');
    const other = reader();
    await other.next('snapshot');
    const set = await postJson(`${watch.url}/api/settings`, { overrides: ['x-canary: always'] });
    expect(set).toEqual({ status: 200, json: { rate: 50, overrides: ['x-canary: always'] } });
    expect((await other.next('settings')).data).toEqual({ rate: 50, overrides: ['x-canary: always'] });
    const pinned = await answers(r, 60, (a) => a.profile === 'x-canary: always');
    expect(new Set(pinned.map((a) => a.version))).toEqual(new Set(['v2']));
    expect(pinned.every((a) => a.stage === 'canary-25')).toBe(true);

    const bad = [
      [{ overrides: ['x-evil: 1'] }, 400],
      [{ overrides: 'x-canary: always' }, 400],
      [{ rate: 0 }, 400],
      [{ rate: 1000 }, 400],
      [{ rate: '20' }, 400],
      ['not json', 400],
      [[1, 2], 400],
    ] as const;
    for (const [body, status] of bad) {
      expect((await postJson(`${watch.url}/api/settings`, body)).status, JSON.stringify(body)).toBe(status);
    }
    expect(watch.settings()).toEqual({ rate: 50, overrides: ['x-canary: always'] });
  });

  it('refuses changes from another origin, another site, or not as JSON', async () => {
    const body = { overrides: [] };
    expect(
      (await postJson(`${watch.url}/api/settings`, body, { origin: 'http://evil.example' })).status,
    ).toBe(403);
    expect(
      (await postJson(`${watch.url}/api/stage`, { stage: 'canary-50' }, { origin: 'null' })).status,
    ).toBe(403);
    expect(
      (await postJson(`${watch.url}/api/settings`, body, { 'sec-fetch-site': 'cross-site' })).status,
    ).toBe(403);
    expect((await postJson(`${watch.url}/api/settings`, body, { 'content-type': 'text/plain' })).status).toBe(
      415,
    );
    expect((await postJson(`${watch.url}/api/settings`, body, { origin: watch.url })).status).toBe(200);
    const stage = (await (await fetch(`${path.adminUrl}/stage`)).json()) as { stage: string };
    expect(stage.stage).toBe('stable');
  });
});

describe('stage switches', () => {
  it('go to the local gateway through its admin API; every page hears the result, then sees the stage', async () => {
    const r = reader();
    await r.next('snapshot');
    await answers(r, 1);
    const res = await postJson(`${watch.url}/api/stage`, { stage: 'canary-50' }, { origin: watch.url });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      stage: 'canary-50',
      ok: true,
      message: 'applied canary-50 (was stable)',
    });
    expect(((await r.next('switch')).data as SwitchResult).ok).toBe(true);
    const change = await r.next(
      (e) => e.event === 'stage' && (e.data as { stage: string }).stage === 'canary-50',
    );
    expect(change.data).toMatchObject({ stage: 'canary-50', from: 'stable' });
    expect(((await (await fetch(`${path.adminUrl}/stage`)).json()) as { stage: string }).stage).toBe(
      'canary-50',
    );
  });

  it('an unknown stage is refused with the list; nothing changes', async () => {
    const res = await postJson(`${watch.url}/api/stage`, { stage: 'canary-33' });
    expect(res.status).toBe(400);
    expect(res.json.error).toContain('valid stages: stable, canary-10');
    expect((await postJson(`${watch.url}/api/stage`, { name: 'x' })).status).toBe(400);
  });

  it('the admin API down: 502 naming make local-up', async () => {
    const port = await findFreePort();
    const lone = await startWatchServer({
      root: REPO_ROOT,
      target: 'local',
      gatewayUrl: path.gatewayUrl,
      adminUrl: `http://127.0.0.1:${port}`,
    });
    try {
      const res = await postJson(`${lone.url}/api/stage`, { stage: 'canary-10' });
      expect(res.status).toBe(502);
      expect(res.json.message).toContain('make local-up');
    } finally {
      await lone.close();
    }
  });

  it('on the cluster: 409 with the make command, and the configuration says so', async () => {
    const cluster = await startWatchServer({
      root: REPO_ROOT,
      target: 'cluster',
      gatewayUrl: path.gatewayUrl,
    });
    try {
      const config = (await (await fetch(`${cluster.url}/api/config`)).json()) as WatchConfig;
      expect(config.canSwitch).toBe(false);
      expect(config.stages.find((s) => s.name === 'canary-25')?.command).toBe('make canary-25');
      const res = await postJson(`${cluster.url}/api/stage`, { stage: 'canary-25' });
      expect(res).toMatchObject({ status: 409, json: { command: 'make canary-25' } });
      expect(((await (await fetch(`${path.adminUrl}/stage`)).json()) as { stage: string }).stage).toBe(
        'stable',
      );
    } finally {
      await cluster.close();
    }
  });
});

describe('where it points', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('the local path when its admin API answers (the port rollout local up recorded), at the port the gateway reports', async () => {
    const state = mkdtempSync(join(tmpdir(), 'watch-state-'));
    dirs.push(state);
    mkdirSync(join(state, 'local'));
    const adminPort = Number(new URL(path.adminUrl).port);
    writeFileSync(join(state, 'local', 'ports.json'), JSON.stringify({ adminPort, gatewayPort: 1 }));
    writeFileSync(join(state, 'local', 'admin-token'), `${path.admin.token}\n`);
    const env = { ROLLOUT_STATE_DIR: state, GATEWAY_URL: 'http://localhost:8080' };
    const auto = await resolveTarget(REPO_ROOT, 'auto', env);
    expect(auto).toMatchObject({
      target: 'local',
      adminUrl: path.adminUrl,
      gatewayUrl: path.gatewayUrl,
      adminToken: path.admin.token, // what the server sends on a stage switch
    });
    expect(auto.reason).toContain('the local path is running');
    const byPort = await resolveTarget(REPO_ROOT, 'local', { ADMIN_PORT: String(adminPort) });
    expect(byPort.gatewayUrl).toBe(path.gatewayUrl);
    // A blank ADMIN_PORT is unset: the recorded port, as the rollout CLI reads it (local-mesh's resolveAdminUrl).
    const blank = await resolveTarget(REPO_ROOT, 'local', { ...env, ADMIN_PORT: ' ' });
    expect(blank.adminUrl).toBe(path.adminUrl);
    const cluster = await resolveTarget(REPO_ROOT, 'cluster', env);
    expect(cluster).toEqual({
      target: 'cluster',
      reason: 'TARGET=cluster',
      gatewayUrl: 'http://localhost:8080',
      adminUrl: null,
      adminToken: null,
    });
  });

  it('the cluster when nothing answers; TARGET=local then fails naming make local-up', async () => {
    const env = { ADMIN_PORT: String(await findFreePort()), GATEWAY_URL: 'http://localhost:18080' };
    const auto = await resolveTarget(REPO_ROOT, 'auto', env);
    expect(auto).toMatchObject({ target: 'cluster', gatewayUrl: 'http://localhost:18080', adminUrl: null });
    await expect(resolveTarget(REPO_ROOT, 'local', env)).rejects.toThrow(TargetError);
    await expect(resolveTarget(REPO_ROOT, 'local', env)).rejects.toThrow(/make local-up/);
  });

  it('reads the colour only from the app’s JSON', () => {
    expect(colorOf('{"color":"#1565c0"}')).toBe('#1565c0');
    expect(colorOf('{"color":"red; background: url(x)"}')).toBeNull();
    expect(colorOf('<html>')).toBeNull();
  });
});

describe('make watch (dist/main.js)', () => {
  function run(env: Record<string, string>) {
    const child = spawn(process.execPath, [MAIN], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    children.push(child);
    return { child, exited, out: () => out, err: () => err };
  }
  const children: ReturnType<typeof spawn>[] = [];
  // a failed assertion must not leave a server running
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('prints the URL, serves the page, stops on SIGTERM with 0', async () => {
    const port = await findFreePort();
    const p = run({
      WATCH_PORT: String(port),
      TARGET: 'cluster',
      GATEWAY_URL: path.gatewayUrl,
      WATCH_TARGET: '',
    });
    // the whole line: output arrives in chunks, and a partial URL must not match
    const url = await waitFor(
      () => /Live traffic page: (http:\/\/\S+)\/\n/.exec(p.out())?.[1],
      30_000,
      'the URL',
    );
    await waitFor(() => p.out().includes('Ctrl-C stops it.'), 30_000, 'the rest of the banner');
    expect(url).toBe(`http://localhost:${port}`);
    expect(p.out()).toContain('target cluster (TARGET=cluster)');
    expect(p.out()).toContain('`make <stage>`');
    expect((await fetch(`${url}/`)).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await p.exited, p.err()).toBe(0);
  });

  it('a taken WATCH_PORT is named, exit 1', async () => {
    const blocker = createServer();
    const port = await findFreePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const p = run({ WATCH_PORT: String(port), TARGET: 'cluster', WATCH_TARGET: '' });
      expect(await p.exited).toBe(1);
      expect(p.err()).toContain(`port ${port} (the watch page) is already in use`);
      expect(p.err()).toContain('WATCH_PORT');
    } finally {
      blocker.close();
    }
  });

  it('bad input exits 2', async () => {
    const p = run({ WATCH_TARGET: 'moon' });
    expect(await p.exited).toBe(2);
    expect(p.err()).toContain('TARGET must be local or cluster');
    const q = run({ WATCH_PORT: 'x', TARGET: 'cluster', WATCH_TARGET: '' });
    expect(await q.exited).toBe(2);
    expect(q.err()).toContain('WATCH_PORT');
  });
});
