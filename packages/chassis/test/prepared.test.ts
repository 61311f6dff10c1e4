import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDb, type Db, type TxClient } from '../src/data/db.ts';
import { createTestDatabase } from '../src/testing/postgres.ts';
import { cleanupStack } from './messaging/helpers.ts';

/** A database with a one-connection pool, so every transaction below runs on the same connection (unless discarded). */
async function oneConnection(prefix: string, cleanup: ReturnType<typeof cleanupStack>): Promise<Db> {
  const tdb = await createTestDatabase(prefix);
  const db = createDb(tdb.url, { max: 1 });
  cleanup.add(async () => {
    await db.close();
    await tdb.drop();
  });
  await db.query('CREATE TABLE t (id int PRIMARY KEY, label text, at timestamptz, ids uuid[], doc jsonb, big numeric)');
  return db;
}

/** A test on its own database through a one-connection pool (oneConnection), dropped afterwards. */
function onOneConnection(name: string, prefix: string, fn: (db: Db) => Promise<void>): void {
  test(name, async () => {
    const cleanup = cleanupStack();
    try {
      await fn(await oneConnection(prefix, cleanup));
    } finally {
      await cleanup.run();
    }
  });
}

interface PreparedRow {
  name: string;
  statement: string;
  generic_plans: string;
  custom_plans: string;
}

/** The connection's SQL-level prepared statements (prepared.ts names them sx…), inside a transaction on it. */
const preparedHere = async (tx: TxClient): Promise<PreparedRow[]> =>
  (await tx.query<PreparedRow>(`SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE 'sx%' ORDER BY name`)).rows;

onOneConnection('db.tx: a first query with parameters travels with BEGIN as EXECUTE of a prepared statement, values intact', 'prepfirst', async (db) => {
  const at = new Date('2026-01-02T03:04:05.678Z');
  const ids = ['6f1c3a52-8a52-4b8e-9d0c-0a3cbb7f7d11', '0b8e4b53-3a6f-4a55-9e33-2b2d2f4d1a01'];
  const doc = { a: [1, "q'"], b: 'back\\slash' };
  const label = "it's ünïcødé \\ €";
  await db.tx(async (tx) => {
    // The statement's first use on this connection: prepared in the same message, then executed.
    await tx.query('INSERT INTO t (id, label, at, ids, doc, big) VALUES ($1, $2, $3, $4::uuid[], $5::jsonb, $6)', [1, label, at, ids, doc, 12345678901234567890n]);
  });
  const { rows } = await db.query<{ label: string; at: Date; ids: string[]; doc: unknown; big: string }>('SELECT label, at, ids, doc, big FROM t WHERE id = 1');
  assert.equal(rows[0]!.label, label);
  assert.equal(rows[0]!.at.toISOString(), at.toISOString());
  assert.deepEqual(rows[0]!.ids, ids);
  assert.deepEqual(rows[0]!.doc, doc);
  assert.equal(rows[0]!.big, '12345678901234567890');

  // Run again and again: the server reuses the statement, and after its first custom plans a cached generic one.
  for (let id = 2; id <= 9; id++) {
    await db.tx(async (tx) => {
      const { rows: found } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM t WHERE id < $1 AND label = $2', [id, label]);
      assert.equal(Number(found[0]!.n), 1);
      await tx.query('SELECT 1');
    });
  }
  await db.tx(async (tx) => {
    await tx.query('SELECT 1');
    const prepared = await preparedHere(tx);
    const select = prepared.find((p) => p.statement.includes('count(*) AS n FROM t'));
    assert.ok(select, `the select is a prepared statement on the connection: ${JSON.stringify(prepared)}`);
    assert.equal(Number(select.generic_plans) + Number(select.custom_plans), 8, 'one statement, prepared once, executed 8 times');
    assert.ok(Number(select.generic_plans) >= 3, 'its plan is cached');
    assert.ok(prepared.some((p) => p.statement.includes('INSERT INTO t (id, label, at, ids, doc, big)')));
  });
});

