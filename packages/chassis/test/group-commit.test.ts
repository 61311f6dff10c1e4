// groupCommit against a real PostgreSQL: calls that arrive together share one transaction, each sees what the ones
// before it wrote (deferred writes included), and a batch with a failing call is run again call by call.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db, TxClient } from '../src/data/db.ts';
import { createBatcher, groupCommit } from '../src/data/group-commit.ts';
import { sql } from '../src/data/literal.ts';
import { contextFrom, currentContext, runWithContext } from '../src/trace/context.ts';
import { cleanupStack, serviceDatabase } from './messaging/helpers.ts';

const cleanup = cleanupStack();
let db: Db;

before(async () => {
  db = await serviceDatabase('group_commit', cleanup.add);
  await db.query('CREATE TABLE wallet (id int PRIMARY KEY, cash int NOT NULL CHECK (cash >= 0))');
  await db.query('CREATE TABLE spends (wallet int NOT NULL, amount int NOT NULL, tx xid8 NOT NULL)');
});
after(() => cleanup.run());

/** A spend as a request handler would write it: read the balance under the row lock, refuse or write (deferred). */
const spend = (wallet: number, amount: number) => async (tx: TxClient) => {
  const { rows } = await tx.query<{ cash: number }>(sql`SELECT cash FROM wallet WHERE id = ${wallet} FOR UPDATE`);
  const cash = rows[0]!.cash;
  if (cash < amount) throw new Error(`insufficient: ${cash} < ${amount}`);
  tx.beforeCommit(sql`UPDATE wallet SET cash = cash - ${amount} WHERE id = ${wallet}`);
  tx.beforeCommit(sql`INSERT INTO spends (wallet, amount, tx) VALUES (${wallet}, ${amount}, pg_current_xact_id())`);
  return cash - amount;
};

async function wallet(id: number, cash: number) {
  await db.query('INSERT INTO wallet (id, cash) VALUES ($1, $2)', [id, cash]);
}

test('calls that arrive together share a transaction, each reading what the ones before it wrote', async () => {
  await wallet(1, 100);
  const inGroup = groupCommit(db, { maxSize: 32, transactions: 1 });
  const left = await Promise.all([inGroup(spend(1, 10)), inGroup(spend(1, 20)), inGroup(spend(1, 30))]);
  assert.deepEqual(left, [90, 70, 40]);
  const rows = await db.many<{ n: string; txs: string }>('SELECT count(*) AS n, count(DISTINCT tx) AS txs FROM spends WHERE wallet = 1');
  assert.deepEqual(rows, [{ n: '3', txs: '1' }]);
  assert.equal((await db.one<{ cash: number }>('SELECT cash FROM wallet WHERE id = 1'))!.cash, 40);
});

test('a call that throws rolls its batch back; every call then runs alone and gets its own outcome', async () => {
  await wallet(2, 50);
  const inGroup = groupCommit(db, { maxSize: 32, transactions: 1 });
  const settled = await Promise.allSettled([inGroup(spend(2, 20)), inGroup(spend(2, 40)), inGroup(spend(2, 25))]);
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : String(s.reason))),
    [30, 'Error: insufficient: 30 < 40', 5],
  );
  const rows = await db.many<{ amount: number }>('SELECT amount FROM spends WHERE wallet = 2 ORDER BY amount');
  assert.deepEqual(rows.map((r) => r.amount), [20, 25]);
  assert.equal((await db.one<{ cash: number }>('SELECT cash FROM wallet WHERE id = 2'))!.cash, 5);
});

test('a parameterized query after a flushed write sees it too; each call runs in its own work context', async () => {
  await wallet(3, 10);
  const inGroup = groupCommit(db, { maxSize: 32, transactions: 1 });
  const seen: (string | undefined)[] = [];
  const topUp = (amount: number) => async (tx: TxClient) => {
    seen.push(currentContext()?.requestId);
    const { rows } = await tx.query<{ cash: number }>('SELECT cash FROM wallet WHERE id = $1', [3]);
    tx.beforeCommit(sql`UPDATE wallet SET cash = cash + ${amount} WHERE id = 3`);
    return rows[0]!.cash;
  };
  const before = await Promise.all([1, 2, 3].map((n) => runWithContext(contextFrom({ requestId: `call-${n}` }), () => inGroup(topUp(n)))));
  assert.deepEqual(before, [10, 11, 13]);
  assert.deepEqual(seen, ['call-1', 'call-2', 'call-3']);
  assert.equal((await db.one<{ cash: number }>('SELECT cash FROM wallet WHERE id = 3'))!.cash, 16);
});

test('gatherMs: after a transaction starts, later arrivals wait to go together, and a full batch goes at once', async () => {
  const batches: number[][] = [];
  const handle = createBatcher<number, number>({
    // Far longer than the test: only a full batch can start the second transaction.
    limits: { maxSize: 3, transactions: 1, gatherMs: 60_000 },
    batch: async (items) => (batches.push(items), items),
    alone: async (item) => (batches.push([item]), item),
  });
  // The first arrival after a quiet spell does not wait.
  assert.equal(await handle(1), 1);
  const later = [handle(2)];
  await new Promise((r) => setImmediate(r));
  later.push(handle(3));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [[1]], 'two arrivals wait for more');
  later.push(handle(4));
  assert.deepEqual(await Promise.all(later), [2, 3, 4]);
  assert.deepEqual(batches, [[1], [2, 3, 4]]);
});

test('without gatherMs, an arrival in a later turn starts its own transaction when a slot is free', async () => {
  const batches: number[][] = [];
  const handle = createBatcher<number, number>({
    limits: { maxSize: 3, transactions: 1 },
    batch: async (items) => (batches.push(items), items),
    alone: async (item) => (batches.push([item]), item),
  });
  await handle(1);
  await handle(2);
  assert.deepEqual(batches, [[1], [2]]);
});
