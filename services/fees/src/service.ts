import { ConfigError, defineService } from '@simplebank/chassis';
import { amountString, parseMoney } from '@simplebank/money';
import { z } from 'zod';
import { feesContract } from './contract.ts';
import { InvalidScheduleError, MAX_BPS, validateSchedule, type FeeSchedule } from './domain/fee.ts';
import { feeRoutes } from './http.ts';

export const service = defineService({
  contract: feesContract,
  defaultPort: 8086,
  migrations: new URL('../migrations/', import.meta.url),
  // Publishes FeeCharged / FeeRefunded through the outbox; consumes nothing (orders calls it directly).
  bus: true,
  config: {
    // Digits only: z.coerce.number would read "" as 0 and "1e1" as 10, silently making trades free or odd.
    FEE_BPS: z
      .string()
      .regex(/^\d{1,5}$/, 'must be a whole number of basis points')
      .transform(Number)
      .pipe(z.number().int().max(MAX_BPS))
      .default(10)
      .describe('commission in basis points of the notional (10 = 0.10%)'),
    FEE_MINIMUM: amountString.default('1.00').describe('smallest fee for a non-zero trade, e.g. "1.00"'),
    FEE_MAXIMUM: amountString.default('50.00').describe('largest fee for any trade, e.g. "50.00"'),
  },
  setup(ctx) {
    let schedule: FeeSchedule;
    try {
      schedule = validateSchedule({ bps: ctx.config.FEE_BPS, minimum: parseMoney(ctx.config.FEE_MINIMUM), maximum: parseMoney(ctx.config.FEE_MAXIMUM) });
    } catch (err) {
      // Reported like any other bad config: the process refuses to start and names the keys.
      if (err instanceof InvalidScheduleError) throw new ConfigError('fees', [`FEE_BPS/FEE_MINIMUM/FEE_MAXIMUM: ${err.message}`]);
      throw err;
    }
    ctx.log.info({ bps: schedule.bps, minimum: ctx.config.FEE_MINIMUM, maximum: ctx.config.FEE_MAXIMUM }, 'fee schedule');
    return { routes: feeRoutes(ctx, schedule) };
  },
});
