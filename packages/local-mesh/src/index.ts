export * from './admin.js';
export * from './config.js';
export * from './gateway.js';
export * from './load.js';
export * from './metrics.js';
export * from './processes.js';
export * from './report.js';
export * from './verifier.js';
