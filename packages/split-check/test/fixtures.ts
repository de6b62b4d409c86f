// Thresholds for the tests, always read from text with split-check's readThresholds (never typed as an object):
// the fixture's fixed numbers, or the repository's analysis.yaml, the one definition of the thresholds in use.
import { readFileSync } from 'node:fs';
import { type AnalysisThresholds, readThresholds } from '../src/index.js';

/** The repository's analysis.yaml, as `make progress` reads it. */
export const ANALYSIS_YAML = new URL('../../../analysis.yaml', import.meta.url);

/** test/fixtures/thresholds.yaml: the numbers the verdict tests and the SciPy reference values are written for. */
export const FIXTURE_YAML = new URL('./fixtures/thresholds.yaml', import.meta.url);

export const readText = (file: URL): string => readFileSync(file, 'utf8');

/** The fixture's thresholds, independent of the repository's analysis.yaml. */
export const FIXTURE_THRESHOLDS: AnalysisThresholds = readThresholds(readText(FIXTURE_YAML));
