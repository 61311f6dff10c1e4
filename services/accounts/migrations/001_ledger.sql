-- The ledger. Balances are never stored: they are sums over `postings`, which are append-only.

CREATE TABLE accounts (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  customer_id uuid NOT NULL,
  currency    text NOT NULL CHECK (currency IN ('USD')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (customer_id, currency)
);

CREATE TABLE journal_entries (
  id         uuid PRIMARY KEY,
  -- Insertion order, for listing entries newest first without relying on equal timestamps.
  seq        bigserial NOT NULL UNIQUE,
  kind       text NOT NULL CHECK (kind IN ('deposit', 'trade')),
  -- The deposit id or order id the entry records: one entry per thing, however often it is retried.
  reference  text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, reference)
);

CREATE TABLE postings (
  id             bigserial PRIMARY KEY,
  entry_id       uuid NOT NULL REFERENCES journal_entries (id),
  ledger_account text NOT NULL CHECK (ledger_account ~ '^[a-z]+:[A-Za-z0-9-]+$'),
  -- A currency code (amount in cents) or a ticker (amount in shares).
  asset          text NOT NULL CHECK (asset ~ '^[A-Z][A-Z0-9.]{0,9}$'),
  amount         bigint NOT NULL CHECK (amount <> 0)
);

CREATE INDEX postings_entry_idx ON postings (entry_id);
-- Balances: the sum of one ledger account's postings per asset.
CREATE INDEX postings_account_asset_idx ON postings (ledger_account, asset) INCLUDE (amount);

-- The domain builds only balanced entries; this is the database's own guarantee, checked at commit when all
-- of an entry's postings are in.
CREATE FUNCTION ledger_entry_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  off record;
BEGIN
  SELECT asset, sum(amount) AS total INTO off
    FROM postings WHERE entry_id = NEW.entry_id
    GROUP BY asset HAVING sum(amount) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal entry % does not balance: % %', NEW.entry_id, off.total, off.asset USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER postings_balance AFTER INSERT ON postings
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_must_balance();

CREATE FUNCTION ledger_entry_must_have_postings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2 THEN
    RAISE EXCEPTION 'journal entry % has fewer than two postings', NEW.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_entries_have_postings AFTER INSERT ON journal_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_must_have_postings();

-- A ledger is corrected by new entries, never by editing history.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE deposits (
  id              uuid PRIMARY KEY,
  account_id      uuid NOT NULL REFERENCES accounts (id),
  idempotency_key text NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, idempotency_key)
);

-- A hold on cash or shares for an open order; id = order id.
CREATE TABLE reservations (
  id         uuid PRIMARY KEY,
  account_id uuid NOT NULL REFERENCES accounts (id),
  kind       text NOT NULL CHECK (kind IN ('cash', 'shares')),
  symbol     text NULL,
  amount     bigint NULL CHECK (amount > 0),
  quantity   bigint NULL CHECK (quantity > 0),
  status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'settled', 'released')),
  -- The trade's entry once settled, so a repeated settle answers with the same entry.
  entry_id   uuid NULL REFERENCES journal_entries (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'cash' AND amount IS NOT NULL AND symbol IS NULL AND quantity IS NULL)
      OR (kind = 'shares' AND symbol IS NOT NULL AND quantity IS NOT NULL AND amount IS NULL)),
  CHECK ((status = 'settled') = (entry_id IS NOT NULL))
);

CREATE INDEX reservations_active_idx ON reservations (account_id) WHERE status = 'active';

-- Releases that arrived before their reservation (a reserve call still in flight when the saga compensated):
-- a reserve that comes later finds the tombstone and is recorded as released instead of holding forever.
CREATE TABLE reservation_tombstones (
  id          uuid PRIMARY KEY,
  released_at timestamptz NOT NULL DEFAULT now()
);
