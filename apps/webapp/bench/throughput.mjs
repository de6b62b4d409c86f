#!/usr/bin/env node
// Throughput of the built v1 bundle against a bare Express 5 hello world, with autocannon on loopback.
// Not a test: it prints figures. Each server runs in its own process; runs alternate (baseline, app, baseline, ...)
// with the same duration and connections so that machine noise hits both alike.
//
//   pnpm --filter @rollouts/webapp bench
//   BENCH_DURATION=10 BENCH_CONNECTIONS=50 BENCH_ROUNDS=3 node bench/throughput.mjs
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = join(HERE, '..');
const BUNDLE = join(PACKAGE_DIR, 'dist', 'v1', 'main.js');
const GOAL = 0.85;

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    process.stderr.write(`bench: ${name} must be a positive integer, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return Number(raw);
}

const DURATION = positiveInt('BENCH_DURATION', 8);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const WARMUP = 2;

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `node script` on a free port; resolves once it accepts connections. Its output goes to /dev/null. */
async function startServer(name, script, env) {
  const port = await freePort();
  const devNull = openSync('/dev/null', 'w');
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(port), SHUTDOWN_DRAIN_MS: '0', ...env },
    stdio: ['ignore', devNull, 'inherit'],
  });
  const url = `http://127.0.0.1:${port}/`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50)); // a benchmark, not a test: polling with a pause is fine
    }
  }
  return { name, url, child };
}

function load(url, duration) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1 }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  if (!existsSync(BUNDLE))
    execFileSync(process.execPath, ['build.mjs'], { cwd: PACKAGE_DIR, stdio: 'inherit' });

  const servers = [
    await startServer('baseline: bare Express 5 hello world', join(HERE, 'baseline.mjs'), {}),
    await startServer('app v1 bundle, LOG_LEVEL=silent', BUNDLE, { LOG_LEVEL: 'silent' }),
    await startServer('app v1 bundle, LOG_LEVEL=info (default)', BUNDLE, { LOG_LEVEL: 'info' }),
  ];
  const results = new Map(servers.map((s) => [s.name, []]));

  try {
    process.stdout.write(
      `node ${process.version}, ${cpus().length} CPUs; ${CONNECTIONS} connections, ${DURATION} s per run, ` +
        `${ROUNDS} rounds, alternating; autocannon in this process, each server in its own\n`,
    );
    for (const s of servers) await load(s.url, WARMUP);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of round % 2 ? servers : [...servers].reverse()) {
        const result = await load(s.url, DURATION);
        if (result.errors || result.non2xx) {
          throw new Error(`${s.name}: ${result.errors} errors, ${result.non2xx} non-2xx answers`);
        }
        results.get(s.name).push(result.requests.average);
        process.stdout.write(
          `  round ${round}  ${s.name.padEnd(42)} ${result.requests.average.toFixed(0)} req/s\n`,
        );
      }
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
  }

  const baseline = median(results.get(servers[0].name));
  process.stdout.write('\nmedian req/s                                   req/s   ratio to baseline\n');
  for (const s of servers) {
    const value = median(results.get(s.name));
    const ratio = value / baseline;
    const verdict =
      s === servers[0] ? '' : ratio >= GOAL ? `  (goal >= ${GOAL}: met)` : `  (goal >= ${GOAL}: MISSED)`;
    process.stdout.write(
      `  ${s.name.padEnd(42)} ${value.toFixed(0).padStart(7)}   ${ratio.toFixed(3)}${verdict}\n`,
    );
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
