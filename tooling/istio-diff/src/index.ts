/**
 * @rollouts/istio-diff: the differential test of the route table and routing decisions of @rollouts/stages
 * against Istio's own control plane (bin/istio-oracle). See README.md.
 */
export * from './case.js';
export * from './compare.js';
export * from './diff.js';
export * from './features.js';
export * from './generate.js';
export * from './generate-httproute.js';
export * from './oracle.js';
export * from './repo.js';
export * from './run.js';
