/**
 * Build information stamped by esbuild `define` (see build.mjs). These identifiers exist only in the bundle;
 * an unbundled run (which nothing in this repo does) reports "dev".
 */
declare const __APP_VERSION__: string;
declare const __BUILD_TIME__: string;
declare const __GIT_SHA__: string;

export interface BuildInfo {
  /** Release name, e.g. v1 or v2. */
  version: string;
  /** ISO 8601 time of the build. */
  buildTime: string;
  /** Commit the bundle was built from, or "unknown". */
  gitSha: string;
}

export const buildInfo: BuildInfo = {
  version: typeof __APP_VERSION__ === 'string' ? __APP_VERSION__ : 'dev',
  buildTime: typeof __BUILD_TIME__ === 'string' ? __BUILD_TIME__ : 'unknown',
  gitSha: typeof __GIT_SHA__ === 'string' ? __GIT_SHA__ : 'unknown',
};
