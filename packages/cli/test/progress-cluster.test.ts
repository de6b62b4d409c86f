/**
 * `rollout progress --target cluster` without a cluster: the real scripts/stage.sh and scripts/scenario.sh run
 * against the stub kubectl, helm and curl of scripts/test/stubs (they record their calls and keep the applied
 * stage in a state directory); the ingress gateway is a fake HTTP server here that routes as the applied stage's
 * manifest says (stageExpectation), behaves as the helm values the stub was last given (the fault knobs on v2) and
 * counts Istio's metrics; Prometheus is a fake HTTP server that scrapes those counters every 100 ms and answers
 * the targets API and instant queries of the form `sum by (...) (metric{label="value",...})`. The port-forward is
 * the stub kubectl's, held until the command ends it. No timing is asserted.
 */
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stageExpectation } from '@rollouts/local-mesh';
import { CLUSTER_GATEWAY_WORKLOAD, QUERIES } from '@rollouts/split-check';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, rollout, start, testEnv, waitForOutput } from './helpers.js';

const STUBS = join(REPO_ROOT, 'scripts', 'test', 'stubs');
const ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];
const SELECTOR = { gateway: CLUSTER_GATEWAY_WORKLOAD, app: 'webapp' };

interface Series {
  labels: Record<string, string>;
  value: number;
}

const servers: Server[] = [];
const timers: NodeJS.Timeout[] = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A machine with the stub tools first on PATH and a cluster where `make up` ran, stage `stable` applied. */
function stubMachine(): { dir: string; state: string; log: string; bin: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rollout-cluster-'));
  const bin = join(dir, 'bin');
  const state = join(dir, 'state');
  mkdirSync(bin);
  mkdirSync(state);
  for (const t of ['kubectl', 'helm', 'curl']) symlinkSync(join(STUBS, t), join(bin, t));
  writeFileSync(join(state, 'contexts'), 'kind-rollouts\n');
  writeFileSync(join(state, 'helm-release'), 'charts/webapp\n');
  writeFileSync(join(state, 'vs-stage'), 'stable\n');
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  return { dir, state, log, bin, path: `${bin}:${process.env.PATH}` };
}

/** The fault knobs of the last helm upgrade the stub was given (versions.<v>.env.<KNOB>=<value>). */
function helmEnv(log: string): Record<string, Record<string, number>> {
  const upgrades = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('helm ') && l.includes(' upgrade '));
  const out: Record<string, Record<string, number>> = {};
  for (const m of (upgrades.at(-1) ?? '').matchAll(/versions\.(\w+)\.env\.(\w+)=(\S+)/g)) {
    out[m[1] as string] = { ...out[m[1] as string], [m[2] as string]: Number(m[3]) };
  }
  return out;
}

/** The ingress gateway: routes by the applied stage's manifest, counts as Istio's telemetry does. */
async function fakeGateway(state: string, log: string) {
  const counters = new Map<string, Series>();
  const add = (labels: Record<string, string>, by = 1) => {
    const key = JSON.stringify(labels);
    const s = counters.get(key) ?? { labels, value: 0 };
    s.value += by;
    counters.set(key, s);
  };
  const expectations = new Map<string, ReturnType<typeof stageExpectation>>();
  const port = await listen((req, res) => {
    const started = performance.now();
    const stage = readFileSync(join(state, 'vs-stage'), 'utf8').trim();
    let exp = expectations.get(stage);
    if (!exp) {
      exp = stageExpectation(REPO_ROOT, stage);
      expectations.set(stage, exp);
    }
    const profile =
      exp.profiles.find(
        (p) =>
          Object.keys(p.headers).length > 0 &&
          Object.entries(p.headers).every(([k, v]) => req.headers[k.toLowerCase()] === v),
      ) ?? exp.profiles[0];
    let r = Math.random();
    let version = 'unknown';
    for (const [v, share] of Object.entries(profile?.versions ?? {})) {
      if (share <= 0) continue;
      version = v;
      r -= share;
      if (r < 0) break;
    }
    const knobs = helmEnv(log)[version] ?? {};
    const code = Math.random() < (knobs.FAULT_ERROR_RATE ?? 0) ? 500 : 200;
    setTimeout(() => {
      const base = {
        reporter: 'source',
        source_workload: CLUSTER_GATEWAY_WORKLOAD,
        destination_app: 'webapp',
        destination_version: version,
      };
      add({ ...base, __name__: 'istio_requests_total', response_code: String(code) });
      const ms = performance.now() - started;
      for (const le of [...ISTIO_BUCKETS.map(String), '+Inf'])
        if (le === '+Inf' || ms <= Number(le))
          add({ ...base, __name__: 'istio_request_duration_milliseconds_bucket', le });
      res.writeHead(code, { 'x-app-version': version, ...(profile?.responseHeaders ?? {}) });
      res.end(version);
    }, knobs.FAULT_DELAY_MS ?? 0);
  });
  return { url: `http://127.0.0.1:${port}`, counters };
}

