/**
 * RFC 9457 problem details. Every error a service returns is one of these, with a stable `code`
 * that callers branch on (never the message text).
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: string;
  /** Field-level validation errors: `field` is a dotted path such as `body.amount`. */
  errors?: { field: string; message: string }[];
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Throw from a handler to answer with a problem+json response. */
export class ProblemError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, detail?: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    super(detail ?? TITLES[status] ?? code);
    this.name = 'ProblemError';
    this.status = status;
    this.code = code;
    this.extensions = extensions;
    this.headers = headers;
  }

  toProblem(instance?: string): Problem {
    return {
      type: `https://simplebank.dev/problems/${this.code}`,
      title: TITLES[this.status] ?? 'Error',
      status: this.status,
      detail: this.message,
      code: this.code,
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export const isProblemError = (err: unknown): err is ProblemError =>
  err instanceof Error && (err as { name?: string }).name === 'ProblemError' && typeof (err as ProblemError).status === 'number';

/** Shorthands for the errors handlers throw most. */
export const problems = {
  badRequest: (detail: string, errors?: Problem['errors']) => new ProblemError(400, 'validation_failed', detail, errors ? { errors } : {}),
  unauthorized: (detail = 'authentication required') => new ProblemError(401, 'unauthorized', detail),
  forbidden: (detail = 'not allowed') => new ProblemError(403, 'forbidden', detail),
  notFound: (what: string, code = 'not_found') => new ProblemError(404, code, `${what} not found`),
  conflict: (code: string, detail: string) => new ProblemError(409, code, detail),
  unprocessable: (code: string, detail: string) => new ProblemError(422, code, detail),
  unavailable: (detail: string, retryAfterSeconds = 1) =>
    new ProblemError(503, 'unavailable', detail, {}, { 'retry-after': String(retryAfterSeconds) }),
};

export function problemTitle(status: number): string {
  return TITLES[status] ?? 'Error';
}
