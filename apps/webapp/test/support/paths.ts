import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_SCRIPT = join(PACKAGE_DIR, 'build.mjs');
export const BUNDLES = {
  v1: join(PACKAGE_DIR, 'dist', 'v1', 'main.js'),
  v2: join(PACKAGE_DIR, 'dist', 'v2', 'main.js'),
} as const;
