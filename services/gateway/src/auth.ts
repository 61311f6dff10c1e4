import { currentContext, ProblemError, type Logger } from '@simplebank/chassis';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { z } from 'zod';

/**
 * Bearer-token authentication for the public API. Tokens are JWTs issued by customers; the gateway checks them
 * itself (signature against customers' JWKS, issuer, audience, expiry) without a call per request: the JWKS is
 * fetched once, cached, and fetched again only when a token names an unknown key (rate-limited by jose).
 */
export interface Authenticator {
  /** The customer id of a valid `Authorization: Bearer …` header; throws 401 (or 503 if keys are unobtainable). */
  verify(authorization: string | undefined): Promise<string>;
}

export interface AuthenticatorOptions {
  jwksUrl: URL;
  /** What fetches the JWKS (default: the global fetch); the gateway passes one that can reach a Unix socket. */
  fetch?: typeof globalThis.fetch;
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
  log: Logger;
}

// What customers signs with; anything else in a token's header is refused before any key is looked up.
const ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256'];

/** jose error codes that mean "this token is no good" (the caller's problem), as opposed to "we could not check". */
const INVALID_TOKEN = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWK_INVALID',
]);

/** How long, at most, a verified token is taken at its word without checking its signature again. */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i;
const Subject = z.uuid();

// RFC 6750: a 401 tells the client which scheme to use, and whether the token it sent was the problem.
const unauthorized = (detail: string, invalidToken: boolean) =>
  new ProblemError(401, 'unauthorized', detail, {}, {
    'www-authenticate': invalidToken ? 'Bearer realm="simplebank", error="invalid_token"' : 'Bearer realm="simplebank"',
  });

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const keys = createRemoteJWKSet(options.jwksUrl, {
    timeoutDuration: 2_000,
    // An unknown kid refetches at most this often, so random kids cannot turn into a request flood on customers.
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  });

  // Tokens verified lately: a client sends the same token with every request, and checking its signature again
  // (an EdDSA verification) gives the same answer. Kept until the token expires, and at most VERIFIED_TTL_MS, so a
  // key withdrawn from the JWKS stops being honoured about as soon as it would have anyway (jose caches the JWKS).
  const verified = new Map<string, { subject: string; until: number }>();

  return {
    async verify(authorization) {
      const token = authorization ? BEARER.exec(authorization.trim())?.[1] : undefined;
      if (!token) throw unauthorized('a bearer token is required: log in at POST /api/v1/sessions', false);
      const known = verified.get(token);
      if (known) {
        if (known.until > Date.now()) return known.subject;
        verified.delete(token);
      }
      let subject: unknown;
      let expiresAt = 0;
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ALGORITHMS,
          clockTolerance: options.clockToleranceSeconds,
          requiredClaims: ['sub', 'exp'],
        });
        subject = payload.sub;
        expiresAt = (payload.exp ?? 0) * 1000;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code && INVALID_TOKEN.has(code)) {
          throw unauthorized(code === 'ERR_JWT_EXPIRED' ? 'the token has expired: log in again' : 'the token is not valid', true);
        }
        // The JWKS could not be fetched (customers down, timeout, garbage): not the caller's fault.
        options.log.warn({ err, code }, 'could not obtain the keys to verify a token');
        throw new ProblemError(503, 'upstream_unavailable', 'cannot verify tokens right now; try again shortly', {}, { 'retry-after': '1' });
      }
      const parsed = Subject.safeParse(subject);
      if (!parsed.success) throw unauthorized('the token is not valid', true);
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
      verified.set(token, { subject: parsed.data, until: Math.min(expiresAt, Date.now() + VERIFIED_TTL_MS) });
      return parsed.data;
    },
  };
}

/**
 * The authenticated customer of the request being handled. The gateway's request hook verifies the token and
 * records the customer on the request's work context, before the body is even parsed; a handler only reads it.
 */
export function callerId(): string {
  const customerId = currentContext()?.customerId;
  // Unreachable while the hook guards every non-anonymous route; refuse rather than serve without a customer.
  if (!customerId) throw unauthorized('a bearer token is required: log in at POST /api/v1/sessions', false);
  return customerId;
}
