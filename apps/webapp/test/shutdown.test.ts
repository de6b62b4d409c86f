import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLES } from './support/paths.js';
import { get, type Reply, startBundle, stopAll } from './support/process.js';

afterEach(stopAll);

describe('graceful shutdown of the built server', () => {
  it('SIGTERM: readiness fails at once, in-flight and drain-time requests all succeed, then exit 0', async () => {
    const DRAIN = 3000;
    const DELAY = 4000; // longer than the drain: these requests are still running when the server closes
    const server = await startBundle(BUNDLES.v1, {
      SHUTDOWN_DRAIN_MS: String(DRAIN),
      SHUTDOWN_TIMEOUT_MS: '15000',
      FAULT_DELAY_MS: String(DELAY),
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
      // Eight keep-alive connections, then four slow requests in flight on them.
      await Promise.all(Array.from({ length: 8 }, () => get(`${server.url}/healthz`, agent)));
      const inFlight = Array.from({ length: 4 }, () => get(`${server.url}/`, agent));

      const signalledAt = performance.now();
      server.child.kill('SIGTERM');

      // Poll (no sleeping) until readiness fails; liveness keeps answering.
      const readiness: number[] = [];
      let ready: Reply;
      do {
        ready = await get(`${server.url}/readyz`);
        readiness.push(ready.status);
      } while (ready.status === 200 && readiness.length < 10_000);
      expect(ready.status).toBe(503);
      expect(ready.headers['x-app-version']).toBe('v1');
      expect(JSON.parse(ready.body)).toEqual({ status: 'shutting down' });
      expect(performance.now() - signalledAt).toBeLessThan(DRAIN);

      // During the drain the idle keep-alive connections still carry requests.
      const during = await Promise.all(Array.from({ length: 4 }, () => get(`${server.url}/version`, agent)));
      for (const reply of during) {
        expect(reply.status).toBe(200);
        expect(reply.reusedSocket).toBe(true);
      }
      expect((await get(`${server.url}/healthz`)).status).toBe(200);

      // The slow ones finish after the close; their connections are told to close.
      const finished = await Promise.all(inFlight);
      for (const reply of finished) {
        expect(reply.status).toBe(200);
        expect(reply.headers['x-app-version']).toBe('v1');
        expect(reply.headers.connection).toBe('close');
      }

      const exit = await server.exited;
      const took = performance.now() - signalledAt;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(took).toBeGreaterThanOrEqual(DRAIN);
      expect(took).toBeLessThan(15000);
      const messages = server.logs.map((l) => l.msg);
      expect(messages).toEqual(
        expect.arrayContaining([
          'shutdown started, readiness now fails',
          'drain over, closing the server',
          'server closed',
        ]),
      );
      expect(messages.indexOf('drain over, closing the server')).toBeLessThan(
        messages.indexOf('server closed'),
      );
    } finally {
      agent.destroy();
    }
  });

  it('SIGINT with no drain closes idle keep-alive connections and exits 0 at once', async () => {
    const server = await startBundle(BUNDLES.v2, { SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '20000' });
    const agent = new http.Agent({ keepAlive: true });
    await Promise.all(Array.from({ length: 3 }, () => get(`${server.url}/`, agent)));
    const start = performance.now();
    server.child.kill('SIGINT');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    // far below both the hard timeout and the 65 s keep-alive timeout the idle connections would otherwise hold
    expect(performance.now() - start).toBeLessThan(5000);
    agent.destroy();
  });

  it('a request outliving SHUTDOWN_TIMEOUT_MS makes the process exit 1 at the timeout', async () => {
    const server = await startBundle(BUNDLES.v1, {
      SHUTDOWN_DRAIN_MS: '100',
      SHUTDOWN_TIMEOUT_MS: '1000',
      FAULT_DELAY_MS: '60000',
    });
    const stuck = get(`${server.url}/`).catch((err: Error) => err);
    // However late the slow request is read, it is inside the 100 ms drain, so it is in flight at the close.
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
    const start = performance.now();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    const took = performance.now() - start;
    expect(exit.code).toBe(1);
    expect(took).toBeGreaterThanOrEqual(1000 - 50);
    expect(took).toBeLessThan(10000);
    expect(server.logs.some((l) => l.msg === 'shutdown timed out')).toBe(true);
    expect(await stuck).toBeInstanceOf(Error);
  });

  it('a second signal during the drain exits 1 at once', async () => {
    const server = await startBundle(BUNDLES.v1, {
      SHUTDOWN_DRAIN_MS: '20000',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    server.child.kill('SIGTERM');
    let status = 200;
    for (let polls = 0; status === 200 && polls < 10_000; polls++)
      status = (await get(`${server.url}/readyz`)).status;
    expect(status).toBe(503);
    server.child.kill('SIGTERM');
    const start = performance.now();
    expect((await server.exited).code).toBe(1);
    expect(performance.now() - start).toBeLessThan(5000);
  });
});
