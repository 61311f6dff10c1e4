import { pino, type Logger, type DestinationStream } from 'pino';
import { currentContext } from '../trace/context.ts';

export type { Logger };

/**
 * Paths redacted in every log line. Configured once here so no service can forget it:
 * secrets (passwords, tokens, authorization headers) and personal data (emails) never reach logs.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'email',
  '*.email',
  '*.*.email',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-service-token"]',
  'req.headers["x-service-token"]',
  'secret',
  '*.secret',
  // Card and bank numbers, should a payload ever carry one.
  'cardNumber',
  '*.cardNumber',
  'pan',
  '*.pan',
  'iban',
  '*.iban',
  'accountNumber',
  '*.accountNumber',
];

export interface LoggerOptions {
  service: string;
  version?: string;
  instance?: string;
  level?: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service, version: options.version ?? '0.1.0', instance: options.instance ?? `${process.pid}` },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Every line carries the ids of the request/trace it was written under, without threading a child logger around.
      mixin() {
        const ctx = currentContext();
        if (!ctx) return {};
        return ctx.customerId === undefined
          ? { requestId: ctx.requestId, traceId: ctx.traceId, spanId: ctx.spanId }
          : { requestId: ctx.requestId, traceId: ctx.traceId, spanId: ctx.spanId, customerId: ctx.customerId };
      },
    },
    options.destination,
  );
}
