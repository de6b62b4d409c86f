// The thresholds file: analysis.yaml at the repository root is their one definition (split-check has no built-in
// values); the reader gives what a file says, refuses what it does not read, naming the line, and a file that
// leaves a value out is refused, never completed.
import { describe, expect, it } from 'vitest';
import { MappingSyntaxError, parseMapping, readThresholds, ThresholdsError } from '../src/index.js';
import { ANALYSIS_YAML, readText } from './fixtures.js';

const problems = (text: string): string[] => {
  try {
    readThresholds(text);
  } catch (err) {
    if (err instanceof ThresholdsError) return err.problems;
    throw err;
  }
  return [];
};

/** A thresholds file with other numbers than the repository's, comments and blank lines as analysis.yaml has. */
const FIXTURE = `# a fixture
errorRate:
  # the SLO
  slo: 0.02
  margin: 0.005 # half a point

latency:
  p99SloMs: 250
  marginMs: 20

decision:
  falseAbort: 0.0005
  miss: 0.05
  looks: 2
  maxRequestsPerStep: 20000
`;

describe('analysis.yaml', () => {
  it("the repository's file reads and validates", () => {
    expect(problems(readText(ANALYSIS_YAML))).toEqual([]);
  });
});

describe('a thresholds file', () => {
  it('gives the numbers it holds', () => {
    expect(readThresholds(FIXTURE)).toEqual({
      errorRate: { slo: 0.02, margin: 0.005 },
      latency: { p99SloMs: 250, marginMs: 20 },
      decision: { falseAbort: 0.0005, miss: 0.05, looks: 2, maxRequestsPerStep: 20000 },
    });
  });

  it('must hold every value: a missing one is named, not filled in', () => {
    expect(problems(FIXTURE.replace('  marginMs: 20\n', ''))).toEqual([
      'latency.marginMs: missing (milliseconds, > 0, e.g. 50)',
    ]);
    expect(problems('')).toEqual([
      'errorRate: missing, expected a mapping with slo, margin',
      'latency: missing, expected a mapping with p99SloMs, marginMs',
      'decision: missing, expected a mapping with falseAbort, miss, looks, maxRequestsPerStep',
    ]);
  });
});

describe('parseMapping', () => {
  it('reads nested mappings, numbers and comments, with the line of every key', () => {
    const parsed = parseMapping('---\n# top\na:\n  b: 1.5 # note\n  c:\n    d: -2e3\n  e: text here\nf: ~\n');
    expect(parsed.value).toEqual({ a: { b: 1.5, c: { d: -2000 }, e: 'text here' }, f: null });
    expect(parsed.lines).toEqual({ a: 3, 'a.b': 4, 'a.c': 5, 'a.c.d': 6, 'a.e': 7, f: 8 });
  });

  it.each([
    ['a:\n  - 1\n', 2, /not supported here/],
    ['a: [1, 2]\n', 1, /not supported here/],
    ["a: '1'\n", 1, /not supported here/],
    ['a:\n\tb: 1\n', 2, /tab/],
    ['a: 1\na: 2\n', 2, /duplicate key a/],
    ['a:\nb: 1\n', 1, /without a value/],
    ['a:\n  b: 1\n   c: 2\n', 3, /indentation of 3/],
    ['just text\n', 1, /expected "key: value"/],
    ['a:\n', 1, /without a value/],
  ])('refuses %j at line %d', (text, line, message) => {
    let error: unknown;
    try {
      parseMapping(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MappingSyntaxError);
    expect((error as MappingSyntaxError).line).toBe(line);
    expect((error as MappingSyntaxError).message).toMatch(message);
  });
});

describe('readThresholds', () => {
  it('names the line of a bad value', () => {
    const text = FIXTURE.replace('slo: 0.02', 'slo: 1 %');
    const line = text.split('\n').findIndex((l) => l.includes('slo: 1 %')) + 1;
    expect(problems(text)).toEqual([
      `line ${line}: errorRate.slo must be a share in (0, 0.5], e.g. 0.01 for 1 %; got "1 %"`,
    ]);
  });

  it('turns a syntax error into a thresholds problem', () => {
    expect(problems('errorRate: {slo: 1}\n')).toEqual([
      'line 1: not supported here: "{slo: 1}" (write a plain number)',
    ]);
  });
});
