import { z } from 'zod';
import { defineContract, route } from '@simplebank/chassis';
import { amountString, positiveAmountString, quantity, signedAmountString } from '@simplebank/money';

/**
 * SimpleBank's public API, `/api/v1`. Its schemas are written out here rather than re-exported from the internal
 * contracts: the public surface changes only when this file does, however the services behind it evolve.
 * Internal-only fields (an account's or order's `customerId`) are not part of it.
 *
 * Authentication: every route needs `Authorization: Bearer <JWT from POST /api/v1/sessions>` except those in
 * `anonymousRoutes` below; the caller only ever sees and changes their own accounts and orders.
 */

const Ticker = z.string().regex(/^[A-Z][A-Z0-9.]{0,9}$/, 'must be an upper-case ticker symbol, e.g. "AAPL"');
const Side = z.enum(['buy', 'sell']);
const OrderType = z.enum(['market', 'limit']);
const OrderStatus = z.enum(['pending', 'accepted', 'placed', 'filled', 'rejected', 'expired', 'cancelled']);

/**
 * Keys are namespaced per customer before they reach the services (see http.ts), which need 200 characters at
 * most: a customer id and a separator leave 163.
 */
const IdempotencyKey = z.object({
  'idempotency-key': z.string().min(1).max(163).describe('unique per operation; repeating a request with the same key repeats its answer'),
});

export const Customer = z.object({ id: z.uuid(), name: z.string(), email: z.string() });
export const SignUp = z.object({
  name: z.string().trim().min(1).max(200),
  email: z.email().max(320),
  password: z.string().min(8, 'must be at least 8 characters').max(200),
});
export const Credentials = z.object({ email: z.email(), password: z.string().min(1).max(200) });
export const Session = z.object({
  token: z.string().describe('a JWT: send it as `Authorization: Bearer <token>`'),
  customerId: z.uuid(),
  expiresAt: z.iso.datetime().describe('when the token stops being accepted; log in again then'),
});

export const Cash = z.object({ available: signedAmountString, reserved: amountString });
export const Account = z.object({ id: z.uuid(), currency: z.literal('USD'), cash: Cash });
export const Position = z.object({ symbol: Ticker, quantity: z.number().int(), reserved: z.number().int() });
export const AccountDetail = Account.extend({ positions: z.array(Position) });
export const Deposit = z.object({ id: z.uuid(), amount: amountString });
export const Entry = z.object({
  id: z.uuid(),
  kind: z.string(),
  reference: z.string(),
  createdAt: z.iso.datetime(),
  postings: z.array(z.object({ ledgerAccount: z.string(), asset: z.string(), amount: z.string() })),
});

export const Instrument = z.object({ symbol: Ticker, name: z.string() });
export const Price = z.object({
  symbol: Ticker,
  price: positiveAmountString,
  asOf: z.iso.datetime(),
  stale: z.boolean().optional().describe('true when market data could not be reached in time and this is the last price the gateway had'),
  ageMs: z.number().int().min(0).optional().describe('with `stale`: how long ago (ms) the gateway fetched this price'),
});

export const OrderRequest = z
  .object({ accountId: z.uuid(), symbol: Ticker, side: Side, quantity, type: OrderType, limitPrice: positiveAmountString.optional() })
  .refine((o) => (o.type === 'limit') === (o.limitPrice !== undefined), {
    message: 'limitPrice is required for limit orders and not allowed for market orders',
    path: ['limitPrice'],
  });
export const Order = z.object({
  id: z.uuid(),
  accountId: z.uuid(),
  symbol: Ticker,
  side: Side,
  quantity: z.number().int(),
  type: OrderType,
  limitPrice: amountString.nullable(),
  status: OrderStatus,
  reason: z.string().nullable(),
  filledQuantity: z.number().int(),
  averagePrice: amountString.nullable(),
  fee: amountString.nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  history: z.array(z.object({ status: OrderStatus, at: z.iso.datetime(), reason: z.string().optional() })),
});

const id = z.object({ id: z.uuid() });

export const gatewayContract = defineContract({
  service: 'gateway',
  version: '1.0.0',
  routes: {
    signUp: route({
      method: 'POST',
      path: '/api/v1/customers',
      summary: 'Sign up (no token needed); 409 email_taken. The USD cash account is opened with the customer.',
      body: SignUp,
      responses: { 201: Customer },
    }),
    logIn: route({
      method: 'POST',
      path: '/api/v1/sessions',
      summary: 'Log in (no token needed): a bearer token for the other routes; 401 invalid_credentials',
      body: Credentials,
      responses: { 200: Session },
    }),
    listAccounts: route({ method: 'GET', path: '/api/v1/accounts', summary: 'Accounts of the caller', responses: { 200: z.array(Account) } }),
    getAccount: route({
      method: 'GET',
      path: '/api/v1/accounts/:id',
      summary: 'An account with its cash and share positions; 404 unless it belongs to the caller',
      params: id,
      responses: { 200: AccountDetail },
    }),
    deposit: route({
      method: 'POST',
      path: '/api/v1/accounts/:id/deposits',
      summary: 'Deposit cash; a repeated Idempotency-Key deposits once and answers the same',
      params: id,
      headers: IdempotencyKey,
      body: z.object({ amount: positiveAmountString }),
      responses: { 201: Deposit },
    }),
    listEntries: route({
      method: 'GET',
      path: '/api/v1/accounts/:id/entries',
      summary: 'Ledger entries of the account, with their postings',
      params: id,
      query: z.object({ limit: z.coerce.number().int().min(1).max(500).optional() }),
      responses: { 200: z.array(Entry) },
    }),
    listInstruments: route({ method: 'GET', path: '/api/v1/instruments', summary: 'Tradable instruments (no token needed)', responses: { 200: z.array(Instrument) } }),
    getPrice: route({
      method: 'GET',
      path: '/api/v1/prices/:symbol',
      summary: 'Latest price of an instrument (no token needed); 404 unknown_symbol. While market data is slow or down, the last known price with `stale: true` and its age',
      params: z.object({ symbol: Ticker }),
      responses: { 200: Price },
    }),
    placeOrder: route({
      method: 'POST',
      path: '/api/v1/orders',
      summary: 'Place an order: 202 with the pending order and its Location; a repeated Idempotency-Key returns the same order',
      headers: IdempotencyKey,
      body: OrderRequest,
      responses: { 202: Order },
    }),
    listOrders: route({
      method: 'GET',
      path: '/api/v1/orders',
      summary: 'Orders of the caller, optionally for one account',
      query: z.object({ accountId: z.uuid().optional(), limit: z.coerce.number().int().min(1).max(500).optional() }),
      responses: { 200: z.array(Order) },
    }),
    getOrder: route({ method: 'GET', path: '/api/v1/orders/:id', summary: 'An order; 404 unless it belongs to the caller', params: id, responses: { 200: Order } }),
    cancelOrder: route({
      method: 'DELETE',
      path: '/api/v1/orders/:id',
      summary: 'Ask to cancel an order (202); 409 order_final when it is already filled, rejected, expired or cancelled',
      params: id,
      responses: { 202: Order },
    }),
  },
});

export type GatewayRoute = keyof typeof gatewayContract.routes;

/**
 * Routes anyone may call. Every other route requires a bearer token: a new route is protected unless it is
 * added here on purpose. Instruments and prices are public market information, so they are here too.
 */
export const anonymousRoutes: ReadonlySet<GatewayRoute> = new Set<GatewayRoute>(['signUp', 'logIn', 'listInstruments', 'getPrice']);
