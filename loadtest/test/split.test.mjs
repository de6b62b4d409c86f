/**
 * The k6 split check without k6 (CI has no k6 binary): node:test loads loadtest/split.ts through module hooks
 * that stand in for the k6 modules, then checks what k6 would consume: `options` (scenarios, thresholds),
 * `probe` (the request of each iteration and what it counts), and `handleSummary`. A small evaluator applies the
 * thresholds the way k6 does (count / rate of the tagged submetrics) to decide the run, so a correct mesh and a
 * mesh 10 points off are both played through.
 *
 *   node --import ./test/register.mjs --test test/split.test.mjs      (from loadtest/, after `make build`)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { binomialAcceptanceBand, mulberry32 } from '../../packages/split-check/dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const fixture = (stage) => JSON.parse(readFileSync(join(here, 'fixtures', `expect-${stage}.json`), 'utf8'));

let loads = 0;
/** The answers of the current run, in request order (summaryData pairs them with the recorded requests). */
let responses = [];
/** Loads split.ts afresh (init context included) with EXPECT_FILE holding `doc`. */
async function loadScript(doc, env = {}) {
  globalThis.k6shim = {
    checks: [],
    requests: [],
    samples: [],
    respond: () => ({ status: 200, headers: {} }),
  };
  globalThis.__ENV = { EXPECT_FILE: '/expect.json', GATEWAY_URL: 'http://gw.test:8080/', ...env };
  globalThis.open = (path) => {
    if (env.ANALYSIS_FILE !== undefined && path === env.ANALYSIS_FILE) return readFileSync(path, 'utf8');
    assert.equal(path, globalThis.__ENV.EXPECT_FILE);
    return typeof doc === 'string' ? doc : JSON.stringify(doc);
  };
  loads += 1;
  return import(`../split.ts?load=${loads}`);
}

/**
 * A mesh answering like Istio for a canary stage whose new version gets `share` of plain requests, every answer
 * naming `stage` in X-Rollouts-Stage (k6 canonicalises header names like this). Seeded: the same run every time.
 */
function canaryMesh(share, stage, seed = 7) {
  const random = mulberry32(seed);
  return (call) => {
    const headers = call.params.headers ?? {};
    const v2 = headers['x-canary'] === 'always' || random() < share;
    return { status: 200, headers: { 'X-App-Version': v2 ? 'v2' : 'v1', 'X-Rollouts-Stage': stage } };
  };
}

/** Runs every scenario's iterations (probe once per iteration, with the scenario's env), like k6 would. */
function runScenarios(script) {
  for (const scenario of Object.values(script.options.scenarios)) {
    assert.equal(scenario.executor, 'shared-iterations');
    Object.assign(globalThis.__ENV, scenario.env);
    for (let i = 0; i < scenario.iterations; i++) script[scenario.exec]();
  }
}

const isOk = (call, status) => {
  const expected = call.params.responseCallback?.expectedStatuses ?? [{ min: 200, max: 399 }];
  return expected.some((e) => (typeof e === 'number' ? e === status : status >= e.min && status <= e.max));
};

/** k6's summary data for the threshold submetrics, from what the shims recorded. */
function summaryData(script) {
  const { samples, checks, requests } = globalThis.k6shim;
  const failed = requests.map((call, i) => ({
    tags: call.params.tags ?? {},
    failed: !isOk(call, responses[i].status),
  }));
  const metrics = {};
  for (const key of Object.keys(script.options.thresholds)) {
    const [, name, tagText] = key.match(/^([a-z_]+)(?:\{(.*)\})?$/);
    const want = Object.fromEntries((tagText ? tagText.split(',') : []).map((kv) => kv.split(':')));
    const matches = (tags) => Object.entries(want).every(([k, v]) => tags[k] === v);
    if (name === 'responses') {
      const count = samples
        .filter((s) => s.metric === name && matches(s.tags))
        .reduce((n, s) => n + s.value, 0);
      metrics[key] = { type: 'counter', values: { count } };
    } else if (name === 'checks') {
      const mine = checks.filter((c) => matches(c.tags));
      const passes = mine.filter((c) => c.ok).length;
      metrics[key] = {
        type: 'rate',
        values: { passes, fails: mine.length - passes, rate: passes / mine.length },
      };
    } else if (name === 'server_errors') {
      const mine = samples.filter((x) => x.metric === name && matches(x.tags));
      const passes = mine.filter((x) => x.value !== 0).length;
      metrics[key] = {
        type: 'rate',
        values: { passes, fails: mine.length - passes, rate: passes / mine.length },
      };
    } else if (name === 'version_duration') {
      // k6's percentile: linear interpolation between the closest ranks.
      const v = samples
        .filter((x) => x.metric === name && matches(x.tags))
        .map((x) => x.value)
        .sort((a, b) => a - b);
      const h = (v.length - 1) * 0.99;
      const lo = Math.floor(h);
      const p99 = v.length === 0 ? 0 : v[lo] + (h - lo) * ((v[Math.min(lo + 1, v.length - 1)] ?? 0) - v[lo]);
      metrics[key] = { type: 'trend', values: { 'p(99)': p99 } };
    } else if (name === 'http_req_failed') {
      const mine = failed.filter((f) => matches(f.tags));
      const passes = mine.filter((f) => f.failed).length;
      metrics[key] = {
        type: 'rate',
        values: { passes, fails: mine.length - passes, rate: passes / mine.length },
      };
    }
  }
  return { metrics, state: { testRunDurationMs: 1234 } };
}

