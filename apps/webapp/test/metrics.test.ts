import { register as globalRegistry } from 'prom-client';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { makeApp, sampleValue, VERSIONS } from './support/app.js';

describe.each(VERSIONS)('%s metrics', (version) => {
  it('counts N requests to "/" under its route template, method, status and version', async () => {
    const { app } = makeApp(version);
    const labels = { route: '/', method: 'GET', status_code: '200', app: 'webapp', version };
    const before = (await request(app).get('/metrics')).text;
    const N = 37;
    for (let i = 0; i < N; i++) {
      // query strings and Accept variants must all land on the same series
      await request(app)
        .get(i % 2 ? '/' : `/?n=${i}`)
        .set('accept', i % 3 ? 'application/json' : 'text/html');
    }
    const after = (await request(app).get('/metrics')).text;
    expect(
      sampleValue(after, 'http_requests_total', labels) - sampleValue(before, 'http_requests_total', labels),
    ).toBe(N);
    expect(
      sampleValue(after, 'http_request_duration_seconds_count', labels) -
        sampleValue(before, 'http_request_duration_seconds_count', labels),
    ).toBe(N);
    expect(sampleValue(after, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(N);
    expect(after).toContain('# TYPE http_request_duration_seconds histogram');
  });

  it('labels unknown routes "unmatched", never with the raw URL', async () => {
    const { app } = makeApp(version);
    await request(app).get('/secret/user/jane-doe-q7').expect(404);
    await request(app).get('/another-odd-path').expect(404);
    const text = (await request(app).get('/metrics')).text;
    expect(
      sampleValue(text, 'http_requests_total', {
        route: 'unmatched',
        method: 'GET',
        status_code: '404',
        version,
      }),
    ).toBe(2);
    expect(text).not.toContain('jane-doe-q7');
    expect(text).not.toContain('another-odd-path');
  });

  it('counts each endpoint under its own route and errors under their status', async () => {
    const { app } = makeApp(version, { config: { faultErrorRate: 1 } });
    await request(app).get('/').expect(500);
    await request(app).get('/version').expect(200);
    await request(app).get('/healthz').expect(200);
    const text = (await request(app).get('/metrics')).text;
    const count = (route: string, status: string) =>
      sampleValue(text, 'http_requests_total', { route, method: 'GET', status_code: status, version });
    expect(count('/', '500')).toBe(1);
    expect(count('/', '200')).toBe(0);
    expect(count('/version', '200')).toBe(1);
    expect(count('/healthz', '200')).toBe(1);
  });

  it('uses the registry it is given, not the global one', async () => {
    const { app, registry } = makeApp(version);
    await request(app).get('/').expect(200);
    expect(await registry.getSingleMetricAsString('http_requests_total')).toContain(`version="${version}"`);
    expect(globalRegistry.getSingleMetric('http_requests_total')).toBeUndefined();
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
  });
});
