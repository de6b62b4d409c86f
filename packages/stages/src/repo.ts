import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The repository root: the nearest directory at or above `from` (default: the current directory) that holds
 * pnpm-workspace.yaml. Throws when there is none.
 */
export function findRepoRoot(from: string = process.cwd()): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`no pnpm-workspace.yaml found in ${resolve(from)} or any directory above it`);
    }
    dir = parent;
  }
}

/** The Kubernetes namespace everything runs in. */
export const NAMESPACE = 'rollouts';

/** Well-known paths inside the repository. */
export const paths = {
  stagesDir: (root: string) => join(root, 'istio', 'stages'),
  baseDir: (root: string) => join(root, 'istio', 'base'),
  destinationRule: (root: string) => join(root, 'istio', 'base', 'destination-rule.yaml'),
  gateway: (root: string) => join(root, 'istio', 'base', 'gateway.yaml'),
  /** The HTTPRoute stage files (Gateway API), one per stage beside its VirtualService. */
  gatewayApiStagesDir: (root: string) => join(root, 'istio', 'stages', 'gateway-api'),
  /** The Gateway API Gateway Istio deploys for the HTTPRoute stages. */
  kubeGateway: (root: string) => join(root, 'istio', 'base', 'gateway-api', 'gateway.yaml'),
  values: (root: string) => join(root, 'charts', 'webapp', 'values.yaml'),
  /** The shared knobs' defaults (TARGET, API, CLUSTER_NAME, ...): packages/stages/src/defaults.ts. */
  defaults: (root: string) => join(root, 'defaults.env'),
  /** The canary analysis' thresholds (their one definition: without the file there is no analysis). */
  analysis: (root: string) => join(root, 'analysis.yaml'),
};
