// Bundles benchmark entry points as tools/cli/src/compile.ts does (workspace code inside, npm packages external, one
// directory per run under node_modules/.cache so `import 'fastify'` resolves as from the sources), optionally with
// source files swapped for variants: the same-run A/B of one file that docs/benchmarks.md's attribution method uses,
// without touching the working tree.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE = path.join(REPO_ROOT, 'node_modules', '.cache', 'simplebank');

/**
 * `swaps`: absolute path of a source file → absolute path of the file to compile in its place (it keeps the
 * original's location, so its relative imports resolve as the original's do).
 */
export async function bundle(entries: Record<string, string>, swaps: Record<string, string> = {}): Promise<{ files: Record<string, string>; dir: string }> {
  await mkdir(CACHE, { recursive: true });
  const outdir = await mkdtemp(path.join(CACHE, 'run-'));
  const external: Plugin = {
    name: 'external-npm-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@simplebank/') || a.path.startsWith('node:') ? undefined : { path: a.path, external: true }));
    },
  };
  const sources: Plugin = {
    name: 'sources-and-swaps',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (a) => {
        if (a.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const text = await readFile(swaps[a.path] ?? a.path, 'utf8');
        return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)), loader: 'ts' };
      });
    },
  };
  try {
    await build({
      entryPoints: entries,
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node}`,
      logLevel: 'silent',
      plugins: [external, sources],
    });
  } catch (err) {
    await rm(outdir, { recursive: true, force: true });
    throw err;
  }
  return { files: Object.fromEntries(Object.keys(entries).map((name) => [name, path.join(outdir, `${name}.mjs`)])), dir: outdir };
}
