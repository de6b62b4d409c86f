/**
 * The verification table both paths print (the local verifier and k6's handleSummary): profile | version |
 * expected | observed | interval | verdict. Plain strings, no Node APIs, so k6 can use it too.
 */

import type { ProportionInterval } from './intervals.js';

/** A measured share: "12.3 %" (one decimal, so expected and observed columns line up). */
export function formatPercent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

/** A rate to read closely (error rates, margins): "0.10 %", "5.20 %", "12.3 %": two decimals under 10 %. */
export function formatShare(share: number): string {
  if (!Number.isFinite(share)) return '-';
  const pct = share * 100;
  return `${pct.toFixed(Math.abs(pct) < 10 ? 2 : 1)} %`;
}

/** A share a manifest promises, as its weights say it: "25 %", "33.33 %" (no decimals when there are none). */
export function formatWeightShare(share: number): string {
  const pct = share * 100;
  return `${Number.isInteger(pct) ? pct : pct.toFixed(2)} %`;
}

/** Pads cells into aligned columns separated by two spaces; the first row is the header. */
export function formatTable(
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number> = new Set(),
): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Every line of `text` prefixed (two spaces by default). */
export function indent(text: string, prefix = '  '): string {
  return text
    .split('\n')
    .map((line) => `${prefix}${line}`)
    .join('\n');
}

/** One version of one request profile: what was expected and what was seen. */
export interface VersionRow {
  version: string;
  /** Expected share. */
  expected: number;
  /** Observed share. */
  observed: number;
  count: number;
  /** Interval of the observed share (null without answers). */
  interval: ProportionInterval | null;
  verdict: 'pass' | 'fail';
}

/**
 * The outcome of one request profile as both paths report it (the local verifier's result, k6's summary): the
 * common part of their JSON, and what the table shows.
 */
export interface ProfileOutcome<Row extends VersionRow = VersionRow> {
  /** "default", or the override, e.g. "x-canary: always". */
  name: string;
  /** Headers every request of the profile carried. */
  headers: Record<string, string>;
  verdict: 'pass' | 'fail';
  reason: string;
  /** Requests that completed, failed ones and wrong headers included. */
  requests: number;
  /** Requests the plan called for (at most, for a sequential test). */
  plannedN: number;
  /** Answers per version. */
  counts: Record<string, number>;
  rows: Row[];
  /** Non-2xx answers, resets and timeouts. */
  failedRequests: number;
  /** 2xx answers without the response headers the matched route sets (x-rollouts-stage: another stage). */
  wrongHeaders: number;
}

/** A request profile as the table shows it. */
export interface ProfileRows {
  name: string;
  verdict: 'pass' | 'fail';
  rows: readonly Pick<VersionRow, 'version' | 'expected' | 'observed' | 'interval' | 'verdict'>[];
}

const verdictText = (v: 'pass' | 'fail') => (v === 'pass' ? 'pass' : 'FAIL');

/**
 * The table of a verification, one line per version of each profile (the profile named on its first line), the
 * interval column headed with its confidence, e.g. "99.98 % interval". Not indented.
 */
export function formatSplitTable(profiles: readonly ProfileRows[], confidence: number): string {
  const rows: string[][] = [
    [
      'profile',
      'version',
      'expected',
      'observed',
      `${+(confidence * 100).toPrecision(6)} % interval`,
      'verdict',
    ],
  ];
  for (const profile of profiles) {
    if (profile.rows.length === 0)
      rows.push([profile.name, '-', '-', '-', '-', verdictText(profile.verdict)]);
    profile.rows.forEach((row, i) => {
      rows.push([
        i === 0 ? profile.name : '',
        row.version,
        formatPercent(row.expected),
        formatPercent(row.observed),
        row.interval ? `${formatPercent(row.interval.lo)} – ${formatPercent(row.interval.hi)}` : '-',
        verdictText(row.verdict),
      ]);
    });
  }
  return formatTable(rows, new Set([2, 3]));
}
