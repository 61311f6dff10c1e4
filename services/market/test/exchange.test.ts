import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createClient, startService, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, freePort, type TestDatabase } from '@simplebank/chassis/testing';
import { marketDataContract } from '@simplebank/market-data/contract';
import { service as marketDataService } from '@simplebank/market-data/service';
import { formatMoney, parseMoney } from '@simplebank/money';
import { ordersContract } from '@simplebank/orders/contract';
import { marketContract } from '../src/contract.ts';
import { wallClock } from '../src/domain/exchange-clock.ts';
import { startMarketStack, TOKEN, waitFor, type MarketStack } from './helpers.ts';

const E = marketContract.events;
const types = (stack: MarketStack, orderId: string) => stack.eventsFor(orderId).map((e) => e.type);

/**
 * Component tests of market: real PostgreSQL, a real pg-boss bus, and the real market-data service (which makes
 * these the contract tests of market's market-data client). Orders is played by the test: it publishes
 * OrderAccepted / OrderCancelRequested onto the bus and watches the market events that come back.
 */
describe('market: the simulated exchange', () => {
  let mdDb: TestDatabase;
  let marketData: RunningService;
  let prices: ReturnType<typeof createClient<typeof marketDataContract>>;
  let stack: MarketStack;

  // One-minute ticks keep the price still for most of a test; checks still allow for a tick boundary.
  const priceOf = async (symbol: string) => parseMoney((await prices.getPrice({ params: { symbol } })).body.price);

  before(async () => {
    mdDb = await createTestDatabase('market_data');
    marketData = await startService(marketDataService, { PORT: '0', DATABASE_URL: mdDb.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', MARKET_DATA_TICK_MS: '60000' });
    prices = createClient(marketDataContract, { baseUrl: marketData.url });
    stack = await startMarketStack({ MARKET_DATA_URL: marketData.url });
  });

  after(async () => {
    await stack?.stop();
    await prices?.close();
    await marketData?.stop();
    await mdDb?.drop();
  });

  it('a burst of orders is taken in batches (one transaction for several), none redone alone, each placed and filled once', async () => {
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${stack.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name) && l.includes('subscription="market.exchange-intake"'));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const redoneBefore = await metric('bus_batches_redone_total');
    const batchesBefore = await metric('bus_batch_size_count');
    const accepted = await Promise.all(Array.from({ length: 24 }, () => stack.accept({ type: 'market', symbol: 'MSFT', side: 'buy', quantity: 1 })));
    for (const { orderId } of accepted) await stack.waitForEvent(orderId, E.TradeExecuted.type);
    for (const { orderId } of accepted) assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.TradeExecuted.type]);
    const transactions = (await metric('bus_batch_size_count')) - batchesBefore;
    assert.ok(transactions < accepted.length, `24 orders in ${transactions} transactions: some went together`);
    assert.equal((await metric('bus_batches_redone_total')) - redoneBefore, 0, 'no batch failed and was handled again one by one');
  });

  it('market order → OrderPlaced, then TradeExecuted at the current market-data price', async () => {
    const before = await priceOf('AAPL');
    const { orderId, envelope } = await stack.accept({ type: 'market', symbol: 'AAPL', side: 'buy', quantity: 7 });
    const trade = await stack.waitForEvent(orderId, E.TradeExecuted.type);
    const afterPrice = await priceOf('AAPL');
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.TradeExecuted.type]);

    const placed = stack.eventsFor(orderId)[0]!;
    assert.equal((placed.data as { expiresAt: unknown }).expiresAt, null, 'market orders do not expire');
    assert.equal(placed.correlationId, envelope.correlationId);
    assert.equal(placed.causationId, envelope.id);

    const data = E.TradeExecuted.data.parse(trade.data);
    assert.equal(data.quantity, 7);
    assert.equal(data.accountId, envelope.data.accountId);
    assert.ok([before, afterPrice].includes(parseMoney(data.price)), `${data.price} is the market price (${formatMoney(before)} / ${formatMoney(afterPrice)})`);
    assert.equal(trade.correlationId, envelope.correlationId);

    const res = await fetch(`${stack.url}/exchange-orders/${orderId}`);
    assert.equal(res.status, 200);
    const order = marketContract.routes.getExchangeOrder.responses[200].parse(await res.json());
    assert.equal(order.status, 'filled');
    assert.equal(order.fillPrice, data.price);
    assert.equal(order.type, 'market');
  });

  it('limit buy above the market fills at the market price, which is at most the limit', async () => {
    const market = await priceOf('MSFT');
    const limit = market * 2n;
    const { orderId } = await stack.accept({ type: 'limit', symbol: 'MSFT', side: 'buy', quantity: 3, limitPrice: formatMoney(limit) });
    const trade = E.TradeExecuted.data.parse((await stack.waitForEvent(orderId, E.TradeExecuted.type)).data);
    const fill = parseMoney(trade.price);
    assert.ok(fill <= limit);
    assert.ok(fill < limit, 'not at the limit: at the (better) market price');
    assert.ok(fill * 10_000n >= market * 9_990n && fill * 10_000n <= market * 10_010n, 'within a tick of the quoted price');
    const placed = E.OrderPlaced.data.parse(stack.eventsFor(orderId)[0]!.data);
    // Default time in force: the close of the exchange day, in New York.
    const close = wallClock(Date.parse(placed.expiresAt!), 'America/New_York');
    assert.equal(`${close.hour}:${close.minute}`, '16:0');
  });

  it('limit sell below the market fills at the market price, which is at least the limit', async () => {
    const market = await priceOf('GOOGL');
    const limit = market / 2n;
    const { orderId } = await stack.accept({ type: 'limit', symbol: 'GOOGL', side: 'sell', quantity: 1, limitPrice: formatMoney(limit) });
    const trade = E.TradeExecuted.data.parse((await stack.waitForEvent(orderId, E.TradeExecuted.type)).data);
    assert.ok(parseMoney(trade.price) >= limit);
  });

  it('cancel of an open order → OrderCancelled', async () => {
    const market = await priceOf('AMZN');
    const { orderId, envelope } = await stack.accept({ type: 'limit', symbol: 'AMZN', side: 'buy', quantity: 5, limitPrice: formatMoney(market / 2n) });
    await stack.waitForEvent(orderId, E.OrderPlaced.type);
    const cancel = await stack.cancel(orderId, envelope.data.accountId);
    const cancelled = await stack.waitForEvent(orderId, E.OrderCancelled.type);
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.OrderCancelled.type]);
    assert.equal(cancelled.causationId, cancel.id);
    const order = (await (await fetch(`${stack.url}/exchange-orders/${orderId}`)).json()) as { status: string };
    assert.equal(order.status, 'cancelled');
  });

  it('a cancel that arrives before its order cancels it on arrival', async () => {
    const orderId = randomUUID();
    const accountId = randomUUID();
    await stack.cancel(orderId, accountId);
    await waitFor('the cancel request to be stored', async () => (await stack.sql.query('SELECT 1 FROM cancel_requests WHERE order_id = $1', [orderId])).rowCount === 1);
    await stack.accept({ orderId, accountId, type: 'market', symbol: 'NVDA' });
    await stack.waitForEvent(orderId, E.OrderCancelled.type);
    assert.deepEqual(types(stack, orderId), [E.OrderCancelled.type], 'never placed, never executed');
    const { rows } = await stack.sql.query('SELECT status FROM exchange_orders WHERE order_id = $1', [orderId]);
    assert.equal(rows[0]?.status, 'cancelled');
    assert.equal((await stack.sql.query('SELECT 1 FROM cancel_requests WHERE order_id = $1', [orderId])).rowCount, 0, 'request consumed');
  });

  it('cancel after the fill changes nothing (orders learns from TradeExecuted)', async () => {
    const { orderId, envelope } = await stack.accept({ type: 'market', symbol: 'KO' });
    await stack.waitForEvent(orderId, E.TradeExecuted.type);
    const cancel = await stack.cancel(orderId, envelope.data.accountId);
    await waitFor('the cancel to be handled', async () => (await stack.sql.query(`SELECT 1 FROM inbox WHERE event_id = $1`, [cancel.id])).rowCount === 1);
    const { rows } = await stack.sql.query('SELECT status FROM exchange_orders WHERE order_id = $1', [orderId]);
    assert.equal(rows[0]?.status, 'filled');
    await stack.settled();
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.TradeExecuted.type], 'no OrderCancelled');
  });

  it('duplicate OrderAccepted (redelivered and re-sent) → one exchange order, one fill', async () => {
    const { orderId, envelope } = await stack.accept({ type: 'market', symbol: 'JPM', quantity: 2 });
    // The same envelope again (a redelivery), and the same order under a new event id (an upstream retry).
    await stack.publishOrdersEvent(envelope.type, envelope.data, orderId);
    const { data } = envelope;
    const again = await stack.publishOrdersEvent(ordersContract.events.OrderAccepted.type, data, orderId);
    await stack.waitForEvent(orderId, E.TradeExecuted.type);
    await waitFor('both deliveries to be handled', async () => {
      const { rowCount } = await stack.sql.query(`SELECT 1 FROM inbox WHERE consumer = 'market.exchange-intake' AND event_id = ANY($1::uuid[])`, [[envelope.id, again.id]]);
      return rowCount === 2;
    });
    await stack.settled();
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.TradeExecuted.type]);
    assert.equal((await stack.sql.query('SELECT 1 FROM exchange_orders WHERE order_id = $1', [orderId])).rowCount, 1);
  });

  it('two market instances on one database execute each order exactly once', async () => {
    const second = await stack.addInstance();
    try {
      const market = await priceOf('AAPL');
      const orders = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 3 === 0
            ? stack.accept({ type: 'limit', symbol: 'AAPL', side: 'buy', quantity: 1 + i, limitPrice: formatMoney(market * 2n) })
            : stack.accept({ type: 'market', symbol: i % 2 ? 'MSFT' : 'V', side: i % 2 ? 'buy' : 'sell', quantity: 1 + i }),
        ),
      );
      const ids = orders.map((o) => o.orderId);
      await waitFor('every order to be executed', () => ids.every((id) => stack.eventsFor(id).some((e) => e.type === E.TradeExecuted.type)), 30_000);
      await stack.settled();
      for (const id of ids) assert.equal(stack.eventsFor(id).filter((e) => e.type === E.TradeExecuted.type).length, 1, `order ${id} executed once`);
      // Both instances see the same book: nothing left open.
      const status = (await (await fetch(`${second.url}/exchange`)).json()) as { openOrders: number };
      assert.equal(status.openOrders, 0);
    } finally {
      await second.stop();
      stack.instances.splice(stack.instances.indexOf(second), 1);
    }
  });

  it('exchangeStatus reports the clock, open state and open orders; unknown order → 404', async () => {
    const res = await fetch(`${stack.url}/exchange`);
    assert.equal(res.status, 200);
    const body = marketContract.routes.exchangeStatus.responses[200].parse(await res.json());
    assert.equal(body.open, true);
    assert.ok(Math.abs(Date.parse(body.exchangeTime) - Date.now()) < 60_000);
    const missing = await fetch(`${stack.url}/exchange-orders/${randomUUID()}`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /problem\+json/);
    const bad = await fetch(`${stack.url}/exchange-orders/not-a-uuid`);
    assert.equal(bad.status, 400);
    assert.ok(((await bad.json()) as { errors: { field: string }[] }).errors.some((e) => e.field === 'params.orderId'));
  });

  it('an order for a symbol market-data does not list is rejected', async () => {
    const { orderId } = await stack.accept({ type: 'market', symbol: 'NOPE' });
    const rejected = await stack.waitForEvent(orderId, E.OrderRejected.type);
    assert.equal(E.OrderRejected.data.parse(rejected.data).reason, 'unknown symbol');
  });
});

