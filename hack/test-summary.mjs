#!/usr/bin/env node
// Adds up the JUnit XML files of every suite (vitest, helm-unittest, kubeconform, checkov, bats, and the harness's
// own records) and prints a table per file, the failed test names, and as the very last line "N passed, N failed".
// Exits 1 when anything failed or when no test ran at all.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.test-results';

const decode = (s) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** Every <testcase> of a JUnit document with its outcome. */
function parseJunit(xml) {
  const cases = [];
  const re = /<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1] ?? '';
    const body = m[2] ?? '';
    const name = decode(/\bname="([^"]*)"/.exec(attrs)?.[1] ?? '(unnamed)');
    const cls = decode(/\bclassname="([^"]*)"/.exec(attrs)?.[1] ?? '');
    const outcome = /<(failure|error)\b/.test(body)
      ? 'failed'
      : /<skipped\b/.test(body)
        ? 'skipped'
        : 'passed';
    cases.push({ name: cls ? `${cls} › ${name}` : name, outcome });
  }
  return cases;
}

let files = [];
try {
  files = readdirSync(dir)
    .filter((f) => f.endsWith('.xml'))
    .sort();
} catch {
  // no results directory: reported below as no tests
}

const totals = { passed: 0, failed: 0, skipped: 0 };
const failures = [];
console.log('\nTest results');
console.log(`${'file'.padEnd(36)} ${'passed'.padStart(7)} ${'failed'.padStart(7)} ${'skipped'.padStart(8)}`);
for (const f of files) {
  const cases = parseJunit(readFileSync(join(dir, f), 'utf8'));
  const c = { passed: 0, failed: 0, skipped: 0 };
  for (const tc of cases) {
    c[tc.outcome] += 1;
    if (tc.outcome === 'failed') failures.push(`${f}: ${tc.name}`);
  }
  for (const k of Object.keys(totals)) totals[k] += c[k];
  console.log(
    `${f.padEnd(36)} ${String(c.passed).padStart(7)} ${String(c.failed).padStart(7)} ${String(c.skipped).padStart(8)}`,
  );
}
if (failures.length > 0) {
  console.log('\nFailed:');
  for (const f of failures) console.log(`  ✗ ${f}`);
}
const ranNothing = totals.passed + totals.failed === 0;
if (ranNothing) console.log('\nNo test ran.');
console.log(
  `\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`,
);
process.exit(totals.failed > 0 || ranNothing ? 1 : 0);
