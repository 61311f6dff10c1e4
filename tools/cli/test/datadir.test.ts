import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { lockDataDir, serviceToken } from '../src/datadir.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'simplebank-cli-dd-'));
  dirs.push(d);
  return d;
}

test('the service token is generated once, kept private, and reused', async () => {
  const dir = path.join(await tempDir(), 'nested');
  const token = await serviceToken(dir);
  assert.ok(token.length >= 32);
  assert.equal(await serviceToken(dir), token);
  assert.equal((await stat(path.join(dir, 'service-token'))).mode & 0o777, 0o600);
  assert.equal((await readFile(path.join(dir, 'service-token'), 'utf8')).trim(), token);
});

test('one bank per data folder; a lock left by a dead process is taken over', async () => {
  const dir = await tempDir();
  const release = await lockDataDir(dir);
  await assert.rejects(lockDataDir(dir), /already running/);
  await release();
  const again = await lockDataDir(dir);
  await again();

  // A pid that is certainly gone: a child that has exited.
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.once('exit', r));
  await writeFile(path.join(dir, 'cli.pid'), `${child.pid}\n`);
  const takenOver = await lockDataDir(dir);
  assert.equal((await readFile(path.join(dir, 'cli.pid'), 'utf8')).trim(), String(process.pid));
  await takenOver();
});
