/**
 * The local path's ports: GATEWAY_PORT always given (defaults.env's default, through the CLI), admin fixed, every
 * version by one rule (vN on 3000 + N, V<N>_PORT
 * overriding), the list of versions always the caller's (the chart's), never a table of its own.
 */
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_PORTS,
  defaultVersionPort,
  gatewayUrlFromEnv,
  portEnvName,
  portsFromEnv,
} from '../src/config.js';
import { workloadVersions } from '../src/routing.js';
import { FIXTURE_ROOT } from './helpers.js';

/** What the CLI passes: GATEWAY_PORT from defaults.env unless the environment sets it. */
const GATEWAY = { GATEWAY_PORT: '8080' };

describe('portsFromEnv', () => {
  it('gives vN 3000 + N with no variable set, for exactly the versions passed', () => {
    expect(portsFromEnv(GATEWAY, ['v1', 'v2', 'v3'])).toEqual({
      gateway: 8080,
      admin: 15000,
      versions: { v1: 3001, v2: 3002, v3: 3003 },
    });
    expect(portsFromEnv(GATEWAY, ['v2']).versions).toEqual({ v2: 3002 });
    expect(portsFromEnv(GATEWAY, []).versions).toEqual({});
    expect(DEFAULT_PORTS).toEqual({ admin: 15000 });
  });

  it('has no gateway port of its own: without GATEWAY_PORT it says where the default is', () => {
    for (const env of [{}, { GATEWAY_PORT: ' ' }]) {
      expect(() => portsFromEnv(env, ['v1'])).toThrow(
        /GATEWAY_PORT is not set: its default is in defaults\.env/,
      );
      expect(() => gatewayUrlFromEnv(env)).toThrow(ConfigError);
    }
    expect(gatewayUrlFromEnv({ GATEWAY_PORT: '18080' })).toBe('http://localhost:18080');
    expect(gatewayUrlFromEnv({ GATEWAY_URL: 'http://127.0.0.1:9/x', GATEWAY_PORT: '' })).toBe(
      'http://127.0.0.1:9',
    );
  });

  it('lets V<N>_PORT, GATEWAY_PORT and ADMIN_PORT override; blank means unset', () => {
    const env = { V3_PORT: '4103', V1_PORT: ' ', GATEWAY_PORT: '18080', ADMIN_PORT: '25000' };
    expect(portsFromEnv(env, ['v1', 'v3'])).toEqual({
      gateway: 18080,
      admin: 25000,
      versions: { v1: 3001, v3: 4103 },
    });
  });

  it('needs the variable of a key that is not v<integer>, and names it', () => {
    expect(() => portsFromEnv(GATEWAY, ['v1', 'canary'])).toThrow(ConfigError);
    expect(() => portsFromEnv(GATEWAY, ['v1', 'canary'])).toThrow(/workload canary: set CANARY_PORT/);
    expect(() => portsFromEnv({ ...GATEWAY, CANARY_PORT: '' }, ['canary'])).toThrow(/set CANARY_PORT/);
    expect(portsFromEnv({ ...GATEWAY, CANARY_PORT: '4000' }, ['canary']).versions).toEqual({ canary: 4000 });
    expect(() => portsFromEnv(GATEWAY, ['v2.1.0'])).toThrow(/set V2_1_0_PORT/);
  });

  it('rejects a variable that is not a port, naming it', () => {
    expect(() => portsFromEnv({ ...GATEWAY, V3_PORT: 'http' }, ['v3'])).toThrow(
      /V3_PORT="http" is not a port/,
    );
    expect(() => portsFromEnv({ ...GATEWAY, V1_PORT: '70000' }, ['v1'])).toThrow(/V1_PORT="70000"/);
    expect(() => portsFromEnv({ GATEWAY_PORT: 'x' }, [])).toThrow(/GATEWAY_PORT="x" is not a port/);
  });

  it("covers the chart's versions as the callers pass them (a values file with v1, v2, v3)", () => {
    expect(portsFromEnv(GATEWAY, workloadVersions(FIXTURE_ROOT)).versions).toEqual({
      v1: 3001,
      v2: 3002,
      v3: 3003,
    });
  });
});

describe('defaultVersionPort', () => {
  it.each([
    ['v0', 3000],
    ['v1', 3001],
    ['v3', 3003],
    ['v42', 3042],
    ['v62535', 65535],
  ])('%s -> %i', (version, port) => {
    expect(defaultVersionPort(version)).toBe(port);
  });

  it.each(['canary', 'v', 'v01', 'v2.1.0', 'V1', 'v1-rc1', 'v62536'])('%s has none', (version) => {
    expect(defaultVersionPort(version)).toBeNull();
  });
});

describe('portEnvName', () => {
  it('upper-cases the role and turns other characters into _', () => {
    expect(portEnvName('gateway')).toBe('GATEWAY_PORT');
    expect(portEnvName('admin')).toBe('ADMIN_PORT');
    expect(portEnvName('v3')).toBe('V3_PORT');
    expect(portEnvName('canary')).toBe('CANARY_PORT');
    expect(portEnvName('v2.1.0')).toBe('V2_1_0_PORT');
  });
});