/** Prometheus: scrapes the gateway's counters every 100 ms; the targets API and `sum by` instant queries. */
async function fakePrometheus(counters: Map<string, Series>) {
  let scraped: Series[] = [];
  let lastScrape = new Date(0);
  const scrape = () => {
    scraped = [...counters.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
    lastScrape = new Date();
  };
  scrape();
  timers.push(setInterval(scrape, 100));
  const queries: string[] = [];
  const port = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/api/v1/targets') {
      return json({
        status: 'success',
        data: {
          activeTargets: [
            {
              labels: {
                app: CLUSTER_GATEWAY_WORKLOAD,
                namespace: 'istio-system',
                pod: 'istio-ingressgateway-7d9',
              },
              scrapeUrl: 'http://10.244.0.7:15020/stats/prometheus',
              health: 'up',
              lastScrape: lastScrape.toISOString(),
              lastError: '',
            },
          ],
        },
      });
    }
    const query = url.searchParams.get('query') ?? '';
    queries.push(query);
    const m = /^sum by \(([^)]*)\) \((\w+)\{([^}]*)\}\)$/.exec(query);
    if (url.pathname !== '/api/v1/query' || !m)
      return json({
        status: 'error',
        errorType: 'bad_data',
        error: `fake Prometheus cannot evaluate ${query}`,
      });
    const by = (m[1] as string).split(',').map((l) => l.trim());
    const matchers = [...(m[3] as string).matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]);
    const groups = new Map<string, { metric: Record<string, string>; value: number }>();
    for (const s of scraped) {
      if (s.labels.__name__ !== m[2]) continue;
      if (!matchers.every(([k, v]) => s.labels[k as string] === v)) continue;
      const metric = Object.fromEntries(by.map((l) => [l, s.labels[l] ?? '']));
      const key = JSON.stringify(metric);
      const g = groups.get(key) ?? { metric, value: 0 };
      g.value += s.value;
      groups.set(key, g);
    }
    json({
      status: 'success',
      data: {
        resultType: 'vector',
        result: [...groups.values()].map((g) => ({
          metric: g.metric,
          value: [Date.now() / 1000, String(g.value)],
        })),
      },
    });
  });
  return { port, queries };
}

async function clusterEnv(extra: Record<string, string> = {}) {
  const machine = stubMachine();
  const gateway = await fakeGateway(machine.state, machine.log);
  const prometheus = await fakePrometheus(gateway.counters);
  const env = await testEnv({
    PATH: machine.path,
    // The scripts put LOCALBIN (./bin, where `make tools` and the test set-up put real tools) first on PATH.
    LOCALBIN: machine.bin,
    STUB_LOG: machine.log,
    STUB_STATE: machine.state,
    STUB_LIB: join(STUBS, '..', 'stub-lib.bash'),
    STUB_HELM_VERSION: '4.3.1',
    STUB_KUBECTL_VERSION: '1.36.4',
    STUB_PF_HOLD: '1',
    STUB_PF_PORT: String(prometheus.port),
    GATEWAY_URL: gateway.url,
    WAIT_INTERVAL: '0',
  });
  delete env.SCENARIO;
  delete env.PROMETHEUS_URL;
  Object.assign(env, extra);
  return { machine, gateway, prometheus, env };
}

const appliedStage = (state: string) => readFileSync(join(state, 'vs-stage'), 'utf8').trim();

