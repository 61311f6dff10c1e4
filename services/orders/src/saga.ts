/**
 * The place-order saga, orchestrated here. The first step takes its work from the orders database's own reserve
 * queue (reserve-worker.ts: a row written with the order); the others run inside an event handler's transaction
 * (the chassis records the event in the inbox in the same transaction, so a redelivered event is skipped). Either
 * way a step's transition, its saga_log rows and the events it publishes (outbox) commit together or not at all.
 *
 *   queued with the order ─▶ reserve:  account check, price, fee estimate, hold at accounts ─▶ accepted (OrderAccepted)
 *                                      refused ─▶ rejected (OrderRejected)
 *   market.OrderPlaced ─▶ placed
 *   market.TradeExecuted ─▶ charge fee ─▶ settle hold ─▶ filled (OrderFilled)
 *   market.OrderExpired / OrderRejected / OrderCancelled ─▶ release hold ─▶ refund fee ─▶ expired / rejected / cancelled
 *
 * The holds, fee charges and settlements of one batch of steps go as one call per operation (batched-calls.ts).
 * Calls to other services are idempotent (the reservation and the charge are keyed by the order id), so a step
 * that fails half-way is simply taken again (the reserve queue's backoff, the bus's redelivery). Transitions take
 * the order's row lock and re-check the state, so duplicate or out-of-order work is a no-op: an order fills at most
 * once and is compensated at most once in effect.
 */
import { isUpstreamError, type Client, type InContext, type Contract, type EventEnvelope, type Logger, type Queryable, type ServiceContext } from '@simplebank/chassis';
import { accountsContract } from '@simplebank/accounts/contract';
import { feesContract } from '@simplebank/fees/contract';
import { marketDataContract } from '@simplebank/market-data/contract';
import { marketContract } from '@simplebank/market/contract';
import { formatMoney, parseMoney, times } from '@simplebank/money';
import type { z } from 'zod';
import { ordersContract } from './contract.ts';
import { lockOrder, lockOrders, logStep, saveOrder } from './data.ts';
import { feeCharger, holdPlacer, tradeSettler } from './batched-calls.ts';
import type { OrderMetrics } from './metrics.ts';
import { isOrderError, Order } from './domain/order.ts';
import { holdsCash, maxNotional, planReservation } from './domain/reservation.ts';
import { OwnershipCache } from './ownership.ts';
import { PriceCache, QuoteCache } from './prices.ts';

export const dependencies = { accounts: accountsContract, fees: feesContract, marketData: marketDataContract };

export interface Clients {
  accounts: Client<typeof accountsContract>;
  fees: Client<typeof feesContract>;
  marketData: Client<typeof marketDataContract>;
}

type MarketEvents = typeof marketContract.events;
type DataOf<K extends keyof MarketEvents> = z.infer<MarketEvents[K]['data']>;

/** The chassis' `ctx.publish`: appends to the outbox in the caller's transaction. */
export type Publish = ServiceContext<unknown, Record<string, Contract>>['publish'];

export interface SagaOptions {
  clients: Clients;
  publish: Publish;
  log: Logger;
  slippageBps: number;
  /** Attempts of the reserve step before it gives up on a dependency that stays down. */
  reserveMaxAttempts: number;
  /** How long a market price is reused for sizing holds (prices.ts); 0 asks market-data for every order. */
  priceCacheMs: number;
  /** How long fees' quote for a notional is reused (prices.ts); 0 asks fees for every order. */
  quoteCacheMs: number;
  /** Transitions and compensations, counted after commit (metrics.ts). */
  metrics: OrderMetrics;
}

/** A saga step taken before its transaction, written to the saga log with it. */
interface Step {
  step: string;
  outcome: 'ok' | 'failed' | 'skipped';
  detail?: Record<string, unknown>;
  at: Date;
}

/** A business refusal from a dependency: the order is rejected with this reason instead of retried. */
class Refused extends Error {
  constructor(
    readonly reason: string,
    readonly step: string,
    readonly detail: Record<string, unknown>,
  ) {
    super(reason);
    this.name = 'Refused';
  }
}

/**
 * Worth retrying: the dependency did not answer, answered 5xx/408/429, or answered something we cannot read.
 * Anything that is not an upstream error (our database, a bug) is retried too; the dead-letter queue catches
 * what never succeeds.
 */
export function isTransient(err: unknown): boolean {
  if (!isUpstreamError(err)) return true;
  if (err.kind !== 'http') return true;
  const status = err.status ?? 500;
  return status >= 500 || status === 408 || status === 429;
}

