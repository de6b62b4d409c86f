/** Renders charts/webapp once for the whole run (`helm template`); every test file reads it with inject(). */
import { findRepoRoot } from '@rollouts/stages';
import type { TestProject } from 'vitest/node';
import { renderChart } from '../src/repo.js';

declare module 'vitest' {
  export interface ProvidedContext {
    renderedChart: string;
  }
}

export default function setup(project: TestProject): void {
  const root = findRepoRoot(new URL('.', import.meta.url).pathname);
  project.provide('renderedChart', renderChart(root));
}
