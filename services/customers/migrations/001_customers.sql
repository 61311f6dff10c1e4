-- Customers and their credentials. Emails are stored normalised (lower-case) so that uniqueness is
-- case-insensitive with a plain unique index, and lookups at login can use it.
CREATE TABLE customers (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  email         text NOT NULL UNIQUE CHECK (email = lower(email)),
  -- scrypt$<logN>$<r>$<p>$<salt b64>$<hash b64>: the parameters travel with the hash so they can be raised later.
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Keys that sign the JWTs. Kept here (not in memory, not per instance) so tokens survive restarts and every
-- instance signs with, and publishes, the same keys. The newest unretired key signs; the JWKS lists all
-- unretired ones, so a rotation can publish the next key before it is used.
CREATE TABLE signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz NULL
);
