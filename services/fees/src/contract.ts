import { z } from 'zod';
import { batchOutcome, defineContract, event, route } from '@simplebank/chassis';
import { amountString } from '@simplebank/money';

export const Schedule = z.object({
  /** Commission in basis points of the trade's notional value. */
  bps: z.number().int().min(0),
  minimum: amountString,
  maximum: amountString,
});

export const Charge = z.object({
  orderId: z.uuid(),
  accountId: z.uuid(),
  notional: amountString,
  fee: amountString,
  status: z.enum(['charged', 'refunded']),
});

/** Charges in one chargeBatch call, at most. */
export const MAX_CHARGE_BATCH = 100;

/** One item of a chargeBatch: what PUT /charges/:orderId would have answered (its status and charge, or its problem). */
export const ChargeOutcome = batchOutcome(Charge);

export const feesContract = defineContract({
  service: 'fees',
  routes: {
    getSchedule: route({ method: 'GET', path: '/schedule', responses: { 200: Schedule } }),
    quote: route({
      method: 'POST',
      path: '/quotes',
      summary: 'The fee a trade of this notional value would cost (pure, nothing recorded)',
      body: z.object({ notional: amountString }),
      responses: { 200: z.object({ notional: amountString, fee: amountString }) },
      idempotent: true,
    }),
    charge: route({
      method: 'PUT',
      path: '/charges/:orderId',
      summary: 'Charge the fee for an executed order; idempotent per order (a repeat answers 200 with the first charge, other terms 409)',
      params: z.object({ orderId: z.uuid() }),
      body: z.object({ accountId: z.uuid(), notional: amountString }),
      responses: { 200: Charge, 201: Charge },
      // Moves money: only other services (orders) may call it, never a client that reached the network.
      auth: 'service',
    }),
    chargeBatch: route({
      method: 'POST',
      path: '/charge-batches',
      summary:
        'Several charges in one call (the saga charges the orders of a burst together): each item is charged as PUT /charges/:orderId would charge it, and answered with the status and charge, or the problem, that call would have answered',
      body: z.object({ charges: z.array(z.object({ orderId: z.uuid(), accountId: z.uuid(), notional: amountString })).min(1).max(MAX_CHARGE_BATCH) }),
      responses: { 200: z.object({ results: z.array(ChargeOutcome) }) },
      // Every item is idempotent per order, so the whole call is safe to repeat.
      idempotent: true,
      auth: 'service',
    }),
    refund: route({
      method: 'POST',
      path: '/charges/:orderId/refund',
      summary: 'Refund a charge (compensation); idempotent; 404 when nothing was charged',
      params: z.object({ orderId: z.uuid() }),
      responses: { 200: Charge },
      idempotent: true,
      auth: 'service',
    }),
    getCharge: route({ method: 'GET', path: '/charges/:orderId', params: z.object({ orderId: z.uuid() }), responses: { 200: Charge } }),
  },
  events: {
    FeeCharged: event('fees.FeeCharged.v1', z.object({ orderId: z.uuid(), accountId: z.uuid(), fee: amountString })),
    FeeRefunded: event('fees.FeeRefunded.v1', z.object({ orderId: z.uuid(), accountId: z.uuid(), fee: amountString })),
  },
});
