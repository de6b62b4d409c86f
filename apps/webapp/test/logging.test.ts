import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { makeApp } from './support/app.js';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level }, stream) };
}

describe('request logs', () => {
  it('writes one structured JSON line per request, with level by status, and none for probes', async () => {
    const { lines, logger } = capture('info');
    const { app } = makeApp('v2', { logger });
    await request(app).get('/?q=1').set('x-request-id', 'abc-123').expect(200);
    await request(app).get('/missing').expect(404);
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    await request(app).get('/metrics').expect(200);

    expect(lines).toHaveLength(2);
    const [ok, missing] = lines as [Record<string, unknown>, Record<string, unknown>];
    expect(ok).toMatchObject({
      level: 30,
      msg: 'request completed',
      req: { id: 'abc-123', method: 'GET', url: '/?q=1' },
      res: { statusCode: 200 },
    });
    expect(typeof ok.responseTime).toBe('number');
    expect(missing).toMatchObject({ level: 40, req: { url: '/missing' }, res: { statusCode: 404 } });
  });

  it('logs a 5xx at error level with the error', async () => {
    const { lines, logger } = capture('info');
    const { app } = makeApp('v1', { logger, config: { faultErrorRate: 1 } });
    await request(app).get('/').expect(500);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      res: { statusCode: 500 },
      err: { message: expect.stringContaining('injected') },
    });
  });

  it('writes nothing at LOG_LEVEL silent, and the app still answers', async () => {
    const { lines, logger } = capture('silent');
    const { app } = makeApp('v1', { logger });
    await request(app).get('/').expect(200);
    await request(app).get('/missing').expect(404);
    expect(lines).toHaveLength(0);
  });
});