const upstreamDetail = (err: unknown): Record<string, unknown> =>
  isUpstreamError(err)
    ? { service: err.service, operation: err.operation, kind: err.kind, status: err.status ?? null, code: err.code }
    : { error: err instanceof Error ? err.message : String(err) };

/** Map keys of order ids: PostgreSQL answers uuids in lower case. */
const key = (orderId: string): string => orderId.toLowerCase();

/**
 * Runs `step` for each delivery of a batch, in its work context, with its order as this transaction has left it so far: the items of one
 * order in turn (each gets the state the one before saved, with no history of its own yet), different orders
 * side by side (their calls to other services overlap). `orders` are the locked orders, by id.
 */
async function inTurn<I extends { inContext: InContext }>(
  items: readonly I[],
  orderIdOf: (item: I) => string,
  orders: Map<string, Order>,
  step: (item: I, order: Order | undefined) => Promise<void>,
): Promise<void> {
  const byOrder = new Map<string, I[]>();
  for (const item of items) {
    const id = key(orderIdOf(item));
    const list = byOrder.get(id);
    if (list) list.push(item);
    else byOrder.set(id, [item]);
  }
  await Promise.all(
    [...byOrder].map(async ([id, list]) => {
      let state = orders.get(id)?.state;
      for (const item of list) {
        const order = state ? Order.from(state) : undefined;
        // In the delivery's own work context: what the step publishes or calls continues that order's trace.
        await item.inContext(() => step(item, order));
        state = order?.state;
      }
    }),
  );
}

