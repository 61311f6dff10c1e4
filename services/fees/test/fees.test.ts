import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient, isUpstreamError, startService, type Client, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, recordEvents, type EventRecorder, type TestDatabase } from '@simplebank/chassis/testing';
import { feesContract } from '../src/contract.ts';
import { service } from '../src/service.ts';

const TOKEN = 'test-token-0123456789';

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('fees service', () => {
  let db: TestDatabase;
  let busDb: TestDatabase;
  let running: RunningService;
  let fees: Client<typeof feesContract>;
  // A consumer of our own events, standing in for holdings/notifications: proves the outbox reaches the bus.
  let observer: EventRecorder;
  const env = () => ({ PORT: '0', DATABASE_URL: db.url, BUS_URL: busDb.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });

  before(async () => {
    [db, busDb] = await Promise.all([createTestDatabase('fees'), createTestDatabase('bus')]);
    running = await startService(service, env());
    // pg-boss only fans an event out to queues subscribed when it is published: subscribe before any charge.
    observer = await recordEvents({ busUrl: busDb.url, name: 'fees-test.observer', events: feesContract.events });
    fees = createClient(feesContract, { baseUrl: running.url, serviceToken: TOKEN });
  });

  after(async () => {
    await fees?.close();
    await observer?.close();
    await running?.stop();
    await Promise.all([db?.drop(), busDb?.drop()]);
  });

  const eventsFor = (orderId: string, type: string) => observer.of(type, orderId);
  /** Once everything fees wrote has been published and received, so a count is final. */
  const settled = () => observer.settled(running.context.db);

  test('publishes its schedule and quotes without recording anything', async () => {
    const schedule = await fees.getSchedule({});
    assert.deepEqual(schedule.body, { bps: 10, minimum: '1.00', maximum: '50.00' });

    const cases: [string, string][] = [['0.00', '0.00'], ['5.00', '1.00'], ['12345.67', '12.35'], ['1005.00', '1.01'], ['1000000.00', '50.00']];
    for (const [notional, fee] of cases) {
      const quote = await fees.quote({ body: { notional } });
      assert.equal(quote.status, 200);
      assert.deepEqual(quote.body, { notional, fee }, notional);
    }
    const normalised = await fees.quote({ body: { notional: '12.5' } });
    assert.deepEqual(normalised.body, { notional: '12.50', fee: '1.00' });

    const { rows } = await running.context.db.query<{ n: string }>('SELECT count(*) AS n FROM charges');
    assert.equal(rows[0]?.n, '0');
  });

  test('charges once per order: a repeat answers 200 with the same charge and publishes nothing more', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    const first = await fees.charge({ params: { orderId }, body: { accountId, notional: '12345.67' } });
    assert.equal(first.status, 201);
    assert.equal(first.headers.location, `/charges/${orderId}`);
    assert.deepEqual(first.body, { orderId, accountId, notional: '12345.67', fee: '12.35', status: 'charged' });

    const again = await fees.charge({ params: { orderId }, body: { accountId, notional: '12345.67' } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);

    const read = await fees.getCharge({ params: { orderId } });
    assert.deepEqual(read.body, first.body);

    const [charged] = await waitFor('FeeCharged', () => (eventsFor(orderId, feesContract.events.FeeCharged.type).length ? eventsFor(orderId, feesContract.events.FeeCharged.type) : undefined));
    assert.equal(charged!.source, 'fees');
    assert.equal(charged!.correlationId, orderId);
    assert.deepEqual(charged!.data, { orderId, accountId, fee: '12.35' });
    await settled();
    assert.equal(eventsFor(orderId, feesContract.events.FeeCharged.type).length, 1);
  });

  test('a repeat charge keeps the original fee after the schedule changed', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    const first = await fees.charge({ params: { orderId }, body: { accountId, notional: '20000.00' } });
    assert.equal(first.body.fee, '20.00');

    // A second instance on the same database with a new schedule (as after a config rollout).
    const repriced = await startService(service, { ...env(), FEE_BPS: '50', FEE_MINIMUM: '2.00', FEE_MAXIMUM: '80.00' });
    const client = createClient(feesContract, { baseUrl: repriced.url, serviceToken: TOKEN });
    try {
      assert.deepEqual((await client.quote({ body: { notional: '20000.00' } })).body, { notional: '20000.00', fee: '80.00' });
      const again = await client.charge({ params: { orderId }, body: { accountId, notional: '20000.00' } });
      assert.equal(again.status, 200);
      assert.equal(again.body.fee, '20.00');
    } finally {
      await client.close();
      await repriced.stop();
    }
  });

  test('the same order with other terms is a conflict, not a second charge', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    await fees.charge({ params: { orderId }, body: { accountId, notional: '100.00' } });
    // Equal amounts written differently are the same terms.
    assert.equal((await fees.charge({ params: { orderId }, body: { accountId, notional: '100' } })).status, 200);
    for (const body of [{ accountId, notional: '100.01' }, { accountId: randomUUID(), notional: '100.00' }]) {
      const err = await rejection(() => fees.charge({ params: { orderId }, body }));
      assert.ok(isUpstreamError(err));
      assert.equal(err.status, 409);
      assert.equal(err.code, 'charge_conflict');
    }
  });

  test('concurrent charges of one order create one charge and one event', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    const results = await Promise.all(Array.from({ length: 8 }, () => fees.charge({ params: { orderId }, body: { accountId, notional: '5000.00' } })));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
    for (const r of results) assert.deepEqual(r.body, { orderId, accountId, notional: '5000.00', fee: '5.00', status: 'charged' });
    await waitFor('FeeCharged', () => (eventsFor(orderId, feesContract.events.FeeCharged.type).length ? true : undefined));
    await settled();
    assert.equal(eventsFor(orderId, feesContract.events.FeeCharged.type).length, 1);
  });

  test('chargeBatch: each item answered as its own charge call would be, new, repeated or refused, one event per new charge', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const accountId = randomUUID();
    await fees.charge({ params: { orderId: b }, body: { accountId, notional: '1000.00' } });
    const { status, body } = await fees.chargeBatch({
      body: {
        charges: [
          { orderId: a, accountId, notional: '12345.67' },
          { orderId: b, accountId, notional: '1000.00' },
          { orderId: c, accountId, notional: '50.00' },
          { orderId: b, accountId, notional: '999.99' },
        ],
      },
    });
    assert.equal(status, 200);
    assert.deepEqual(body.results, [
      { status: 201, body: { orderId: a, accountId, notional: '12345.67', fee: '12.35', status: 'charged' } },
      { status: 200, body: { orderId: b, accountId, notional: '1000.00', fee: '1.00', status: 'charged' } },
      { status: 201, body: { orderId: c, accountId, notional: '50.00', fee: '1.00', status: 'charged' } },
      { status: 409, problem: { code: 'charge_conflict', detail: `order ${b} was already charged for account ${accountId} on a notional of 1000.00` } },
    ]);
    // Stored as single calls would have stored them, each new charge announced once.
    assert.deepEqual((await fees.getCharge({ params: { orderId: a } })).body.fee, '12.35');
    for (const orderId of [a, c]) await waitFor('FeeCharged', () => (eventsFor(orderId, feesContract.events.FeeCharged.type).length ? true : undefined));
    await settled();
    assert.deepEqual([a, b, c].map((id) => eventsFor(id, feesContract.events.FeeCharged.type).length), [1, 1, 1]);

    // A malformed item fails the call as a whole, naming it; an empty batch is refused.
    for (const charges of [[{ orderId: randomUUID(), accountId, notional: '1.5.0' }], []]) {
      const err = await rejection(() => fees.chargeBatch({ body: { charges } }));
      assert.ok(isUpstreamError(err));
      assert.equal(err.status, 400);
    }
  });

  test('refunds once: a second refund answers the same, and one FeeRefunded is published', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    await fees.charge({ params: { orderId }, body: { accountId, notional: '80000.00' } });

    const refunds = await Promise.all([fees.refund({ params: { orderId } }), fees.refund({ params: { orderId } })]);
    const again = await fees.refund({ params: { orderId } });
    const expected = { orderId, accountId, notional: '80000.00', fee: '50.00', status: 'refunded' };
    for (const r of [...refunds, again]) {
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, expected);
    }
    assert.deepEqual((await fees.getCharge({ params: { orderId } })).body, expected);
    // A charge after the refund (a late retry) does not charge again.
    const late = await fees.charge({ params: { orderId }, body: { accountId, notional: '80000.00' } });
    assert.equal(late.status, 200);
    assert.equal(late.body.status, 'refunded');

    const [refunded] = await waitFor('FeeRefunded', () => (eventsFor(orderId, feesContract.events.FeeRefunded.type).length ? eventsFor(orderId, feesContract.events.FeeRefunded.type) : undefined));
    assert.deepEqual(refunded!.data, { orderId, accountId, fee: '50.00' });
    await settled();
    assert.equal(eventsFor(orderId, feesContract.events.FeeRefunded.type).length, 1);
    assert.equal(eventsFor(orderId, feesContract.events.FeeCharged.type).length, 1);
  });

  test('refunding or reading an unknown charge is 404 charge_not_found', async () => {
    const orderId = randomUUID();
    for (const call of [() => fees.refund({ params: { orderId } }), () => fees.getCharge({ params: { orderId } })]) {
      const err = await rejection(call);
      assert.ok(isUpstreamError(err));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'charge_not_found');
    }
    const { rows } = await running.context.db.query<{ n: string }>('SELECT count(*) AS n FROM charges WHERE order_id = $1', [orderId]);
    assert.equal(rows[0]?.n, '0');
  });

  test('a notional that is not an exact non-negative decimal string is a 400 naming body.notional', async () => {
    const orderId = randomUUID();
    for (const notional of ['1.234', '-1', -1, 12.5, '1e3', null]) {
      for (const [method, path] of [['PUT', `/charges/${orderId}`], ['POST', '/quotes']] as const) {
        const res = await fetch(`${running.url}${path}`, {
          method,
          headers: { 'content-type': 'application/json', 'x-service-token': TOKEN },
          body: JSON.stringify({ accountId: randomUUID(), notional }),
        });
        const label = `${method} ${path} ${JSON.stringify(notional)}`;
        assert.equal(res.status, 400, label);
        assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/, label);
        const problem = (await res.json()) as { code: string; errors: { field: string }[] };
        assert.equal(problem.code, 'validation_failed', label);
        assert.deepEqual(problem.errors.map((e) => e.field), ['body.notional'], label);
      }
    }
    assert.equal((await running.context.db.query('SELECT 1 FROM charges WHERE order_id = $1', [orderId])).rowCount, 0);
  });

  test('charge, chargeBatch and refund require the service credential', async () => {
    const anonymous = createClient(feesContract, { baseUrl: running.url });
    try {
      const orderId = randomUUID();
      for (const call of [
        () => anonymous.charge({ params: { orderId }, body: { accountId: randomUUID(), notional: '1.00' } }),
        () => anonymous.chargeBatch({ body: { charges: [{ orderId, accountId: randomUUID(), notional: '1.00' }] } }),
        () => anonymous.refund({ params: { orderId } }),
      ]) {
        const err = await rejection(call);
        assert.ok(isUpstreamError(err));
        assert.equal(err.status, 401);
      }
      // Reads stay open to callers inside the network.
      assert.equal((await anonymous.quote({ body: { notional: '1.00' } })).status, 200);
    } finally {
      await anonymous.close();
    }
  });
});

describe('fees configuration', () => {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', main], {
        env: { PATH: process.env.PATH, PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', BUS_URL: 'postgres://postgres@127.0.0.1:1/none', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });

  test('a malformed fee setting stops the process naming the key', async () => {
    const bps = await run({ FEE_BPS: '1e1' });
    assert.equal(bps.code, 1);
    assert.match(bps.stderr, /FEE_BPS: must be a whole number of basis points/);
    const min = await run({ FEE_MINIMUM: '1.001' });
    assert.equal(min.code, 1);
    assert.match(min.stderr, /FEE_MINIMUM/);
  });
});
