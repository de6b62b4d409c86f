import { hostname } from 'node:os';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createApp } from './app.js';
import { buildInfo } from './build-info.js';
import { type AppConfig, ConfigError, loadConfig } from './config.js';
import { createLifecycle } from './server.js';

function readConfig(): AppConfig {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`webapp: ${problem}\n`);
    process.exit(1);
  }
}

const config = readConfig();
const destination = pino.destination({ dest: 1, sync: false });
const logger = pino(
  {
    level: config.logLevel,
    base: { app: 'webapp', version: buildInfo.version, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
  },
  destination,
);

const exit = (code: number): never => {
  destination.flushSync();
  process.exit(code);
};

const lifecycle = createLifecycle(config, logger, exit, buildInfo.version);
const app = createApp({
  build: buildInfo,
  config,
  registry: new Registry(),
  logger,
  isShuttingDown: lifecycle.isShuttingDown,
});

try {
  const { port } = await lifecycle.listen(app);
  logger.info(
    {
      port,
      host: config.host,
      node: process.version,
      buildTime: buildInfo.buildTime,
      gitSha: buildInfo.gitSha,
      faultErrorRate: config.faultErrorRate,
      faultDelayMs: config.faultDelayMs,
    },
    'listening',
  );
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code ?? String(err);
  process.stderr.write(`webapp: cannot listen on ${config.host}:${config.port}: ${code}\n`);
  exit(1);
}
