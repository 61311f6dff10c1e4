import { z } from 'zod';
import { defineContract, event, route } from '@simplebank/chassis';
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
