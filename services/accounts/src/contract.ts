import { z } from 'zod';
import { batchOutcome, defineContract, event, route } from '@simplebank/chassis';
import { amountString, positiveAmountString, quantity, signedAmountString } from '@simplebank/money';

export const Ticker = z.string().regex(/^[A-Z][A-Z0-9.]{0,9}$/, 'must be an upper-case ticker symbol, e.g. "AAPL"');
export const Currency = z.literal('USD');

/** A ticker that can be held or traded: never the cash currency, which is an asset of its own in the ledger. */
export const TradableSymbol = Ticker.refine((s) => s !== 'USD', 'the cash currency is not a tradable symbol');

/** balance = sum of the customer's cash postings; available = balance − active cash reservations. */
export const CashBalance = z.object({ balance: signedAmountString, available: signedAmountString, reserved: amountString });
/** quantity = sum of share postings; available = quantity − active share reservations. */
export const Position = z.object({ symbol: Ticker, quantity: z.number().int(), reserved: z.number().int(), available: z.number().int() });

export const AccountSummary = z.object({ id: z.uuid(), customerId: z.uuid(), currency: Currency, cash: CashBalance });
export const AccountDetail = AccountSummary.extend({ positions: z.array(Position) });

/**
 * One leg of a journal entry. `ledgerAccount` is `customer:<accountId>`, `external:bank`, `exchange:clearing` or
 * `fees:revenue`; `asset` is the currency ("USD") or a ticker; `amount` is a decimal string for cash ("-12.30")
 * and a whole number of shares for a ticker ("-5").
 */
export const Posting = z.object({ ledgerAccount: z.string(), asset: z.string(), amount: z.string() });
export const Entry = z.object({ id: z.uuid(), kind: z.string(), reference: z.string(), createdAt: z.iso.datetime(), postings: z.array(Posting) });

/** A hold on cash or shares for an open order; its id is the order id, so a retried reserve is harmless. */
export const ReservationRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('cash'), accountId: z.uuid(), amount: positiveAmountString }),
  z.object({ kind: z.literal('shares'), accountId: z.uuid(), symbol: TradableSymbol, quantity }),
]);
export const Reservation = z.object({
  id: z.uuid(),
  accountId: z.uuid(),
  kind: z.enum(['cash', 'shares']),
  symbol: Ticker.nullable(),
  amount: amountString.nullable(),
  quantity: z.number().int().nullable(),
  status: z.enum(['active', 'settled', 'released']),
});

export const Settlement = z.object({
  side: z.enum(['buy', 'sell']),
  symbol: TradableSymbol,
  quantity,
  /** Execution price per share. */
  price: positiveAmountString,
  /** Charged to the customer on top of a buy, taken from the proceeds of a sell. */
  fee: amountString,
});

/** What settle answers: the hold turned into the journal entry `entryId`. */
export const Settled = z.object({ id: z.uuid(), entryId: z.uuid(), status: z.literal('settled') });

/** Items in one reserveBatch or settleBatch call, at most. */
export const MAX_RESERVATION_BATCH = 100;

export const Deposit = z.object({ id: z.uuid(), accountId: z.uuid(), entryId: z.uuid(), amount: amountString });

const scope = z.object({ customerId: z.uuid().optional() });
const idParam = z.object({ id: z.uuid() });

