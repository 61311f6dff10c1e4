import { isUpstreamError, parseTraceparent, type Client, type Contract, type Db, type ServiceContext } from '@simplebank/chassis';
import type { marketDataContract } from '@simplebank/market-data/contract';
import { formatMoney, parseMoney } from '@simplebank/money';
import { marketContract } from './contract.ts';
import { decide, isExpired, type Decision } from './domain/matching.ts';
import { dueOrders, finalizeMany, lockOpenOrders, toOpenOrder, type ExchangeOrderRow, type Outcome } from './data.ts';

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
 * The exchange's engine, a loop separate from event intake. A round looks at the orders due (one read, no locks),
 * fetches the prices once, and makes final, in one transaction, those it can: lock them with SKIP LOCKED (still
 * open, not held by another instance), decide each again under the lock, update them all in one statement and
 * append their events to the outbox, commit. Any number of market instances can run it against one database;
 * each order is executed by exactly one. A failed round leaves every order of it open for the next one.
 */
export function startMatcher(options: MatcherOptions): Matcher {
  const { db, publish, log, marketData } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;

  let priceFailures = 0;
  let lastWarnAt = 0;

  // The order's events continue the trace its intake kept (the matcher itself runs outside any trace).
  const eventOpts = (row: ExchangeOrderRow) => ({ subject: row.order_id, correlationId: row.correlation_id, ...(row.traceparent ? { trace: { traceparent: row.traceparent } } : {}) });
  const ref = (row: ExchangeOrderRow) => ({ orderId: row.order_id, accountId: row.account_id });

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

  /** Makes final those of `candidates` that the prices (none: expiries only) allow, in one transaction. */
  async function settle(candidates: ExchangeOrderRow[], prices: Map<string, bigint> | undefined): Promise<void> {
    // Cheap look without a lock first: most resting limit orders are not marketable this round.
    const t = now();
    const actionable = candidates.filter((c) => (prices ? decide(toOpenOrder(c), t, prices.get(c.symbol)).action !== 'wait' : isExpired(toOpenOrder(c), t)));
    if (actionable.length === 0) return;
    const done = await db.tx(async (tx) => {
      const rows = await lockOpenOrders(tx, actionable.map((c) => c.order_id)); // the others: another instance has them, or they ended meanwhile
      const at = now();
      const finals: { row: ExchangeOrderRow; decision: Exclude<Decision, { action: 'wait' }>; outcome: Outcome }[] = [];
      for (const row of rows) {
        const order = toOpenOrder(row);
        // Without prices only expiries are decided (decide() would take a missing price for an unknown symbol).
        if (!prices && !isExpired(order, at)) continue;
        const decision = decide(order, at, prices?.get(row.symbol), { rate: options.rejectRate, draw: random() });
        switch (decision.action) {
          case 'wait':
            continue;
          case 'expire':
            finals.push({ row, decision, outcome: { status: 'expired' } });
            await publish(tx, OrderExpired, { ...eventOpts(row), data: ref(row) });
            break;
          case 'reject':
            finals.push({ row, decision, outcome: { status: 'rejected', reason: decision.reason } });
            await publish(tx, OrderRejected, { ...eventOpts(row), data: { ...ref(row), reason: decision.reason } });
            break;
          case 'fill': {
            const executedAt = new Date(at);
            finals.push({ row, decision, outcome: { status: 'filled', fillPrice: decision.price, executedAt } });
            await publish(tx, TradeExecuted, {
              ...eventOpts(row),
              data: { ...ref(row), price: formatMoney(decision.price), quantity: row.quantity, executedAt: executedAt.toISOString() },
            });
            break;
          }
        }
      }
      await finalizeMany(tx, finals.map((f) => ({ orderId: f.row.order_id, outcome: f.outcome })));
      return finals;
    });
    if (!log.isLevelEnabled('info')) return;
    for (const { row, decision } of done) {
      // The matcher runs outside any work context: name the order's trace (kept at intake) so that
      // `simplebank logs --trace` finds this line with the rest of the order's story.
      const traceId = parseTraceparent(row.traceparent ?? undefined)?.traceId;
      log.info(
        { orderId: row.order_id, ...(traceId ? { traceId } : {}), symbol: row.symbol, side: row.side, outcome: decision.action, ...(decision.action === 'fill' ? { price: formatMoney(decision.price) } : {}), ...(decision.action === 'reject' ? { reason: decision.reason } : {}) },
        decision.action === 'expire' ? 'order expired' : 'exchange order final',
      );
    }
  }

  async function runOnce(): Promise<void> {
    const { expiring, executable } = await dueOrders(db, new Date(now()), BATCH);
    // Expiries need no price: they go ahead even when market-data cannot be reached.
    if (expiring.length > 0) await settle(expiring, undefined);
    if (executable.length === 0 || stopped) return;
    const prices = await fetchPrices();
    if (!prices || stopped) return;
    await settle(executable, prices);
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
