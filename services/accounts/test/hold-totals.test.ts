import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createDb, migrate, type Db } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { failure, fundedAccount, MIGRATIONS, migrateBefore, reserveCash, reserveShares, settle, startAccounts, type Harness } from './helpers.ts';

// What active holds keep back is stored (migration 005), kept by triggers on reservations: at every moment it must
// equal the sums over the active reservations it replaces on the read side.

type HoldRow = { account_id: string; kind: string; symbol: string; total: string };

/** The stored hold totals (zero rows left out, as readers do) and the sums over active reservations, in one order. */
async function storedAndSummed(db: Db): Promise<{ stored: HoldRow[]; summed: HoldRow[] }> {
  const stored = await db.query<HoldRow>(
    `SELECT account_id::text, kind, symbol, total::text AS total FROM account_holds WHERE total <> 0 ORDER BY 1, 2, 3`,
  );
  const summed = await db.query<HoldRow>(
    `SELECT account_id::text, kind, coalesce(symbol, '') AS symbol, sum(coalesce(amount, quantity))::text AS total
       FROM reservations WHERE status = 'active' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  return { stored: stored.rows, summed: summed.rows };
}

describe('account_holds, through the API', () => {
  let h: Harness;
  before(async () => {
    h = await startAccounts();
  });
  after(async () => {
    await h.stop();
  });

  it('equal the sums over active reservations after reserves, settles, releases and refusals', async () => {
    const { accountId: a } = await fundedAccount(h, '1000.00');
    const { accountId: b } = await fundedAccount(h, '300.00');

    // A buys 3 AAPL, then holds 2 of them for a sale that stays open.
    const buy = (await reserveCash(h, a, '100.00')).body.id;
    await settle(h, buy, 'buy', 'AAPL', 3, '30.00', '1.00');
    const sell = (await reserveShares(h, a, 'AAPL', 2)).body.id;
    // A repeated reserve finds the hold and holds nothing more.
    await reserveShares(h, a, 'AAPL', 2, sell);
    // Released, refused and tombstoned holds keep nothing back.
    const released = (await reserveCash(h, a, '50.00')).body.id;
    await h.accounts.release({ params: { id: released } });
    assert.deepEqual(await failure(reserveCash(h, a, '5000.00')), { status: 409, code: 'insufficient_funds' });
    assert.deepEqual(await failure(reserveShares(h, a, 'AAPL', 5)), { status: 409, code: 'insufficient_shares' });
    const early = randomUUID();
    await h.accounts.release({ params: { id: early } });
    assert.equal((await reserveCash(h, a, '10.00', early)).body.status, 'released');
    // A settle refused (409) rolls its hold change back: the hold stays active.
    const tooDear = (await reserveCash(h, a, '20.00')).body.id;
    assert.deepEqual(await failure(settle(h, tooDear, 'buy', 'MSFT', 1, '2000.00', '0.00')), { status: 409, code: 'insufficient_funds' });

    // B's holds are made and settled side by side (the saga's bursts share transactions).
    const held = await Promise.all(Array.from({ length: 6 }, () => reserveCash(h, b, '40.00')));
    await Promise.all(held.slice(0, 4).map((r) => settle(h, r.body.id, 'buy', 'MSFT', 1, '35.00', '1.00')));

    const { stored, summed } = await storedAndSummed(h.sql);
    assert.deepEqual(stored, summed);
    const mine = (account: string) => stored.filter((r) => r.account_id === account).map((r) => [r.kind, r.symbol, r.total]);
    assert.deepEqual(mine(a), [['cash', '', '2000'], ['shares', 'AAPL', '2']]);
    assert.deepEqual(mine(b), [['cash', '', '8000']]);

    // What the API shows comes from the stored rows.
    const account = (await h.accounts.getAccount({ params: { id: a }, query: {} })).body;
    assert.deepEqual(account.cash, { balance: '909.00', available: '889.00', reserved: '20.00' });
    assert.deepEqual(account.positions.map((p) => [p.symbol, p.quantity, p.reserved]), [['AAPL', 3, 2]]);

    // Settling and releasing the rest brings every total to zero, and nothing is shown as reserved.
    await settle(h, sell, 'sell', 'AAPL', 2, '31.00', '1.00');
    await h.accounts.release({ params: { id: tooDear } });
    await Promise.all(held.slice(4).map((r) => h.accounts.release({ params: { id: r.body.id } })));
    const after = await storedAndSummed(h.sql);
    assert.deepEqual(after.stored.filter((r) => r.account_id === a || r.account_id === b), []);
    assert.deepEqual(after.stored, after.summed);
    // Their rows stay, at zero.
    const { rows: zero } = await h.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM account_holds WHERE account_id = ANY($1::uuid[]) AND total = 0`, [[a, b]]);
    assert.equal(zero[0]!.n, '3');
    const emptied = (await h.accounts.getAccount({ params: { id: a }, query: {} })).body;
    assert.deepEqual(emptied.cash, { balance: '970.00', available: '970.00', reserved: '0.00' });
  });
});

