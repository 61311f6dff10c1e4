import { currentContext, isUpstreamError, runWithContext, type Client, type Handlers, type Logger, type StaleCache } from '@simplebank/chassis';
import type { accountsContract, AccountDetail as InternalAccountDetail, AccountSummary as InternalAccount } from '@simplebank/accounts/contract';
import type { customersContract } from '@simplebank/customers/contract';
import type { marketDataContract, Price as InternalPrice } from '@simplebank/market-data/contract';
import type { Order as InternalOrder, ordersContract } from '@simplebank/orders/contract';
import type { z } from 'zod';
import { callerId } from './auth.ts';
import type { Account, AccountDetail, gatewayContract, Order } from './contract.ts';
import { OwnershipCache } from './ownership.ts';
import { upstream } from './upstream.ts';

export interface Upstreams {
  customers: Client<typeof customersContract>;
  accounts: Client<typeof accountsContract>;
  orders: Client<typeof ordersContract>;
  marketData: Client<typeof marketDataContract>;
}

/*
 * Public ↔ internal mapping, field by field: a field the services add later stays internal until it is put here
 * (and in the public contract) on purpose.
 */
const toAccount = (a: z.infer<typeof InternalAccount>): z.input<typeof Account> => ({
  id: a.id,
  currency: a.currency,
  cash: { available: a.cash.available, reserved: a.cash.reserved },
});

const toAccountDetail = (a: z.infer<typeof InternalAccountDetail>): z.input<typeof AccountDetail> => ({
  ...toAccount(a),
  positions: a.positions.map((p) => ({ symbol: p.symbol, quantity: p.quantity, reserved: p.reserved })),
});

const toOrder = (o: InternalOrder): z.input<typeof Order> => ({
  id: o.id,
  accountId: o.accountId,
  symbol: o.symbol,
  side: o.side,
  quantity: o.quantity,
  type: o.type,
  limitPrice: o.limitPrice,
  status: o.status,
  reason: o.reason,
  filledQuantity: o.filledQuantity,
  averagePrice: o.averagePrice,
  fee: o.fee,
  createdAt: o.createdAt,
  updatedAt: o.updatedAt,
  history: o.history.map((h) => ({ status: h.status, at: h.at, ...(h.reason !== undefined ? { reason: h.reason } : {}) })),
});

/**
 * Idempotency keys are chosen by clients, so two customers may well pick the same one. Prefixing the caller's id
 * makes a key mean "this customer's operation" whatever scope the service behind applies to it.
 */
const scopedKey = (customerId: string, key: string): string => `${customerId}:${key}`;

const orderLocation = (id: string): string => `/api/v1/orders/${id}`;

/** How the gateway reads prices: the fallback for when market data is slow or down. */
export interface PriceReading {
  /** Last price per symbol, served marked stale while market-data fails (createStaleCache). */
  cache: StaleCache<string, InternalPrice>;
  /** Time allowed for getting a fresh price (every attempt and backoff) before the stale one is served instead. */
  budgetMs: number;
}

/** A dependency could not answer (down, slow, overloaded, circuit open) — not "no such symbol": worth a stale price. */
export const marketDataFailed = (err: unknown): boolean => isUpstreamError(err) && !(err.kind === 'http' && err.status !== undefined && err.status < 500);

