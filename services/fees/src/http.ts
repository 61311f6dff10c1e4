import { answerItem, groupCommit, ProblemError, type Contract, type Handlers, type ServiceContext } from '@simplebank/chassis';
import { formatMoney, parseMoney } from '@simplebank/money';
import { feesContract } from './contract.ts';
import { findCharge, insertCharge, markRefunded, toCharge, type ChargeRow } from './data.ts';
import { computeFee, type FeeSchedule } from './domain/fee.ts';

/** What the handlers need from the service context; narrow so tests or other wiring can supply it. */
export type FeesContext = Pick<ServiceContext<unknown, Record<never, Contract>>, 'db' | 'publish' | 'metrics'>;

const chargeNotFound = (orderId: string) => new ProblemError(404, 'charge_not_found', `no fee was charged for order ${orderId}`);

/**
 * The same order charged again with other terms is a caller bug (an order's notional doesn't change once
 * executed); answering 200 with the first charge would hide it, so it is refused.
 */
function assertSameTerms(row: ChargeRow, accountId: string, notional: bigint): void {
  if (row.account_id !== accountId || BigInt(row.notional) !== notional) {
    throw new ProblemError(
      409,
      'charge_conflict',
      `order ${row.order_id} was already charged for account ${row.account_id} on a notional of ${formatMoney(BigInt(row.notional))}`,
    );
  }
}

export function feeRoutes(ctx: FeesContext, schedule: FeeSchedule): Handlers<typeof feesContract> {
  const { events } = feesContract;
  // Fees are charged in the accounts' cash currency, USD (the only one the ledger has).
  const charged = ctx.metrics.counter<'currency'>({ name: 'simplebank_fees_charged_total', help: 'fees charged (a repeated charge of an order is not a new one), by currency', labelNames: ['currency'] }).series({ currency: 'USD' });
  // The saga's charges and refunds come in bursts under load: those that arrive together share one transaction
  // (chassis groupCommit: one BEGIN and one COMMIT for the burst). A 404 or 409 rolls its batch back and every call
  // of it runs again alone, with the outcome it would have had alone.
  const inGroup = groupCommit(ctx.db, { maxSize: 32, transactions: 2 });

  /** PUT /charges/:orderId's work, shared by chargeBatch's items. */
  async function chargeOne(orderId: string, body: { accountId: string; notional: string }) {
    const notional = parseMoney(body.notional);
    const result = await inGroup(async (tx) => {
      const inserted = await insertCharge(tx, { orderId, accountId: body.accountId, notional, fee: computeFee(notional, schedule) });
      if (inserted) {
        // In the charge's transaction: the event exists if and only if the charge does.
        await ctx.publish(tx, events.FeeCharged, {
          subject: inserted.order_id,
          data: { orderId: inserted.order_id, accountId: inserted.account_id, fee: formatMoney(BigInt(inserted.fee)) },
        });
        tx.afterCommit(() => charged.inc());
        return { created: true, row: inserted };
      }
      // A repeat: the stored charge wins, fee included, even if the schedule has changed since.
      const existing = await findCharge(tx, orderId);
      if (!existing) throw new Error(`charge for order ${orderId} vanished between insert and select`);
      assertSameTerms(existing, body.accountId, notional);
      return { created: false, row: existing };
    });
    const charge = toCharge(result.row);
    return result.created
      ? { status: 201 as const, body: charge, headers: { location: `/charges/${charge.orderId}` } }
      : { status: 200 as const, body: charge };
  }

  return {
    getSchedule: async () => ({
      status: 200,
      body: { bps: schedule.bps, minimum: formatMoney(schedule.minimum), maximum: formatMoney(schedule.maximum) },
    }),

    quote: async ({ body }) => {
      const notional = parseMoney(body.notional);
      return { status: 200, body: { notional: formatMoney(notional), fee: formatMoney(computeFee(notional, schedule)) } };
    },

    charge: ({ params, body }) => chargeOne(params.orderId, body),

    // Each item goes the way a lone charge goes, side by side, so group commit puts them in one transaction. A
    // refusal (4xx) is that item's answer; anything else fails the call, and the caller charges the items one by one.
    chargeBatch: async ({ body }) => {
      const results = await Promise.all(body.charges.map(({ orderId, ...terms }) => answerItem(chargeOne(orderId, terms))));
      return { status: 200, body: { results } };
    },

    refund: async ({ params }) => {
      const row = await inGroup(async (tx) => {
        const refunded = await markRefunded(tx, params.orderId);
        if (refunded) {
          await ctx.publish(tx, events.FeeRefunded, {
            subject: refunded.order_id,
            data: { orderId: refunded.order_id, accountId: refunded.account_id, fee: formatMoney(BigInt(refunded.fee)) },
          });
          return refunded;
        }
        // Already refunded (a retried compensation): answer the same; nothing to refund is a 404.
        const existing = await findCharge(tx, params.orderId);
        if (!existing) throw chargeNotFound(params.orderId);
        return existing;
      });
      return { status: 200, body: toCharge(row) };
    },

    getCharge: async ({ params }) => {
      const row = await findCharge(ctx.db, params.orderId);
      if (!row) throw chargeNotFound(params.orderId);
      return { status: 200, body: toCharge(row) };
    },
  };
}