/** The port-forwards the stub kubectl held, and whether each still runs. */
function forwards(state: string): { pid: number; alive: boolean }[] {
  let text = '';
  try {
    text = readFileSync(join(state, 'port-forwards'), 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .map((l) => Number(l.split(' ')[0]))
    .map((pid) => {
      try {
        process.kill(pid, 0);
        return { pid, alive: true };
      } catch {
        return { pid, alive: false };
      }
    });
}

describe('rollout progress --target cluster', () => {
  it('SCENARIO=bad-v2: the chart values give v2 its errors, the analysis from Prometheus fails canary-10, the cluster goes back to stable', async () => {
    const { machine, prometheus, env } = await clusterEnv({ SCENARIO: 'bad-v2' });
    const run = await rollout(['progress', '--target', 'cluster', '--bake', '0s'], env);
    expect(run.code, run.stderr + run.stdout).toBe(1);
    // The scenario went onto the release's values, from scenarios.ts, before the first stage.
    expect(helmEnv(machine.log).v2?.FAULT_ERROR_RATE).toBeGreaterThan(0);
    expect(run.stdout).toContain('setting scenario bad-v2 on the chart values');
    // Every stage through scripts/stage.sh: lint, apply of the stage's manifest, the gateway watched.
    const calls = readFileSync(machine.log, 'utf8');
    expect(calls).toContain('kubectl --context kind-rollouts apply -f');
    expect(calls).toContain('istio/stages/canary-10.yaml');
    expect(run.stderr).toMatch(
      /ROLLED BACK at canary-10 \(step 2 of 6\): analysis failed: v2 error rate [\d.]+ % is above the SLO of 1\.00 %/,
    );
    expect(appliedStage(machine.state)).toBe('stable');
    // The shared PromQL, by destination_version, and the histogram's method said.
    expect(prometheus.queries).toContain(QUERIES.requests(SELECTOR));
    expect(prometheus.queries).toContain(QUERIES.durationBuckets(SELECTOR));
    expect(run.stdout).toContain('latency from histogram buckets (istio_request_duration_milliseconds)');
    // The port-forward was started and ended by the command.
    const pf = forwards(machine.state);
    expect(pf.length).toBe(1);
    expect(pf.every((f) => !f.alive)).toBe(true);
    const summary = JSON.parse(
      readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'progress-summary.json'), 'utf8'),
    );
    expect(summary).toMatchObject({
      target: 'cluster',
      verdict: 'rolled back',
      rolledBackTo: 'stable',
      rollbackVerified: true,
    });
    expect(summary.failedAt.stage).toBe('canary-10');
  }, 180_000);

  it('a healthy blue-green release is promoted through green, blue-preview and blue with Prometheus counts', async () => {
    const { machine, env } = await clusterEnv({ SCENARIO: 'none' });
    const run = await rollout(
      ['progress', '--target', 'cluster', '--strategy', 'blue-green', '--bake', '0s'],
      env,
    );
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(run.stdout).toContain('progress: promoted: blue serves the new version to everyone');
    expect(run.stdout).toMatch(/analysis: v2 errors 0\.00 % vs v1 0\.00 % .*: pass/);
    expect(appliedStage(machine.state)).toBe('blue');
    expect(helmEnv(machine.log).v2).toEqual({ FAULT_DELAY_MS: 0, FAULT_ERROR_RATE: 0 });
    const summary = JSON.parse(
      readFileSync(join(env.ROLLOUT_STATE_DIR as string, 'progress-summary.json'), 'utf8'),
    );
    const preview = summary.steps.find((s: { stage: string }) => s.stage === 'blue-preview');
    // The analysis' counts are Prometheus' (the step's traffic after the split check): canary answers at least the
    // first look's.
    expect(preview.analysis.verdict).toBe('pass');
    expect(preview.analysis.canary.requests).toBeGreaterThanOrEqual(preview.analysis.schedule[0]);
    expect(preview.analysis.latencyMethod).toContain('Mann-Whitney on bucket edges');
    expect(forwards(machine.state).every((f) => !f.alive)).toBe(true);
  }, 180_000);

  it('Ctrl-C during a bake leaves the cluster on stable and ends the port-forward', async () => {
    const { machine, env } = await clusterEnv();
    const p = start(['progress', '--target', 'cluster', '--bake', '60s'], env);
    await waitForOutput(p.child, 'baking canary-10');
    p.child.kill('SIGINT');
    const run = await p.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('the cluster is back on stable');
    expect(appliedStage(machine.state)).toBe('stable');
    expect(forwards(machine.state).every((f) => !f.alive)).toBe(true);
    // No scenario given: the release was walked as deployed, its values untouched.
    expect(readFileSync(machine.log, 'utf8')).not.toContain(' upgrade ');
  }, 180_000);

  it('without Prometheus in the cluster it says so and applies nothing', async () => {
    const { machine, env } = await clusterEnv({ STUB_PF_FAIL: 'prometheus', SCENARIO: '' });
    const run = await rollout(['progress', '--target', 'cluster'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('kubectl port-forward svc/prometheus -n istio-system exited');
    expect(readFileSync(machine.log, 'utf8')).not.toContain(' apply ');
    expect(appliedStage(machine.state)).toBe('stable');
  });

  it('an unknown scenario exits 2 before any cluster call', async () => {
    const { machine, env } = await clusterEnv({ SCENARIO: 'worse-v2' });
    const run = await rollout(['progress', '--target', 'cluster'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown scenario "worse-v2" (SCENARIO); scenarios: bad-v2, slow-v2');
    expect(readFileSync(machine.log, 'utf8')).toBe('');
  });
});
