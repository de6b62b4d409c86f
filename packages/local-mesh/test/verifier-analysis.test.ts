/**
 * What the verifier gives the canary analysis: with serverErrorsAsAnswers a 5xx the app gave counts for the split
 * and is handed on as an error of its version (without it, it fails the split check as before); StepTraffic
 * collects the default profile's answers per version and counts what reached no version. No timing is asserted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { planVerification } from '@rollouts/split-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTableSource,
  formatSplitLine,
  Gateway,
  LoadClient,
  type ResponseSample,
  StepTraffic,
  stageExpectation,
  type TableSource,
  verifyStage,
} from '../src/index.js';
import { FIXTURE_ROOT, NO_LINT } from './helpers.js';

const plan = planVerification({ randomStages: 5 });

/** An app stand-in: answers with x-app-version, every `errorEvery`-th request with 500 (0: never). */
async function startApp(version: string, errorEvery: number): Promise<{ server: Server; origin: string }> {
  let n = 0;
  const server = createServer((_req, res) => {
    n++;
    const status = errorEvery > 0 && n % errorEvery === 0 ? 500 : 200;
    res.writeHead(status, { 'content-type': 'application/json', 'x-app-version': version });
    res.end(JSON.stringify({ version, status }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let apps: { server: Server; origin: string }[];
let source: TableSource;
let gateway: Gateway;
let client: LoadClient;

beforeAll(async () => {
  // v2 fails every 10th request; v3 is there for the fixture's other stages.
  apps = await Promise.all([startApp('v1', 0), startApp('v2', 10), startApp('v3', 0)]);
  source = createTableSource(
    FIXTURE_ROOT,
    { v1: apps[0]?.origin as string, v2: apps[1]?.origin as string, v3: apps[2]?.origin as string },
    NO_LINT,
  );
  gateway = new Gateway({ table: source.build('split-25') });
  client = new LoadClient({ origin: `http://127.0.0.1:${await gateway.listen(0)}` });
});

afterAll(async () => {
  await client?.close();
  await gateway?.close();
  for (const a of apps ?? []) {
    a.server.closeAllConnections();
    a.server.close();
  }
});

describe('the verifier and the canary analysis', () => {
  it('fails the split check on the app’s 5xx answers by default, as before', async () => {
    const result = await verifyStage({
      client,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
    });
    expect(result.verdict).toBe('fail');
    expect(result.failedRequests).toBeGreaterThan(0);
    expect(result.profiles[0]?.reason).toMatch(/failed request\(s\): \d+ × status 500/);
  });

  it('with serverErrorsAsAnswers, counts them for the split, leaves them to the analysis and shows every sample', async () => {
    const samples: ResponseSample[] = [];
    const result = await verifyStage({
      client,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
      serverErrorsAsAnswers: true,
      onSample: (_profile, s) => samples.push(s),
    });
    const profile = result.profiles[0];
    expect(result.verdict).toBe('pass');
    expect(result.failedRequests).toBe(0);
    expect(profile?.serverErrors.v2).toBeGreaterThan(0);
    expect(profile?.serverErrors.v1).toBeUndefined();
    expect(profile?.reason).toMatch(/; \d+ × 5xx from v2 counted for the split, left to the analysis$/);
    expect(samples).toHaveLength(profile?.requests as number);
    expect(samples.filter((s) => s.status === 500).map((s) => s.outcome)).toEqual(
      Array(profile?.serverErrors.v2).fill('v2'),
    );
    expect(samples.every((s) => s.latencyMs >= 0 && Number.isFinite(s.latencyMs))).toBe(true);
    expect(formatSplitLine(result)).toMatch(
      /^split: v2 25\.0 % expected, \d+\.\d % seen \(\d+ requests\), as expected: pass$/,
    );
  });
});

describe('StepTraffic', () => {
  it('collects the default profile’s answers per version, 5xx as errors of their version', async () => {
    gateway.apply(source.build('split-25'));
    const profile = stageExpectation(FIXTURE_ROOT, 'split-25').profiles[0];
    if (!profile) throw new Error('no default profile');
    const traffic = new StepTraffic({ client, profile, canary: 'v2', baseline: 'v1' });
    await traffic.collect(400);
    const s = traffic.samples();
    expect(traffic.sent).toBe(400);
    expect(s.canary.requests + (s.baseline?.requests ?? 0)).toBe(400);
    expect(s.unattributed).toBe(0);
    // Every 10th answer of v2 is a 500: among k consecutive ones, floor(k / 10) or ceil(k / 10).
    expect(s.canary.errors).toBeGreaterThanOrEqual(Math.floor(s.canary.requests / 10));
    expect(s.canary.errors).toBeLessThanOrEqual(Math.ceil(s.canary.requests / 10));
    expect(s.baseline?.errors).toBe(0);
    expect(s.canary.latenciesMs).toHaveLength(s.canary.requests);
  });

  it('counts what reached neither version as unattributed, with the first failures kept', () => {
    const profile = { name: 'default', headers: {}, versions: { v1: 0.75, v2: 0.25 } };
    const traffic = new StepTraffic({ client, profile, canary: 'v2', baseline: 'v1' });
    traffic.record({ version: 'v2', status: 200, latencyMs: 1, outcome: 'v2' });
    traffic.record({ version: 'v2', status: 503, latencyMs: 2, outcome: 'v2' });
    traffic.record({ version: null, status: 503, latencyMs: 1, outcome: { kind: 'status', status: 503 } });
    traffic.record({
      version: null,
      status: null,
      latencyMs: 5,
      outcome: { kind: 'error', error: 'ECONNRESET' },
    });
    traffic.record({ version: 'v3', status: 200, latencyMs: 1, outcome: 'v3' });
    expect(traffic.samples()).toMatchObject({
      canary: { requests: 2, errors: 1, latenciesMs: [1, 2] },
      baseline: { requests: 0, errors: 0 },
      unattributed: 3,
    });
    expect(traffic.failures).toEqual([
      { kind: 'status', status: 503 },
      { kind: 'error', error: 'ECONNRESET' },
      { kind: 'status', status: 200, version: 'v3' },
    ]);
  });
});
