import { z } from 'zod';
import { closeOf, expiryFor, isOpen, isValidTimeZone, parseTradingHours, type TradingHours } from './domain/exchange-clock.ts';
import type { OrderType } from './domain/matching.ts';

const tradingHours = z.string().refine((v) => {
  try {
    parseTradingHours(v);
    return true;
  } catch {
    return false;
  }
}, 'must be "always" or "HH:MM-HH:MM"');

/** Env the market service reads beyond the chassis' base keys. */
export const configShape = {
  EXCHANGE_HOURS: tradingHours.default('always').describe('trading hours: "always", or "HH:MM-HH:MM" in exchange time, Monday to Friday'),
  EXCHANGE_TIMEZONE: z.string().default('America/New_York').refine(isValidTimeZone, 'must be an IANA time zone').describe('time zone of the exchange clock'),
  EXCHANGE_MATCH_INTERVAL_MS: z.coerce.number().int().min(5).default(100).describe('how often the matcher looks for executable and expired orders'),
  EXCHANGE_LATENCY_MS: z.coerce.number().int().min(0).default(20).describe('simulated exchange latency before an order can execute'),
  EXCHANGE_REJECT_RATE: z.coerce.number().min(0).max(1).default(0).describe('fault knob: share of executions the exchange rejects (0–1)'),
  EXCHANGE_TIME_IN_FORCE_SECONDS: z.coerce.number().positive().optional().describe('limit orders expire this many seconds after placement instead of at the close (tests)'),
  EXCHANGE_PRICE_TIMEOUT_MS: z.coerce.number().int().positive().default(1000).describe('timeout of a market-data price call made by the matcher'),
};

export type MarketConfig = z.infer<z.ZodObject<typeof configShape>>;

/** The exchange's rules as configured: clock, hours, latency, time in force. */
export interface Exchange {
  readonly hours: TradingHours;
  readonly timeZone: string;
  isOpen(nowMs: number): boolean;
  /** When an order of this type placed at `nowMs` becomes executable (simulated latency). */
  executeAfter(nowMs: number): number;
  /** When it expires; null for market orders. */
  expiresAt(type: OrderType, nowMs: number): number | null;
}

export function createExchange(config: MarketConfig): Exchange {
  const hours = parseTradingHours(config.EXCHANGE_HOURS);
  const timeZone = config.EXCHANGE_TIMEZONE;
  return {
    hours,
    timeZone,
    isOpen: (nowMs) => isOpen(hours, nowMs, timeZone),
    executeAfter: (nowMs) => nowMs + config.EXCHANGE_LATENCY_MS,
    expiresAt: (type, nowMs) => expiryFor(type, nowMs, { timeZone, close: closeOf(hours), timeInForceSeconds: config.EXCHANGE_TIME_IN_FORCE_SECONDS }),
  };
}
