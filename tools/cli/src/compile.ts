import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { REPO_ROOT } from './datadir.ts';

/**
 * Services run compiled, as production runs them: one esbuild bundle per entry point with the workspace's own
 * code (chassis, contracts, money) inside and npm packages left external, run with plain `node`. Running the
 * TypeScript sources under tsx costs every process its loader and a `__name()` wrapper around every closure
 * (tsx keeps function names): measured in bench/rpc at about a quarter of a trivial call's CPU on each side.
 *
 * The bundles live under the repository's node_modules (so `import 'fastify'` in them resolves exactly as the
 * sources' imports do), in a directory of their own per run, removed by the returned cleanup.
 */
const CACHE = path.join(REPO_ROOT, 'node_modules', '.cache', 'simplebank');
/** Left behind by a runner that was killed: removed when older than this. */
const STALE_MS = 24 * 3600_000;

export interface CompiledEntries {
  /** The bundle of each entry, by the name it was given. */
  files: Record<string, string>;
  /** The run's own directory, holding every file of the bundles. */
  dir: string;
  cleanup(): Promise<void>;
}

/**
 * `read` supplies each workspace source file's text (default: the file on disk); benchmarks pass one that reads a
 * swapped variant or the file as committed at a revision (bench/lib/bundle.ts).
 */
export async function compileEntries(entries: Record<string, string>, read?: (file: string) => Promise<string>): Promise<CompiledEntries> {
  await pruneStale();
  const outdir = await mkdtemp(path.join(CACHE, 'run-'));
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
      sourcemap: 'linked',
      logLevel: 'silent',
      plugins: [externalPackages, sourceLocations(read)],
    });
  } catch (err) {
    await rm(outdir, { recursive: true, force: true });
    throw err;
  }
  const files = Object.fromEntries(Object.keys(entries).map((name) => [name, path.join(outdir, `${name}.mjs`)]));
  return { files, dir: outdir, cleanup: () => rm(outdir, { recursive: true, force: true }) };
}

/** Bare specifiers are npm packages, except the workspace's own (@simplebank/*), which are bundled. */
export const externalPackages: Plugin = {
  name: 'external-npm-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@simplebank/') || a.path.startsWith('node:') ? undefined : { path: a.path, external: true }));
  },
};

/**
 * `import.meta.url` in a bundled module would name the bundle; the workspace code uses it to find files next to
 * its source (migrations), so each module keeps its own source file's URL.
 */
export const sourceLocations = (read: (file: string) => Promise<string> = (file) => readFile(file, 'utf8')): Plugin => ({
  name: 'source-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (a) => {
      if (a.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const text = await read(a.path);
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(a.path).href)), loader: 'ts' };
    });
  },
});

async function pruneStale(): Promise<void> {
  const names = await readdir(CACHE).catch(() => [] as string[]);
  await mkdir(CACHE, { recursive: true });
  for (const name of names) {
    if (!name.startsWith('run-')) continue;
    const dir = path.join(CACHE, name);
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_MS) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