export function createSaga(options: SagaOptions) {
  const { clients, publish, log, metrics } = options;
  const ownership = new OwnershipCache(10_000);
  const prices = new PriceCache(options.priceCacheMs, async (symbol) => parseMoney((await clients.marketData.getPrice({ params: { symbol } })).body.price));
  // The orders of one batch of events make their calls side by side: one call per operation for them (batched-calls.ts).
  const placeHold = holdPlacer(clients.accounts);
  const chargeFee = feeCharger(clients.fees);
  const settleTrade = tradeSettler(clients.accounts);
  const quotes = new QuoteCache(options.quoteCacheMs, 10_000, async (notional) => (await clients.fees.quote({ body: { notional } })).body.fee);
  const ev = ordersContract.events;
  const mev = marketContract.events;

  const ref = (o: Order) => ({ orderId: o.id, accountId: o.state.accountId });
  const subject = (o: Order) => ({ subject: o.id, correlationId: o.id });

  async function reject(tx: Queryable, order: Order, reason: string): Promise<void> {
    order.reject(reason, new Date());
    await saveOrder(tx, order);
    metrics.transitions(tx, order);
    await logStep(tx, order.id, 'reject', 'ok', { reason });
    await publish(tx, ev.OrderRejected, { ...subject(order), data: { ...ref(order), customerId: order.state.customerId, reason } });
  }

  /** Release is idempotent at accounts and a no-op for an unknown hold, so it is always safe to call. */
  async function release(tx: Queryable, order: Pick<Order, 'id'>, why: string): Promise<'released' | 'settled' | 'unknown'> {
    const res = await clients.accounts.release({ params: { id: order.id } });
    await logStep(tx, order.id, 'release', res.body.status === 'settled' ? 'failed' : 'ok', { status: res.body.status, why });
    return res.body.status;
  }

  /**
   * Asks the dependencies for what the reservation needs and makes it; throws Refused on a business "no". Runs
   * before the step's transaction (it holds no connection while it waits for other services): the steps it took go
   * into `steps`, written with the transaction.
   */
  async function reserveAtAccounts(steps: Step[], order: Order): Promise<void> {
    const took = (step: string, detail: Record<string, unknown>) => void steps.push({ step, outcome: 'ok', detail, at: new Date() });
    const s = order.state;

    // The gateway vouches for the customer, not for the account in the request body: make sure it is theirs.
    // An account never changes hands, so an answer once given is remembered (ownership.ts).
    const owner = ownership.ownerOf(s.accountId);
    if (owner === undefined) {
      try {
        await clients.accounts.getAccount({ params: { id: s.accountId }, query: { customerId: s.customerId } });
        ownership.remember(s.accountId, s.customerId);
      } catch (err) {
        if (isUpstreamError(err) && err.status === 404) throw new Refused('unknown account', 'check_account', upstreamDetail(err));
        throw err;
      }
    } else if (owner !== s.customerId) {
      throw new Refused('unknown account', 'check_account', { status: 404, code: 'account_not_found', cached: true });
    }

    let price: bigint;
    try {
      price = await prices.get(s.symbol);
    } catch (err) {
      if (isUpstreamError(err) && err.status === 404) throw new Refused('unknown symbol', 'price', upstreamDetail(err));
      throw err;
    }
    took('price', { price: formatMoney(price) });

    let feeEstimate: bigint | undefined;
    if (holdsCash(s)) {
      const notional = formatMoney(maxNotional(s, price, options.slippageBps));
      const fee = await quotes.get(notional);
      feeEstimate = parseMoney(fee);
      took('fee_quote', { notional, fee });
    }

    const plan = planReservation(s, { marketPrice: price, slippageBps: options.slippageBps, ...(feeEstimate !== undefined ? { feeEstimate } : {}) });
    const body =
      plan.kind === 'cash'
        ? { kind: 'cash' as const, accountId: plan.accountId, amount: formatMoney(plan.amount) }
        : { kind: 'shares' as const, accountId: plan.accountId, symbol: plan.symbol, quantity: plan.quantity };
    try {
      // Reservation id = order id: a retried reserve finds the hold it already made.
      await placeHold({ id: order.id, ...body });
    } catch (err) {
      if (isUpstreamError(err) && err.status === 409) {
        if (err.code === 'insufficient_funds') throw new Refused('insufficient funds', 'reserve', upstreamDetail(err));
        if (err.code === 'insufficient_shares') throw new Refused('insufficient shares', 'reserve', upstreamDetail(err));
      }
      throw err;
    }
    took('reserve', body);
  }

  /**
   * What the reserve step's calls came to, before the transition: a refusal to record, or the go-ahead (the steps
   * taken are logged already). Undefined when there is no transition to make (an order that ended before its
   * reservation: released here).
   */
  async function reserveCalls(orderId: string, current: Order, tx: Queryable, attempt: number): Promise<{ refusal?: Refused } | undefined> {
    if (current.status !== 'pending') {
      // Cancelled (or otherwise ended) before this step ran, perhaps after an earlier attempt reached
      // accounts: release whatever that attempt may have held. A no-op when nothing was held.
      if (!current.isFinal || current.status === 'filled') return undefined;
      await release(tx, current, `order ${current.status} before it was reserved`);
      metrics.compensated(tx, 'cancelled');
      return undefined;
    }

    const steps: Step[] = [];
    let refusal: Refused | undefined;
    let failure: unknown;
    try {
      await reserveAtAccounts(steps, current);
    } catch (err) {
      if (err instanceof Refused) {
        refusal = err;
      } else if (isTransient(err) && attempt < options.reserveMaxAttempts) {
        throw err; // the step is taken again after a backoff (reserve-worker.ts); every call above is safe to repeat
      } else {
        failure = err;
      }
    }
    for (const s of steps) await logStep(tx, orderId, s.step, s.outcome, s.detail, s.at);
    if (failure !== undefined) {
      // Out of attempts, or a refusal we have no better words for: end the order rather than leave it
      // pending forever. Release first in case an earlier attempt's hold landed (throws if accounts is
      // still down: then the step is taken again later, at the longest backoff, until accounts answers).
      const err = failure;
      log.error({ err, orderId, attempt }, 'reserve step failed for good; rejecting the order');
      await release(tx, current, 'reserve step gave up');
      metrics.compensated(tx, 'failed');
      const reason = isTransient(err) ? 'could not reserve: a service is unavailable' : `could not reserve (${isUpstreamError(err) ? err.code : 'error'})`;
      refusal = new Refused(reason, 'reserve', { ...upstreamDetail(err), attempt });
    }
    return refusal ? { refusal } : {};
  }

  /** The reserve step's transition, with the order's row locked: pending → accepted, or → rejected. */
  async function reserveTransition(orderId: string, order: Order | undefined, outcome: { refusal?: Refused }, tx: Queryable): Promise<void> {
    if (!order) throw new Error(`order ${orderId} vanished`);
    const { refusal } = outcome;
    if (refusal) {
      await logStep(tx, orderId, refusal.step, 'failed', { reason: refusal.reason, ...refusal.detail });
      if (order.status === 'pending') await reject(tx, order, refusal.reason);
      return;
    }
    if (order.status !== 'pending') {
      // Already accepted (or further): this step ran before, nothing to undo. Ended without a fill (the customer
      // cancelled before or while we were reserving): give back whatever the calls held instead of going on.
      if (order.isFinal && order.status !== 'filled') {
        await release(tx, order, `order ${order.status} while reserving`);
        metrics.compensated(tx, 'cancelled');
      }
      return;
    }
    order.accept(new Date());
    await saveOrder(tx, order);
    metrics.transitions(tx, order);
    await logStep(tx, orderId, 'accept', 'ok');
    const s = order.state;
    await publish(tx, ev.OrderAccepted, {
      ...subject(order),
      data: {
        ...ref(order),
        customerId: s.customerId,
        symbol: s.symbol,
        side: s.side,
        quantity: s.quantity,
        type: s.type,
        limitPrice: s.limitPrice === null ? null : formatMoney(s.limitPrice),
      },
    });
  }

  /** market.OrderPlaced: accepted → placed. Late or repeated deliveries (order moved on) are ignored. */
  async function placed(order: Order | undefined, data: DataOf<'OrderPlaced'>, tx: Queryable): Promise<void> {
    if (!order) return void log.warn({ orderId: data.orderId }, 'OrderPlaced for an unknown order');
    if (order.status !== 'accepted') {
      await logStep(tx, order.id, 'place', 'skipped', { status: order.status });
      return;
    }
    order.place(new Date());
    await saveOrder(tx, order);
    metrics.transitions(tx, order);
    await logStep(tx, order.id, 'place', 'ok', { expiresAt: data.expiresAt });
  }

  /** market.TradeExecuted: charge the fee, settle the hold, → filled. At most once per order. */
  async function executed(order: Order | undefined, data: DataOf<'TradeExecuted'>, tx: Queryable, event: EventEnvelope): Promise<void> {
    if (!order) return void log.warn({ orderId: data.orderId }, 'TradeExecuted for an unknown order');
    const detail = { price: data.price, quantity: data.quantity, eventId: event.id };
    if (order.status === 'filled') {
      await logStep(tx, order.id, 'fill', 'skipped', { ...detail, why: 'already filled' });
      return;
    }
    if (order.isFinal) {
      // The exchange says it traded an order we already compensated: nothing safe to do automatically.
      log.error({ orderId: order.id, status: order.status, ...detail }, 'trade executed for an order that already ended; needs an operator');
      await logStep(tx, order.id, 'fill', 'failed', { ...detail, why: `order is ${order.status}` });
      return;
    }
    if (order.status === 'pending') {
      // Cannot happen (the market learns of an order only once it is accepted); retry rather than guess.
      throw new Error(`TradeExecuted for order ${order.id} that is still pending`);
    }
    const now = new Date();
    // OrderPlaced may arrive after the trade (no ordering across events): the trade implies it.
    if (order.status === 'accepted') order.place(now);

    const s = order.state;
    const price = parseMoney(data.price);
    try {
      order.checkFill(data.quantity, price);
    } catch (err) {
      if (!isOrderError(err)) throw err;
      // A retry cannot fix a malformed execution, and charging or settling it would corrupt the ledger.
      log.error({ orderId: order.id, ...detail, err }, 'execution does not fit the order; needs an operator');
      await logStep(tx, order.id, 'fill', 'failed', { ...detail, why: err.message });
      return;
    }
    const notional = times(price, data.quantity);
    const charge = await chargeFee({ orderId: order.id, accountId: s.accountId, notional: formatMoney(notional) });
    await logStep(tx, order.id, 'charge_fee', 'ok', { notional: charge.notional, fee: charge.fee });
    const fee = parseMoney(charge.fee);

    const settled = await settleTrade({ id: order.id, side: s.side, symbol: s.symbol, quantity: data.quantity, price: data.price, fee: charge.fee });
    await logStep(tx, order.id, 'settle', 'ok', { entryId: settled.entryId });

    order.fill({ quantity: data.quantity, price, fee }, now);
    await saveOrder(tx, order);
    metrics.transitions(tx, order);
    await logStep(tx, order.id, 'fill', 'ok', detail);
    await publish(tx, ev.OrderFilled, {
      ...subject(order),
      data: { ...ref(order), customerId: s.customerId, symbol: s.symbol, side: s.side, quantity: data.quantity, averagePrice: data.price, fee: charge.fee },
    });
  }

  /** market.OrderExpired / OrderRejected / OrderCancelled: compensate (release, refund) and end the order. */
  async function ended(order: Order | undefined, outcome: 'expired' | 'rejected' | 'cancelled', data: { orderId: string; reason?: string }, tx: Queryable): Promise<void> {
    if (!order) return void log.warn({ orderId: data.orderId, outcome }, 'market outcome for an unknown order');
    const step = { expired: 'expire', rejected: 'reject', cancelled: 'cancel' }[outcome];
    if (order.isFinal || order.status === 'pending') {
      // Already compensated (a repeat), or it filled first; a pending order was never sent to the market.
      await logStep(tx, order.id, step, 'skipped', { status: order.status });
      return;
    }

    const released = await release(tx, order, `market: ${outcome}`);
    if (released === 'settled') {
      // The hold was turned into a trade: the execution wins, and its TradeExecuted fills the order.
      log.error({ orderId: order.id, outcome }, 'market ended an order whose reservation is already settled; not compensating');
      return;
    }
    try {
      const refund = await clients.fees.refund({ params: { orderId: order.id } });
      await logStep(tx, order.id, 'refund_fee', 'ok', { fee: refund.body.fee });
    } catch (err) {
      if (!(isUpstreamError(err) && err.status === 404)) throw err;
      await logStep(tx, order.id, 'refund_fee', 'skipped', { why: 'nothing was charged' });
    }

    const now = new Date();
    const s = order.state;
    const base = { ...subject(order) };
    if (outcome === 'expired') {
      order.expire(now);
      await saveOrder(tx, order);
      await publish(tx, ev.OrderExpired, { ...base, data: { ...ref(order), customerId: s.customerId } });
    } else if (outcome === 'rejected') {
      const reason = data.reason ?? 'rejected by the exchange';
      order.reject(reason, now);
      await saveOrder(tx, order);
      await publish(tx, ev.OrderRejected, { ...base, data: { ...ref(order), customerId: s.customerId, reason } });
    } else {
      order.cancel(now);
      await saveOrder(tx, order);
      await publish(tx, ev.OrderCancelled, { ...base, data: { ...ref(order), customerId: s.customerId } });
    }
    metrics.transitions(tx, order);
    metrics.compensated(tx, outcome);
    await logStep(tx, order.id, step, 'ok', data.reason ? { reason: data.reason } : undefined);
  }

  /** A market event's step, with its order locked by the caller (undefined: no such order). */
  function marketStep(event: EventEnvelope, order: Order | undefined, tx: Queryable): Promise<void> {
    switch (event.type) {
      case mev.OrderPlaced.type:
        return placed(order, event.data as DataOf<'OrderPlaced'>, tx);
      case mev.TradeExecuted.type:
        return executed(order, event.data as DataOf<'TradeExecuted'>, tx, event);
      case mev.OrderExpired.type:
        return ended(order, 'expired', event.data as DataOf<'OrderExpired'>, tx);
      case mev.OrderRejected.type:
        return ended(order, 'rejected', event.data as DataOf<'OrderRejected'>, tx);
      case mev.OrderCancelled.type:
        return ended(order, 'cancelled', event.data as DataOf<'OrderCancelled'>, tx);
      default:
        throw new Error(`no saga step for ${event.type}`);
    }
  }

  const orderIdOf = (event: EventEnvelope): string => (event.data as { orderId: string }).orderId;

  return {
    /**
     * Step 1 for the orders whose reserve steps this transaction has claimed (reserve-worker.ts), each with its order
     * as read then, without its row lock: the calls to other services take a while, and a customer's cancel must not
     * wait for them. Every order's calls side by side, then the orders locked in one query and moved on one after
     * another. The calls are safe to repeat: a step that fails half-way is taken again later and makes them again.
     */
    async reserve(items: ReadonlyArray<{ orderId: string; order: Order; attempt: number; inContext: InContext }>, tx: Queryable): Promise<void> {
      const outcomes = await Promise.all(items.map((i) => i.inContext(() => reserveCalls(i.orderId, i.order, tx, i.attempt))));
      const next = items.flatMap((item, i) => (outcomes[i] ? [{ ...item, outcome: outcomes[i] }] : []));
      if (next.length === 0) return;
      const locked = await lockOrders(tx, next.map((n) => n.orderId));
      await inTurn(next, (n) => n.orderId, locked, (n, order) => reserveTransition(n.orderId, order, n.outcome, tx));
    },

    /** A market event (OrderPlaced, TradeExecuted, OrderExpired, OrderRejected, OrderCancelled): its step, under the order's row lock. */
    async market(event: EventEnvelope, tx: Queryable): Promise<void> {
      await marketStep(event, await lockOrder(tx, orderIdOf(event)), tx);
    },

    /**
     * Market events in one transaction (group commit): their orders locked in one query; each order's events in
     * turn, in the order they came (an order's OrderPlaced and TradeExecuted often come together), orders side by side.
     */
    async marketBatch(items: ReadonlyArray<{ event: EventEnvelope; inContext: InContext }>, tx: Queryable): Promise<void> {
      const locked = await lockOrders(tx, items.map((i) => orderIdOf(i.event)));
      await inTurn(items, (i) => orderIdOf(i.event), locked, (i, order) => marketStep(i.event, order, tx));
    },
  };
}

export type Saga = ReturnType<typeof createSaga>;
