// The thresholds file: the repository's analysis.yaml holds the demo defaults; the reader refuses what it does
// not read, naming the line.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_THRESHOLDS,
  MappingSyntaxError,
  parseMapping,
  readThresholds,
  ThresholdsError,
} from '../src/index.js';

const problems = (text: string): string[] => {
  try {
    readThresholds(text);
  } catch (err) {
    if (err instanceof ThresholdsError) return err.problems;
    throw err;
  }
  return [];
};

describe('analysis.yaml', () => {
  it('holds the defaults the code documents', () => {
    const text = readFileSync(new URL('../../../analysis.yaml', import.meta.url), 'utf8');
    expect(readThresholds(text)).toEqual(DEFAULT_THRESHOLDS);
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
    const text = readFileSync(new URL('../../../analysis.yaml', import.meta.url), 'utf8').replace(
      'slo: 0.01',
      'slo: 1 %',
    );
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
