import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TxClient } from '../src/data/db.ts';
import { sql, sqlLiteral } from '../src/data/literal.ts';
import { cleanupStack, serviceDatabase } from './messaging/helpers.ts';

test('sqlLiteral: values come back from the database exactly as they went in', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('literal', cleanup.add);
    const values = ['plain', "it's", 'back\\slash', "both ' and \\", '{"json": "x\'y"}', 'ünïcødé €', ''];
    for (const v of values) {
      const { rows } = await db.query<{ v: string }>(`SELECT ${sqlLiteral(v)}::text AS v`);
      assert.equal(rows[0]!.v, v);
    }
    const { rows } = await db.query<{ n: string; b: string; neg: string; t: Date; j: unknown; nul: null }>(
      sql`SELECT ${42}::int AS n, ${12345678901234567890n}::numeric::text AS b, 1 - ${-5} AS neg, ${new Date('2026-01-02T03:04:05.678Z')}::timestamptz AS t,
                 ${{ a: [1, "q'"] }}::jsonb AS j, ${null}::text AS nul`,
    );
    assert.equal(Number(rows[0]!.n), 42);
    assert.equal(rows[0]!.b, '12345678901234567890');
    assert.equal(Number(rows[0]!.neg), 6);
    assert.equal(rows[0]!.t.toISOString(), '2026-01-02T03:04:05.678Z');
    assert.deepEqual(rows[0]!.j, { a: [1, "q'"] });
    assert.equal(rows[0]!.nul, null);
    assert.throws(() => sqlLiteral(Number.NaN));
    assert.throws(() => sqlLiteral(() => 1));
  } finally {
    await cleanup.run();
  }
});

test('db.tx: BEGIN travels with the first query, deferred statements with the COMMIT, hooks after it', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('txclient', cleanup.add);
    await db.query('CREATE TABLE t (n int PRIMARY KEY)');
    const committed: string[] = [];
    const result = await db.tx(async (tx) => {
      // A first query without parameters goes in one message with BEGIN; it still runs in the transaction.
      const first = await tx.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
      await tx.query('INSERT INTO t VALUES ($1)', [1]);
      const second = await tx.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x', []);
      assert.equal(first.rows[0]!.x, second.rows[0]!.x, 'one transaction');
      tx.beforeCommit('INSERT INTO t VALUES (2)');
      let gathered = 3;
      tx.beforeCommit(() => `INSERT INTO t VALUES (${gathered})`);
      gathered = 4; // a function is asked for its SQL at the commit
      tx.beforeCommit(() => '');
      tx.afterCommit(() => committed.push('hook'));
      // Deferred writes are not visible before the commit.
      assert.equal((await tx.query('SELECT n FROM t')).rows.length, 1);
      assert.deepEqual(committed, []);
      return 'done';
    });
    assert.equal(result, 'done');
    assert.deepEqual(committed, ['hook']);
    assert.deepEqual((await db.many<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => r.n), [1, 2, 4]);

    // A deferred statement that fails rolls everything back, and no hook runs.
    await assert.rejects(
      db.tx(async (tx) => {
        await tx.query('INSERT INTO t VALUES (10)');
        tx.beforeCommit('INSERT INTO t VALUES (1)'); // duplicate key
        tx.afterCommit(() => committed.push('not this one'));
      }),
      /duplicate key/,
    );
    assert.deepEqual((await db.many<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => r.n), [1, 2, 4]);
    assert.deepEqual(committed, ['hook']);

    // Only deferred statements: one message runs them as a transaction.
    await db.tx(async (tx) => {
      tx.beforeCommit('INSERT INTO t VALUES (20)');
      tx.beforeCommit('INSERT INTO t VALUES (21)');
    });
    assert.deepEqual((await db.many<{ n: number }>('SELECT n FROM t WHERE n >= 20 ORDER BY n')).map((r) => r.n), [20, 21]);
  } finally {
    await cleanup.run();
  }
});

test('db.tx: the connection is taken at the first query, and returned however the function ends', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('txlazy', cleanup.add);
    const idleBefore = db.pool.totalCount - db.pool.idleCount;
    await db.tx(async () => {
      // Nothing queried yet: no connection is held.
      assert.equal(db.pool.totalCount - db.pool.idleCount, idleBefore);
    });
    await assert.rejects(
      db.tx(async (tx) => {
        await tx.query('SELECT 1');
        throw new Error('boom');
      }),
      /boom/,
    );
    await assert.rejects(db.tx((tx) => tx.query('SELECT * FROM no_such_table')), /no_such_table/);
    assert.equal(db.pool.totalCount - db.pool.idleCount, 0, 'every connection is back in the pool');
    // A connection that was rolled back is clean for the next user.
    const { rows } = await db.query<{ state: string }>(`SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()`);
    assert.equal(rows[0]!.state, 'active');
  } finally {
    await cleanup.run();
  }
});

test('db.tx: a prelude goes with the first query, and its failure is reported as the first message error', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('txprelude', cleanup.add);
    await db.query('CREATE TABLE seen (id int PRIMARY KEY)');
    await db.tx(async (tx: TxClient) => {
      tx.prelude('INSERT INTO seen VALUES (1)');
      const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM seen');
      assert.equal(Number(rows[0]!.n), 1, 'the prelude ran first, in the same transaction');
    });
    let first: unknown;
    await assert.rejects(
      db.tx(async (tx: TxClient) => {
        tx.prelude('INSERT INTO seen VALUES (1)');
        try {
          await tx.query('SELECT $1::int AS x', [5]);
        } finally {
          first = tx.firstMessageError;
        }
      }),
      /duplicate key/,
    );
    assert.equal((first as { code?: string }).code, '23505');
    await db.tx(async (tx: TxClient) => {
      await tx.query('SELECT 1');
      assert.throws(() => tx.prelude('SELECT 2'), /before the first query/);
    });
  } finally {
    await cleanup.run();
  }
});
