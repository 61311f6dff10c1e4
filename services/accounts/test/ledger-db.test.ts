import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createDb, migrate, type Db } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { insertEntry } from '../src/data.ts';

// The domain never builds an unbalanced entry; these check the database would refuse one anyway.

let database: TestDatabase;
let db: Db;
before(async () => {
  database = await createTestDatabase('accounts_db');
  db = createDb(database.url, { max: 2 });
  await migrate(db, new URL('../migrations/', import.meta.url));
});
after(async () => {
  await db.close();
  await database.drop();
});

const entry = (amounts: [string, string, bigint][]) => ({
  kind: 'deposit' as const,
  reference: randomUUID(),
  postings: amounts.map(([ledgerAccount, asset, amount]) => ({ ledgerAccount, asset, amount })),
});

describe('ledger tables', () => {
  it('commit a balanced entry', async () => {
    const id = await db.tx((tx) => insertEntry(tx, entry([['external:bank', 'USD', -100n], ['customer:a', 'USD', 100n]])));
    const { rows } = await db.query('SELECT count(*)::int AS n FROM postings WHERE entry_id = $1', [id]);
    assert.equal(rows[0]!.n, 2);
  });

  it('refuse at commit an entry that does not balance in some asset', async () => {
    await assert.rejects(
      db.tx((tx) => insertEntry(tx, entry([['external:bank', 'USD', -100n], ['customer:a', 'USD', 100n], ['customer:a', 'AAPL', 1n], ['exchange:clearing', 'AAPL', -2n]]))),
      /does not balance/,
    );
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM postings WHERE asset = 'AAPL'`);
    assert.equal(rows[0]!.n, 0);
  });

  it('refuse an entry without postings', async () => {
    await assert.rejects(
      db.tx((tx) => tx.query(`INSERT INTO journal_entries (id, kind, reference) VALUES ($1, 'deposit', 'x')`, [randomUUID()])),
      /fewer than two postings/,
    );
  });

  it('refuse a second entry for the same deposit or order', async () => {
    const e = entry([['external:bank', 'USD', -1n], ['customer:a', 'USD', 1n]]);
    await db.tx((tx) => insertEntry(tx, e));
    await assert.rejects(db.tx((tx) => insertEntry(tx, e)), /duplicate key/);
  });

  it('are append-only', async () => {
    await assert.rejects(db.query('UPDATE postings SET amount = amount * 2'), /append-only/);
    await assert.rejects(db.query('DELETE FROM journal_entries'), /append-only/);
  });
});
