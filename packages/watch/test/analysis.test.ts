/**
 * The thresholds file of the page's canary analysis: analysis.yaml at the root, as `make progress` reads it. It is
 * their one definition, so without it, or with a bad value, there is no analysis: an error that names the file
 * and what to do (the server logs it and the page shows it in place of the analysis).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AnalysisFileError, loadAnalysis } from '../src/index.js';
import { REPO_ROOT } from './support.js';

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function errorOf(root: string): AnalysisFileError {
  try {
    loadAnalysis(root);
  } catch (err) {
    expect(err).toBeInstanceOf(AnalysisFileError);
    return err as AnalysisFileError;
  }
  throw new Error('loadAnalysis did not throw');
}

describe('loadAnalysis', () => {
  it('reads the repository’s analysis.yaml', () => {
    expect(loadAnalysis(REPO_ROOT).file).toBe('analysis.yaml');
  });

  it('without analysis.yaml: no analysis, and how to get the file back', () => {
    dir = mkdtempSync(join(tmpdir(), 'watch-analysis-'));
    const error = errorOf(dir);
    expect(error.file).toBe('analysis.yaml');
    expect(error.message).toBe(
      'the analysis thresholds file analysis.yaml does not exist (it ships with the repository: git checkout analysis.yaml)',
    );
  });

  it('a bad value: the file, the line and the problem', () => {
    dir = mkdtempSync(join(tmpdir(), 'watch-analysis-'));
    const text = readFileSync(join(REPO_ROOT, 'analysis.yaml'), 'utf8').replace(
      /p99SloMs: \S+/,
      'p99SloMs: soon',
    );
    writeFileSync(join(dir, 'analysis.yaml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('p99SloMs: soon')) + 1;
    expect(errorOf(dir).message).toBe(
      `bad analysis thresholds in analysis.yaml: line ${line}: latency.p99SloMs must be milliseconds, > 0, e.g. 500; got "soon" (fix the file, or git checkout analysis.yaml)`,
    );
  });
});