/** k6's verdict: every threshold expression holds for its submetric. */
function crossedThresholds(script, data) {
  const crossed = [];
  for (const [key, exprs] of Object.entries(script.options.thresholds)) {
    for (const expr of exprs) {
      const [, stat, op, num] = expr.match(/^(count|rate|p\(99\))(>=|<=|==)(\d+(?:\.\d+)?)$/);
      const v = data.metrics[key]?.values[stat] ?? 0;
      const n = Number(num);
      const ok = op === '>=' ? v >= n : op === '<=' ? v <= n : v === n;
      if (!ok) crossed.push(`${key}: ${expr} (got ${v})`);
    }
  }
  return crossed;
}

/** Plays a whole k6 run against `mesh`: returns the crossed thresholds and handleSummary's output. */
async function playRun(doc, mesh, env = {}) {
  const script = await loadScript(doc, { SUMMARY_FILE: '/out/k6-summary.json', ...env });
  responses = [];
  globalThis.k6shim.respond = (call) => {
    const r = mesh(call);
    responses.push(r);
    return r;
  };
  runScenarios(script);
  const data = summaryData(script);
  return { script, crossed: crossedThresholds(script, data), out: script.handleSummary(data) };
}

test('options: one shared-iterations scenario of n requests per profile, all running probe', async () => {
  const doc = fixture('canary-50');
  const script = await loadScript(doc, { VUS: '20' });
  const scenarios = script.options.scenarios;
  assert.deepEqual(Object.keys(scenarios), ['p0', 'p1']);
  assert.deepEqual(scenarios.p0, {
    executor: 'shared-iterations',
    vus: 20,
    iterations: doc.profiles[0].check.n,
    maxDuration: '5m',
    exec: 'probe',
    env: { PROFILE_INDEX: '0' },
    tags: { profile: 'p0' },
  });
  assert.equal(scenarios.p1.iterations, doc.profiles[1].check.n);
  assert.equal(typeof script.probe, 'function');
});

test('thresholds: the exact binomial band of split-check for the tested version, its complement for the other', async () => {
  const doc = fixture('canary-50');
  const script = await loadScript(doc);
  const { n, alpha } = doc.profiles[0].check;
  const band = binomialAcceptanceBand(n, 0.5, 1 - alpha);
  const t = script.options.thresholds;
  assert.deepEqual(t['responses{profile:p0,version:v2}'], [`count>=${band.lo}`, `count<=${band.hi}`]);
  assert.deepEqual(t['responses{profile:p0,version:v1}'], [`count>=${n - band.hi}`, `count<=${n - band.lo}`]);
  // the header route: every one of its requests reaches v2
  const n1 = doc.profiles[1].check.n;
  assert.deepEqual(t['responses{profile:p1,version:v2}'], [`count>=${n1}`, `count<=${n1}`]);
  assert.deepEqual(t['checks{profile:p1}'], ['rate==1']);
  assert.deepEqual(t.http_req_failed, ['rate==0']);
  assert.deepEqual(t['http_req_failed{profile:p0}'], ['rate==0']);
});

test('a share of 0 is held at 0: at stable a single v2 answer crosses a threshold', async () => {
  const script = await loadScript(fixture('stable'));
  assert.deepEqual(script.options.thresholds['responses{profile:p0,version:v2}'], ['count>=0', 'count<=0']);
  assert.deepEqual(script.options.thresholds['responses{profile:p0,version:v1}'], [
    'count>=135',
    'count<=135',
  ]);
});

