import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { BUILD_SCRIPT, BUNDLES, PACKAGE_DIR } from './support/paths.js';
import { freePort, get, spawnNode, startBundle, stopAll, waitUntilServing } from './support/process.js';

afterEach(stopAll);

describe('built bundles', () => {
  it('dist/v1 and dist/v2 started with the same environment report their own version (stamped at build time)', async () => {
    // Same env for both, including variables a runtime lookup might read: only the bundle differs.
    const env = { APP_VERSION: 'v9', VERSION: 'v9', GIT_SHA: 'from-runtime-env' };
    const [v1, v2] = await Promise.all([startBundle(BUNDLES.v1, env), startBundle(BUNDLES.v2, env)]);
    for (const [server, version] of [
      [v1, 'v1'],
      [v2, 'v2'],
    ] as const) {
      const reply = await get(`${server.url}/version`);
      expect(reply.status).toBe(200);
      expect(reply.headers['x-app-version']).toBe(version);
      const body = JSON.parse(reply.body) as { version: string; buildTime: string; gitSha: string };
      expect(body.version).toBe(version);
      expect(new Date(body.buildTime).toISOString()).toBe(body.buildTime);
      expect(body.gitSha).not.toBe('from-runtime-env');
      expect(body.gitSha.length).toBeGreaterThan(0);
      expect(JSON.parse((await get(`${server.url}/`)).body).version).toBe(version);
    }
    expect(v1.logs[0]).toMatchObject({ msg: 'listening', version: 'v1', port: v1.port });
    expect(v2.logs[0]).toMatchObject({ msg: 'listening', version: 'v2', port: v2.port });
  });

  it('are single self-contained ESM files that run with no node_modules around them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webapp-bundle-'));
    try {
      copyFileSync(BUNDLES.v2, join(dir, 'main.js'));
      copyFileSync(join(PACKAGE_DIR, 'dist', 'v2', 'package.json'), join(dir, 'package.json'));
      const source = readFileSync(join(dir, 'main.js'), 'utf8');
      // Only node: built-ins are imported; every dependency is inside the file.
      const imports = [...source.matchAll(/^import .* from ["']([^"']+)["'];?$/gm)].map((m) => m[1]);
      expect(imports.every((spec) => spec?.startsWith('node:'))).toBe(true);
      const server = await startBundle(join(dir, 'main.js'));
      const reply = await get(`${server.url}/`, undefined, { accept: 'text/html' });
      expect(reply.status).toBe(200);
      expect(reply.body).toContain('<h1>v2</h1>');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers every endpoint over real HTTP', async () => {
    const server = await startBundle(BUNDLES.v1);
    const paths = {
      '/': 200,
      '/version': 200,
      '/healthz': 200,
      '/readyz': 200,
      '/metrics': 200,
      '/nope': 404,
    };
    for (const [path, status] of Object.entries(paths)) {
      const reply = await get(`${server.url}${path}`);
      expect(reply.status, path).toBe(status);
      expect(reply.headers['x-app-version'], path).toBe('v1');
    }
    const metrics = (await get(`${server.url}/metrics`)).body;
    expect(metrics).toMatch(
      /^http_requests_total\{route="\/",method="GET",status_code="200",app="webapp",version="v1"\} 1$/m,
    );
  });

  it('requests Node itself rejects (malformed, oversized headers) still get JSON and the version header', async () => {
    const server = await startBundle(BUNDLES.v2);
    const raw = (payload: string) =>
      new Promise<string>((resolve, reject) => {
        let answer = '';
        const socket = connect(server.port, '127.0.0.1', () => socket.end(payload));
        socket.setEncoding('utf8').on('data', (chunk: string) => {
          answer += chunk;
        });
        socket.on('close', () => resolve(answer)).on('error', reject);
      });
    const malformed = await raw('GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n');
    expect(malformed).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(malformed).toContain('x-app-version: v2\r\n');
    expect(JSON.parse(malformed.slice(malformed.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400 });
    const huge = await raw(`GET / HTTP/1.1\r\nHost: x\r\nx-pad: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(huge).toContain('x-app-version: v2\r\n');
    // and the server is still fine
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
  });

  it('write structured request logs, and nothing at LOG_LEVEL=silent', async () => {
    const loud = await startBundle(BUNDLES.v1);
    await get(`${loud.url}/version`);
    await get(`${loud.url}/healthz`);
    await new Promise<void>((resolve) => {
      if (loud.logs.some((l) => l.msg === 'request completed')) resolve();
      else loud.onLog((l) => l.msg === 'request completed' && resolve());
    });
    const requestLines = loud.logs.filter((l) => l.msg === 'request completed');
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({ app: 'webapp', version: 'v1', req: { url: '/version' } });

    const port = await freePort();
    const quiet = spawnNode(BUNDLES.v1, [], {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'silent',
      SHUTDOWN_DRAIN_MS: '0',
    });
    expect((await waitUntilServing(`http://127.0.0.1:${port}/`, quiet.exited)).status).toBe(200);
    expect((await get(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    quiet.child.kill('SIGTERM');
    expect((await quiet.exited).code).toBe(0);
    expect(quiet.logs).toHaveLength(0);
    expect(quiet.stderr()).toBe('');
  });
});

describe('build.mjs', () => {
  const out = mkdtempSync(join(tmpdir(), 'webapp-build-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('--version --outdir builds one version into <outdir>/main.js with GIT_SHA and SOURCE_DATE_EPOCH stamped', async () => {
    const build = spawnNode(BUILD_SCRIPT, ['--version', 'v7', '--outdir', out], {
      PATH: process.env.PATH,
      GIT_SHA: 'feedface',
      SOURCE_DATE_EPOCH: '1767225600',
    });
    expect((await build.exited).code).toBe(0);
    const server = await startBundle(join(out, 'main.js'));
    const body = JSON.parse((await get(`${server.url}/version`)).body);
    expect(body).toEqual({ version: 'v7', buildTime: '2026-01-01T00:00:00.000Z', gitSha: 'feedface' });
  });

  /** A values file in `out` with these lines, and a fresh output directory beside it. */
  function valuesFile(name: string, yaml: string): { file: string; dir: string } {
    const file = join(out, `${name}.yaml`);
    writeFileSync(file, yaml);
    return { file, dir: join(out, name) };
  }

  it("builds dist/<version>/main.js for each enabled version of the values' `versions`, skipping enabled: false", async () => {
    const { file, dir } = valuesFile(
      'three',
      'versions:\n  v1:\n    tag: v1\n  v2:\n    enabled: false\n    tag: v2\n  v3:\n    tag: v3\n',
    );
    const build = spawnNode(BUILD_SCRIPT, ['--values', file, '--outdir', dir], { PATH: process.env.PATH });
    expect((await build.exited).code, build.stderr()).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['v1', 'v3']);
    expect(build.logs.map((l) => String(l.raw).split(' ')[1])).toEqual(['v1', 'v3']);
    const server = await startBundle(join(dir, 'v3', 'main.js'));
    expect(JSON.parse((await get(`${server.url}/version`)).body).version).toBe('v3');
  });

  it('reads versionDefaults.enabled as the chart does: a version left to a false default is not built', async () => {
    const { file, dir } = valuesFile(
      'defaults',
      'versionDefaults:\n  enabled: false\nversions:\n  canary: {tag: c}\n  v4: {tag: v4, enabled: true}\n',
    );
    const build = spawnNode(BUILD_SCRIPT, ['--values', file, '--outdir', dir], { PATH: process.env.PATH });
    expect((await build.exited).code, build.stderr()).toBe(0);
    expect(readdirSync(dir)).toEqual(['v4']);
  });

  it("builds the repository chart's versions by default", async () => {
    const dir = join(out, 'chart');
    const build = spawnNode(BUILD_SCRIPT, ['--outdir', dir], { PATH: process.env.PATH });
    expect((await build.exited).code, build.stderr()).toBe(0);
    const chart = parseYaml(
      readFileSync(join(PACKAGE_DIR, '..', '..', 'charts', 'webapp', 'values.yaml'), 'utf8'),
    ) as { versions: Record<string, { enabled?: boolean }> };
    const enabled = Object.entries(chart.versions).filter(([, v]) => v.enabled !== false);
    expect(enabled.length).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()).toEqual(enabled.map(([k]) => k).sort());
  });

  it.each([
    ['a key that is not a version', 'versions:\n  v1: {tag: v1}\n  canary: {tag: c}\n', 'versions.canary'],
    ['no versions', 'image: {repository: webapp}\n', '`versions` must be a non-empty mapping'],
    ['every version disabled', 'versions:\n  v1: {tag: v1, enabled: false}\n', 'no version is enabled'],
    ['invalid YAML', 'versions: {v1: [\n', 'invalid YAML'],
  ])('stops on values with %s: a message naming the file, exit 1', async (name, yaml, message) => {
    const { file, dir } = valuesFile(name.replaceAll(' ', '-'), yaml);
    const build = spawnNode(BUILD_SCRIPT, ['--values', file, '--outdir', dir], { PATH: process.env.PATH });
    expect((await build.exited).code).toBe(1);
    expect(build.stderr()).toContain(file);
    expect(build.stderr()).toContain(message);
    expect(existsSync(dir)).toBe(false);
  });

  it('--version needs no chart (the image build context has none); without it a missing chart is named', async () => {
    // The Dockerfile's layout: <root>/apps/webapp with build.mjs, src/ and node_modules, and no <root>/charts.
    const root = mkdtempSync(join(tmpdir(), 'webapp-image-layout-'));
    try {
      const app = join(root, 'apps', 'webapp');
      mkdirSync(app, { recursive: true });
      for (const f of ['build.mjs', 'tsconfig.json']) copyFileSync(join(PACKAGE_DIR, f), join(app, f));
      cpSync(join(PACKAGE_DIR, 'src'), join(app, 'src'), { recursive: true });
      symlinkSync(join(PACKAGE_DIR, 'node_modules'), join(app, 'node_modules'), 'dir');

      const one = spawnNode(join(app, 'build.mjs'), ['--version', 'v5', '--outdir', join(root, 'out')], {
        PATH: process.env.PATH,
        GIT_SHA: 'feedface',
      });
      expect((await one.exited).code, one.stderr()).toBe(0);
      expect(readdirSync(join(root, 'out')).sort()).toEqual(['main.js', 'package.json']);

      const all = spawnNode(join(app, 'build.mjs'), [], { PATH: process.env.PATH, GIT_SHA: 'feedface' });
      expect((await all.exited).code).toBe(1);
      expect(all.stderr()).toContain('charts/webapp/values.yaml: not found');
      expect(all.stderr()).toContain('--version');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it.each([
    [['--version', 'latest'], '--version'],
    [['--version'], 'version'],
    [['--colour', 'blue'], 'colour'],
    [['--version', 'v1', '--values', 'values.yaml'], 'exclude each other'],
    [['--values', ''], '--values'],
  ])('rejects %j with a message and exit 2', async (args, word) => {
    const build = spawnNode(BUILD_SCRIPT, [...args, '--outdir', out], { PATH: process.env.PATH });
    expect((await build.exited).code).toBe(2);
    expect(build.stderr()).toContain(word);
    expect(build.stderr()).toContain('usage:');
  });
});
