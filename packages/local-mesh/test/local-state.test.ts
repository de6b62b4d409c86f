/**
 * What `rollout local up` records in .state/local/, as the CLI and `make watch` read it: where the files are
 * (ROLLOUT_STATE_DIR moving .state), ports.json and the admin token, and the one rule for the admin API's URL:
 * ADMIN_PORT (blank: unset), else the recorded port (ignored unless an integer from 1 to 65535), else 15000.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import {
  adminTokenFile,
  localDir,
  localStateFile,
  readAdminToken,
  readLocalState,
  resolveAdminUrl,
  stateDir,
} from '../src/local-state.js';

let state: string;
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'local-state-'));
  env = { ROLLOUT_STATE_DIR: state };
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

/** ports.json as `rollout local up` writes it, with `adminPort` as given. */
function recordAdminPort(adminPort: unknown): void {
  mkdirSync(localDir('/repo', env), { recursive: true });
  writeFileSync(localStateFile('/repo', env), JSON.stringify({ gatewayPort: 8080, adminPort }));
}

describe('where the files are', () => {
  it('.state/local/ under the root, or under ROLLOUT_STATE_DIR', () => {
    expect(stateDir('/repo', {})).toBe('/repo/.state');
    expect(localStateFile('/repo', {})).toBe('/repo/.state/local/ports.json');
    expect(adminTokenFile('/repo', {})).toBe('/repo/.state/local/admin-token');
    expect(stateDir('/repo', env)).toBe(state);
    expect(localDir('/repo', env)).toBe(join(state, 'local'));
  });
});

describe('readLocalState and readAdminToken', () => {
  it('null when `rollout local up` wrote nothing, or ports.json is not an object', () => {
    expect(readLocalState('/repo', env)).toBeNull();
    expect(readAdminToken('/repo', env)).toBeNull();
    mkdirSync(localDir('/repo', env), { recursive: true });
    writeFileSync(localStateFile('/repo', env), 'null');
    expect(readLocalState('/repo', env)).toBeNull();
    writeFileSync(adminTokenFile('/repo', env), '\n');
    expect(readAdminToken('/repo', env)).toBeNull();
  });

  it('what it wrote: the ports, and the token without its newline', () => {
    recordAdminPort(25000);
    writeFileSync(adminTokenFile('/repo', env), 'secret\n');
    expect(readLocalState('/repo', env)).toEqual({ gatewayPort: 8080, adminPort: 25000 });
    expect(readAdminToken('/repo', env)).toBe('secret');
  });
});

describe('resolveAdminUrl', () => {
  it('ADMIN_PORT first, else the recorded port, else 15000', () => {
    expect(resolveAdminUrl('/repo', env)).toBe('http://127.0.0.1:15000');
    recordAdminPort(25000);
    expect(resolveAdminUrl('/repo', env)).toBe('http://127.0.0.1:25000');
    expect(resolveAdminUrl('/repo', { ...env, ADMIN_PORT: '16000' })).toBe('http://127.0.0.1:16000');
  });

  it('a blank ADMIN_PORT is unset: the recorded port', () => {
    recordAdminPort(25000);
    expect(resolveAdminUrl('/repo', { ...env, ADMIN_PORT: '  ' })).toBe('http://127.0.0.1:25000');
    expect(resolveAdminUrl('/repo', { ...env, ADMIN_PORT: '' })).toBe('http://127.0.0.1:25000');
  });

  it('ignores a recorded port that is not an integer from 1 to 65535', () => {
    for (const bad of [0, -1, 1.5, 70000, '25000', null]) {
      recordAdminPort(bad);
      expect(resolveAdminUrl('/repo', env)).toBe('http://127.0.0.1:15000');
    }
  });

  it('refuses an ADMIN_PORT that is not a port, naming it', () => {
    expect(() => resolveAdminUrl('/repo', { ...env, ADMIN_PORT: 'admin' })).toThrow(ConfigError);
    expect(() => resolveAdminUrl('/repo', { ...env, ADMIN_PORT: 'admin' })).toThrow(/ADMIN_PORT="admin"/);
  });
});
