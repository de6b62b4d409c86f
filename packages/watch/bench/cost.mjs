#!/usr/bin/env node
/**
 * What the watch page costs the gateway: a local path as `make local-up` starts it (background processes, free
 * ports, a private state directory), the watch server as `make watch` starts it, and, in turn, no page / a page
 * at 20 requests/s / a page at 100 requests/s (an SSE client: the server sends the requests, so a browser
 * costs the gateway the same; CHROMIUM=1 adds rounds with Debian's Chromium rendering the page at 20/s):
 *
 *   - the request rate the page sends through the gateway (the gateway's istio_requests_total);
 *   - `rollout verify` of canary-25 (its SPRT stops after a varying number of requests: requests/s is compared);
 *   - the throughput left for a fixed load: 4000 requests, 32 in flight (what the verifier uses).
 *
 * Conditions are interleaved round by round (a busy machine drifts); medians are printed and written to
 * .state/bench/watch-cost.json, after one warm-up run. ROUNDS (default 5).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort, LoadClient } from '@rollouts/local-mesh';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const WATCH_MAIN = join(ROOT, 'packages/watch/dist/main.js');
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const state = mkdtempSync(join(tmpdir(), 'watch-cost-'));
const ports = {
  GATEWAY_PORT: String(await findFreePort()),
  ADMIN_PORT: String(await findFreePort()),
  V1_PORT: String(await findFreePort()),
  V2_PORT: String(await findFreePort()),
};
const env = { ...process.env, ...ports, ROLLOUT_STATE_DIR: state, ROLLOUT_ROOT: ROOT };
const admin = `http://127.0.0.1:${ports.ADMIN_PORT}`;
const gateway = `http://localhost:${ports.GATEWAY_PORT}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

execFileSync('node', [CLI, 'local', 'up'], { env, stdio: 'inherit' });
let watch;
let browser;
try {
  // The stage switch carries the token `rollout local up` wrote.
  execFileSync('node', [CLI, 'apply', 'canary-25', '--no-verify'], { env, stdio: 'inherit' });
  watch = spawn('node', [WATCH_MAIN], {
    env: { ...env, WATCH_PORT: '0', WATCH_TARGET: 'local' },
    stdio: 'pipe',
  });
  let banner = '';
  watch.stdout.on('data', (c) => {
    banner += c;
  });
  watch.stderr.resume();
  for (let i = 0; i < 300 && !/Live traffic page: (http:\/\/\S+)\/\n/.test(banner); i++) await sleep(100);
  const url = /Live traffic page: (http:\/\/\S+)\/\n/.exec(banner)?.[1];
  if (!url) throw new Error(`the watch server did not start:\n${banner}`);
  const setRate = (rate) =>
    fetch(`${url}/api/settings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate }),
    });

  /** A page: an SSE client (the server sends while one listens), or Chromium showing it. */
  async function openPage(kind) {
    if (kind === 'chromium') {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      await page.goto(`${url}/`);
      return () => page.close();
    }
    const abort = new AbortController();
    const res = await fetch(`${url}/api/events`, { signal: abort.signal });
    void res.body.pipeTo(new WritableStream()).catch(() => {});
    return async () => abort.abort();
  }

  async function gatewayRequests() {
    const text = await (await fetch(`${admin}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('istio_requests_total{'))
      .reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
  }

  function verify() {
    const file = join(state, 'verify.json');
    try {
      execFileSync('node', [CLI, 'verify', '--target', 'local', '--json', file], { env, stdio: 'ignore' });
    } catch {
      // a failed verification is reported below
    }
    const r = JSON.parse(readFileSync(file, 'utf8'));
    return { requests: r.requests, ms: r.durationMs, verdict: r.verdict, failed: r.failedRequests };
  }

  async function fixedLoad() {
    const client = new LoadClient({ origin: gateway, concurrency: 32 });
    const r = await client.batch({ count: 4000 });
    await client.close();
    return { rps: r.completed / (r.durationMs / 1000), failed: r.failures.length };
  }

  const conditions = [
    { name: 'no page', rate: 0 },
    { name: 'page at 20/s', rate: 20, kind: 'sse' },
    { name: 'page at 100/s', rate: 100, kind: 'sse' },
  ];
  if (process.env.CHROMIUM === '1') {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
      ],
    });
    conditions.push({ name: 'Chromium at 20/s', rate: 20, kind: 'chromium' });
  }
  // warm-up (JIT, connections), not counted
  verify();
  await fixedLoad();
  const runs = Object.fromEntries(conditions.map((c) => [c.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of conditions) {
      let close = async () => {};
      if (c.rate > 0) {
        await setRate(c.rate);
        close = await openPage(c.kind);
        await sleep(1500);
      }
      const before = await gatewayRequests();
      const idleStart = performance.now();
      await sleep(2000);
      const pageRate = ((await gatewayRequests()) - before) / ((performance.now() - idleStart) / 1000);
      const v = verify();
      const load = await fixedLoad();
      await close();
      await sleep(500);
      runs[c.name].push({ pageRate, ...v, loadRps: load.rps, loadFailed: load.failed });
      process.stderr.write(
        `round ${round} ${c.name}: page ${pageRate.toFixed(1)} req/s, verify ${v.requests} req in ${(v.ms / 1000).toFixed(2)} s (${v.verdict}), fixed load ${load.rps.toFixed(0)} req/s\n`,
      );
    }
  }
  const summary = conditions.map((c) => {
    const r = runs[c.name];
    return {
      condition: c.name,
      rounds: r.length,
      pageRequestsPerS: +median(r.map((x) => x.pageRate)).toFixed(1),
      verifyMedianS: +(median(r.map((x) => x.ms)) / 1000).toFixed(2),
      verifyRequestsPerS: Math.round(median(r.map((x) => x.requests / (x.ms / 1000)))),
      verifyPassed: `${r.filter((x) => x.verdict === 'pass').length}/${r.length}`,
      fixedLoadRequestsPerS: Math.round(median(r.map((x) => x.loadRps))),
      failedRequests: r.reduce((s, x) => s + x.failed + x.loadFailed, 0),
    };
  });
  const base = summary[0];
  console.log(
    '\ncondition          page req/s  verify (median)  verify req/s  fixed load req/s  failed  verify passed',
  );
  for (const s of summary) {
    const rel = (v, b) => (s === base ? '' : ` (${v >= b ? '+' : ''}${(((v - b) / b) * 100).toFixed(0)} %)`);
    console.log(
      `${s.condition.padEnd(18)} ${String(s.pageRequestsPerS).padStart(10)}  ${`${s.verifyMedianS} s`.padStart(15)}  ${`${s.verifyRequestsPerS}${rel(s.verifyRequestsPerS, base.verifyRequestsPerS)}`.padStart(12)}  ${`${s.fixedLoadRequestsPerS}${rel(s.fixedLoadRequestsPerS, base.fixedLoadRequestsPerS)}`.padStart(16)}  ${String(s.failedRequests).padStart(6)}  ${s.verifyPassed}`,
    );
  }
  const out = join(ROOT, '.state', 'bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'watch-cost.json'),
    `${JSON.stringify({ rounds: ROUNDS, summary, runs }, null, 2)}\n`,
  );
  console.log(`\nwritten to .state/bench/watch-cost.json`);
} finally {
  await browser?.close();
  watch?.kill('SIGTERM');
  execFileSync('node', [CLI, 'local', 'down'], { env, stdio: 'ignore' });
  rmSync(state, { recursive: true, force: true });
}
