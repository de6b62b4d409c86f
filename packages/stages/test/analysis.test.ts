// The canary analysis over the repository's stage matrix: which stages it judges (with a baseline or against the
// SLOs only) and who is the canary and who the baseline at each, from the file the gateway serves.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analysisSteps, findRepoRoot, listStages, paths, stageRoles } from '../src/index.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));
const work = mkdtempSync(join(tmpdir(), 'stages-analysis-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the repository's istio/ and chart values, with `edit` applied to one HTTPRoute stage file. */
function withHttpRoute(stage: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(work, 'repo-'));
  cpSync(join(root, 'istio'), join(dir, 'istio'), { recursive: true });
  cpSync(paths.values(root), paths.values(dir));
  const file = join(paths.gatewayApiStagesDir(dir), `${stage}.yaml`);
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
  return dir;
}

describe('the analysed steps', () => {
  it('every stage whose requests without header reach the new version; a baseline where the old one gets some', () => {
    expect(analysisSteps(listStages(root))).toEqual([
      { stage: 'canary-10', baseline: true },
      { stage: 'canary-25', baseline: true },
      { stage: 'canary-50', baseline: true },
      { stage: 'canary-75', baseline: true },
      { stage: 'canary-100', baseline: false },
      { stage: 'blue-preview', baseline: true },
      { stage: 'blue', baseline: false },
    ]);
  });

  it('the thresholds file is analysis.yaml at the root', () => {
    expect(paths.analysis(root)).toBe(join(root, 'analysis.yaml'));
    expect(existsSync(paths.analysis(root))).toBe(true);
  });
});

describe('the roles at a stage', () => {
  it('the new version is the canary, the one other version reached its baseline', () => {
    expect(stageRoles(root, 'canary-25')).toEqual({ canary: 'v2', baseline: 'v1', share: 0.25 });
    expect(stageRoles(root, 'blue-preview')).toEqual({ canary: 'v2', baseline: 'v1', share: 0.1 });
    expect(stageRoles(root, 'canary-100')).toEqual({ canary: 'v2', baseline: null, share: 1 });
  });

  it('none where the new version gets no traffic, nor for a stage that is not listed', () => {
    expect(stageRoles(root, 'stable')).toBeNull();
    expect(stageRoles(root, 'green')).toBeNull();
    expect(stageRoles(root, 'no-such-stage')).toBeNull();
  });

  it('the same from either API for every stage (the two files agree)', () => {
    for (const summary of listStages(root))
      expect(stageRoles(root, summary, 'gateway-api'), summary.name).toEqual(stageRoles(root, summary));
  });

  it('with gateway-api, read from the HTTPRoute file, not the VirtualService', () => {
    // canary-25's HTTPRoute at 50/50 and canary-100's with v1 at 50 (their VirtualServices unchanged)
    const half = withHttpRoute('canary-25', (t) => t.replace('weight: 75', 'weight: 25'));
    expect(stageRoles(half, 'canary-25', 'virtualservice')).toEqual({
      canary: 'v2',
      baseline: 'v1',
      share: 0.25,
    });
    expect(stageRoles(half, 'canary-25', 'gateway-api')).toEqual({
      canary: 'v2',
      baseline: 'v1',
      share: 0.5,
    });
    const shared = withHttpRoute('canary-100', (t) => t.replace('weight: 0', 'weight: 100'));
    expect(stageRoles(shared, 'canary-100', 'virtualservice')?.baseline).toBeNull();
    expect(stageRoles(shared, 'canary-100', 'gateway-api')).toEqual({
      canary: 'v2',
      baseline: 'v1',
      share: 0.5,
    });
  });
});