describe('market: time in force and the reject knob', () => {
  let mdDb: TestDatabase;
  let marketData: RunningService;
  let stack: MarketStack;

  before(async () => {
    mdDb = await createTestDatabase('market_data');
    marketData = await startService(marketDataService, { PORT: '0', DATABASE_URL: mdDb.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', MARKET_DATA_TICK_MS: '60000' });
    // Every execution rejected: a resting order never reaches execution, so it still expires.
    stack = await startMarketStack({ MARKET_DATA_URL: marketData.url, EXCHANGE_TIME_IN_FORCE_SECONDS: '1', EXCHANGE_REJECT_RATE: '1' });
  });
  after(async () => {
    await stack?.stop();
    await marketData?.stop();
    await mdDb?.drop();
  });

  it('limit buy far below the market → OrderPlaced, then OrderExpired', async () => {
    const client = createClient(marketDataContract, { baseUrl: marketData.url });
    const market = parseMoney((await client.getPrice({ params: { symbol: 'AAPL' } })).body.price);
    await client.close();
    const { orderId } = await stack.accept({ type: 'limit', symbol: 'AAPL', side: 'buy', quantity: 4, limitPrice: formatMoney(market / 2n) });
    const placed = E.OrderPlaced.data.parse((await stack.waitForEvent(orderId, E.OrderPlaced.type)).data);
    assert.ok(placed.expiresAt);
    await stack.waitForEvent(orderId, E.OrderExpired.type);
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.OrderExpired.type]);
    const { rows } = await stack.sql.query('SELECT status, fill_price FROM exchange_orders WHERE order_id = $1', [orderId]);
    assert.deepEqual(rows[0], { status: 'expired', fill_price: null });
  });

  it('EXCHANGE_REJECT_RATE=1 → the market order is placed, then OrderRejected', async () => {
    const { orderId } = await stack.accept({ type: 'market', symbol: 'MSFT' });
    const rejected = await stack.waitForEvent(orderId, E.OrderRejected.type);
    assert.equal(E.OrderRejected.data.parse(rejected.data).reason, 'rejected by the exchange');
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type, E.OrderRejected.type]);
  });
});

