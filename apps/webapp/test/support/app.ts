export { mulberry32 as seededRandom } from '@rollouts/split-check';

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
    config: { faultErrorRate: 0, faultDelayMs: 0, color: null, ...overrides.config },
    registry,
  });
  return { app, registry };
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
