/**
 * Node module hooks that let node:test load the k6 script: `k6`, `k6/http` and `k6/metrics` resolve to the
 * recording shims in ./shims, and `.ts` files are transpiled the way k6 treats them (types stripped, nothing
 * checked: `tsc --noEmit -p loadtest` does the checking).
 */
import { readFile } from 'node:fs/promises';
import ts from 'typescript';

const SHIMS = { k6: 'k6.mjs', 'k6/http': 'http.mjs', 'k6/metrics': 'metrics.mjs' };

export async function resolve(specifier, context, next) {
  const shim = SHIMS[specifier];
  if (shim) return { url: new URL(`./shims/${shim}`, import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}

export async function load(url, context, next) {
  const file = new URL(url);
  file.search = '';
  if (file.protocol === 'file:' && file.pathname.endsWith('.ts')) {
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: file.pathname,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    return { format: 'module', source: outputText, shortCircuit: true };
  }
  return next(url, context);
}
