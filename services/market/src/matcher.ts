import { isUpstreamError, type Client, type Contract, type Db, type ServiceContext } from '@simplebank/chassis';
import type { marketDataContract } from '@simplebank/market-data/contract';
import { formatMoney, parseMoney } from '@simplebank/money';
import { marketContract } from './contract.ts';
import { decide } from './domain/matching.ts';
import { executableOrders, finalize, lockNextExpired, lockOpenOrder, toOpenOrder, type ExchangeOrderRow } from './data.ts';

const { TradeExecuted, OrderExpired, OrderRejected } = marketContract.events;

/** Orders looked at per round; the rest wait for the next round (keeps one round short). */
const BATCH = 200;
/** While market-data stays down, repeat the warning at most this often. */
const WARN_EVERY_MS = 10_000;

export interface MatcherOptions {
  db: Db;
  publish: ServiceContext<unknown, Record<string, Contract>>['publish'];
  log: ServiceContext<unknown, Record<string, Contract>>['log'];
  marketData: Client<typeof marketDataContract>;
  intervalMs: number;
  priceTimeoutMs: number;
  rejectRate: number;
  /** Injected so tests could pin them; default Date.now and Math.random. */
  now?: () => number;
  random?: () => number;
}

export interface Matcher {
  /** One round: expire what is due, then execute what the prices allow. */
  runOnce(): Promise<void>;
  /** Stops the loop after the round in flight. */
  stop(): Promise<void>;
}

/**
 * The exchange's engine, a loop separate from event intake. Every fill, expiry or rejection is its own
 * transaction: lock the open order with SKIP LOCKED, update it, append the event to the outbox, commit. Any
 * number of market instances can run it against one database; each order is executed by exactly one.
 */
export function startMatcher(options: MatcherOptions): Matcher {
  const { db, publish, log, marketData } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;

  let priceFailures = 0;
  let lastWarnAt = 0;

  const eventOpts = (row: ExchangeOrderRow) => ({ subject: row.order_id, correlationId: row.correlation_id });
  const ref = (row: ExchangeOrderRow) => ({ orderId: row.order_id, accountId: row.account_id });

  async function expireDue(): Promise<void> {
    for (let i = 0; i < BATCH; i++) {
      const expired = await db.tx(async (tx) => {
        const row = await lockNextExpired(tx, new Date(now()));
        if (!row) return undefined;
        await finalize(tx, row.order_id, { status: 'expired' });
        await publish(tx, OrderExpired, { ...eventOpts(row), data: ref(row) });
        return row;
      });
      if (!expired) return;
      log.info({ orderId: expired.order_id, symbol: expired.symbol }, 'order expired');
    }
  }

  /** Current prices by symbol, or undefined when market-data cannot be reached (try again next round). */
  async function fetchPrices(): Promise<Map<string, bigint> | undefined> {
    try {
      const { body } = await marketData.listPrices({ timeoutMs: options.priceTimeoutMs });
      if (priceFailures > 0) log.info({ afterFailures: priceFailures }, 'market-data reachable again; matching resumes');
      priceFailures = 0;
      return new Map(body.map((p) => [p.symbol, parseMoney(p.price)]));
    } catch (err) {
      priceFailures++;
      const t = now();
      if (priceFailures === 1 || t - lastWarnAt >= WARN_EVERY_MS) {
        lastWarnAt = t;
        log.warn(
          { err: isUpstreamError(err) ? { kind: err.kind, status: err.status, message: err.message } : err, failures: priceFailures },
          'no prices from market-data; open orders wait for the next round',
        );
      }
      return undefined;
    }
  }

  async function execute(candidate: ExchangeOrderRow, prices: Map<string, bigint>): Promise<void> {
    const price = prices.get(candidate.symbol);
    // Cheap look without a lock first: most resting limit orders are not marketable this round.
    if (decide(toOpenOrder(candidate), now(), price).action === 'wait') return;
    const done = await db.tx(async (tx) => {
      const row = await lockOpenOrder(tx, candidate.order_id);
      if (!row) return undefined; // another instance has it, or it was cancelled meanwhile
      const at = now();
      const decision = decide(toOpenOrder(row), at, price, { rate: options.rejectRate, draw: random() });
      switch (decision.action) {
        case 'wait':
          return undefined;
        case 'expire':
          await finalize(tx, row.order_id, { status: 'expired' });
          await publish(tx, OrderExpired, { ...eventOpts(row), data: ref(row) });
          break;
        case 'reject':
          await finalize(tx, row.order_id, { status: 'rejected', reason: decision.reason });
          await publish(tx, OrderRejected, { ...eventOpts(row), data: { ...ref(row), reason: decision.reason } });
          break;
        case 'fill': {
          const executedAt = new Date(at);
          await finalize(tx, row.order_id, { status: 'filled', fillPrice: decision.price, executedAt });
          await publish(tx, TradeExecuted, {
            ...eventOpts(row),
            data: { ...ref(row), price: formatMoney(decision.price), quantity: row.quantity, executedAt: executedAt.toISOString() },
          });
          break;
        }
      }
      return { row, decision };
    });
    if (done) {
      const { row, decision } = done;
      log.info(
        { orderId: row.order_id, symbol: row.symbol, side: row.side, outcome: decision.action, ...(decision.action === 'fill' ? { price: formatMoney(decision.price) } : {}), ...(decision.action === 'reject' ? { reason: decision.reason } : {}) },
        'exchange order final',
      );
    }
  }

  async function runOnce(): Promise<void> {
    await expireDue();
    const candidates = await executableOrders(db, new Date(now()), BATCH);
    if (candidates.length === 0) return;
    const prices = await fetchPrices();
    if (!prices) return;
    for (const candidate of candidates) {
      if (stopped) return;
      await execute(candidate, prices);
    }
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;

  const loop = () => {
    timer = undefined;
    if (stopped) return;
    inFlight = runOnce()
      .catch((err: unknown) => log.warn({ err }, 'matcher round failed; retrying next round'))
      .finally(() => {
        inFlight = undefined;
        // Rounds never overlap: the next one is scheduled when this one is over.
        if (!stopped) timer = setTimeout(loop, options.intervalMs);
      });
  };
  timer = setTimeout(loop, 0);

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}