export const accountsContract = defineContract({
  service: 'accounts',
  routes: {
    openAccount: route({
      method: 'POST',
      path: '/accounts',
      summary: 'Open a cash account (idempotent per customer and currency)',
      body: z.object({ customerId: z.uuid(), currency: Currency.default('USD') }),
      responses: { 200: AccountSummary, 201: AccountSummary },
      idempotent: true,
    }),
    listAccounts: route({ method: 'GET', path: '/accounts', query: z.object({ customerId: z.uuid() }), responses: { 200: z.array(AccountSummary) } }),
    getAccount: route({
      method: 'GET',
      path: '/accounts/:id',
      summary: 'An account with cash and positions; with customerId, 404 unless it is theirs',
      params: idParam,
      query: scope,
      responses: { 200: AccountDetail },
    }),
    deposit: route({
      method: 'POST',
      path: '/accounts/:id/deposits',
      summary: 'Deposit cash; a repeated Idempotency-Key returns the first deposit, with another amount 409 idempotency_key_reused',
      params: idParam,
      query: scope,
      headers: z.object({ 'idempotency-key': z.string().min(1).max(200) }),
      body: z.object({ amount: positiveAmountString }),
      responses: { 201: Deposit },
    }),
    listEntries: route({
      method: 'GET',
      path: '/accounts/:id/entries',
      params: idParam,
      query: scope.extend({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      responses: { 200: z.array(Entry) },
    }),
    reserve: route({
      method: 'PUT',
      path: '/reservations/:id',
      summary: 'Hold cash or shares for an order; 409 insufficient_funds / insufficient_shares',
      params: idParam,
      body: ReservationRequest,
      responses: { 200: Reservation, 201: Reservation },
      // Holds, releases and settlements move money: only other services (orders) may ask for them.
      auth: 'service',
    }),
    release: route({
      method: 'POST',
      path: '/reservations/:id/release',
      summary: 'Release a hold (compensation); idempotent, and a no-op for an unknown or settled reservation',
      params: idParam,
      responses: { 200: z.object({ id: z.uuid(), status: z.enum(['released', 'settled', 'unknown']) }) },
      idempotent: true,
      auth: 'service',
    }),
    settle: route({
      method: 'POST',
      path: '/reservations/:id/settle',
      summary:
        'Turn a hold into ledger postings for an executed trade (idempotent); 409 reservation_released, reservation_mismatch, ' +
        'or insufficient_funds / insufficient_shares when the trade needs more than the hold and the account lacks the difference',
      params: idParam,
      body: Settlement,
      responses: { 200: Settled },
      idempotent: true,
      auth: 'service',
    }),
    reserveBatch: route({
      method: 'POST',
      path: '/reservation-batches',
      summary:
        'Several holds in one call (the saga reserves for the orders of a burst together): each item is held as PUT /reservations/:id ' +
        'would hold it, and answered with the status and reservation, or the problem, that call would have answered',
      body: z.object({ reservations: z.array(z.intersection(idParam, ReservationRequest)).min(1).max(MAX_RESERVATION_BATCH) }),
      responses: { 200: z.object({ results: z.array(batchOutcome(Reservation)) }) },
      // Every item is idempotent per reservation id, so the whole call is safe to repeat.
      idempotent: true,
      auth: 'service',
    }),
    settleBatch: route({
      method: 'POST',
      path: '/settlement-batches',
      summary:
        'Several settlements in one call (the saga settles the fills of a burst together): each item is settled as POST /reservations/:id/settle ' +
        'would settle it, and answered with the status and settlement, or the problem, that call would have answered',
      body: z.object({ settlements: z.array(Settlement.extend(idParam.shape)).min(1).max(MAX_RESERVATION_BATCH) }),
      responses: { 200: z.object({ results: z.array(batchOutcome(Settled)) }) },
      idempotent: true,
      auth: 'service',
    }),
    ledgerTotals: route({
      method: 'GET',
      path: '/admin/ledger',
      summary: 'Ledger invariants: every entry balances per asset, totals per asset are zero',
      auth: 'service',
      responses: {
        200: z.object({
          entries: z.number().int(),
          postings: z.number().int(),
          unbalancedEntries: z.number().int(),
          totals: z.array(z.object({ asset: z.string(), sum: z.string() })),
          activeReservations: z.number().int(),
        }),
      },
    }),
  },
  events: {
    AccountOpened: event('accounts.AccountOpened.v1', z.object({ accountId: z.uuid(), customerId: z.uuid(), currency: Currency })),
    FundsDeposited: event('accounts.FundsDeposited.v1', z.object({ accountId: z.uuid(), depositId: z.uuid(), amount: amountString })),
    TradeSettled: event(
      'accounts.TradeSettled.v1',
      z.object({ accountId: z.uuid(), orderId: z.uuid(), side: z.enum(['buy', 'sell']), symbol: Ticker, quantity, price: amountString, fee: amountString }),
    ),
  },
});
