import { after, before, test } from 'node:test';
import type { StartBankOptions } from '../../tools/cli/src/bank.ts';
import assert from 'node:assert/strict';
import { formatMoney, parseMoney, times } from '@simplebank/money';
import { ApiClient, eventually, waitForStatus, type AccountView } from './api.ts';
import { ledgerTotals, startTestBank, type LedgerTotals } from './harness.ts';
import type { Bank } from '../../tools/cli/src/bank.ts';

function assertLedgerBalanced(totals: LedgerTotals): void {
  assert.equal(totals.unbalancedEntries, 0, 'every journal entry sums to zero per asset');
  for (const t of totals.totals) assert.equal(parseMoney(t.sum.includes('.') ? t.sum : `${t.sum}`), 0n, `postings of ${t.asset} sum to zero`);
}

async function account(customer: ApiClient, id: string): Promise<AccountView> {
  const res = await customer.call<AccountView>('GET', `/accounts/${id}`);
  assert.equal(res.status, 200);
  return res.body;
}

async function placeOrder(customer: ApiClient, body: Record<string, unknown>, key = crypto.randomUUID()) {
  const res = await customer.call<{ id: string; status: string }>('POST', '/orders', body, { 'idempotency-key': key });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.headers.get('location'), `/api/v1/orders/${res.body.id}`);
  return res.body;
}

/**
 * Limit orders in this bank expire this long after placement (instead of at the close), so the walk can see one
 * expire. Long enough that the resting order the walk cancels is cancelled first even when the suite's other banks
 * hold both cores: the cancel travels orders → bus → market → bus → orders through the niced workers, and once took
 * over 3 s that way.
 */
const TIME_IN_FORCE_S = 10;

/**
 * The whole bank, started as `npm start` does, walked through the public API like a customer would.
 * Registered once per bus engine (bank.test.ts: pg-boss, bank-nats.test.ts: NATS JetStream).
 */
