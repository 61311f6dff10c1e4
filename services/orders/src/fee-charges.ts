import { createBatcher, UpstreamError, type BatchLimits, type Client } from '@simplebank/chassis';
import type { ChargeOutcome, feesContract } from '@simplebank/fees/contract';
import type { z } from 'zod';

type Charge = z.infer<typeof feesContract.routes.charge.responses[200]>;

export interface ChargeRequest {
  orderId: string;
  accountId: string;
  notional: string;
}

/**
 * Fee charges as the saga makes them: those made together (the orders of one batch of market events fill side by
 * side) go to fees in one chargeBatch call, up to `limits.maxSize`, with `limits.transactions` such calls in flight;
 * a charge made alone goes as PUT /charges/:orderId. One request for a burst instead of one per order: each request
 * costs both services more CPU than the charge itself. Every charge is idempotent per order, so a batch call that
 * fails as a whole (fees down, a timeout) is retried by the client's pipeline and then made again charge by charge
 * (chassis createBatcher), each caller getting its own charge's outcome. A charge fees refuses in a batch (4xx)
 * rejects its own caller with the UpstreamError a lone call would have thrown.
 */
export function feeCharger(fees: Client<typeof feesContract>, limits: BatchLimits = { maxSize: 32, transactions: 2 }): (request: ChargeRequest) => Promise<Charge> {
  const charge = createBatcher<ChargeRequest, z.infer<typeof ChargeOutcome>>({
    limits,
    batch: async (requests) => (await fees.chargeBatch({ body: { charges: requests } })).body.results,
    alone: async ({ orderId, accountId, notional }) => {
      const res = await fees.charge({ params: { orderId }, body: { accountId, notional } });
      return { status: res.status, charge: res.body };
    },
  });
  return async (request) => {
    const outcome = await charge(request);
    if ('charge' in outcome) return outcome.charge;
    const { status, problem } = outcome;
    throw new UpstreamError({
      kind: 'http',
      service: 'fees',
      operation: 'charge',
      status,
      code: problem.code,
      message: `fees.charge answered ${status}: ${problem.detail ?? problem.code}`,
    });
  };
}
