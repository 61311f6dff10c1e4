// Bundles benchmark entry points with tools/cli/src/compile.ts (workspace code inside, npm packages external, one
// directory per run under node_modules/.cache so `import 'fastify'` resolves as from the sources), optionally with
// source files swapped for variants (the same-run A/B of one file that docs/benchmarks.md's attribution method uses,
// without touching the working tree), or with the workspace's sources as committed at a git revision (`at`): on a
// tree shared with other engineers' uncommitted work, a benchmark then measures a commit, not whatever is half-done.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileEntries } from '../../tools/cli/src/compile.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BundleOptions {
  /** Absolute path of a source file → absolute path of the file to compile in its place (it keeps the original's
   * location, so its relative imports resolve as the original's do). */
  swaps?: Record<string, string>;
  /** A git revision: the repository's own .ts files are compiled as committed there (files it lacks: as on disk). */
  at?: string;
}

/** The commit `at` names, or the working tree's HEAD with `-dirty` when it has uncommitted changes. */
export function describeSources(at: string | undefined): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return at ? `${git('rev-parse', '--short', at)} (sources as committed)` : `${git('describe', '--always', '--dirty')} (working tree)`;
}

export async function bundle(entries: Record<string, string>, options: BundleOptions = {}): Promise<{ files: Record<string, string>; dir: string }> {
  const swaps = options.swaps ?? {};
  const at = options.at;
  if (at && spawnSync('git', ['rev-parse', '--verify', '--quiet', `${at}^{commit}`], { cwd: REPO_ROOT }).status !== 0) throw new Error(`--at: no commit ${at}`);
  const source = async (file: string): Promise<string> => {
    const rel = path.relative(REPO_ROOT, file);
    if (at && !rel.startsWith('..')) {
      const r = spawnSync('git', ['show', `${at}:${rel.split(path.sep).join('/')}`], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      if (r.status === 0) return r.stdout;
    }
    return readFile(file, 'utf8');
  };
  // The bank runner's compiler, reading each source from a swapped variant or from the commit asked for.
  const { files, dir } = await compileEntries(entries, (file) => (swaps[file] ? readFile(swaps[file]!, 'utf8') : source(file)));
  return { files, dir };
}
