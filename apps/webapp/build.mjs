#!/usr/bin/env node
// Bundles src/main.ts into one self-contained ESM file per version, the version stamped at build time.
//   node build.mjs                               -> dist/v1/main.js and dist/v2/main.js
//   node build.mjs --version v2 --outdir out     -> out/main.js (what the Dockerfile runs)
// Env: GIT_SHA (else `git rev-parse HEAD`, else "unknown"); SOURCE_DATE_EPOCH pins the build time.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_VERSIONS = ['v1', 'v2'];
const VERSION_PATTERN = /^v\d+(\.\d+){0,2}$/;
const USAGE = 'usage: node build.mjs [--version vN] [--outdir DIR]';

function fail(message) {
  process.stderr.write(`build: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseCli() {
  try {
    const { values } = parseArgs({
      options: {
        version: { type: 'string' },
        outdir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    return values;
  } catch (err) {
    return fail(err.message);
  }
}

function gitSha() {
  const fromEnv = process.env.GIT_SHA?.trim();
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

function buildTime() {
  const epoch = process.env.SOURCE_DATE_EPOCH?.trim();
  if (!epoch) return new Date().toISOString();
  if (!/^\d+$/.test(epoch))
    fail(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(epoch)}`);
  return new Date(Number(epoch) * 1000).toISOString();
}

async function bundle(version, outfile, stamp) {
  await build({
    absWorkingDir: HERE,
    entryPoints: ['src/main.ts'],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    define: {
      __APP_VERSION__: JSON.stringify(version),
      __BUILD_TIME__: JSON.stringify(stamp.buildTime),
      __GIT_SHA__: JSON.stringify(stamp.gitSha),
      'process.env.NODE_ENV': JSON.stringify('production'),
    },
    // The bundled CommonJS dependencies call require() for Node built-ins; give ESM one.
    banner: {
      js: "import { createRequire as __webappCreateRequire } from 'node:module';\nconst require = __webappCreateRequire(import.meta.url);",
    },
  });
  // Tell Node the bundle is ESM wherever it is copied with its directory (the image has no package.json).
  writeFileSync(join(dirname(outfile), 'package.json'), '{ "type": "module" }\n');
}

const args = parseCli();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.version !== undefined && !VERSION_PATTERN.test(args.version)) {
  fail(`--version must look like v1, v2 or v2.1.0, got ${JSON.stringify(args.version)}`);
}
if (args.outdir !== undefined && args.outdir.trim() === '') fail('--outdir must not be empty');

const outdir = resolve(HERE, args.outdir ?? 'dist');
const stamp = { buildTime: buildTime(), gitSha: gitSha() };
const targets = args.version
  ? [{ version: args.version, outfile: join(outdir, 'main.js') }]
  : DEFAULT_VERSIONS.map((version) => ({ version, outfile: join(outdir, version, 'main.js') }));

for (const { version, outfile } of targets) {
  mkdirSync(dirname(outfile), { recursive: true });
  await bundle(version, outfile, stamp);
  process.stdout.write(
    `built ${version} -> ${outfile} (git ${stamp.gitSha.slice(0, 12)}, ${stamp.buildTime})\n`,
  );
}
