/**
 * The thresholds file of the canary analysis (loadAnalysis, in process): analysis.yaml at the root, else the file
 * of --analysis or $ROLLOUT_ANALYSIS. It is the thresholds' one definition, so a missing, unreadable or bad file
 * is bad input (exit 2) that names the file, where it came from and what to do. Through the command, exit code
 * and all: progress.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAnalysis } from '../src/analysis.js';
import { CliError, EXIT_USAGE, UsageError } from '../src/errors.js';
import { REPO_ROOT } from './helpers.js';

let dir: string;
let saved: string | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rollout-analysis-'));
  saved = process.env.ROLLOUT_ANALYSIS;
  delete process.env.ROLLOUT_ANALYSIS;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.ROLLOUT_ANALYSIS;
  else process.env.ROLLOUT_ANALYSIS = saved;
});

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (err) {
    return err as Error;
  }
  throw new Error('loadAnalysis did not throw');
}

describe('the analysis thresholds file', () => {
  it("is the repository's analysis.yaml by default", () => {
    const loaded = loadAnalysis(REPO_ROOT);
    expect(loaded.file).toBe('analysis.yaml');
    expect(loaded.plan.steps.length).toBeGreaterThan(0);
  });

  it('missing at the root: no analysis, exit 2, and how to get it back', () => {
    const error = errorOf(() => loadAnalysis(dir));
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT_USAGE);
    expect(error.message).toBe(
      'the analysis thresholds file analysis.yaml does not exist: the canary analysis has no other thresholds (it ships with the repository: git checkout analysis.yaml; or pass --analysis FILE)',
    );
  });

  it('missing where ROLLOUT_ANALYSIS or --analysis points: named with where it came from', () => {
    const file = join(dir, 'thresholds.yaml');
    process.env.ROLLOUT_ANALYSIS = file;
    expect(errorOf(() => loadAnalysis(REPO_ROOT)).message).toBe(
      `the analysis thresholds file ${file} does not exist (given by ROLLOUT_ANALYSIS)`,
    );
    // --analysis wins over the variable
    expect(errorOf(() => loadAnalysis(REPO_ROOT, join(dir, 'other.yaml'))).message).toBe(
      `the analysis thresholds file ${join(dir, 'other.yaml')} does not exist (given by --analysis)`,
    );
  });

  it('--analysis FILE and ROLLOUT_ANALYSIS are read instead of analysis.yaml', () => {
    const file = join(dir, 'thresholds.yaml');
    writeFileSync(
      file,
      readFileSync(join(REPO_ROOT, 'analysis.yaml'), 'utf8').replace(/p99SloMs: \S+/, 'p99SloMs: 321'),
    );
    expect(loadAnalysis(REPO_ROOT, file)).toMatchObject({
      file,
      plan: { thresholds: { latency: { p99SloMs: 321 } } },
    });
    process.env.ROLLOUT_ANALYSIS = file;
    expect(loadAnalysis(REPO_ROOT).plan.thresholds.latency.p99SloMs).toBe(321);
  });

  it('not a file: bad input naming it', () => {
    const error = errorOf(() => loadAnalysis(REPO_ROOT, dir));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(
      new RegExp(`^the analysis thresholds file ${dir} \\(given by --analysis\\) cannot be read: EISDIR`),
    );
  });

  it('a bad value: bad input naming the file and the line', () => {
    const text = readFileSync(join(REPO_ROOT, 'analysis.yaml'), 'utf8').replace(/ slo: \S+/, ' slo: 1 %');
    writeFileSync(join(dir, 'analysis.yaml'), text);
    const line = text.split('\n').findIndex((l) => l.includes('slo: 1 %')) + 1;
    const error = errorOf(() => loadAnalysis(dir));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe(
      `bad analysis thresholds in analysis.yaml:\n  line ${line}: errorRate.slo must be a share in (0, 0.5], e.g. 0.01 for 1 %; got "1 %"`,
    );
  });
});
