import { randomUUID } from 'node:crypto';
import { createBus, createEnvelope, createLogger, startService, type Bus, type EventEnvelope, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, recordEvents } from '@simplebank/chassis/testing';
import { ordersContract } from '@simplebank/orders/contract';
import pg from 'pg';
import { marketContract } from '../src/contract.ts';
import { service } from '../src/service.ts';

export const TOKEN = 'test-token-0123456789';

/** Polls until `check` returns something truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A market under test: its own database and bus database, one or more instances, and a test consumer that
 * records every market event (stand-in for orders) plus a publisher of orders events.
 */
/** What the tests need of a running market instance. */
export type MarketInstance = Pick<RunningService, 'url' | 'stop'>;

export interface MarketStack {
  instances: MarketInstance[];
  url: string;
  /** A connection to market's own database, to look at its tables. */
  sql: pg.Pool;
  /** Market events received over the bus, in delivery order. */
  received: readonly EventEnvelope[];
  /** Resolves once everything market wrote to its outbox has been published and received. */
  settled(): Promise<void>;
  eventsFor(orderId: string): EventEnvelope[];
  /** Waits until an event of `type` arrives for `orderId`. */
  waitForEvent(orderId: string, type: string): Promise<EventEnvelope>;
  publishOrdersEvent<T>(type: string, data: T, subject: string): Promise<EventEnvelope<T>>;
  accept(order: Partial<AcceptedOrder> & Pick<AcceptedOrder, 'type'>): Promise<{ orderId: string; envelope: EventEnvelope<AcceptedOrder> }>;
  cancel(orderId: string, accountId: string): Promise<EventEnvelope>;
  addInstance(extraEnv?: Record<string, string>): Promise<MarketInstance>;
  stop(): Promise<void>;
}

export type AcceptedOrder = {
  orderId: string;
  accountId: string;
  customerId: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  type: 'market' | 'limit';
  limitPrice: string | null;
};

export async function startMarketStack(env: Record<string, string>): Promise<MarketStack> {
  const [db, busDb] = await Promise.all([createTestDatabase('market'), createTestDatabase('bus')]);
  const log = createLogger({ service: 'market-test', level: 'silent' });
  // The test's own bus client, which publishes orders' events, and a recorder of market's, subscribed before market
  // publishes (pg-boss routes an event only to the subscriptions that exist when it is published). The recorder
  // takes one event at a time, in publish order, so tests can assert OrderPlaced before the outcome.
  const bus: Bus = createBus({ url: busDb.url, service: 'market-test', log });
  await bus.start();
  const recorder = await recordEvents({ busUrl: busDb.url, name: 'market-test.events', events: marketContract.events });
  const received = recorder.events;

  const baseEnv = {
    PORT: '0',
    DATABASE_URL: db.url,
    BUS_URL: busDb.url,
    SERVICE_TOKEN: TOKEN,
    LOG_LEVEL: 'silent',
    EXCHANGE_MATCH_INTERVAL_MS: '20',
    ...env,
  };
  const instances: MarketInstance[] = [];
  const addInstance = async (extraEnv: Record<string, string> = {}): Promise<MarketInstance> => {
    const running = await startService(service, { ...baseEnv, ...extraEnv });
    instances.push(running);
    return running;
  };
  await addInstance();
  const sql = new pg.Pool({ connectionString: db.url, max: 2 });

  const eventsFor = (orderId: string) => received.filter((e) => (e.data as { orderId?: string }).orderId === orderId);
  const publishOrdersEvent = async <T>(type: string, data: T, subject: string) => {
    const envelope = createEnvelope('orders', { type, subject, data });
    await bus.publish(envelope);
    return envelope;
  };

  return {
    instances,
    get url() {
      return instances[0]!.url;
    },
    sql,
    received,
    settled: () => recorder.settled(sql),
    eventsFor,
    waitForEvent: (orderId, type) => waitFor(`${type} for ${orderId}`, () => eventsFor(orderId).find((e) => e.type === type)),
    publishOrdersEvent,
    async accept(order) {
      const data: AcceptedOrder = {
        orderId: randomUUID(),
        accountId: randomUUID(),
        customerId: randomUUID(),
        symbol: 'AAPL',
        side: 'buy',
        quantity: 10,
        limitPrice: null,
        ...order,
      };
      // Publish only what the contract allows, as orders would.
      const parsed = ordersContract.events.OrderAccepted.data.parse(data);
      const envelope = await publishOrdersEvent(ordersContract.events.OrderAccepted.type, parsed, data.orderId);
      return { orderId: data.orderId, envelope: envelope as EventEnvelope<AcceptedOrder> };
    },
    cancel: (orderId, accountId) =>
      publishOrdersEvent(ordersContract.events.OrderCancelRequested.type, ordersContract.events.OrderCancelRequested.data.parse({ orderId, accountId }), orderId),
    addInstance,
    async stop() {
      await Promise.all(instances.map((i) => i.stop()));
      await recorder.close();
      await bus.close();
      await sql.end();
      await Promise.all([db.drop(), busDb.drop()]);
    },
  };
}
