/**
 * The CLI's thin wrappers over local-mesh's rules, in process: the running local path's admin API (found as `make
 * watch` finds it, its token registered for the stage switches) and the ports of a local path of its own. A bad
 * variable is bad input (UsageError, exit 2).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registeredAdminToken } from '@rollouts/local-mesh';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { adminUrl, localPorts } from '../src/context.js';
import { UsageError } from '../src/errors.js';
import { REPO_ROOT } from './helpers.js';

let state: string;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'rollout-context-'));
  vi.stubEnv('ROLLOUT_STATE_DIR', state);
  for (const k of ['ADMIN_PORT', 'GATEWAY_PORT', 'V1_PORT', 'V2_PORT']) vi.stubEnv(k, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(state, { recursive: true, force: true });
});

describe('adminUrl', () => {
  it('the port `rollout local up` recorded (a blank ADMIN_PORT is unset), with its token registered', () => {
    mkdirSync(join(state, 'local'));
    writeFileSync(
      join(state, 'local', 'ports.json'),
      JSON.stringify({ adminPort: 25001, gatewayPort: 8080 }),
    );
    writeFileSync(join(state, 'local', 'admin-token'), 'the-token\n');
    vi.stubEnv('ADMIN_PORT', '  ');
    const url = adminUrl(REPO_ROOT);
    expect(url).toBe('http://127.0.0.1:25001');
    expect(registeredAdminToken(url)).toBe('the-token');
  });

  it('15000 when the recorded port is not one; a bad ADMIN_PORT is bad input', () => {
    mkdirSync(join(state, 'local'));
    writeFileSync(join(state, 'local', 'ports.json'), JSON.stringify({ adminPort: 0 }));
    expect(adminUrl(REPO_ROOT)).toBe('http://127.0.0.1:15000');
    vi.stubEnv('ADMIN_PORT', 'admin');
    expect(() => adminUrl(REPO_ROOT)).toThrow(UsageError);
  });
});

describe('localPorts', () => {
  it("the chart's versions on their ports; a bad variable is bad input", () => {
    vi.stubEnv('GATEWAY_PORT', '18080');
    vi.stubEnv('V2_PORT', '4002');
    expect(localPorts(REPO_ROOT)).toMatchObject({ gateway: 18080, admin: 15000, versions: { v2: 4002 } });
    vi.stubEnv('GATEWAY_PORT', 'http');
    expect(() => localPorts(REPO_ROOT)).toThrow(UsageError);
    expect(() => localPorts(REPO_ROOT)).toThrow(/GATEWAY_PORT="http" is not a port/);
  });
});
