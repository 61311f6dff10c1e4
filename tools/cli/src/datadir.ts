import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (services are started from here): this file is tools/cli/src/datadir.ts. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function defaultDataDir(): string {
  return path.join(REPO_ROOT, '.simplebank');
}

/**
 * The services' shared credential: generated once and kept in the data folder, so restarting the bank
 * keeps the token that anything already holding it (another process, a test) uses.
 */
export async function serviceToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'service-token');
  const existing = await readFile(file, 'utf8').then((s) => s.trim(), () => '');
  if (existing.length >= 16) return existing;
  await mkdir(dataDir, { recursive: true });
  const token = randomBytes(32).toString('base64url');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/**
 * One bank per data folder: a second one would fight the first for its PostgreSQL and ports.
 * A lock whose process is gone is stale (that run died) and is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, 'cli.pid');
  for (;;) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
      throw new Error(`another SimpleBank (pid ${pid}) is already running with data folder ${dataDir}`);
    }
    await rm(file, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
