// defaults.env, the shared knobs' defaults: read by this package for the CLI and by scripts/lib.sh for the
// scripts. Both readers must give the same values for the same environment.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findRepoRoot, ManifestError, readSettings, setting } from '../src/index.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));

function rootWith(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'defaults-'));
  writeFileSync(join(dir, 'defaults.env'), text);
  return dir;
}

/** What scripts/lib.sh resolves, for the same environment. */
function libSh(env: Record<string, string>, keys: string[]): Record<string, string> {
  const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  const r = spawnSync(
    'bash',
    ['-c', `source scripts/lib.sh && for k in ${keys.join(' ')}; do printf '%s=%s\\n' "$k" "\${!k}"; done`],
    { cwd: root, env: { ...clean, ...env }, encoding: 'utf8' },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
}

describe('defaults.env', () => {
  it('a key the environment sets (non-empty) keeps its value; a reference follows the resolved key above', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: defaults.env's reference syntax
    const dir = rootWith('# comment\n\nNAME=rollouts\nCONTEXT=kind-${NAME}\nURL=http://localhost:8080\n');
    expect(readSettings(dir, {})).toEqual({
      NAME: 'rollouts',
      CONTEXT: 'kind-rollouts',
      URL: 'http://localhost:8080',
    });
    expect(readSettings(dir, { NAME: 'other' }).CONTEXT).toBe('kind-other');
    expect(readSettings(dir, { NAME: 'other', CONTEXT: 'mine' }).CONTEXT).toBe('mine');
    expect(readSettings(dir, { NAME: '' }).NAME).toBe('rollouts');
    expect(setting(dir, 'URL', {})).toBe('http://localhost:8080');
  });

  it('bad lines, references to no key above and unknown knobs are errors naming the file', () => {
    expect(() => readSettings(rootWith('A=1\nnot a line\n'), {})).toThrow(
      /defaults\.env: line 2: expected KEY=value/,
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: defaults.env's reference syntax
    expect(() => readSettings(rootWith('A=${B}\nB=1\n'), {})).toThrow(/line 1: \$\{B\} is not a key above A/);
    expect(() => setting(rootWith('A=1\n'), 'B', {})).toThrow(ManifestError);
    expect(() => readSettings(mkdtempSync(join(tmpdir(), 'defaults-')), {})).toThrow(
      /defaults\.env: \(file\): not found/,
    );
  });

  it("scripts/lib.sh resolves the repository's knobs as the CLI does", () => {
    const keys = Object.keys(readSettings(root, {}));
    expect(keys).toEqual(
      expect.arrayContaining(['TARGET', 'API', 'CLUSTER_NAME', 'KUBE_CONTEXT', 'GATEWAY_URL']),
    );
    const envs: Record<string, string>[] = [
      {},
      { CLUSTER_NAME: 'other' },
      { KUBE_CONTEXT: 'mine', GATEWAY_PORT: '9090' },
      { TARGET: 'local', API: '' },
    ];
    for (const env of envs) {
      expect(libSh(env, keys)).toEqual(readSettings(root, env));
    }
  });
});
