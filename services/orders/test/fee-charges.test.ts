import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient, isUpstreamError, startService, type Client, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { feesContract } from '@simplebank/fees/contract';
import { service as feesService } from '@simplebank/fees/service';
import { feeCharger } from '../src/fee-charges.ts';

const TOKEN = 'test-token-0123456789';
let dbs: TestDatabase[] = [];
let fees: RunningService;
let client: Client<typeof feesContract>;
/** The real client, with each call of a route counted (what feeCharger sends to the real fees service). */
let counted: Client<typeof feesContract>;
const calls = { charge: 0, chargeBatch: 0 };

before(async () => {
  dbs = await Promise.all([createTestDatabase('fees'), createTestDatabase('bus')]);
  fees = await startService(feesService, { PORT: '0', DATABASE_URL: dbs[0]!.url, BUS_URL: dbs[1]!.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
  client = createClient(feesContract, { baseUrl: fees.url, serviceToken: TOKEN });
  counted = {
    ...client,
    charge: (input) => (calls.charge++, client.charge(input)),
    chargeBatch: (input) => (calls.chargeBatch++, client.chargeBatch(input)),
  };
});

after(async () => {
  await client?.close();
  await fees?.stop();
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
