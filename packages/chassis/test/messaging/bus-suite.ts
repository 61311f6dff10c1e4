import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Db } from '../../src/data/db.ts';
import type { Bus, Delivery } from '../../src/messaging/bus.ts';
import { createEnvelope, type EventEnvelope } from '../../src/messaging/envelope.ts';
import { idempotentHandler } from '../../src/messaging/inbox.ts';
import { appendToOutbox } from '../../src/messaging/outbox.ts';
import { startOutboxRelay } from '../../src/messaging/relay.ts';
import { contextFrom, currentContext, runWithContext } from '../../src/trace/context.ts';
import { cleanupStack, serviceDatabase, sleep, testLog, waitFor } from './helpers.ts';

/** One isolated bus backend (a database, or a pair of streams) from which several bus instances can be made. */
export interface BusEnvironment {
  /** A new, not yet started bus on this backend, as another process of `service` would have. */
  newBus(service: string, options?: BusTestOptions): Bus;
  /** How crash-fixture.ts, in a child process, builds a bus on this backend (BUS_ADAPTER, BUS_URL, …). */
  processEnv: Record<string, string>;
  cleanup(): Promise<void>;
}

export interface BusSuiteOptions {
  name: string;
  environment(): Promise<BusEnvironment>;
  /** Set when the backend is unavailable: every test is skipped with this message. */
  skip?: string;
  /**
   * What the adapter promises about order (see its module comment):
   * 'single-consumer' — FIFO with concurrency 1 on one instance while nothing fails;
   * 'per-type' — FIFO per event type with concurrency 1, across instances and retries.
   */
  ordering: 'single-consumer' | 'per-type';
}

/** Adapter options a test sets. */
export interface BusTestOptions {
  /** Back-pressure signal in place of the event-loop lag. */
  busy?: () => boolean;
}

interface Env {
  bus(service?: string, options?: BusTestOptions): Promise<Bus>;
  db(prefix: string): Promise<Db>;
  /** A consumer in a child process (crash-fixture.ts) whose handler never finishes; killed at cleanup at the latest. */
  crashingConsumer(settings: CrashingConsumerSettings): Promise<CrashingConsumer>;
}

interface CrashingConsumerSettings {
  name: string;
  type: string;
  leaseSeconds: number;
  maxAttempts: number;
}

interface CrashingConsumer {
  /** Resolves with the first delivery of `eventId` the child reports. */
  delivery(eventId: string): Promise<Delivery>;
  /** SIGKILL: no close(), no acknowledgement, connections dropped by the kernel. */
  kill(): Promise<void>;
}

const fixture = fileURLToPath(new URL('./crash-fixture.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

async function startCrashingConsumer(
  backend: BusEnvironment,
  settings: CrashingConsumerSettings,
  cleanup: (fn: () => Promise<void>) => void,
): Promise<CrashingConsumer> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...backend.processEnv,
      SUBSCRIPTION: settings.name,
      EVENT_TYPE: settings.type,
      LEASE_SECONDS: String(settings.leaseSeconds),
      MAX_ATTEMPTS: String(settings.maxAttempts),
    },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  cleanup(kill);
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const exitedEarly = () => {
    if (child.exitCode !== null) throw new Error(`crash fixture exited with code ${child.exitCode}`);
  };
  await waitFor('the crashing consumer to subscribe', () => (exitedEarly(), lines.some((l) => l.ready)), 30_000);
  return {
    async delivery(eventId) {
      const line = await waitFor(`the crashing consumer to receive ${eventId}`, () => (exitedEarly(), lines.find((l) => l.handling === eventId)));
      return { attempt: line.attempt as number };
    },
    kill,
  };
}

const uid = () => randomBytes(4).toString('hex');
const event = (type: string, subject = `s-${uid()}`, data: unknown = {}) => createEnvelope('test', { type, subject, data });

