/** Header names the chassis reads and writes; one place so server and client agree. */
export const HEADERS = {
  requestId: 'x-request-id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Remaining time budget of the caller's operation, in milliseconds. */
  deadline: 'x-deadline-ms',
  serviceToken: 'x-service-token',
  idempotencyKey: 'idempotency-key',
} as const;
