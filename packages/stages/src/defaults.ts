/**
 * The shared knobs' defaults (defaults.env at the repository root), read as scripts/lib.sh reads them: a knob the
 * environment sets to a non-empty value keeps it; any other takes the file's value, in which `${KEY}` is the
 * resolved value of a key above it (KUBE_CONTEXT=kind-${CLUSTER_NAME} follows CLUSTER_NAME=other).
 */
import { existsSync, readFileSync } from 'node:fs';
import { ManifestError } from './errors.js';
import { paths } from './repo.js';

const LINE = /^([A-Z_][A-Z0-9_]*)=(.*)$/;
const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

/** The file's text, read once per process (a command asks for knobs many times, e.g. in a poll loop). */
const texts = new Map<string, string>();

function defaultsText(file: string): string {
  let text = texts.get(file);
  if (text === undefined) {
    if (!existsSync(file)) throw new ManifestError(file, '(file)', 'not found');
    text = readFileSync(file, 'utf8');
    texts.set(file, text);
  }
  return text;
}

/** Every knob of defaults.env, resolved against `env`: the environment's value if set, else the file's. */
export function readSettings(root: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const file = paths.defaults(root);
  const out: Record<string, string> = {};
  defaultsText(file)
    .split('\n')
    .forEach((raw, index) => {
      if (/^\s*(#|$)/.test(raw)) return;
      const m = LINE.exec(raw);
      if (!m)
        throw new ManifestError(file, `line ${index + 1}`, `expected KEY=value, got ${JSON.stringify(raw)}`);
      const [, key, value] = m as unknown as [string, string, string];
      const given = env[key];
      out[key] =
        given !== undefined && given !== ''
          ? given
          : value.replace(REFERENCE, (_, ref: string) => {
              const resolved = out[ref];
              if (resolved === undefined) {
                throw new ManifestError(file, `line ${index + 1}`, `\${${ref}} is not a key above ${key}`);
              }
              return resolved;
            });
    });
  return out;
}

/**
 * Puts every knob's resolved value into `env` (the rollout CLI's process.env, so the processes it starts see the
 * same), as scripts/lib.sh sets them for the scripts.
 */
export function applySettings(root: string, env: NodeJS.ProcessEnv = process.env): void {
  Object.assign(env, readSettings(root, env));
}

/** One knob (TARGET, API, CLUSTER_NAME, KUBE_CONTEXT, GATEWAY_PORT, GATEWAY_URL), resolved as readSettings does. */
export function setting(root: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = readSettings(root, env)[key];
  if (value === undefined) throw new ManifestError(paths.defaults(root), key, 'no such knob');
  return value;
}