onOneConnection('db.tx: prelude and beforeCommit take parameters; they run in their places, in the same transaction', 'prepdeferred', async (db) => {
  await db.tx(async (tx) => {
    tx.prelude('INSERT INTO t (id, label) VALUES ($1, $2)', [1, 'prelude']);
    tx.beforeCommit('INSERT INTO t (id, label) VALUES ($1, $2)', [3, 'deferred']);
    const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM t WHERE id = $1', [1]);
    assert.equal(Number(rows[0]!.n), 1, 'the prelude ran first');
    tx.beforeCommit(() => 'INSERT INTO t (id, label) VALUES (4, $$made at commit$$)');
    tx.flushDeferred();
    const { rows: flushed } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM t WHERE id >= $1', [3]);
    assert.equal(Number(flushed[0]!.n), 2, 'flushed statements ran before the next query');
    tx.beforeCommit('UPDATE t SET label = $1 WHERE id = $2', ['updated at commit', 3]);
  });
  const { rows } = await db.query<{ id: number; label: string }>('SELECT id, label FROM t ORDER BY id');
  assert.deepEqual(rows, [
    { id: 1, label: 'prelude' },
    { id: 3, label: 'updated at commit' },
    { id: 4, label: 'made at commit' },
  ]);

  // Rolled back with the transaction: a deferred write whose transaction fails is not written.
  await assert.rejects(
    db.tx(async (tx) => {
      tx.beforeCommit('INSERT INTO t (id, label) VALUES ($1, $2)', [5, 'never']);
      await tx.query('SELECT $1::int / 0', [1]);
    }),
    /division by zero/,
  );
  assert.equal((await db.query('SELECT 1 FROM t WHERE id = 5')).rows.length, 0);

  // A value that cannot travel as a literal: bound as before when queried, refused clearly when deferred.
  await db.tx(async (tx) => {
    const { rows: bytes } = await tx.query<{ n: number }>('SELECT length($1::bytea) AS n', [Buffer.from([0, 1, 2])]);
    assert.equal(bytes[0]!.n, 3);
    assert.throws(() => tx.beforeCommit('SELECT length($1::bytea)', [Buffer.from([1])]), /cannot defer this statement/);
  });
});

onOneConnection('db.tx: a failed message that prepared statements closes its connection; one that prepared none keeps it', 'prepfail', async (db) => {
  await db.query('INSERT INTO t (id, label) VALUES (1, $$taken$$)');
  const pid = async () => Number((await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  const first = await pid();

  // First use of this statement on the connection, and it fails: whether its PREPARE ran is not known here.
  const insert = 'INSERT INTO t (id, label) VALUES ($1, $2) RETURNING id';
  await assert.rejects(db.tx((tx) => tx.query(insert, [1, 'duplicate'])), /duplicate key/);
  const second = await pid();
  assert.notEqual(second, first, 'the connection was closed, not handed out again');

  // On the new connection the statement is prepared afresh and works; a later failure of it keeps the connection.
  await db.tx((tx) => tx.query(insert, [2, 'fresh']));
  await assert.rejects(db.tx((tx) => tx.query(insert, [2, 'duplicate'])), /duplicate key/);
  assert.equal(await pid(), second, 'nothing was prepared in the failed message: the connection stays');
  await db.tx((tx) => tx.query(insert, [3, 'after']));
  const { rows } = await db.query<{ id: number }>('SELECT id FROM t ORDER BY id');
  assert.deepEqual(rows.map((r) => r.id), [1, 2, 3]);
});

onOneConnection('db.tx: queryAll runs statements in one message, in order, first in the transaction or later in it', 'prepall', async (db) => {
  const insert = 'INSERT INTO t (id, label) VALUES ($1, $2) RETURNING id';
  const count = 'SELECT count(*)::int AS n FROM t WHERE id <= $1';
  await db.tx(async (tx) => {
    // The transaction's first: with the BEGIN; the second statement reads what the first wrote.
    const [first, seen] = await tx.queryAll([
      { text: insert, values: [1, 'one'] },
      { text: count, values: [10] },
    ]);
    assert.equal(first!.rows[0]!.id, 1);
    assert.equal(seen!.rows[0]!.n, 1);
    // Later in the same transaction (a batch's second item): still one message, still in order.
    const [second, seenAgain] = await tx.queryAll([
      { text: insert, values: [2, 'two'] },
      { text: count, values: [10] },
    ]);
    assert.equal(second!.rows[0]!.id, 2);
    assert.equal(seenAgain!.rows[0]!.n, 2);
    // After a flushed write, and with a statement never prepared on this connection before.
    tx.beforeCommit('INSERT INTO t (id, label) VALUES ($1, $2)', [3, 'three']);
    tx.flushDeferred();
    const [, third] = await tx.queryAll([
      { text: 'SELECT 1 AS one WHERE $1::int > 0', values: [1] },
      { text: 'SELECT count(*)::int AS n FROM t WHERE id <= $1 AND label IS NOT NULL', values: [10] },
    ]);
    assert.equal(third!.rows[0]!.n, 3);
  });
  assert.equal(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM t')).rows[0]!.n), 3);
});
