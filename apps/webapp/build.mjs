#!/usr/bin/env node
// Bundles src/main.ts into one self-contained ESM file per version, the version stamped at build time.
//   node build.mjs                               -> dist/<version>/main.js for each enabled version of the chart
//                                                   (the keys of `versions` in charts/webapp/values.yaml: v1, v2)
//   node build.mjs --values FILE                 -> the same from another values file (FILE relative to the
//                                                   working directory; tests use it)
//   node build.mjs --version v2 --outdir out     -> out/main.js (what the Dockerfile runs; never reads the chart,
//                                                   which the image's build context does not hold)
// The versions are the chart's, read here directly (the app has no mesh code): a version is skipped when its
// `enabled` (else versionDefaults.enabled) is false, as the chart and the local path do, and every built key must
// look like v1, v2 or v2.1.0 (it is stamped as the app's version), else the build stops with exit 1.
// Env: GIT_SHA (else `git rev-parse HEAD`, else "unknown"); SOURCE_DATE_EPOCH pins the build time.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(HERE, '..', '..');
const CHART_VALUES = join(REPO_ROOT, 'charts', 'webapp', 'values.yaml');
const VERSION_PATTERN = /^v\d+(\.\d+){0,2}$/;
const USAGE = 'usage: node build.mjs [--values FILE | --version vN] [--outdir DIR]';

function fail(message) {
  process.stderr.write(`build: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** A problem with the chart's values (not with the command line): exit 1, no usage line. */
function failValues(file, message) {
  const shown = file.startsWith(REPO_ROOT + sep) ? relative(REPO_ROOT, file) : file;
  process.stderr.write(`build: ${shown}: ${message}\n`);
  process.exit(1);
}

function isRecord(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The enabled version keys of a chart values file, in file order (the reading of
 * packages/stages/src/workloads.ts loadWorkloads: `enabled`, else versionDefaults.enabled, else true).
 */
async function chartVersions(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    failValues(
      file,
      err.code === 'ENOENT'
        ? 'not found: the versions to build are the keys of its `versions` (build one with --version vN instead)'
        : `cannot be read: ${err.message}`,
    );
  }
  // Imported here only: a --version build (the image's) needs neither the chart nor the YAML parser.
  const { parse } = await import('yaml');
  let values;
  try {
    values = parse(text);
  } catch (err) {
    failValues(file, `invalid YAML: ${err.message}`);
  }
  const versions = isRecord(values) ? values.versions : undefined;
  if (!isRecord(versions) || Object.keys(versions).length === 0) {
    failValues(file, '`versions` must be a non-empty mapping of version name to settings');
  }
  const defaults = isRecord(values.versionDefaults) ? values.versionDefaults : {};
  const out = [];
  for (const [version, settings] of Object.entries(versions)) {
    if (!isRecord(settings)) failValues(file, `versions.${version} must be a mapping`);
    if ((settings.enabled ?? defaults.enabled ?? true) === false) continue;
    if (!VERSION_PATTERN.test(version)) {
      failValues(
        file,
        `versions.${version}: ${JSON.stringify(version)} cannot be stamped as the app's version; ` +
          'a version key must look like v1, v2 or v2.1.0 (or set its enabled: false)',
      );
    }
    out.push(version);
  }
  if (out.length === 0) failValues(file, 'no version is enabled: nothing to build');
  return out;
}

function parseCli() {
  try {
    const { values } = parseArgs({
      options: {
        version: { type: 'string' },
        values: { type: 'string' },
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
if (args.values !== undefined && args.version !== undefined) {
  fail(
    '--values and --version exclude each other: --version builds that one version without reading any values',
  );
}
if (args.values !== undefined && args.values.trim() === '') fail('--values must not be empty');

const outdir = resolve(HERE, args.outdir ?? 'dist');
const stamp = { buildTime: buildTime(), gitSha: gitSha() };
const targets = args.version
  ? [{ version: args.version, outfile: join(outdir, 'main.js') }]
  : (await chartVersions(args.values === undefined ? CHART_VALUES : resolve(args.values))).map((version) => ({
      version,
      outfile: join(outdir, version, 'main.js'),
    }));

for (const { version, outfile } of targets) {
  mkdirSync(dirname(outfile), { recursive: true });
  await bundle(version, outfile, stamp);
  process.stdout.write(
    `built ${version} -> ${outfile} (git ${stamp.gitSha.slice(0, 12)}, ${stamp.buildTime})\n`,
  );
}