test('probe: the profile headers go to GATEWAY_URL and the answer is counted by its x-app-version', async () => {
  const script = await loadScript(fixture('canary-50'));
  globalThis.k6shim.respond = () => ({
    status: 200,
    headers: { 'x-app-version': 'v2', 'x-rollouts-stage': 'canary-50' },
  });
  globalThis.__ENV.PROFILE_INDEX = '1';
  script.probe();
  const [call] = globalThis.k6shim.requests;
  assert.equal(call.method, 'GET');
  assert.equal(call.url, 'http://gw.test:8080/');
  assert.deepEqual(call.params.headers, { 'x-canary': 'always' });
  assert.deepEqual(call.params.tags, { profile: 'p1' });
  assert.deepEqual(globalThis.k6shim.samples, [
    { metric: 'responses', value: 1, tags: { profile: 'p1', version: 'v2' } },
    // Per version: was it a 5xx, and how long it took (the shim's 1 ms).
    { metric: 'server_errors', value: 0, tags: { profile: 'p1', version: 'v2' } },
    { metric: 'version_duration', value: 1, tags: { profile: 'p1', version: 'v2' } },
  ]);
  assert.deepEqual(globalThis.k6shim.checks, [
    { name: 'every request reaches v2', ok: true, tags: { profile: 'p1' } },
    { name: 'x-rollouts-stage is canary-50', ok: true, tags: { profile: 'p1', assert: 'headers' } },
  ]);
});

test('probe: GATEWAY_HOST goes out as the Host header of every profile (Istio routes by Host)', async () => {
  const script = await loadScript(fixture('canary-50'), { GATEWAY_HOST: 'localhost' });
  globalThis.k6shim.respond = () => ({
    status: 200,
    headers: { 'x-app-version': 'v1', 'x-rollouts-stage': 'canary-50' },
  });
  for (const index of ['0', '1']) {
    globalThis.__ENV.PROFILE_INDEX = index;
    script.probe();
  }
  const [plain, canary] = globalThis.k6shim.requests;
  assert.equal(plain.url, 'http://gw.test:8080/');
  assert.deepEqual(plain.params.headers, { Host: 'localhost' });
  assert.deepEqual(canary.params.headers, { Host: 'localhost', 'x-canary': 'always' });
});

test('probe: a header route answered by the wrong version fails its check', async () => {
  const script = await loadScript(fixture('blue-preview'));
  globalThis.k6shim.respond = () => ({ status: 200, headers: { 'X-App-Version': 'v1' } });
  globalThis.__ENV.PROFILE_INDEX = '1';
  script.probe();
  assert.deepEqual(globalThis.k6shim.requests[0].params.headers, { 'x-preview': 'blue' });
  assert.equal(globalThis.k6shim.checks[0].ok, false);
});

test('a correct canary-50 mesh passes: no threshold crossed, PASS table, JSON summary', async () => {
  const { crossed, out } = await playRun(fixture('canary-50'), canaryMesh(0.5, 'canary-50'));
  assert.deepEqual(crossed, []);
  assert.match(
    out.stdout,
    /^stage canary-50 \(k6, http:\/\/gw\.test:8080\): PASS — 4759 requests in 1\.23 s$/m,
  );
  assert.match(out.stdout, /profile\s+version\s+expected\s+observed\s+99\.98 % interval\s+verdict/);
  assert.match(out.stdout, /default\s+v1\s+50\.0 %\s+\d+\.\d %\s+\d+\.\d % – \d+\.\d %\s+pass/);
  assert.match(out.stdout, /x-canary: always\s+v2\s+100\.0 %\s+100\.0 %/);
  const summary = JSON.parse(out['/out/k6-summary.json']);
  assert.equal(summary.verdict, 'pass');
  assert.equal(summary.stage, 'canary-50');
  assert.equal(summary.profiles[0].requests, 4624);
  assert.equal(summary.profiles[0].counts.v1 + summary.profiles[0].counts.v2, 4624);
  assert.equal(summary.profiles[1].counts.v2, 135);
});

test('a mesh 10 points off (60 % to v2 at canary-50) crosses the band threshold and the table says FAIL', async () => {
  const { crossed, out } = await playRun(fixture('canary-50'), canaryMesh(0.6, 'canary-50'));
  assert.ok(
    crossed.some((c) => c.startsWith('responses{profile:p0,version:v2}: count<=')),
    crossed.join('\n'),
  );
  assert.match(out.stdout, /: FAIL —/);
  assert.match(
    out.stdout,
    /default: exact binomial, fixed n, 4624 requests \(plan 4624\): v1: \d+ answers, outside/,
  );
  assert.equal(JSON.parse(out['/out/k6-summary.json']).verdict, 'fail');
});

