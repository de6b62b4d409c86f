/** Readable tables for verification results (the table itself is split-check's, shared with k6). */
import { formatSplitTable, formatTable, indent } from '@rollouts/split-check';
import type { StageResult } from './verifier.js';

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Pads cells into aligned columns; the first row is the header. */
export const table = formatTable;

/** One table per stage: profile | version | expected % | observed % | interval | verdict, then one line per check. */
export function formatStageResult(result: StageResult): string {
  const lines = [
    `stage ${result.stage}: ${result.verdict === 'pass' ? 'PASS' : 'FAIL'} — ${result.requests} requests in ${formatSeconds(result.durationMs)}` +
      (result.failedRequests > 0 ? `, ${result.failedRequests} failed` : ''),
    indent(formatSplitTable(result.profiles, result.confidence)),
  ];
  for (const p of result.profiles) {
    const test =
      p.kind === 'sprt' ? 'SPRT' : p.kind === 'chi-square' ? 'chi-square, fixed n' : 'deterministic';
    lines.push(
      `  ${p.name}: ${test}, ${p.requests} requests (plan ${p.kind === 'sprt' ? 'at most ' : ''}${p.plannedN}) in ${formatSeconds(p.durationMs)}: ${p.reason}`,
    );
  }
  for (const note of result.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}
