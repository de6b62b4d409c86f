export * from './expectations.js';
export * from './page/model.js';
export * from './page/protocol.js';
export * from './server.js';
export * from './target.js';
export * from './traffic.js';