test('answers naming another stage in x-rollouts-stage cross the header checks, even with the right split', async () => {
  // canary-50 was applied, but the gateway still serves canary-25's routes and says so.
  const { script, crossed, out } = await playRun(fixture('canary-50'), canaryMesh(0.5, 'canary-25'));
  assert.deepEqual(script.options.thresholds['checks{profile:p0,assert:headers}'], ['rate==1']);
  assert.ok(
    crossed.some((c) => c.startsWith('checks{profile:p0,assert:headers}: rate==1')),
    crossed.join('\n'),
  );
  assert.ok(
    crossed.some((c) => c.startsWith('checks{profile:p1}: rate==1')),
    crossed.join('\n'),
  );
  assert.match(
    out.stdout,
    /default: exact binomial, fixed n, 4624 requests \(plan 4624\): 4624 answer\(s\) without x-rollouts-stage: canary-50: the gateway does not serve stage canary-50/,
  );
  assert.doesNotMatch(out.stdout, /unexpected version/);
  const summary = JSON.parse(out['/out/k6-summary.json']);
  assert.equal(summary.verdict, 'fail');
  assert.equal(summary.profiles[0].wrongHeaders, 4624);
  assert.equal(summary.profiles[0].requests, 4624);
});

test('probe: the header check reads the stage header whatever its case, and is tagged apart', async () => {
  const script = await loadScript(fixture('stable'));
  globalThis.k6shim.respond = () => ({
    status: 200,
    headers: { 'X-App-Version': 'v1', 'X-Rollouts-Stage': 'stable' },
  });
  globalThis.__ENV.PROFILE_INDEX = '0';
  script.probe();
  assert.deepEqual(globalThis.k6shim.checks, [
    { name: 'every request reaches v1', ok: true, tags: { profile: 'p0' } },
    { name: 'x-rollouts-stage is stable', ok: true, tags: { profile: 'p0', assert: 'headers' } },
  ]);
});

test('failed requests cross http_req_failed even when the split is right', async () => {
  let i = 0;
  const mesh = canaryMesh(0.1, 'blue-preview');
  const { crossed, out } = await playRun(fixture('blue-preview'), (call) => {
    i += 1;
    return i === 10 ? { status: 503, headers: {} } : mesh(call);
  });
  assert.ok(
    crossed.some((c) => c.startsWith('http_req_failed: rate==0')),
    crossed.join('\n'),
  );
  assert.ok(
    crossed.some((c) => c.startsWith('http_req_failed{profile:p0}: rate==0')),
    crossed.join('\n'),
  );
  assert.match(out.stdout, /1 failed request\(s\)/);
});

test('the JSON summary is only written when SUMMARY_FILE is set', async () => {
  const { out } = await playRun(fixture('canary-100'), canaryMesh(1, 'canary-100'), { SUMMARY_FILE: '' });
  assert.deepEqual(Object.keys(out), ['stdout']);
  assert.match(out.stdout, /stage canary-100 .*: PASS/);
});

test('EXPECT_FILE unset: a message that says how to run the script', async () => {
  await assert.rejects(
    loadScript(fixture('stable'), { EXPECT_FILE: '' }),
    /EXPECT_FILE is not set: run this through scripts\/verify\.sh/,
  );
});

test('a malformed expect document is refused with the field named', async () => {
  await assert.rejects(
    loadScript('{"stage":"x","plan":{"alphaPerStage":0.001},"profiles":[]}'),
    /profiles: missing or empty/,
  );
  const doc = fixture('stable');
  doc.profiles[0].versions.v1 = 1.5;
  await assert.rejects(loadScript(doc), /profiles\[0\]\.versions\.v1: must be a probability, got 1\.5/);
  await assert.rejects(loadScript('not json'), /\(file\): not JSON/);
});

test('the rollout CLI: every stage it knows gives a document k6 accepts, with the same bands as the local path', async () => {
  const cli = join(root, 'packages', 'cli', 'dist', 'main.js');
  assert.ok(existsSync(cli), `${cli} is missing: run 'make build' first`);
  const stages = JSON.parse(execFileSync(process.execPath, [cli, 'stages', '--json'], { encoding: 'utf8' }));
  assert.ok(stages.length >= 9, `expected the nine stages, got ${stages.length}`);
  for (const { stage } of stages) {
    const doc = JSON.parse(
      execFileSync(process.execPath, [cli, 'expect', stage, '--json'], { encoding: 'utf8' }),
    );
    const script = await loadScript(doc);
    assert.equal(script.expectation.stage, stage);
    for (const [i, plan] of script.plans.entries()) {
      const check = doc.profiles[i].check;
      assert.equal(plan.n, check.n, `${stage} ${plan.name}: n`);
      if (check.kind === 'binomial' || check.kind === 'deterministic') {
        assert.deepEqual(
          plan.bands[check.version],
          check.band,
          `${stage} ${plan.name}: band of ${check.version}`,
        );
      }
    }
  }
});

