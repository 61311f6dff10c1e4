import { batchedCalls, type BatchLimits, type Client } from '@simplebank/chassis';
import type { accountsContract } from '@simplebank/accounts/contract';
import type { feesContract } from '@simplebank/fees/contract';
import type { z } from 'zod';

type Charge = z.infer<(typeof feesContract.routes.charge.responses)[200]>;
type Reservation = z.infer<(typeof accountsContract.routes.reserve.responses)[200]>;
type Settled = z.infer<(typeof accountsContract.routes.settle.responses)[200]>;
type Hold = z.infer<typeof accountsContract.routes.reserve.body>;

export type ChargeRequest = z.infer<typeof feesContract.routes.chargeBatch.body>['charges'][number];
export type HoldRequest = z.infer<typeof accountsContract.routes.reserveBatch.body>['reservations'][number];
export type SettleRequest = z.infer<typeof accountsContract.routes.settleBatch.body>['settlements'][number];

/**
 * The saga's calls that move money, as it makes them: the orders of one batch of events go side by side, so their
 * calls to one operation go in one call of its batch route (chassis batchedCalls), up to `maxSize` items, with
 * `transactions` such calls in flight; a call made alone goes to the single route. Every item is idempotent per
 * order (the reservation and the charge are keyed by the order id), so a batch call that failed part-way is safe to
 * make again item by item. A refused item rejects only its own caller, with the UpstreamError a lone call throws.
 */
const LIMITS: BatchLimits = { maxSize: 32, transactions: 2 };

/** fees: PUT /charges/:orderId, or POST /charge-batches for charges made together. */
export function feeCharger(fees: Client<typeof feesContract>, limits: BatchLimits = LIMITS): (request: ChargeRequest) => Promise<Charge> {
  return batchedCalls<ChargeRequest, Charge>({
    service: 'fees',
    operation: 'charge',
    limits,
    batch: async (charges) => (await fees.chargeBatch({ body: { charges } })).body.results,
    alone: async ({ orderId, ...terms }) => (await fees.charge({ params: { orderId }, body: terms })).body,
  });
}

/** accounts: PUT /reservations/:id, or POST /reservation-batches for holds made together. */
export function holdPlacer(accounts: Client<typeof accountsContract>, limits: BatchLimits = LIMITS): (request: HoldRequest) => Promise<Reservation> {
  return batchedCalls<HoldRequest, Reservation>({
    service: 'accounts',
    operation: 'reserve',
    limits,
    batch: async (reservations) => (await accounts.reserveBatch({ body: { reservations } })).body.results,
    alone: async ({ id, ...hold }) => (await accounts.reserve({ params: { id }, body: hold as Hold })).body,
  });
}

/** accounts: POST /reservations/:id/settle, or POST /settlement-batches for settlements made together. */
export function tradeSettler(accounts: Client<typeof accountsContract>, limits: BatchLimits = LIMITS): (request: SettleRequest) => Promise<Settled> {
  return batchedCalls<SettleRequest, Settled>({
    service: 'accounts',
    operation: 'settle',
    limits,
    batch: async (settlements) => (await accounts.settleBatch({ body: { settlements } })).body.results,
    alone: async ({ id, ...terms }) => (await accounts.settle({ params: { id }, body: terms })).body,
  });
}
