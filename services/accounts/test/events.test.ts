import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import PgBoss from 'pg-boss';
import { createEnvelope, type EventEnvelope } from '@simplebank/chassis';
import { customersContract } from '@simplebank/customers/contract';
import { eventually, startAccounts, type Harness } from './helpers.ts';

const QUEUE = 'accounts.open-on-registration';

let h: Harness;
// A second pg-boss client on the bus database plays the part of a redelivering bus.
let boss: PgBoss;
before(async () => {
  h = await startAccounts();
  boss = new PgBoss({ connectionString: h.busUrl, schema: 'pgboss', supervise: false, schedule: false, migrate: false });
  await boss.start();
});
after(async () => {
  await boss.stop({ graceful: false });
  await h.stop();
});

const registered = (customerId: string): EventEnvelope =>
  createEnvelope('customers', { type: customersContract.events.CustomerRegistered.type, subject: customerId, data: { customerId, name: 'Ada Lovelace' } });

async function handled(jobId: string): Promise<void> {
  await eventually(async () => (await boss.getJobById(QUEUE, jobId))?.state === 'completed', `job ${jobId} to complete`);
}

async function accountsOf(customerId: string) {
  return (await h.accounts.listAccounts({ query: { customerId } })).body;
}

/** The AccountOpened events published for a customer, once everything written has reached the recorder. */
async function announcements(customerId: string): Promise<EventEnvelope[]> {
  await h.events.settled(h.sql);
  return h.events.of('accounts.AccountOpened.v1').filter((e) => (e.data as { customerId?: string }).customerId === customerId);
}

describe('accounts.open-on-registration', () => {
  it('opens exactly one USD account even when the event is delivered twice', async () => {
    const customerId = randomUUID();
    const event = registered(customerId);
    await h.running.context.bus.publish(event);
    await h.running.context.bus.publish(event); // the relay republishing after a crash
    await handled(event.id);
    // A real redelivery: the same envelope as a new job, which only the inbox can absorb.
    const again = await boss.send(QUEUE, event);
    assert.ok(again);
    await handled(again);

    const accounts = await accountsOf(customerId);
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0]!.currency, 'USD');
    const announced = await announcements(customerId);
    assert.equal(announced.length, 1);
    const opened = announced[0]!;
    assert.equal((opened.data as { accountId: string }).accountId, accounts[0]!.id);
    assert.equal(opened.causationId, event.id, 'AccountOpened names the registration that caused it');
    assert.equal(opened.correlationId, event.correlationId);
  });

  it('a second registration event for the same customer (a different event id) opens nothing new', async () => {
    const customerId = randomUUID();
    const first = registered(customerId);
    const second = registered(customerId);
    await h.running.context.bus.publish(first);
    await h.running.context.bus.publish(second);
    await handled(first.id);
    await handled(second.id);
    assert.equal((await accountsOf(customerId)).length, 1);
    assert.equal((await announcements(customerId)).length, 1);
  });

  it('agrees with an account opened over HTTP', async () => {
    const customerId = randomUUID();
    const opened = await h.accounts.openAccount({ body: { customerId } });
    const event = registered(customerId);
    await h.running.context.bus.publish(event);
    await handled(event.id);
    assert.deepEqual((await accountsOf(customerId)).map((a) => a.id), [opened.body.id]);
    assert.equal((await announcements(customerId)).length, 1);
  });
});
