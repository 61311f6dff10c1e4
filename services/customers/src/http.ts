import { randomUUID } from 'node:crypto';
import { ProblemError, problems, type Db, type Handlers, type Logger, type ServiceContext } from '@simplebank/chassis';
import { customersContract, JWT_AUDIENCE, JWT_ISSUER } from './contract.ts';
import { findCustomerByEmail, findCustomerById, insertCustomer, replacePasswordHash, type CustomerRow } from './data.ts';
import { hashPassword, normaliseEmail, verifyPassword, type ScryptParams } from './domain/password.ts';
import { issueToken, type SigningKey } from './domain/tokens.ts';

export interface HandlerDeps {
  db: Db;
  log: Logger;
  publish: ServiceContext<unknown, Record<never, never>>['publish'];
  /** Newest first: the first one signs, all of them are published. */
  keys: SigningKey[];
  scrypt: ScryptParams;
  tokenTtlSeconds: number;
  /** A hash of a random password, verified against when the email is unknown so both failures cost the same. */
  decoyHash: string;
}

const toCustomer = (row: CustomerRow) => ({ id: row.id, name: row.name, email: row.email });

// One answer for unknown email and wrong password, so the endpoint does not reveal who has an account.
const invalidCredentials = () => new ProblemError(401, 'invalid_credentials', 'email or password is incorrect');

export function createHandlers(deps: HandlerDeps): Handlers<typeof customersContract> {
  const { db, log } = deps;
  const signingKey = deps.keys[0];
  if (!signingKey) throw new Error('customers: no signing key');
  const jwks = { keys: deps.keys.map((k) => k.publicJwk) };

  return {
    async register({ body }) {
      // Hash before opening the transaction: 100 ms of CPU must not hold a pooled connection.
      const passwordHash = await hashPassword(body.password, deps.scrypt);
      const customer = await db.tx(async (tx) => {
        const row = await insertCustomer(tx, { id: randomUUID(), name: body.name, email: normaliseEmail(body.email), passwordHash });
        if (!row) return undefined;
        // Same transaction as the insert: accounts opens the USD account if and only if the customer exists.
        await deps.publish(tx, customersContract.events.CustomerRegistered, { subject: row.id, data: { customerId: row.id, name: row.name } });
        return row;
      });
      if (!customer) throw problems.conflict('email_taken', 'a customer with this email already exists');
      log.info({ customerId: customer.id }, 'customer registered');
      return { status: 201, body: toCustomer(customer), headers: { location: `/customers/${customer.id}` } };
    },

    async authenticate({ body }) {
      const row = await findCustomerByEmail(db, normaliseEmail(body.email));
      const result = await verifyPassword(body.password, row?.password_hash ?? deps.decoyHash, deps.scrypt);
      if (!row || !result.ok) throw invalidCredentials();
      if (result.needsRehash) {
        // Upgrade to today's cost while we hold the plaintext; a failure here must not fail the login.
        await hashPassword(body.password, deps.scrypt)
          .then((next) => replacePasswordHash(db, row.id, row.password_hash, next))
          .catch((err: unknown) => log.warn({ err, customerId: row.id }, 'password rehash failed'));
      }
      const { token, expiresAt } = await issueToken(signingKey, {
        customerId: row.id,
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        ttlSeconds: deps.tokenTtlSeconds,
      });
      return { status: 200, body: { token, customerId: row.id, expiresAt: expiresAt.toISOString() }, headers: { 'cache-control': 'no-store' } };
    },

    async getCustomer({ params }) {
      const row = await findCustomerById(db, params.id);
      if (!row) throw problems.notFound('customer');
      return { status: 200, body: toCustomer(row) };
    },

    async jwks() {
      // Verifiers cache the set; a few minutes keeps them current enough for a rotation that pre-publishes keys.
      return { status: 200, body: jwks, headers: { 'cache-control': 'public, max-age=300' } };
    },
  };
}
