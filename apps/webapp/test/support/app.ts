import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type AppDeps, createApp } from '../../src/app.js';

export const VERSIONS = ['v1', 'v2'] as const;
export type Version = (typeof VERSIONS)[number];

export const BUILD = { buildTime: '2026-01-02T03:04:05.000Z', gitSha: '0123456789abcdef' };

/** An app as main.ts builds it, silent, with a fresh registry; any dependency may be overridden. */
export function makeApp(
  version: string,
  overrides: Partial<Omit<AppDeps, 'config'>> & { config?: Partial<AppDeps['config']> } = {},
) {
  const registry = overrides.registry ?? new Registry();
  const app = createApp({
    build: { version, ...BUILD },
    logger: pino({ level: 'silent' }),
    hostname: 'test-host',
    ...overrides,
    config: { faultErrorRate: 0, faultDelayMs: 0, ...overrides.config },
    registry,
  });
  return { app, registry };
}

/** mulberry32: a small seeded PRNG with uniform output in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Exact two-sided acceptance band of Binomial(n, p) at level alpha: the largest `lo` with P(X < lo) <= alpha/2
 * and the smallest `hi` with P(X > hi) <= alpha/2. Computed from the pmf in log space (no underflow at n = 2000).
 */
export function binomialBand(n: number, p: number, alpha: number): { lo: number; hi: number } {
  const logPmf: number[] = [n * Math.log1p(-p)];
  const logRatio = Math.log(p) - Math.log1p(-p);
  for (let k = 0; k < n; k++) logPmf.push((logPmf[k] as number) + Math.log((n - k) / (k + 1)) + logRatio);
  const pmf = logPmf.map(Math.exp);

  let lo = 0;
  let below = 0; // P(X < lo)
  while (lo < n && below + (pmf[lo] as number) <= alpha / 2) below += pmf[lo++] as number;
  let hi = n;
  let above = 0; // P(X > hi)
  while (hi > 0 && above + (pmf[hi] as number) <= alpha / 2) above += pmf[hi--] as number;
  return { lo, hi };
}

/** The value of one sample in Prometheus text format, or 0 when the series does not exist yet. */
export function sampleValue(metricsText: string, name: string, labels: Record<string, string>): number {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.slice(name.length + 1, close);
    const found = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(line.slice(close + 1).trim());
  }
  return 0;
}