/** Registers the adapter-independent behaviour every Bus must have. */
export function busSuite(options: BusSuiteOptions): void {
  const { skip } = options;

  /** Runs `fn` with an isolated backend; every bus and database made through `env` is closed/dropped after. */
  function busTest(name: string, fn: (env: Env, t: TestContext) => Promise<void>) {
    test(`${options.name}: ${name}`, skip ? { skip } : {}, async (t) => {
      const cleanup = cleanupStack();
      try {
        const backend = await options.environment();
        cleanup.add(() => backend.cleanup());
        const env: Env = {
          async bus(service = 'test', busOptions) {
            const bus = backend.newBus(service, busOptions);
            cleanup.add(() => bus.close());
            await bus.start();
            return bus;
          },
          db: (prefix) => serviceDatabase(prefix, cleanup.add),
          crashingConsumer: (settings) => startCrashingConsumer(backend, settings, cleanup.add),
        };
        await fn(env, t);
      } finally {
        await cleanup.run();
      }
    });
  }

  busTest('back-pressure: while the process is busy no new event is started; once it is not, each is handled', async (env) => {
    let busy = true;
    const bus = await env.bus('test', { busy: () => busy });
    const type = `t.Busy${uid()}.v1`;
    const handled = new Set<string>();
    await bus.subscribe({ name: `busy-${uid()}`, types: [type], concurrency: 4, handler: async (e) => void handled.add(e.id) });
    const events = Array.from({ length: 5 }, () => event(type));
    for (const e of events) await bus.publish(e);
    // Not busy, they are handled within milliseconds; busy, none may start.
    await sleep(500);
    assert.equal(handled.size, 0, 'no event started while the process was busy');
    busy = false;
    await waitFor('every event handled once the process caught up', () => handled.size === events.length || undefined);
  });

  busTest('delivers every published event of the subscribed types (at least once)', async (env) => {
    const bus = await env.bus();
    const seen = new Map<string, string>();
    const [typeA, typeB, typeC] = [`t.A${uid()}.v1`, `t.B${uid()}.v1`, `t.C${uid()}.v1`];
    await bus.subscribe({
      name: `test.all-${uid()}`,
      types: [typeA, typeB],
      handler: async (e) => void seen.set(e.id, e.type),
    });
    const unsubscribed = event(typeC);
    await bus.publish(unsubscribed);
    const published = [...Array.from({ length: 5 }, () => event(typeA)), ...Array.from({ length: 5 }, () => event(typeB))];
    for (const e of published) await bus.publish(e);

    await waitFor('all 10 events', () => published.every((e) => seen.has(e.id)));
    for (const e of published) assert.equal(seen.get(e.id), e.type);
    assert.equal(seen.has(unsubscribed.id), false, 'an event of a type not subscribed to was delivered');
  });

  busTest('publishBatch stores a batch in order, and once however often it is published', async (env) => {
    const bus = await env.bus();
    const [typeA, typeB, typeC] = [`t.BatchA${uid()}.v1`, `t.BatchB${uid()}.v1`, `t.BatchC${uid()}.v1`];
    const handled: EventEnvelope[] = [];
    await bus.subscribe({ name: `test.batch-${uid()}`, types: [typeA, typeB], concurrency: 1, handler: async (e) => void handled.push(e) });
    await bus.publishBatch([]);
    const batch = Array.from({ length: 60 }, (_, n) => event([typeA, typeB, typeC][n % 3] ?? typeA, 'account-1', { n }));
    await bus.publishBatch(batch);
    await bus.publishBatch(batch.slice(0, 20)); // the relay publishing a batch again after a crash
    const expected = batch.filter((e) => e.type !== typeC);
    await waitFor('the batch', () => expected.every((e) => handled.some((h) => h.id === e.id)));
    await sleep(500); // room for a wrongly duplicated delivery to show up
    const ids = (events: EventEnvelope[], type?: string) => events.filter((e) => !type || e.type === type).map((e) => e.id);
    assert.deepEqual(ids(handled, typeA), ids(expected, typeA));
    assert.deepEqual(ids(handled, typeB), ids(expected, typeB));
    if (options.ordering === 'single-consumer') assert.deepEqual(ids(handled), ids(expected));
    const byId = (events: EventEnvelope[]) => new Map(events.map((e) => [e.id, e]));
    assert.equal(handled.length, expected.length, 'an event was handled twice');
    assert.deepEqual(byId(handled), byId(expected));
  });

  busTest('an event whose consumer was killed mid-handling is redelivered to another instance as its next attempt', async (env) => {
    const name = `test.crash-${uid()}`;
    const type = `t.Crash${uid()}.v1`;
    // A short lease to keep the test quick; the mechanism is the one the default lease uses.
    const leaseSeconds = 2;
    const crashing = await env.crashingConsumer({ name, type, leaseSeconds, maxAttempts: 5 });
    const publisher = await env.bus('publisher');
    const sent = event(type);
    await publisher.publish(sent);
    assert.deepEqual(await crashing.delivery(sent.id), { attempt: 1 });
    await crashing.kill();

    const survivor = await env.bus('crashing');
    const deliveries: Delivery[] = [];
    await survivor.subscribe({ name, types: [type], leaseSeconds, handler: async (e, d) => void (e.id === sent.id && deliveries.push(d)) });
    await waitFor('the redelivery', () => deliveries.length > 0, 60_000);
    assert.deepEqual(deliveries, [{ attempt: 2 }]);
  });

  busTest('a consumer killed during the last attempt leaves the event dead-lettered, not lost', async (env) => {
    const name = `test.crash-last-${uid()}`;
    const type = `t.CrashLast${uid()}.v1`;
    const leaseSeconds = 2;
    const crashing = await env.crashingConsumer({ name, type, leaseSeconds, maxAttempts: 1 });
    const publisher = await env.bus('publisher');
    const sent = event(type);
    await publisher.publish(sent);
    await crashing.delivery(sent.id);
    await crashing.kill();

    const survivor = await env.bus('crashing');
    const handled: string[] = [];
    await survivor.subscribe({ name, types: [type], leaseSeconds, maxAttempts: 1, handler: async (e) => void handled.push(e.id) });
    const letters = await waitFor('the dead letter', async () => {
      const l = await survivor.deadLetters(name);
      return l.length > 0 ? l : undefined;
    }, 60_000);
    assert.deepEqual(letters.map((l) => l.event.id), [sent.id]);
    assert.match(letters[0]?.error ?? '', /lease expired|timeout/);
    assert.deepEqual(handled, [], 'the handler ran beyond maxAttempts');
  });

  busTest('a handler slower than the lease keeps its delivery while its instance lives', async (env) => {
    const [one, two] = [await env.bus('slow'), await env.bus('slow')];
    const name = `test.slow-${uid()}`;
    const type = `t.Slow${uid()}.v1`;
    const deliveries: Delivery[] = [];
    let finished = 0;
    const handler = async (_e: EventEnvelope, d: Delivery) => {
      deliveries.push(d);
      await sleep(7_500); // 2.5 leases: only the renewals keep the other instance from getting it
      finished++;
    };
    // Renewed every second: a stall of up to 2 s (a loaded CI machine) still keeps the delivery.
    await one.subscribe({ name, types: [type], leaseSeconds: 3, handler });
    await two.subscribe({ name, types: [type], leaseSeconds: 3, handler });
    await one.publish(event(type));
    await waitFor('the slow handler to finish', () => finished > 0, 30_000);
    await sleep(500);
    assert.deepEqual(deliveries, [{ attempt: 1 }]);
  });

  busTest('the full envelope survives the trip', async (env) => {
    const bus = await env.bus();
    let received: EventEnvelope | undefined;
    const type = `t.Envelope${uid()}.v1`;
    await bus.subscribe({ name: `test.envelope-${uid()}`, types: [type], handler: async (e) => void (received = e) });
    const sent = createEnvelope(
      'orders',
      { type, subject: 'order-1', data: { amount: '12.30', nested: { list: [1, 'two'] } }, correlationId: 'corr-1', causationId: 'cause-1' },
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' },
    );
    await bus.publish(sent);
    await waitFor('the event', () => received);
    assert.deepEqual(received, sent);
  });

  busTest('a redelivered event has one effect when handled through the inbox', async (env) => {
    const bus = await env.bus();
    const db = await env.db('inbox');
    await db.query('CREATE TABLE effects (event_id uuid NOT NULL, amount int NOT NULL)');
    const consumer = `test.inbox-${uid()}`;
    const apply = idempotentHandler(db, consumer, async (e, tx) => {
      await tx.query('INSERT INTO effects (event_id, amount) VALUES ($1, $2)', [e.id, (e.data as { amount: number }).amount]);
    });
    const attempts: number[] = [];
    const type = `t.Paid${uid()}.v1`;
    await bus.subscribe({
      name: consumer,
      types: [type],
      backoffMs: 20,
      handler: async (e, d) => {
        await apply(e, d);
        attempts.push(d.attempt);
        // The effect committed but the acknowledgement is "lost": the bus must deliver the same envelope again.
        if (d.attempt === 1) throw new Error('crashed after commit');
      },
    });
    const sent = event(type, 'acct-1', { amount: 7 });
    await bus.publish(sent);
    await waitFor('the redelivery', () => attempts.includes(2));

    // And once more by hand, concurrently with itself, as two instances racing on a duplicate would.
    await Promise.all([apply(sent, { attempt: 3 }), apply(sent, { attempt: 3 })]);

    const effects = await db.many<{ amount: number }>('SELECT amount FROM effects WHERE event_id = $1', [sent.id]);
    assert.deepEqual(effects, [{ amount: 7 }]);
    const inbox = await db.many('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [consumer, sent.id]);
    assert.equal(inbox.length, 1);
  });

  busTest('a failed handler rolls back its inbox row, so the retry applies the effect', async (env) => {
    const bus = await env.bus();
    const db = await env.db('inboxfail');
    await db.query('CREATE TABLE effects (event_id uuid NOT NULL)');
    const consumer = `test.inbox-fail-${uid()}`;
    const attempts: number[] = [];
    const type = `t.Fail${uid()}.v1`;
    await bus.subscribe({
      name: consumer,
      types: [type],
      backoffMs: 20,
      handler: idempotentHandler(db, consumer, async (e, tx, d) => {
        attempts.push(d.attempt);
        await tx.query('INSERT INTO effects (event_id) VALUES ($1)', [e.id]);
        if (d.attempt === 1) throw new Error('transient');
      }),
    });
    const sent = event(type);
    await bus.publish(sent);
    await waitFor('the effect', async () => (await db.many('SELECT 1 FROM effects')).length === 1);
    assert.deepEqual(attempts, [1, 2]);
  });

  busTest('retries a failed delivery, reporting the attempt number, until it succeeds', async (env) => {
    const bus = await env.bus();
    const deliveries: Delivery[] = [];
    let handled: EventEnvelope | undefined;
    const name = `test.retry-${uid()}`;
    const type = `t.Retry${uid()}.v1`;
    await bus.subscribe({
      name,
      types: [type],
      maxAttempts: 4,
      backoffMs: 50,
      handler: async (e, d) => {
        deliveries.push(d);
        if (d.attempt === 1) throw new Error('first attempt fails');
        handled = e;
      },
    });
    const sent = event(type);
    await bus.publish(sent);
    await waitFor('the successful retry', () => handled);
    assert.equal(handled?.id, sent.id);
    assert.deepEqual(deliveries, [{ attempt: 1 }, { attempt: 2 }]);
    assert.deepEqual(await bus.deadLetters(name), []);
  });

  busTest('dead-letters an event after maxAttempts and replays it on request', async (env) => {
    const bus = await env.bus();
    const name = `test.dlq-${uid()}`;
    const type = `t.Poison${uid()}.v1`;
    const attempts: number[] = [];
    const handled: string[] = [];
    let failing = true;
    await bus.subscribe({
      name,
      types: [type],
      maxAttempts: 3,
      backoffMs: 20,
      handler: async (e, d) => {
        attempts.push(d.attempt);
        if (failing) throw new Error(`boom on attempt ${d.attempt}`);
        handled.push(e.id);
      },
    });
    const healthy = event(type);
    const poison = event(type);
    await bus.publish(poison);
    const letters = await waitFor('the dead letter', async () => {
      const l = await bus.deadLetters(name);
      return l.length > 0 ? l : undefined;
    });
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(letters.length, 1);
    const [letter] = letters;
    assert.ok(letter);
    assert.equal(letter.subscription, name);
    assert.deepEqual(letter.event, poison);
    assert.match(letter.error, /boom on attempt 3/);
    assert.ok(!Number.isNaN(Date.parse(letter.failedAt)));
    assert.equal(letter.attempts, 3);

    failing = false;
    await bus.publish(healthy);
    await waitFor('the healthy event', () => handled.includes(healthy.id));
    assert.equal(handled.includes(poison.id), false, 'a dead-lettered event was delivered again without a replay');

    assert.equal(await bus.replay(name, letter.id), true);
    await waitFor('the replayed event', () => handled.includes(poison.id));
    assert.deepEqual(await bus.deadLetters(name), []);
    assert.equal(await bus.replay(name, letter.id), false, 'a dead letter can be replayed once');
    assert.equal(await bus.replay(name, 'no-such-id'), false);
    assert.equal(await bus.replay(`${name}-other`, letter.id), false);
  });

  busTest('lists dead letters oldest first up to a limit; a replayed one is handled exactly once, even when replayed twice at once', async (env) => {
    const bus = await env.bus();
    const name = `test.dlq-once-${uid()}`;
    const type = `t.PoisonOnce${uid()}.v1`;
    const handled: string[] = [];
    let failing = true;
    await bus.subscribe({
      name,
      types: [type],
      maxAttempts: 2,
      backoffMs: 20,
      handler: async (e) => {
        if (failing) throw new Error('not yet');
        handled.push(e.id);
      },
    });
    const deadLetters = (count: number) =>
      waitFor(`${count} dead letter(s)`, async () => {
        const l = await bus.deadLetters(name);
        return l.length === count ? l : undefined;
      });
    const [first, second] = [event(type), event(type)];
    await bus.publish(first);
    await deadLetters(1);
    await bus.publish(second);
    const letters = await deadLetters(2);
    assert.deepEqual(letters.map((l) => l.event.id), [first.id, second.id], 'oldest first');
    assert.deepEqual(letters.map((l) => l.attempts), [2, 2]);
    assert.deepEqual((await bus.deadLetters(name, 1)).map((l) => l.event.id), [first.id]);
    const [letter] = letters;
    assert.ok(letter);

    failing = false;
    // Two operators (or a retried request) at once: at least one succeeds, and the event is stored back once.
    const replayed = await Promise.all([bus.replay(name, letter.id), bus.replay(name, letter.id)]);
    assert.ok(replayed.includes(true), `replays answered ${replayed.join(', ')}`);
    assert.equal(await bus.replay(name, letter.id), false, 'a replayed dead letter is gone');
    await waitFor('the replayed event', () => handled.includes(first.id));
    // Nothing is left to deliver: no copy is waiting or being handled, so the count below is final.
    await waitFor('an empty backlog', async () => {
      const stats = (await bus.subscriptionStats!()).find((s) => s.subscription === name);
      return stats?.pending === 0 && stats.deadLetters === 1;
    });
    assert.deepEqual(handled, [first.id]);
    assert.deepEqual((await bus.deadLetters(name)).map((l) => l.event.id), [second.id]);
  });

  busTest('instances sharing a subscription name share the work: each event is handled once overall', async (env) => {
    const [one, two] = [await env.bus('shared'), await env.bus('shared')];
    const name = `test.shared-${uid()}`;
    const type = `t.Shared${uid()}.v1`;
    const handledBy = new Map<string, string[]>();
    const record = (instance: string) => async (e: EventEnvelope) => {
      handledBy.set(e.id, [...(handledBy.get(e.id) ?? []), instance]);
      await sleep(5);
    };
    await one.subscribe({ name, types: [type], handler: record('one'), concurrency: 2 });
    await two.subscribe({ name, types: [type], handler: record('two'), concurrency: 2 });
    const sent = Array.from({ length: 30 }, () => event(type));
    for (const e of sent) await (sent.indexOf(e) % 2 ? one : two).publish(e);

    await waitFor('all 30 events', () => sent.every((e) => handledBy.has(e.id)));
    await sleep(500); // room for a wrongly duplicated delivery to show up
    const duplicated = [...handledBy.entries()].filter(([, by]) => by.length > 1);
    assert.deepEqual(duplicated, [], 'events handled more than once');
    assert.equal(handledBy.size, 30);
  });

  busTest('handles events in publish order with concurrency 1', async (env) => {
    const bus = await env.bus();
    const type = `t.Ordered${uid()}.v1`;
    const order: number[] = [];
    await bus.subscribe({
      name: `test.order-${uid()}`,
      types: [type],
      concurrency: 1,
      handler: async (e) => {
        await sleep(Math.random() * 5);
        order.push((e.data as { n: number }).n);
      },
    });
    const count = 25;
    for (let n = 0; n < count; n++) await bus.publish(event(type, 'account-1', { n }));
    await waitFor(`${count} events`, () => order.length >= count);
    assert.deepEqual(order, Array.from({ length: count }, (_, n) => n));
  });

  if (options.ordering === 'per-type') {
    busTest('keeps publish order across instances and retries with concurrency 1', async (env) => {
      const [one, two] = [await env.bus('ordered'), await env.bus('ordered')];
      const type = `t.OrderedRetry${uid()}.v1`;
      const name = `test.order-retry-${uid()}`;
      const order: number[] = [];
      const handler = async (e: EventEnvelope, d: Delivery) => {
        const n = (e.data as { n: number }).n;
        if (n % 7 === 3 && d.attempt === 1) throw new Error('transient');
        await sleep(Math.random() * 5);
        order.push(n);
      };
      await one.subscribe({ name, types: [type], concurrency: 1, backoffMs: 20, handler });
      await two.subscribe({ name, types: [type], concurrency: 1, backoffMs: 20, handler });
      const count = 20;
      for (let n = 0; n < count; n++) await one.publish(event(type, 'account-1', { n }));
      await waitFor(`${count} events`, () => order.length >= count);
      assert.deepEqual(order, Array.from({ length: count }, (_, n) => n));
    });
  }

  busTest('outbox → relay → bus → inbox, keeping the trace', async (env) => {
    const bus = await env.bus('producer');
    const consumerBus = await env.bus('consumer');
    const producer = await env.db('producer');
    const consumer = await env.db('consumer');
    await producer.query('CREATE TABLE accounts (id text PRIMARY KEY, balance int NOT NULL)');
    await consumer.query('CREATE TABLE statements (account_id text NOT NULL, event_id uuid NOT NULL, trace_id text)');

    const type = `accounts.Opened${uid()}.v1`;
    const name = `statements.on-open-${uid()}`;
    const handled: EventEnvelope[] = [];
    await consumerBus.subscribe({
      name,
      types: [type],
      handler: idempotentHandler(consumer, name, async (e, tx) => {
        await tx.query('INSERT INTO statements (account_id, event_id, trace_id) VALUES ($1, $2, $3)', [
          e.subject,
          e.id,
          currentContext()?.traceId,
        ]);
        handled.push(e);
      }),
    });
    // A long poll: only the NOTIFY from the committing transaction can make the relay publish in time.
    const relay = startOutboxRelay({ db: producer, bus, log: testLog, pollIntervalMs: 60_000 });
    let relayStopped = false;
    try {
      const requestCtx = contextFrom({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', requestId: 'req-1' });
      const [published] = await runWithContext(requestCtx, () =>
        producer.tx(async (tx) => {
          await tx.query('INSERT INTO accounts (id, balance) VALUES ($1, 0)', ['acct-9']);
          return appendToOutbox(tx, 'accounts', [{ type, subject: 'acct-9', data: { owner: 'c-1' } }]);
        }),
      );
      assert.ok(published);
      assert.equal(published.causationId, 'req-1');
      assert.match(published.traceparent ?? '', new RegExp(`^00-${requestCtx.traceId}-${requestCtx.spanId}-01$`));

      const rows = await waitFor('the statement', async () => {
        const r = await consumer.many<{ account_id: string; event_id: string; trace_id: string }>('SELECT * FROM statements');
        return r.length > 0 ? r : undefined;
      });
      assert.deepEqual(rows, [{ account_id: 'acct-9', event_id: published.id, trace_id: requestCtx.traceId }]);
      assert.equal(handled[0]?.traceparent, published.traceparent);
      assert.equal(handled[0]?.source, 'accounts');
      await waitFor('an empty backlog', async () => (await relay.backlog()) === 0);
      assert.deepEqual(await producer.many('SELECT id FROM outbox'), [], 'the relay deleted the event it published');
      await relay.stop();
      relayStopped = true;
    } finally {
      if (!relayStopped) await relay.stop();
    }
  });

  busTest('a rolled-back transaction publishes nothing', async (env) => {
    const bus = await env.bus();
    const db = await env.db('rollback');
    const type = `t.Rollback${uid()}.v1`;
    const handled: string[] = [];
    await bus.subscribe({ name: `test.rollback-${uid()}`, types: [type], concurrency: 1, handler: async (e) => void handled.push(e.subject) });
    const relay = startOutboxRelay({ db, bus, log: testLog, pollIntervalMs: 100 });
    try {
      await assert.rejects(
        db.tx(async (tx) => {
          await appendToOutbox(tx, 'test', [{ type, subject: 'rolled-back', data: {} }]);
          throw new Error('business rule violated');
        }),
        /business rule violated/,
      );
      // The relay publishes in seq order, so once this later event is through, the first would have been too.
      await db.tx((tx) => appendToOutbox(tx, 'test', [{ type, subject: 'committed', data: {} }]));
      await waitFor('the committed event', () => handled.includes('committed'));
      assert.deepEqual(handled, ['committed']);
      // Nothing waits in the outbox either: the relay deleted what it published, and the rolled-back row never was.
      await waitFor('an empty outbox', async () => (await relay.backlog()) === 0);
      assert.deepEqual(handled, ['committed']);
    } finally {
      await relay.stop();
    }
  });

  busTest('close() waits for in-flight handlers before closing', async (env) => {
    const bus = await env.bus();
    const type = `t.Slow${uid()}.v1`;
    const steps: string[] = [];
    let started = false;
    await bus.subscribe({
      name: `test.close-${uid()}`,
      types: [type],
      handler: async () => {
        started = true;
        steps.push('handler started');
        await sleep(300);
        steps.push('handler finished');
      },
    });
    await bus.publish(event(type));
    await waitFor('the handler to start', () => started);
    await bus.close();
    steps.push('closed');
    assert.deepEqual(steps, ['handler started', 'handler finished', 'closed']);
  });

  busTest('ping() succeeds on a started bus', async (env) => {
    const bus = await env.bus();
    await bus.ping();
  });
}
