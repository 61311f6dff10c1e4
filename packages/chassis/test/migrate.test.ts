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

test('an outbox from before migration 003 keeps its unpublished events and drops the published ones', async () => {
  const database = await createTestDatabase('migrate_outbox');
  const db = createDb(database.url);
  try {
    const { readFile } = await import('node:fs/promises');
    const chassis = new URL('../src/data/migrations/', import.meta.url);
    // The outbox as migrations 001 and 002 left it, one event published and one not.
    for (const name of ['001_messaging.sql', '002_messaging_retention.sql']) await db.query(await readFile(new URL(name, chassis), 'utf8'));
    await db.query(
      `INSERT INTO outbox (id, type, subject, envelope, published_at) VALUES
        (gen_random_uuid(), 't.Published.v1', 'a', '{}', now()), (gen_random_uuid(), 't.Waiting.v1', 'b', '{}', NULL)`,
    );
    const { applied } = await migrate(db, fileURLToPath(fixtures));
    assert.ok(applied.includes('chassis/003_outbox_backlog_only.sql'));
    assert.deepEqual(await db.many('SELECT type FROM outbox'), [{ type: 't.Waiting.v1' }]);
    const column = await db.one<{ n: string }>(
      `SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'outbox' AND column_name = 'published_at'`,
    );
    assert.equal(column?.n, '0');
  } finally {
    await db.close();
    await database.drop();
  }
});