export function bankWalk(options: () => Promise<Partial<StartBankOptions> | undefined>): void {
  let bank: Bank;
  let stopBank: () => Promise<void>;
  const api = () => new ApiClient(bank.gatewayUrl);

  before(async () => {
    const extra = await options();
    const started = await startTestBank({ ...extra, env: { EXCHANGE_TIME_IN_FORCE_SECONDS: String(TIME_IN_FORCE_S), ...(extra?.env ?? {}) } });
    bank = started.bank;
    stopBank = started.stop;
  });
  after(async () => {
    await stopBank?.();
  });

  test('a customer signs up, deposits, buys, sells, cancels, is rejected and sees a limit order expire', async () => {
    const ada = api();
    await ada.signUpAndLogIn();

    const accountId = await eventually('the USD account to be opened', async () => {
      const res = await ada.call<{ id: string; currency: string }[]>('GET', '/accounts');
      assert.equal(res.status, 200);
      return res.body[0]?.id;
    });
    let acct = await account(ada, accountId);
    assert.equal(acct.currency, 'USD');
    assert.deepEqual(acct.cash, { available: '0.00', reserved: '0.00' });

    // Deposit, twice with the same key: money moves once.
    for (let i = 0; i < 2; i++) {
      const dep = await ada.call<{ id: string; amount: string }>('POST', `/accounts/${accountId}/deposits`, { amount: '10000.00' }, { 'idempotency-key': 'deposit-1' });
      assert.equal(dep.status, 201);
      assert.equal(dep.body.amount, '10000.00');
    }
    acct = await account(ada, accountId);
    assert.deepEqual(acct.cash, { available: '10000.00', reserved: '0.00' });
    assertLedgerBalanced(await ledgerTotals(bank));

    // Buy 5 AAPL at market.
    let before = parseMoney(acct.cash.available);
    const buyKey = crypto.randomUUID();
    const buy = await placeOrder(ada, { accountId, symbol: 'AAPL', side: 'buy', quantity: 5, type: 'market' }, buyKey);
    const again = await placeOrder(ada, { accountId, symbol: 'AAPL', side: 'buy', quantity: 5, type: 'market' }, buyKey);
    assert.equal(again.id, buy.id, 'a repeated Idempotency-Key returns the same order');
    const filled = await waitForStatus(ada, buy.id, ['filled']);
    assert.equal(filled.filledQuantity, 5);
    assert.deepEqual(filled.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'filled']);
    acct = await account(ada, accountId);
    const spent = times(parseMoney(filled.averagePrice!), 5) + parseMoney(filled.fee!);
    assert.equal(acct.cash.available, formatMoney(before - spent));
    assert.equal(acct.cash.reserved, '0.00');
    assert.deepEqual(acct.positions.find((p) => p.symbol === 'AAPL'), { symbol: 'AAPL', quantity: 5, reserved: 0 });
    assertLedgerBalanced(await ledgerTotals(bank));

    // Sell 2 of them.
    before = parseMoney(acct.cash.available);
    const sell = await placeOrder(ada, { accountId, symbol: 'AAPL', side: 'sell', quantity: 2, type: 'market' });
    const sold = await waitForStatus(ada, sell.id, ['filled']);
    acct = await account(ada, accountId);
    assert.equal(acct.cash.available, formatMoney(before + times(parseMoney(sold.averagePrice!), 2) - parseMoney(sold.fee!)));
    assert.deepEqual(acct.positions.find((p) => p.symbol === 'AAPL'), { symbol: 'AAPL', quantity: 3, reserved: 0 });
    assertLedgerBalanced(await ledgerTotals(bank));

    // A limit buy far below the market rests at the exchange; cancel it.
    before = parseMoney(acct.cash.available);
    const resting = await placeOrder(ada, { accountId, symbol: 'MSFT', side: 'buy', quantity: 1, type: 'limit', limitPrice: '1.00' });
    await waitForStatus(ada, resting.id, ['placed']);
    acct = await account(ada, accountId);
    assert.notEqual(acct.cash.reserved, '0.00', 'cash is held while the order is open');
    const cancel = await ada.call('DELETE', `/orders/${resting.id}`);
    assert.equal(cancel.status, 202);
    await waitForStatus(ada, resting.id, ['cancelled']);
    acct = await account(ada, accountId);
    assert.deepEqual(acct.cash, { available: formatMoney(before), reserved: '0.00' });
    const cancelFinal = await ada.call<{ code: string }>('DELETE', `/orders/${resting.id}`);
    assert.equal(cancelFinal.status, 409, 'a final order cannot be cancelled');

    // Insufficient funds: rejected, nothing held.
    const tooBig = await placeOrder(ada, { accountId, symbol: 'GOOGL', side: 'buy', quantity: 1_000_000, type: 'market' });
    const rejected = await waitForStatus(ada, tooBig.id, ['rejected']);
    assert.match(rejected.reason ?? '', /insufficient/);
    acct = await account(ada, accountId);
    assert.deepEqual(acct.cash, { available: formatMoney(before), reserved: '0.00' });

    // Selling shares you don't have is rejected too.
    const naked = await placeOrder(ada, { accountId, symbol: 'MSFT', side: 'sell', quantity: 10, type: 'market' });
    assert.match((await waitForStatus(ada, naked.id, ['rejected'])).reason ?? '', /insufficient/);

    // A limit order that never reaches its price expires at its time in force (TIME_IN_FORCE_S in this run).
    const patient = await placeOrder(ada, { accountId, symbol: 'MSFT', side: 'buy', quantity: 1, type: 'limit', limitPrice: '1.00' });
    await waitForStatus(ada, patient.id, ['expired']);
    acct = await account(ada, accountId);
    assert.deepEqual(acct.cash, { available: formatMoney(before), reserved: '0.00' });

    // The ledger: balanced, nothing left reserved, and exactly one trade entry per filled order.
    const totals = await ledgerTotals(bank);
    assertLedgerBalanced(totals);
    assert.equal(totals.activeReservations, 0);
    const entries = await ada.call<{ kind: string; reference: string }[]>('GET', `/accounts/${accountId}/entries`);
    assert.equal(entries.status, 200);
    assert.equal(entries.body.filter((e) => e.reference === buy.id).length, 1);
    assert.equal(entries.body.filter((e) => e.reference === sell.id).length, 1);

    const list = await ada.call<{ id: string }[]>('GET', `/orders?accountId=${accountId}`);
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 6);
  });

  test('the API refuses strangers, hides other customers\' data and names bad fields', async () => {
    const ada = api();
    await ada.signUpAndLogIn();
    const eve = api();
    await eve.signUpAndLogIn('Eve');
    const adaAccount = await eventually('account', async () => (await ada.call<{ id: string }[]>('GET', '/accounts')).body[0]?.id);

    const anon = api();
    assert.equal((await anon.call('GET', '/accounts')).status, 401);
    anon.token = 'not-a-jwt';
    assert.equal((await anon.call('GET', '/accounts')).status, 401);

    assert.equal((await eve.call('GET', `/accounts/${adaAccount}`)).status, 404);
    assert.equal((await eve.call('POST', `/accounts/${adaAccount}/deposits`, { amount: '1.00' }, { 'idempotency-key': 'x' })).status, 404);
    const evesOrder = await eve.call('POST', '/orders', { accountId: adaAccount, symbol: 'AAPL', side: 'buy', quantity: 1, type: 'market' }, { 'idempotency-key': 'e1' });
    assert.equal(evesOrder.status, 404);

    const bad = await ada.call<{ errors: { field: string }[] }>('POST', `/accounts/${adaAccount}/deposits`, { amount: '12.345' }, { 'idempotency-key': 'd' });
    assert.equal(bad.status, 400);
    assert.ok(bad.body.errors.some((e) => e.field === 'body.amount'));
    const badQty = await ada.call<{ errors: { field: string }[] }>('POST', '/orders', { accountId: adaAccount, symbol: 'AAPL', side: 'buy', quantity: 1.5, type: 'market' }, { 'idempotency-key': 'q' });
    assert.equal(badQty.status, 400);
    assert.ok(badQty.body.errors.some((e) => e.field === 'body.quantity'));

    const unknown = await ada.call<{ status: number }>('GET', '/no-such-thing');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get('content-type')?.startsWith('application/problem+json'), true);

    const instruments = await ada.call<{ symbol: string }[]>('GET', '/instruments');
    assert.ok(instruments.body.length >= 20);
    for (const s of ['AAPL', 'MSFT', 'GOOGL']) assert.ok(instruments.body.some((i) => i.symbol === s));
    const price = await ada.call<{ symbol: string; price: string }>('GET', '/prices/AAPL');
    assert.equal(price.status, 200);
    assert.ok(parseMoney(price.body.price) > 0n);
  });
}
