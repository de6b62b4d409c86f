/** Readable tables for verification results. */
import type { StageResult } from './verifier.js';

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Pads cells into aligned columns; the first row is the header. */
export function table(rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string {
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

/** One table per stage: profile | version | expected % | observed % | interval | verdict, then one line per check. */
export function formatStageResult(result: StageResult): string {
  const confidence = `${+(result.confidence * 100).toPrecision(6)} % interval`;
  const rows: string[][] = [['profile', 'version', 'expected', 'observed', confidence, 'verdict']];
  for (const profile of result.profiles) {
    profile.rows.forEach((row, i) => {
      rows.push([
        i === 0 ? profile.name : '',
        row.version,
        pct(row.expected),
        pct(row.observed),
        row.interval ? `${pct(row.interval.lo)} – ${pct(row.interval.hi)}` : '-',
        row.verdict === 'pass' ? 'pass' : 'FAIL',
      ]);
    });
  }
  const lines = [
    `stage ${result.stage}: ${result.verdict === 'pass' ? 'PASS' : 'FAIL'} — ${result.requests} requests in ${formatSeconds(result.durationMs)}` +
      (result.failedRequests > 0 ? `, ${result.failedRequests} failed` : ''),
    indent(table(rows, new Set([2, 3]))),
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

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
