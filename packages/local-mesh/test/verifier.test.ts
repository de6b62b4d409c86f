/**
 * The verifier passes a correct split and fails a wrong one; failed requests fail the stage and cannot hang it.
 * (Pass and fail rates over many runs: bench/verifier-rates.mjs.)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { planVerification } from '@rollouts/split-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createTableSource,
  Gateway,
  LoadClient,
  stageExpectation,
  type TableSource,
  VerificationInterrupted,
  verifyStage,
} from '../src/index.js';
import { FIXTURE_ROOT, NO_LINT, startUpstream, type Upstream } from './helpers.js';

// The repository's plan: 5 random checks share the family alpha.
const plan = planVerification({ randomStages: 5 });
let upstreams: Upstream[];
let source: TableSource;
let gateway: Gateway;
let client: LoadClient;

beforeAll(async () => {
  upstreams = await Promise.all(['v1', 'v2', 'v3'].map(startUpstream));
  source = createTableSource(
    FIXTURE_ROOT,
    Object.fromEntries(upstreams.map((u) => [u.version, u.origin])),
    NO_LINT,
  );
  gateway = new Gateway({ table: source.build('split-25') });
  client = new LoadClient({ origin: `http://127.0.0.1:${await gateway.listen(0)}` });
});

afterAll(async () => {
  await client?.close();
  await gateway?.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

describe('verifier', () => {
  it('passes a correct 75/25 split with the sequential test, within its truncation point', async () => {
    gateway.apply(source.build('split-25'));
    const result = await verifyStage({
      client,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
    });
    expect(result.verdict).toBe('pass');
    const profile = result.profiles[0];
    expect(profile?.kind).toBe('binomial');
    expect(profile?.sprt?.decision).toBe('accept');
    expect(profile?.requests).toBeLessThanOrEqual(profile?.plannedN ?? 0);
    expect(result.failedRequests).toBe(0);
    expect(profile?.rows.map((r) => r.version)).toEqual(['v1', 'v2']);
  });

  it('fails when the gateway sends 20 % where the stage says 25 %', async () => {
    gateway.apply(source.build('split-25', { v1: 80, v2: 20 }));
    const result = await verifyStage({
      client,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
    });
    expect(result.verdict).toBe('fail');
    expect(result.profiles[0]?.sprt?.decision).toBe('reject');
    expect(result.failedRequests).toBe(0);
  });

  it('checks a three-way split with chi-square and every header route deterministically', async () => {
    gateway.apply(source.build('matches'));
    const expectation = stageExpectation(FIXTURE_ROOT, 'matches');
    const result = await verifyStage({ client, plan, expectation });
    expect(result.profiles.map((p) => [p.name, p.kind, p.verdict])).toEqual([
      ['default', 'chi-square', 'pass'],
      ['x-canary: always', 'deterministic', 'pass'],
      ['x-team: blue (GET /api)', 'deterministic', 'pass'],
    ]);
    expect(result.profiles[0]?.requests).toBe(result.profiles[0]?.plannedN);
  });

  it('fails a three-way split that is off (v2 20 %, v3 30 % instead of 30 / 20)', async () => {
    gateway.apply(source.build('matches', { v1: 50, v2: 20, v3: 30 }));
    const result = await verifyStage({
      client,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'matches'),
    });
    expect(result.profiles[0]?.verdict).toBe('fail');
    expect(result.profiles[0]?.pValue).toBeLessThan(plan.alphaPerStage);
    expect(result.verdict).toBe('fail');
  });

  it('fails at once when the answers name another stage in x-rollouts-stage (the switch did not happen)', async () => {
    gateway.apply(source.build('all-v3'));
    const expectation = stageExpectation(FIXTURE_ROOT, 'split-25');
    expect(expectation.profiles[0]?.responseHeaders).toEqual({ 'x-rollouts-stage': 'split-25' });
    const result = await verifyStage({ client, plan, expectation });
    expect(result.verdict).toBe('fail');
    expect(result.profiles[0]?.reason).toMatch(
      /^\d+ answer\(s\) with \d+ × x-rollouts-stage "all-v3", not "split-25": the gateway does not serve stage split-25/,
    );
    expect(result.profiles[0]?.wrongHeaders).toBeGreaterThan(0);
    expect(result.failedRequests).toBe(0);
    expect(result.requests).toBeLessThan(100);
  });

  it('fails at once when a request reaches a version the profile never routes to', async () => {
    gateway.apply(source.build('all-v3'));
    // Without the stage header check, the version alone gives the mistake away.
    const { profiles, stage } = stageExpectation(FIXTURE_ROOT, 'split-25');
    const result = await verifyStage({
      client,
      plan,
      expectation: { stage, profiles: profiles.map(({ responseHeaders: _, ...p }) => p) },
    });
    expect(result.verdict).toBe('fail');
    expect(result.profiles[0]?.reason).toMatch(/got v3, which this profile never routes to/);
    expect(result.requests).toBeLessThan(100);
  });

  it('checks a no-route profile: every request answered 404', async () => {
    gateway.apply(source.build('matches'));
    const result = await verifyStage({
      client,
      plan,
      expectation: {
        stage: 'matches',
        profiles: [
          { name: 'no route', headers: { 'x-no-route': '1' }, path: '/x', versions: {}, noRoute: true },
        ],
      },
    });
    expect(result.verdict).toBe('pass');
    expect(result.profiles[0]?.counts).toEqual({ '404 (no route)': plan.deterministicN });
  });

  it('fails, and stops early, when a workload dies mid-verification', async () => {
    const v2 = await startUpstream('v2');
    const origins = {
      v1: (upstreams[0] as Upstream).origin,
      v2: v2.origin,
      v3: (upstreams[2] as Upstream).origin,
    };
    const local = new Gateway({ table: createTableSource(FIXTURE_ROOT, origins, NO_LINT).build('split-25') });
    const localClient = new LoadClient({ origin: `http://127.0.0.1:${await local.listen(0)}` });
    let served = 0;
    v2.server.on('request', () => {
      if (++served === 50) void v2.close();
    });
    const started = performance.now();
    const result = await verifyStage({
      client: localClient,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
    });
    await localClient.close();
    await local.close();
    expect(result.verdict).toBe('fail');
    expect(result.failedRequests).toBeGreaterThan(0);
    expect(result.profiles[0]?.reason).toMatch(/failed request\(s\): .*status 503/);
    // Every row of a profile whose requests failed reads fail, whatever its interval says.
    expect(result.profiles[0]?.rows.map((r) => r.verdict)).toEqual(['fail', 'fail']);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('verifier against a gateway that never answers', () => {
  const hung = createServer(() => {
    // accept and never respond
  });
  afterEach(() => {
    hung.closeAllConnections();
    hung.close();
  });

  it('reports timeouts as failed requests instead of hanging', async () => {
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const port = (hung.address() as AddressInfo).port;
    const slow = new LoadClient({ origin: `http://127.0.0.1:${port}`, timeoutMs: 300 });
    const started = performance.now();
    const result = await verifyStage({
      client: slow,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
      profileTimeoutMs: 5_000,
    });
    await slow.close();
    expect(result.verdict).toBe('fail');
    expect(result.profiles[0]?.failures.summary).toMatch(/UND_ERR_HEADERS_TIMEOUT/);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('an abort (Ctrl-C) rejects with VerificationInterrupted at once: no verdict', async () => {
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const port = (hung.address() as AddressInfo).port;
    const slow = new LoadClient({ origin: `http://127.0.0.1:${port}`, timeoutMs: 30_000 });
    const controller = new AbortController();
    // Abort once the first request reached the server (it never answers).
    hung.once('request', () => controller.abort('SIGINT'));
    const started = performance.now();
    const verifying = verifyStage({
      client: slow,
      plan,
      expectation: stageExpectation(FIXTURE_ROOT, 'split-25'),
      profileTimeoutMs: 30_000,
      signal: controller.signal,
    });
    await expect(verifying).rejects.toThrow(VerificationInterrupted);
    await expect(verifying).rejects.toThrow('verification of split-25 interrupted (SIGINT)');
    expect(performance.now() - started).toBeLessThan(5_000);
    await slow.close();
  });
});
