import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { BUILD, makeApp, VERSIONS } from './support/app.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** [r, g, b] of a #rrggbb colour. */
function rgb(hex: string): number[] {
  expect(hex).toMatch(/^#[0-9a-f]{6}$/i);
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
}

describe.each(VERSIONS)('%s endpoints', (version) => {
  const { app } = makeApp(version);

  it('GET / answers JSON describing the version', async () => {
    const res = await request(app).get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.body).toMatchObject({ app: 'webapp', version, hostname: 'test-host' });
    expect(res.body.message).toContain(version);
    expect(res.headers.vary).toMatch(/accept/i);
  });

  it('GET / without Accept, with */* or preferring JSON answers JSON', async () => {
    for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/html']) {
      const req = request(app).get('/');
      if (accept) req.set('accept', accept);
      const res = await req.expect(200);
      expect(res.headers['content-type'], `Accept: ${accept}`).toMatch(/^application\/json/);
    }
  });

  it('GET / answers an HTML page coloured by version when the client prefers text/html', async () => {
    for (const accept of [BROWSER_ACCEPT, 'text/html', 'text/html, application/json']) {
      const res = await request(app).get('/').set('accept', accept).expect(200);
      expect(res.headers['content-type'], `Accept: ${accept}`).toMatch(/^text\/html/);
      expect(res.headers['x-app-version']).toBe(version);
    }
    const json = (await request(app).get('/')).body as { color: string };
    const html = (await request(app).get('/').set('accept', BROWSER_ACCEPT)).text;
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain(`<h1>${version}</h1>`);
    expect(html).toContain(`background:${json.color}`);
  });

  it('GET /version reports the build', async () => {
    const res = await request(app).get('/version').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ version, buildTime: BUILD.buildTime, gitSha: BUILD.gitSha });
    expect(res.headers['x-app-version']).toBe(version);
  });

  it('GET /healthz and /readyz answer 200', async () => {
    const health = await request(app).get('/healthz').expect(200);
    expect(health.body).toEqual({ status: 'ok' });
    expect(health.headers['x-app-version']).toBe(version);
    const ready = await request(app).get('/readyz').expect(200);
    expect(ready.body).toEqual({ status: 'ready' });
    expect(ready.headers['x-app-version']).toBe(version);
  });

  it('GET /metrics answers Prometheus text naming the version', async () => {
    const res = await request(app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.text).toContain(`process_cpu_user_seconds_total{app="webapp",version="${version}"}`);
  });

  it('an unknown route answers a JSON 404 with the version header', async () => {
    const res = await request(app).get('/no/such/page?x=1').expect(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.body).toEqual({ status: 404, error: 'Not Found', message: 'no route for GET /no/such/page' });
  });

  it('a wrong method on a known path answers a JSON 404', async () => {
    const res = await request(app).delete('/version').expect(404);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.body.status).toBe(404);
  });

  it('a body over 16kb answers a JSON 413 with the version header', async () => {
    const res = await request(app)
      .post('/')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(17 * 1024) }))
      .expect(413);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.body).toEqual({
      status: 413,
      error: 'Payload Too Large',
      message: 'request entity too large',
    });
  });

  it('a body under the limit is not refused', async () => {
    await request(app)
      .post('/')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(15 * 1024) }))
      .expect(404);
  });

  it('malformed JSON answers a JSON 400 without a stack trace', async () => {
    const res = await request(app)
      .post('/')
      .set('content-type', 'application/json')
      .send('{"a":')
      .expect(400);
    expect(res.headers['x-app-version']).toBe(version);
    expect(res.body.status).toBe(400);
    expect(res.text).not.toMatch(/stack|\bat .*\(|node_modules/);
  });

  it('sends helmet security headers, no x-powered-by, and forbids caching', async () => {
    for (const path of ['/', '/nope']) {
      const res = await request(app).get(path);
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });
});

describe('v1 and v2 differ visibly', () => {
  it('the page is coloured by the deployment it runs in (APP_COLOR), not by the release; only v2 lists features', async () => {
    const get = async (version: string, color: 'green' | 'blue') =>
      (await request(makeApp(version, { config: { color } }).app).get('/')).body as {
        color: string;
        features?: string[];
      };
    const v1 = await get('v1', 'green');
    const v2 = await get('v2', 'blue');
    // the next release goes to the idle colour: v3 in green is painted green
    expect((await get('v3', 'green')).color).toBe(v1.color);
    expect((await get('v1', 'blue')).color).toBe(v2.color);
    const [r1, g1, b1] = rgb(v1.color) as [number, number, number];
    const [r2, g2, b2] = rgb(v2.color) as [number, number, number];
    expect(g1).toBeGreaterThan(Math.max(r1, b1));
    expect(b2).toBeGreaterThan(Math.max(r2, g2));
    expect(v1.features).toBeUndefined();
    expect(v2.features).toEqual(expect.arrayContaining([expect.any(String)]));
    expect(v2.features?.length).toBeGreaterThan(0);
  });

  it('a version outside blue-green (no APP_COLOR) renders in a neutral colour', async () => {
    const res = await request(makeApp('v3').app).get('/').expect(200);
    expect(res.headers['x-app-version']).toBe('v3');
    expect(res.body).toMatchObject({ version: 'v3', color: '#616161' });
  });
});

describe('readiness', () => {
  it('/readyz answers 503 once shutdown has begun, while /healthz and / still answer 200', async () => {
    let shuttingDown = false;
    const { app } = makeApp('v1', { isShuttingDown: () => shuttingDown });
    await request(app).get('/readyz').expect(200);
    shuttingDown = true;
    const res = await request(app).get('/readyz').expect(503);
    expect(res.body).toEqual({ status: 'shutting down' });
    expect(res.headers['x-app-version']).toBe('v1');
    await request(app).get('/healthz').expect(200);
    await request(app).get('/').expect(200);
  });
});
