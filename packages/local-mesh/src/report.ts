/** Readable tables for verification results (the table itself is split-check's, shared with k6). */
import { formatPercent, formatSplitTable, formatTable, indent } from '@rollouts/split-check';
import type { StageResult } from './verifier.js';

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Pads cells into aligned columns; the first row is the header. */
export const table = formatTable;

/**
 * A stage's verification, plain language first: the verdict, the split in one line, then the table (profile |
 * version | expected % | observed % | interval | verdict). How each check was decided (the test, the plan, the
 * statistic) follows only with `explain`, or for a check that failed.
 */
export function formatStageResult(result: StageResult, options: { explain?: boolean } = {}): string {
  const lines = [
    `stage ${result.stage}: ${result.verdict === 'pass' ? 'PASS' : 'FAIL'} — ${result.requests} requests in ${formatSeconds(result.durationMs)}` +
      (result.failedRequests > 0 ? `, ${result.failedRequests} failed` : ''),
    formatSplitLine(result),
    indent(formatSplitTable(result.profiles, result.confidence)),
  ];
  for (const p of result.profiles) {
    if (!options.explain && p.verdict === 'pass') continue;
    const test =
      p.kind === 'binomial'
        ? 'binomial, SPRT'
        : p.kind === 'chi-square'
          ? 'chi-square, fixed n'
          : 'deterministic';
    lines.push(
      `  ${p.name}: ${test}, ${p.requests} requests (plan ${p.kind === 'binomial' ? 'at most ' : ''}${p.plannedN}) in ${formatSeconds(p.durationMs)}: ${p.reason}`,
    );
  }
  for (const note of result.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

/**
 * The split check in one line of plain language, from the default profile (and how the header routes did):
 * "split: v2 25.0 % expected, 24.8 % seen (1288 requests), as expected: pass; header routes: 1 of 1 pass".
 */
export function formatSplitLine(result: StageResult): string {
  const [main, ...overrides] = result.profiles;
  if (!main) return `split: no profile measured: ${result.verdict === 'pass' ? 'pass' : 'FAIL'}`;
  const verdict = (v: 'pass' | 'fail') => (v === 'pass' ? 'pass' : 'FAIL');
  const answered = Object.values(main.counts).reduce((s, n) => s + n, 0);
  let text: string;
  if (main.kind === 'binomial' && main.tested) {
    const seen = answered > 0 ? (main.counts[main.tested.version] ?? 0) / answered : 0;
    const how =
      main.sprt?.decision === 'accept'
        ? 'as expected'
        : main.sprt?.decision === 'reject'
          ? 'not as expected'
          : 'undecided';
    text = `${main.tested.version} ${formatPercent(main.tested.p0)} expected, ${formatPercent(seen)} seen (${answered} requests), ${how}`;
  } else if (main.kind === 'deterministic') {
    const row = main.rows.find((r) => r.expected === 1);
    text = row
      ? `${row.version} 100 % expected, ${formatPercent(row.observed)} seen (${answered} requests)`
      : `${answered} requests`;
  } else {
    text = `${main.kind}, ${answered} requests`;
  }
  if (main.verdict === 'fail') text += ` (${main.reason})`;
  const passed = overrides.filter((p) => p.verdict === 'pass').length;
  const headers = overrides.length > 0 ? `; header routes: ${passed} of ${overrides.length} pass` : '';
  return `split: ${text}: ${verdict(main.verdict)}${headers}`;
}