/** Thin handlers: authenticate (done by the hook), map public → internal, call, map back. No business rules here. */
export function createHandlers(clients: Upstreams, log: Logger, prices: PriceReading): Handlers<typeof gatewayContract> {
  const { customers, accounts, orders, marketData } = clients;
  const call = <T>(fn: () => Promise<T>, passThrough?: number[]) => upstream(log, fn, passThrough ? { passThrough } : undefined);
  const owners = new OwnershipCache(100_000);

  /** A fresh price within the price budget: the deadline is narrowed, so no attempt or retry outlasts it. */
  const fetchPrice = (symbol: string): Promise<InternalPrice> => {
    const load = () => marketData.getPrice({ params: { symbol } }).then((r) => r.body);
    const ctx = currentContext();
    const until = Date.now() + prices.budgetMs;
    return ctx && (ctx.deadline === undefined || ctx.deadline > until) ? runWithContext({ ...ctx, deadline: until }, load) : load();
  };

  return {
    async signUp({ body }) {
      const { body: customer } = await call(() => customers.register({ body }));
      // accounts opens the USD account when it sees CustomerRegistered; opening it here as well (idempotent) lets
      // the client see it right after sign-up. Best effort: the customer exists now, and the event will do it.
      await accounts.openAccount({ body: { customerId: customer.id, currency: 'USD' }, timeoutMs: 2_000 }).catch((err: unknown) => {
        log.warn({ err, customerId: customer.id }, 'could not open the account at sign-up; the CustomerRegistered event will');
      });
      return { status: 201, body: { id: customer.id, name: customer.name, email: customer.email } };
    },

    async logIn({ body }) {
      // 401 invalid_credentials is the caller's to see; from any other call a 401 would be our misconfiguration.
      const { body: session } = await call(() => customers.authenticate({ body }), [401]);
      return { status: 200, body: { token: session.token, customerId: session.customerId, expiresAt: session.expiresAt }, headers: { 'cache-control': 'no-store' } };
    },

    async listAccounts() {
      const customerId = callerId();
      const { body } = await call(() => accounts.listAccounts({ query: { customerId } }));
      for (const a of body) owners.remember(a.id, customerId);
      return { status: 200, body: body.map(toAccount) };
    },

    async getAccount({ params }) {
      const customerId = callerId();
      const { body } = await call(() => accounts.getAccount({ params: { id: params.id }, query: { customerId } }));
      return { status: 200, body: toAccountDetail(body) };
    },

    async deposit({ params, headers, body }) {
      const customerId = callerId();
      const { body: deposit } = await call(() =>
        accounts.deposit({
          params: { id: params.id },
          query: { customerId },
          headers: { 'idempotency-key': scopedKey(customerId, headers['idempotency-key']) },
          body: { amount: body.amount },
        }),
      );
      return { status: 201, body: { id: deposit.id, amount: deposit.amount } };
    },

    async listEntries({ params, query }) {
      const customerId = callerId();
      const { body } = await call(() => accounts.listEntries({ params: { id: params.id }, query: { customerId, limit: query.limit } }));
      return {
        status: 200,
        body: body.map((e) => ({
          id: e.id,
          kind: e.kind,
          reference: e.reference,
          createdAt: e.createdAt,
          postings: e.postings.map((p) => ({ ledgerAccount: p.ledgerAccount, asset: p.asset, amount: p.amount })),
        })),
      };
    },

    async listInstruments() {
      const { body } = await call(() => marketData.listInstruments({}));
      return { status: 200, body: body.map((i) => ({ symbol: i.symbol, name: i.name })) };
    },

    async getPrice({ params }) {
      // market-data slow or down: the last price, flagged, instead of an error (an unknown symbol is still a 404).
      const { value, stale, ageMs } = await call(() => prices.cache.get(params.symbol, () => fetchPrice(params.symbol)));
      if (stale) log.debug({ symbol: params.symbol, ageMs }, 'served a stale price');
      return {
        status: 200,
        body: { symbol: value.symbol, price: value.price, asOf: value.asOf, ...(stale ? { stale: true, ageMs: Math.round(ageMs) } : {}) },
      };
    },

    async placeOrder({ headers, body }) {
      const customerId = callerId();
      // Orders trusts the customerId it is given, so the gateway makes sure the account is the caller's first (404 if not).
      if (!owners.isOwner(body.accountId, customerId)) {
        await call(() => accounts.getAccount({ params: { id: body.accountId }, query: { customerId } }));
        owners.remember(body.accountId, customerId);
      }
      const { body: order } = await call(() =>
        orders.placeOrder({
          headers: { 'idempotency-key': scopedKey(customerId, headers['idempotency-key']) },
          body: { ...body, customerId },
        }),
      );
      return { status: 202, body: toOrder(order), headers: { location: orderLocation(order.id) } };
    },

    async listOrders({ query }) {
      const customerId = callerId();
      const { body } = await call(() => orders.listOrders({ query: { customerId, accountId: query.accountId, limit: query.limit } }));
      return { status: 200, body: body.map(toOrder) };
    },

    async getOrder({ params }) {
      const customerId = callerId();
      const { body } = await call(() => orders.getOrder({ params: { id: params.id }, query: { customerId } }));
      return { status: 200, body: toOrder(body) };
    },

    async cancelOrder({ params }) {
      const customerId = callerId();
      const { body } = await call(() => orders.cancelOrder({ params: { id: params.id }, query: { customerId } }));
      return { status: 202, body: toOrder(body), headers: { location: orderLocation(body.id) } };
    },
  };
}
