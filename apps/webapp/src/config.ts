import { z } from 'zod';

/** Log levels accepted by LOG_LEVEL: pino's levels plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Largest delay a Node timer accepts; longer ones would silently fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export interface AppConfig {
  port: number;
  host: string;
  logLevel: LogLevel;
  shutdownDrainMs: number;
  shutdownTimeoutMs: number;
  faultErrorRate: number;
  faultDelayMs: number;
  /** The blue-green colour of the deployment this process runs in (the chart's versions.<v>.color), or null. */
  color: AppColor | null;
}

/** The deployment colours (the chart's `color` pod label); the page takes its colour from the one it runs in. */
export const APP_COLORS = ['green', 'blue'] as const;
export type AppColor = (typeof APP_COLORS)[number];

const integer = (min: number, max: number) =>
  z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));

const decimal = (min: number, max: number) =>
  z
    .string()
    .regex(/^(\d+(\.\d*)?|\.\d+)$/)
    .transform(Number)
    .pipe(z.number().min(min).max(max));

/** Each variable: its schema (string in, typed value out), its default, and the words used when it is wrong. */
const VARIABLES = {
  PORT: { schema: integer(0, 65535).default(3000), allowed: 'an integer from 0 to 65535' },
  HOST: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9.:%_-]+$/)
      .default('0.0.0.0'),
    allowed: 'an IP address or host name, e.g. 0.0.0.0, ::, 127.0.0.1',
  },
  LOG_LEVEL: { schema: z.enum(LOG_LEVELS).default('info'), allowed: `one of ${LOG_LEVELS.join(', ')}` },
  SHUTDOWN_DRAIN_MS: {
    schema: integer(0, MAX_TIMER_MS).default(5000),
    allowed: `an integer number of milliseconds from 0 to ${MAX_TIMER_MS}`,
  },
  SHUTDOWN_TIMEOUT_MS: {
    schema: integer(1, MAX_TIMER_MS).default(15000),
    allowed: `an integer number of milliseconds from 1 to ${MAX_TIMER_MS}`,
  },
  FAULT_ERROR_RATE: { schema: decimal(0, 1).default(0), allowed: 'a number from 0 to 1, e.g. 0.25' },
  FAULT_DELAY_MS: {
    schema: integer(0, MAX_TIMER_MS).default(0),
    allowed: `an integer number of milliseconds from 0 to ${MAX_TIMER_MS}`,
  },
  APP_COLOR: {
    schema: z.enum(APP_COLORS).optional(),
    allowed: `${APP_COLORS.join(' or ')} (the deployment's colour, versions.<v>.color in the chart), or unset`,
  },
} as const;

type VariableName = keyof typeof VARIABLES;
const NAMES = Object.keys(VARIABLES) as VariableName[];

const EnvSchema = z.object(
  Object.fromEntries(NAMES.map((name) => [name, VARIABLES[name].schema])) as {
    [K in VariableName]: (typeof VARIABLES)[K]['schema'];
  },
);

/** Thrown by loadConfig; `problems` holds one readable line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once. Unset or empty variables take their defaults; surrounding blanks are ignored.
 * Every bad variable is reported (not only the first one).
 */
export function loadConfig(env: NodeJS.ProcessEnv): AppConfig {
  const input: Partial<Record<VariableName, string>> = {};
  for (const name of NAMES) {
    const value = env[name]?.trim();
    if (value) input[name] = value;
  }

  const result = EnvSchema.safeParse(input);
  if (!result.success) {
    const bad = new Set(result.error.issues.map((issue) => String(issue.path[0])));
    const problems = NAMES.filter((name) => bad.has(name)).map(
      (name) => `${name}=${JSON.stringify(env[name])} is invalid: expected ${VARIABLES[name].allowed}`,
    );
    throw new ConfigError(problems);
  }

  const v = result.data;
  if (v.SHUTDOWN_DRAIN_MS >= v.SHUTDOWN_TIMEOUT_MS) {
    throw new ConfigError([
      `SHUTDOWN_DRAIN_MS=${v.SHUTDOWN_DRAIN_MS} is invalid: expected less than SHUTDOWN_TIMEOUT_MS (${v.SHUTDOWN_TIMEOUT_MS}), ` +
        'or the hard timeout fires before the server even closes',
    ]);
  }
  return {
    port: v.PORT,
    host: v.HOST,
    logLevel: v.LOG_LEVEL,
    shutdownDrainMs: v.SHUTDOWN_DRAIN_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    faultErrorRate: v.FAULT_ERROR_RATE,
    faultDelayMs: v.FAULT_DELAY_MS,
    color: v.APP_COLOR ?? null,
  };
}
