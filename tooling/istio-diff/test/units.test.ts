/** The pieces that need no oracle: the client's refusal to start without a binary, the diff, the normaliser. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  diffValues,
  fieldPattern,
  normalizeRouteConfiguration,
  notModelledReason,
  ORACLE_MISSING,
  Oracle,
} from '../src/index.js';

describe('oracle client', () => {
  it('refuses to start without bin/istio-oracle, saying how to build it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'istio-diff-'));
    try {
      expect(() => Oracle.start(dir)).toThrow(ORACLE_MISSING);
      expect(ORACLE_MISSING).toBe(
        'bin/istio-oracle is missing: run tooling/istio-oracle/build.sh (make test builds it)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('comparison pieces', () => {
  it('diffValues reports each differing leaf with both values; key order does not matter', () => {
    expect(diffValues({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toEqual([]);
    expect(diffValues({ a: { b: [1, 2] } }, { a: { b: [1] }, c: true })).toEqual([
      { what: 'a.b[1]', ours: 2, istio: '(absent)' },
      { what: 'c', ours: '(absent)', istio: true },
    ]);
  });

  it('the normaliser drops what protojson never prints (empty lists) and the fields out of scope', () => {
    const rc = (routes: unknown[]) => ({
      name: 'http.8080',
      virtualHosts: [{ name: 'blackhole:80', domains: ['*'], routes, typedPerFilterConfig: { x: {} } }],
    });
    expect(normalizeRouteConfiguration(rc([]))).toEqual(
      normalizeRouteConfiguration({
        name: 'http.8080',
        virtualHosts: [{ name: 'blackhole:80', domains: ['*'] }],
      }),
    );
    expect(
      diffValues(normalizeRouteConfiguration(rc([{ name: 'a' }])), normalizeRouteConfiguration(rc([]))),
    ).toHaveLength(1);
  });

  it('refusal fields and simulation notes are counted by kind', () => {
    expect(fieldPattern('spec.http[3].route[0].destination.host')).toBe(
      'spec.http[].route[].destination.host',
    );
    expect(fieldPattern('spec.http[0].headers.response.set.X-Custom')).toBe(
      'spec.http[].headers.response.set.<name>',
    );
    expect(
      notModelledReason(
        'route[0] "canary-override": header match {"name":"x-canary","stringMatch":{"exact":"always"}}',
      ),
    ).toBe('header match (not evaluated by the simulation)');
    expect(
      notModelledReason('route[1] "": header match {"name":":method","stringMatch":{"exact":"GET"}}'),
    ).toBe('method match (not evaluated by the simulation)');
  });
});
