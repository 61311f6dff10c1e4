import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createDb, migrate, type Db } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { insertEntry } from '../src/data.ts';
import { failure, fundedAccount, MIGRATIONS, migrateBefore, reserveCash, reserveShares, settle, startAccounts, type Harness } from './helpers.ts';

// Customer balances are stored (migration 004) and kept by a trigger on postings: they must equal, at every
// moment, the sums over the postings they replace on the read side.

type BalanceRow = { ledger_account: string; asset: string; total: string };

/** The stored customer balances and the sums over customer postings, in the same order. */
async function storedAndSummed(db: Db): Promise<{ stored: BalanceRow[]; summed: BalanceRow[] }> {
  const stored = await db.query<BalanceRow>('SELECT ledger_account, asset, total::text AS total FROM customer_balances ORDER BY ledger_account, asset');
  const summed = await db.query<BalanceRow>(
    `SELECT ledger_account, asset, sum(amount)::text AS total FROM postings WHERE ledger_account LIKE 'customer:%'
      GROUP BY ledger_account, asset ORDER BY ledger_account, asset`,
  );
  return { stored: stored.rows, summed: summed.rows };
}

describe('customer_balances, through the API', () => {
  let h: Harness;
  before(async () => {
    h = await startAccounts();
  });
  after(async () => {
    await h.stop();
  });

  const deposit = (accountId: string, amount: string) =>
    h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount } });

  it('equal the sums over postings after deposits, reserves, settles and refusals', async () => {
    // Concurrent first deposits race to create the account's USD row.
    const { accountId: a } = await fundedAccount(h, '0.00');
    await Promise.all(Array.from({ length: 10 }, (_, i) => deposit(a, `${i + 1}.01`)));
    const { accountId: b } = await fundedAccount(h, '500.00');

    // A buys AAPL and sells it all again: its AAPL balance comes back to 0 and stays listed, as the sums did.
    const buy = (await reserveCash(h, a, '40.00')).body.id;
    await settle(h, buy, 'buy', 'AAPL', 2, '15.25', '0.50');
    const sell = (await reserveShares(h, a, 'AAPL', 2)).body.id;
    await settle(h, sell, 'sell', 'AAPL', 2, '16.00', '0.25');
    // A hold released never touches the ledger; a settle refused (409) rolls its postings back.
    const released = (await reserveCash(h, a, '5.00')).body.id;
    await h.accounts.release({ params: { id: released } });
    const tooDear = (await reserveCash(h, a, '1.00')).body.id;
    assert.deepEqual(await failure(settle(h, tooDear, 'buy', 'MSFT', 1, '1000.00', '0.00')), { status: 409, code: 'insufficient_funds' });

    // B's orders settle side by side (the saga's bursts share transactions).
    const orders = await Promise.all(Array.from({ length: 6 }, () => reserveCash(h, b, '50.00')));
    const settled = await Promise.all(orders.map((o, i) => settle(h, o.body.id, 'buy', i % 2 ? 'MSFT' : 'AAPL', 1, '45.00', '1.00')));
    assert.deepEqual(settled.map((r) => r.status), [200, 200, 200, 200, 200, 200]);

    const { stored, summed } = await storedAndSummed(h.sql);
    assert.ok(summed.length >= 4, 'the scenario wrote customer postings');
    assert.deepEqual(stored, summed);
    assert.deepEqual(
      stored.filter((r) => r.ledger_account === `customer:${a}`).map((r) => [r.asset, r.total]),
      [['AAPL', '0'], ['USD', '5585']], // cents: 55.10 deposited, − 2 × 15.25 − 0.50, + 2 × 16.00 − 0.25
    );

    // What the API shows comes from the stored rows: the zero AAPL balance is no position.
    const account = (await h.accounts.getAccount({ params: { id: a }, query: {} })).body;
    assert.deepEqual(account.cash, { balance: '55.85', available: '54.85', reserved: '1.00' });
    assert.deepEqual(account.positions, []);
    const other = (await h.accounts.getAccount({ params: { id: b }, query: {} })).body;
    assert.deepEqual(other.cash, { balance: '224.00', available: '224.00', reserved: '0.00' });
    assert.deepEqual(other.positions.map((p) => [p.symbol, p.quantity]), [['AAPL', 3], ['MSFT', 3]]);
  });
});

describe('migration 004 on an existing ledger', () => {
  let database: TestDatabase;
  let db: Db;
  before(async () => {
    database = await createTestDatabase('accounts_backfill');
    db = createDb(database.url, { max: 2 });
    await migrateBefore(db, '004');
  });
  after(async () => {
    await db.close();
    await database.drop();
  });

  const write = (postings: [string, string, bigint][]) =>
    db.tx((tx) =>
      insertEntry(tx, { kind: 'deposit', reference: randomUUID(), postings: postings.map(([ledgerAccount, asset, amount]) => ({ ledgerAccount, asset, amount })) }),
    );

  it('fills the balances from the postings already there, then the trigger keeps them', async () => {
    const [a, b] = [`customer:${randomUUID()}`, `customer:${randomUUID()}`];
    await write([['external:bank', 'USD', -10_000n], [a, 'USD', 10_000n]]);
    await write([['external:bank', 'USD', -2_500n], [b, 'USD', 2_500n]]);
    await write([[a, 'USD', -3_000n], ['exchange:clearing', 'USD', 3_000n], [a, 'AAPL', 2n], ['exchange:clearing', 'AAPL', -2n]]);
    await write([[a, 'AAPL', -2n], ['exchange:clearing', 'AAPL', 2n], [a, 'USD', 3_100n], ['exchange:clearing', 'USD', -3_100n]]);
    const { rows: absent } = await db.query<{ t: string | null }>(`SELECT to_regclass('customer_balances')::text AS t`);
    assert.equal(absent[0]!.t, null, 'no stored balances before 004');

    assert.equal((await migrate(db, MIGRATIONS)).applied[0], '004_customer_balances.sql'); // then any later ones
    const backfilled = await storedAndSummed(db);
    assert.deepEqual(backfilled.stored, backfilled.summed);
    // Customers only, zero totals included.
    assert.deepEqual(Object.fromEntries(backfilled.stored.map((r) => [`${r.ledger_account} ${r.asset}`, r.total])), {
      [`${a} AAPL`]: '0',
      [`${a} USD`]: '10100',
      [`${b} USD`]: '2500',
    });

    // Postings after the migration add to the backfilled rows (not counted twice) and start new ones.
    const c = `customer:${randomUUID()}`;
    await write([[b, 'USD', -500n], [c, 'USD', 500n]]);
    await write([['external:bank', 'MSFT', -7n], [a, 'MSFT', 7n]]);
    const later = await storedAndSummed(db);
    assert.deepEqual(later.stored, later.summed);
    assert.equal(later.stored.find((r) => r.ledger_account === b)?.total, '2000');
    assert.equal(later.stored.find((r) => r.ledger_account === c)?.total, '500');
  });
});
