/**
 * Who a step's canary analysis judges, and what its traffic sends, come from the file the gateway serves: with
 * `--api gateway-api` (or API=gateway-api), on the local and the cluster path alike, the stage's HTTPRoute, not its
 * VirtualService. Lint keeps the two files of a stage in agreement, so a copy of the repository with one HTTPRoute
 * edited is what tells them apart.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analysisTraffic } from '../src/analysis.js';
import { REPO_ROOT } from './helpers.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the repository's istio/ and chart values, canary-100's HTTPRoute sending half of its requests to v1. */
function withHalfOnV1(): string {
  dir = mkdtempSync(join(tmpdir(), 'rollout-roles-'));
  cpSync(join(REPO_ROOT, 'istio'), join(dir, 'istio'), { recursive: true });
  cpSync(join(REPO_ROOT, 'charts', 'webapp', 'values.yaml'), join(dir, 'charts', 'webapp', 'values.yaml'));
  const file = join(dir, 'istio', 'stages', 'gateway-api', 'canary-100.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('weight: 0', 'weight: 100'));
  return dir;
}

describe("a step's analysis traffic", () => {
  it('comes from the VirtualService by default, from the HTTPRoute with gateway-api', () => {
    const root = withHalfOnV1();
    expect(analysisTraffic(root, 'canary-100', 'virtualservice')).toMatchObject({
      roles: { canary: 'v2', baseline: null, share: 1 },
      profile: { name: 'default', headers: {}, versions: { v2: 1 } },
    });
    expect(analysisTraffic(root, 'canary-100', 'gateway-api')).toMatchObject({
      roles: { canary: 'v2', baseline: 'v1', share: 0.5 },
      profile: { name: 'default', headers: {}, versions: { v1: 0.5, v2: 0.5 } },
    });
  });

  it('none at a stage where the new version gets no traffic, whichever the API', () => {
    expect(analysisTraffic(REPO_ROOT, 'stable', 'virtualservice').roles).toBeNull();
    expect(analysisTraffic(REPO_ROOT, 'stable', 'gateway-api').roles).toBeNull();
  });
});