describe('migration 005 on existing reservations', () => {
  let database: TestDatabase;
  let db: Db;
  before(async () => {
    database = await createTestDatabase('accounts_holds_backfill');
    db = createDb(database.url, { max: 2 });
    await migrateBefore(db, '005');
  });
  after(async () => {
    await db.close();
    await database.drop();
  });

  const account = async (): Promise<string> => {
    const id = randomUUID();
    await db.query(`INSERT INTO accounts (id, customer_id, currency) VALUES ($1, $2, 'USD')`, [id, randomUUID()]);
    return id;
  };
  const hold = (accountId: string, kind: 'cash' | 'shares', size: bigint, symbol: string | null = null, status = 'active'): Promise<string> => {
    const id = randomUUID();
    return db
      .query(`INSERT INTO reservations (id, account_id, kind, symbol, amount, quantity, status) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
        id,
        accountId,
        kind,
        symbol,
        kind === 'cash' ? size.toString() : null,
        kind === 'shares' ? size.toString() : null,
        status,
      ])
      .then(() => id);
  };

  it('fills the totals from the active holds already there, then the triggers keep them', async () => {
    const [a, b] = [await account(), await account()];
    await hold(a, 'cash', 1_000n);
    const second = await hold(a, 'cash', 250n);
    await hold(a, 'shares', 4n, 'MSFT');
    await hold(b, 'cash', 70n, null, 'released');
    const { rows: absent } = await db.query<{ t: string | null }>(`SELECT to_regclass('account_holds')::text AS t`);
    assert.equal(absent[0]!.t, null, 'no stored holds before 005');

    assert.equal((await migrate(db, MIGRATIONS)).applied[0], '005_hold_totals.sql'); // then any later ones
    const backfilled = await storedAndSummed(db);
    assert.deepEqual(backfilled.stored, backfilled.summed);
    assert.deepEqual(Object.fromEntries(backfilled.stored.map((r) => [`${r.account_id} ${r.kind} ${r.symbol}`, r.total])), {
      [`${a} cash `]: '1250',
      [`${a} shares MSFT`]: '4',
    });

    // Holds after the migration add to the backfilled rows (not counted twice), start new ones, and come off when
    // they end, whichever way they end.
    await hold(b, 'cash', 300n);
    await hold(a, 'shares', 1n, 'MSFT');
    await db.query(`UPDATE reservations SET status = 'released' WHERE id = $1`, [second]);
    const later = await storedAndSummed(db);
    assert.deepEqual(later.stored, later.summed);
    assert.deepEqual(Object.fromEntries(later.stored.map((r) => [`${r.account_id} ${r.kind} ${r.symbol}`, r.total])), {
      [`${a} cash `]: '1000',
      [`${a} shares MSFT`]: '5',
      [`${b} cash `]: '300',
    });
    await db.query(`DELETE FROM reservations WHERE account_id = $1`, [b]);
    assert.deepEqual((await storedAndSummed(db)).stored.filter((r) => r.account_id === b), []);
  });
});
