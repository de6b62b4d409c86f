import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { binomialAcceptanceBand } from '@rollouts/split-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, seededRandom } from './support/app.js';
import { get } from './support/process.js';

/** Serves an app on an ephemeral loopback port for the duration of a describe block. */
function serve(app: http.RequestListener) {
  const server = http.createServer(app);
  const handle = { url: '' };
  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    handle.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return handle;
}

describe('FAULT_ERROR_RATE', () => {
  const N = 2000;
  const RATE = 0.3;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const { app } = makeApp('v1', { config: { faultErrorRate: RATE }, random: seededRandom(20260101) });
  const server = serve(app);
  afterAll(() => agent.destroy());

  it(`answers about ${RATE * 100} % of ${N} requests to / with a JSON 500, inside the exact binomial band`, async () => {
    const statuses = new Map<number, number>();
    for (let sent = 0; sent < N; sent += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => get(`${server.url}/`, agent)));
      for (const reply of batch) {
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        expect(reply.headers['x-app-version']).toBe('v1');
        if (reply.status === 500) {
          expect(JSON.parse(reply.body)).toEqual({
            status: 500,
            error: 'Internal Server Error',
            message: 'injected fault (FAULT_ERROR_RATE)',
          });
        }
      }
    }
    const errors = statuses.get(500) ?? 0;
    expect((statuses.get(200) ?? 0) + errors).toBe(N);
    // Two-sided, alpha 1e-4 (band ~ 520..680): a correct knob lands outside for 1 seed in 10 000; a knob stuck at
    // 0, 0.2, 0.4 or 1 lands outside for practically every seed.
    const { lo, hi } = binomialAcceptanceBand(N, RATE, 1 - 1e-4);
    expect(errors).toBeGreaterThanOrEqual(lo);
    expect(errors).toBeLessThanOrEqual(hi);
  });

  it('touches only /', async () => {
    for (const path of ['/version', '/healthz', '/readyz', '/metrics']) {
      for (let i = 0; i < 20; i++) expect((await get(`${server.url}${path}`, agent)).status, path).toBe(200);
    }
  });
});

describe('FAULT_ERROR_RATE bounds', () => {
  it('0 never fails and 1 always fails', async () => {
    const never = makeApp('v2', { config: { faultErrorRate: 0 }, random: () => 0 });
    const always = makeApp('v2', { config: { faultErrorRate: 1 }, random: () => 0.999999 });
    const a = serveOnce(never.app);
    const b = serveOnce(always.app);
    const [urlA, urlB] = await Promise.all([a.ready, b.ready]);
    for (let i = 0; i < 20; i++) {
      expect((await get(`${urlA}/`)).status).toBe(200);
      const failed = await get(`${urlB}/`);
      expect(failed.status).toBe(500);
      expect(failed.headers['x-app-version']).toBe('v2');
    }
    await Promise.all([a.close(), b.close()]);
  });
});

describe('FAULT_DELAY_MS', () => {
  const DELAY = 250;
  const { app } = makeApp('v2', { config: { faultDelayMs: DELAY } });
  const server = serve(app);

  it('adds at least the configured delay to /', async () => {
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      const reply = await get(`${server.url}/`);
      const took = performance.now() - start;
      expect(reply.status).toBe(200);
      // Node timers have 1 ms resolution, so allow that much rounding.
      expect(took).toBeGreaterThanOrEqual(DELAY - 1);
    }
  });

  it('records the delay in the duration histogram', async () => {
    const text = (await get(`${server.url}/metrics`)).body;
    const sum = /^http_request_duration_seconds_sum\{[^}]*route="\/"[^}]*\} (\S+)$/m.exec(text);
    const count = /^http_request_duration_seconds_count\{[^}]*route="\/"[^}]*\} (\S+)$/m.exec(text);
    expect(Number(sum?.[1]) / Number(count?.[1])).toBeGreaterThanOrEqual((DELAY - 1) / 1000);
  });

  it('does not slow the other endpoints', async () => {
    const start = performance.now();
    await Promise.all(['/healthz', '/readyz', '/version'].map((p) => get(`${server.url}${p}`)));
    expect(performance.now() - start).toBeLessThan(DELAY);
  });
});

function serveOnce(app: http.RequestListener) {
  const server = http.createServer(app).listen(0, '127.0.0.1');
  return {
    ready: once(server, 'listening').then(() => `http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
