import type { Db, Queryable } from '@simplebank/chassis';
import type { StoredKey } from './domain/tokens.ts';

export interface CustomerRow {
  id: string;
  name: string;
  email: string;
  password_hash: string;
  created_at: Date;
}

/** Inserts a customer; undefined when the (normalised) email is taken. */
export async function insertCustomer(
  tx: Queryable,
  customer: { id: string; name: string; email: string; passwordHash: string },
): Promise<CustomerRow | undefined> {
  const { rows } = await tx.query<CustomerRow>(
    `INSERT INTO customers (id, name, email, password_hash) VALUES ($1, $2, $3, $4)
     ON CONFLICT (email) DO NOTHING
     RETURNING id, name, email, password_hash, created_at`,
    [customer.id, customer.name, customer.email, customer.passwordHash],
  );
  return rows[0];
}

export const findCustomerByEmail = (db: Db, email: string): Promise<CustomerRow | undefined> =>
  db.one<CustomerRow>('SELECT id, name, email, password_hash, created_at FROM customers WHERE email = $1', [email]);

export const findCustomerById = (db: Db, id: string): Promise<CustomerRow | undefined> =>
  db.one<CustomerRow>('SELECT id, name, email, password_hash, created_at FROM customers WHERE id = $1', [id]);

/** Replaces a hash only if it is still the one we verified, so a concurrent password change is not undone. */
export async function replacePasswordHash(db: Db, id: string, previous: string, next: string): Promise<void> {
  await db.query('UPDATE customers SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [id, previous, next]);
}

interface KeyRow {
  kid: string;
  alg: string;
  private_jwk: StoredKey['privateJwk'];
  public_jwk: StoredKey['publicJwk'];
}

const toStoredKey = (r: KeyRow): StoredKey => ({ kid: r.kid, alg: r.alg, privateJwk: r.private_jwk, publicJwk: r.public_jwk });

/**
 * The unretired signing keys, newest first; creates the first one if there is none. Instances starting together
 * serialise on an advisory lock, so exactly one key is created and all of them use it.
 */
export async function ensureSigningKeys(db: Db, generate: () => Promise<StoredKey>): Promise<StoredKey[]> {
  return db.tx(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('customers.signing_keys'))`);
    const select = () =>
      tx.query<KeyRow>('SELECT kid, alg, private_jwk, public_jwk FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid');
    let { rows } = await select();
    if (rows.length === 0) {
      const key = await generate();
      await tx.query('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)', [
        key.kid,
        key.alg,
        JSON.stringify(key.privateJwk),
        JSON.stringify(key.publicJwk),
      ]);
      ({ rows } = await select());
    }
    return rows.map(toStoredKey);
  });
}