describe('market: closed exchange', () => {
  let stack: MarketStack;

  before(async () => {
    // A one-minute session three hours from now (New York time): closed now, whatever the day.
    const now = wallClock(Date.now(), 'America/New_York');
    const start = (now.hour * 60 + now.minute + 180) % 1_438;
    const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    stack = await startMarketStack({ MARKET_DATA_URL: 'http://127.0.0.1:9', EXCHANGE_HOURS: `${hhmm(start)}-${hhmm(start + 1)}` });
  });
  after(async () => stack?.stop());

  it('rejects orders with reason "market closed"', async () => {
    const { orderId } = await stack.accept({ type: 'market', symbol: 'AAPL' });
    const rejected = await stack.waitForEvent(orderId, E.OrderRejected.type);
    assert.equal(E.OrderRejected.data.parse(rejected.data).reason, 'market closed');
    assert.deepEqual(types(stack, orderId), [E.OrderRejected.type]);
    const status = (await (await fetch(`${stack.url}/exchange`)).json()) as { open: boolean };
    assert.equal(status.open, false);
  });
});

describe('market: market-data unreachable', () => {
  let mdDb: TestDatabase;
  let marketData: RunningService | undefined;
  let stack: MarketStack;
  let port: number;

  before(async () => {
    mdDb = await createTestDatabase('market_data');
    port = await freePort();
    stack = await startMarketStack({ MARKET_DATA_URL: `http://127.0.0.1:${port}`, EXCHANGE_PRICE_TIMEOUT_MS: '200' });
  });
  after(async () => {
    await stack?.stop();
    await marketData?.stop();
    await mdDb?.drop();
  });

  it('keeps the order open and fills it once prices are back', async () => {
    const { orderId } = await stack.accept({ type: 'market', symbol: 'AAPL' });
    await stack.waitForEvent(orderId, E.OrderPlaced.type);
    // Several matcher rounds fail to get prices; the order must still be open and the service still ready.
    await waitFor('matcher rounds without prices', async () => {
      const ready = await fetch(`${stack.url}/health/ready`);
      const status = (await (await fetch(`${stack.url}/exchange`)).json()) as { openOrders: number };
      return ready.status === 200 && status.openOrders === 1;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(types(stack, orderId), [E.OrderPlaced.type]);

    marketData = await startService(marketDataService, { PORT: String(port), DATABASE_URL: mdDb.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
    await stack.waitForEvent(orderId, E.TradeExecuted.type);
  });
});
