import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient, isUpstreamError, startService, type Client, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { accountsContract } from '@simplebank/accounts/contract';
import { service as accountsService } from '@simplebank/accounts/service';
import { feesContract } from '@simplebank/fees/contract';
import { service as feesService } from '@simplebank/fees/service';
import { feeCharger, holdPlacer, tradeSettler } from '../src/batched-calls.ts';

const TOKEN = 'test-token-0123456789';
let dbs: TestDatabase[] = [];
let fees: RunningService;
let accounts: RunningService;
let client: Client<typeof feesContract>;
let accountsClient: Client<typeof accountsContract>;
/** The real clients, with each call of a route counted (what the batched calls send to the real services). */
let counted: Client<typeof feesContract>;
let countedAccounts: Client<typeof accountsContract>;
const calls = { charge: 0, chargeBatch: 0 };
const accountCalls = { reserve: 0, reserveBatch: 0, settle: 0, settleBatch: 0 };

before(async () => {
  dbs = await Promise.all([createTestDatabase('fees'), createTestDatabase('accounts'), createTestDatabase('bus')]);
  const env = { PORT: '0', BUS_URL: dbs[2]!.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' };
  [fees, accounts] = await Promise.all([startService(feesService, { ...env, DATABASE_URL: dbs[0]!.url }), startService(accountsService, { ...env, DATABASE_URL: dbs[1]!.url })]);
  client = createClient(feesContract, { baseUrl: fees.url, serviceToken: TOKEN });
  counted = {
    ...client,
    charge: (input) => (calls.charge++, client.charge(input)),
    chargeBatch: (input) => (calls.chargeBatch++, client.chargeBatch(input)),
  };
  accountsClient = createClient(accountsContract, { baseUrl: accounts.url, serviceToken: TOKEN });
  countedAccounts = {
    ...accountsClient,
    reserve: (input) => (accountCalls.reserve++, accountsClient.reserve(input)),
    reserveBatch: (input) => (accountCalls.reserveBatch++, accountsClient.reserveBatch(input)),
    settle: (input) => (accountCalls.settle++, accountsClient.settle(input)),
    settleBatch: (input) => (accountCalls.settleBatch++, accountsClient.settleBatch(input)),
  };
});

after(async () => {
  await client?.close();
  await accountsClient?.close();
  await Promise.all([fees?.stop(), accounts?.stop()]);
  await Promise.all(dbs.map((d) => d.drop()));
});

test('feeCharger: charges made together go to fees in one call; each caller gets its own outcome, a refusal its own error', async () => {
  const charge = feeCharger(counted, { maxSize: 32, transactions: 1 });
  const accountId = randomUUID();
  const conflicting = randomUUID();
  await client.charge({ params: { orderId: conflicting }, body: { accountId, notional: '10.00' } });
  calls.charge = calls.chargeBatch = 0;

  const orders = Array.from({ length: 10 }, () => randomUUID());
  const outcomes = await Promise.allSettled([
    ...orders.map((orderId, i) => charge({ orderId, accountId, notional: `${100 + i}.00` })),
    charge({ orderId: conflicting, accountId, notional: '20.00' }),
  ]);
  assert.deepEqual(calls, { charge: 0, chargeBatch: 1 }, 'eleven charges in one call');
  orders.forEach((orderId, i) => {
    const o = outcomes[i]!;
    assert.equal(o.status, 'fulfilled');
    assert.deepEqual((o as PromiseFulfilledResult<unknown>).value, { orderId, accountId, notional: `${100 + i}.00`, fee: '1.00', status: 'charged' });
  });
  const refused = outcomes[10]!;
  assert.equal(refused.status, 'rejected');
  const err = (refused as PromiseRejectedResult).reason;
  assert.ok(isUpstreamError(err));
  assert.equal(err.status, 409);
  assert.equal(err.code, 'charge_conflict');

  // Stored as charged, once each; a charge on its own goes as a single call.
  for (const orderId of orders) assert.equal((await client.getCharge({ params: { orderId } })).body.status, 'charged');
  calls.charge = calls.chargeBatch = 0;
  const alone = await charge({ orderId: randomUUID(), accountId, notional: '5000.00' });
  assert.equal(alone.fee, '5.00');
  assert.deepEqual(calls, { charge: 1, chargeBatch: 0 });
});

test('holdPlacer and tradeSettler: holds and settlements made together go to accounts in one call each; a refusal rejects its own caller', async () => {
  const place = holdPlacer(countedAccounts, { maxSize: 32, transactions: 1 });
  const settleTrade = tradeSettler(countedAccounts, { maxSize: 32, transactions: 1 });
  const customerId = randomUUID();
  const { body: account } = await accountsClient.openAccount({ body: { customerId } });
  await accountsClient.deposit({ params: { id: account.id }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount: '100.00' } });
  const accountId = account.id;

  // Eight holds of 12.00 on 100.00, and a ninth and tenth that no longer fit.
  const ids = Array.from({ length: 10 }, () => randomUUID());
  const held = await Promise.allSettled(ids.map((id) => place({ id, kind: 'cash', accountId, amount: '12.00' })));
  assert.deepEqual(accountCalls, { reserve: 0, reserveBatch: 1, settle: 0, settleBatch: 0 }, 'ten holds in one call');
  assert.deepEqual(held.map((o) => o.status), [...Array(8).fill('fulfilled'), 'rejected', 'rejected']);
  for (const o of held.slice(8)) {
    const err = (o as PromiseRejectedResult).reason;
    assert.ok(isUpstreamError(err));
    assert.deepEqual([err.service, err.operation, err.status, err.code], ['accounts', 'reserve', 409, 'insufficient_funds']);
  }

  // The eight settle together (1 share at 10.00 and a 1.00 fee each), once: 88.00 spent, nothing left reserved.
  const settled = await Promise.all(ids.slice(0, 8).map((id) => settleTrade({ id, side: 'buy', symbol: 'AAPL', quantity: 1, price: '10.00', fee: '1.00' })));
  assert.equal(accountCalls.settleBatch, 1, 'eight settlements in one call');
  assert.deepEqual(settled.map((s) => s.id), ids.slice(0, 8));
  assert.equal(new Set(settled.map((s) => s.entryId)).size, 8);
  const { body: after } = await accountsClient.getAccount({ params: { id: accountId }, query: {} });
  assert.deepEqual(after.cash, { balance: '12.00', available: '12.00', reserved: '0.00' });
  assert.deepEqual(after.positions.map((p) => [p.symbol, p.quantity]), [['AAPL', 8]]);

  // One made alone goes to the single route.
  const again = await settleTrade({ id: ids[0]!, side: 'buy', symbol: 'AAPL', quantity: 1, price: '10.00', fee: '1.00' });
  assert.equal(again.entryId, settled[0]!.entryId);
  assert.deepEqual(accountCalls, { reserve: 0, reserveBatch: 1, settle: 1, settleBatch: 1 });
});
