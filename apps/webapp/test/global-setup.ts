import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLES, PACKAGE_DIR } from './support/paths.js';

function newestSource(): number {
  const files = [
    'build.mjs',
    'package.json',
    ...readdirSync(join(PACKAGE_DIR, 'src')).map((f) => join('src', f)),
  ];
  return Math.max(...files.map((f) => statSync(join(PACKAGE_DIR, f)).mtimeMs));
}

export default function setup(): void {
  const bundles = Object.values(BUNDLES);
  const stale =
    bundles.some((b) => !existsSync(b)) ||
    Math.min(...bundles.map((b) => statSync(b).mtimeMs)) < newestSource();
  if (stale) {
    execFileSync(process.execPath, ['build.mjs'], { cwd: PACKAGE_DIR, stdio: 'inherit' });
  }
}
