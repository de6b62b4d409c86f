import { join } from 'node:path';
import { findRepoRoot } from '@rollouts/stages';
import type { CaseRequest } from '../src/index.js';

export const root = findRepoRoot(new URL('.', import.meta.url).pathname);

/** Where the report goes: TEST_RESULTS_DIR (make test), else .test-results/ at the root. */
export function resultsFile(name: string): string {
  const dir = process.env.TEST_RESULTS_DIR ?? join(root, '.test-results');
  return join(dir, `${name}${process.env.TEST_RESULTS_SUFFIX ?? ''}.json`);
}

/** The requests every stage file is checked with: the Hosts a user sends, with and without override headers. */
export function stageRequests(): CaseRequest[] {
  const hosts = ['localhost', 'localhost:8080', '127.0.0.1:8080', 'webapp.rollouts.svc.cluster.local'];
  const headers: [string, string][][] = [
    [],
    [['x-canary', 'always']],
    [['X-Canary', 'always']],
    [['x-preview', 'blue']],
    [['X-PREVIEW', 'blue']],
    [
      ['x-canary', 'always'],
      ['x-preview', 'blue'],
    ],
  ];
  const out: CaseRequest[] = [];
  for (const authority of hosts) {
    for (const h of headers) out.push({ authority, method: 'GET', path: '/', headers: h });
  }
  out.push({ authority: 'localhost:8080', method: 'GET', path: '/healthz?probe=1', headers: [] });
  return out;
}
