import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createDb, migrate } from '../src/index.ts';
import { createTestDatabase } from '../src/testing/index.ts';

const fixtures = new URL('./fixtures/migrations/', import.meta.url);

test('migrations apply once, in order, even when instances start together', async () => {
  const database = await createTestDatabase('migrate');
  const dbs = [createDb(database.url), createDb(database.url), createDb(database.url)];
  try {
    const results = await Promise.all(dbs.map((db) => migrate(db, fixtures)));
    const applied = results.flatMap((r) => r.applied);
    // Every migration was applied by exactly one of the three concurrent migrators.
    assert.equal(applied.filter((n) => n === '001_things.sql').length, 1);
    assert.equal(applied.filter((n) => n === '002_seed.sql').length, 1);
    assert.ok(applied.some((n) => n.startsWith('chassis/')), 'chassis tables (outbox, inbox) are applied too');
    const rows = await dbs[0]!.many<{ name: string }>('SELECT name FROM things');
    assert.deepEqual(rows, [{ name: 'first' }]);
    const again = await migrate(dbs[0]!, fileURLToPath(fixtures));
    assert.deepEqual(again.applied, []);
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
    await database.drop();
  }
});

test('a failing migration is rolled back and names itself', async () => {
  const database = await createTestDatabase('migrate_fail');
  const db = createDb(database.url);
  try {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mig-'));
    await writeFile(path.join(dir, '001_ok.sql'), 'CREATE TABLE ok (id int);');
    await writeFile(path.join(dir, '002_bad.sql'), 'CREATE TABLE half (id int); SELECT * FROM no_such_table;');
    await assert.rejects(migrate(db, dir), /migration 002_bad\.sql failed/);
    const half = await db.one<{ exists: boolean }>("SELECT to_regclass('half') IS NOT NULL AS exists");
    assert.equal(half?.exists, false);
    const ok = await db.one<{ exists: boolean }>("SELECT to_regclass('ok') IS NOT NULL AS exists");
    assert.equal(ok?.exists, true);
  } finally {
    await db.close();
    await database.drop();
  }
});