const ANALYSIS_YAML = join(root, 'analysis.yaml');

/** analysis.yaml's thresholds, as split-check reads them (the file is the one source). */
async function analysisThresholds() {
  const { readThresholds } = await import('../../packages/split-check/dist/index.js');
  return readThresholds(readFileSync(ANALYSIS_YAML, 'utf8'));
}

test('per-version thresholds: error rate and p99 of every answering version at the SLOs of analysis.yaml', async () => {
  const t = await analysisThresholds();
  const script = await loadScript(fixture('canary-50'), { ANALYSIS_FILE: ANALYSIS_YAML });
  for (const v of ['v1', 'v2']) {
    assert.deepEqual(script.options.thresholds[`server_errors{version:${v}}`], [`rate<=${t.errorRate.slo}`]);
    assert.deepEqual(script.options.thresholds[`version_duration{version:${v}}`], [
      `p(99)<=${t.latency.p99SloMs}`,
    ]);
  }
  // canary-100: only v2 answers, so only v2 is judged.
  const only = await loadScript(fixture('canary-100'), { ANALYSIS_FILE: ANALYSIS_YAML });
  assert.ok(only.options.thresholds['server_errors{version:v2}']);
  assert.equal(only.options.thresholds['server_errors{version:v1}'], undefined);
  // Without the file (k6 run by hand): the split check alone.
  const none = await loadScript(fixture('canary-50'));
  assert.equal(none.options.thresholds['server_errors{version:v2}'], undefined);
});

test('a v2 answering 5 % with 500 crosses its error threshold, v1 does not; a slow v2 crosses its p99', async () => {
  const t = await analysisThresholds();
  const random = mulberry32(11);
  const healthy = canaryMesh(0.5, 'canary-50', 3);
  const bad = (call) => {
    const r = healthy(call);
    return r.headers['X-App-Version'] === 'v2' && random() < 0.05 ? { ...r, status: 500 } : r;
  };
  const run = await playRun(fixture('canary-50'), bad, { ANALYSIS_FILE: ANALYSIS_YAML });
  assert.ok(run.crossed.some((c) => c.startsWith(`server_errors{version:v2}: rate<=${t.errorRate.slo}`)));
  assert.ok(!run.crossed.some((c) => c.startsWith('server_errors{version:v1}')));
  assert.match(run.out.stdout, /v2: 5xx [\d.]+ % \(SLO ≤ 1 %\), p99 [\d.]+ ms \(SLO ≤ 500 ms\): FAIL/);

  const slowMesh = (call) => {
    const r = healthy(call);
    return {
      ...r,
      timings: { duration: r.headers['X-App-Version'] === 'v2' ? t.latency.p99SloMs + 100 : 5 },
    };
  };
  const slow = await playRun(fixture('canary-50'), slowMesh, { ANALYSIS_FILE: ANALYSIS_YAML });
  assert.ok(
    slow.crossed.some((c) => c.startsWith(`version_duration{version:v2}: p(99)<=${t.latency.p99SloMs}`)),
  );
  assert.ok(!slow.crossed.some((c) => c.startsWith('version_duration{version:v1}')));
  const summary = JSON.parse(slow.out['/out/k6-summary.json']);
  assert.equal(summary.verdict, 'fail');
  assert.deepEqual(
    summary.versions.map((v) => [v.version, v.verdict]),
    [
      ['v1', 'pass'],
      ['v2', 'fail'],
    ],
  );
});

test('a bad analysis.yaml stops the run naming the line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'k6-analysis-'));
  const file = join(dir, 'analysis.yaml');
  writeFileSync(file, readFileSync(ANALYSIS_YAML, 'utf8').replace('p99SloMs: 500', 'p99SloMs: soon'));
  await assert.rejects(
    loadScript(fixture('canary-50'), { ANALYSIS_FILE: file }),
    /bad analysis thresholds in .*analysis\.yaml: line \d+: latency\.p99SloMs must be milliseconds/,
  );
});
