-- Orders and the state of the place-order saga. Money is BIGINT minor units (cents), never floats.
CREATE TABLE orders (
  id                  uuid PRIMARY KEY,
  customer_id         uuid NOT NULL,
  account_id          uuid NOT NULL,
  -- Placement is idempotent per customer: a repeated key returns the first order.
  idempotency_key     text NOT NULL,
  -- Hash of the request the key was first used with, to refuse the same key with a different body.
  request_hash        text NOT NULL,
  symbol              text NOT NULL,
  side                text NOT NULL CHECK (side IN ('buy', 'sell')),
  quantity            integer NOT NULL CHECK (quantity > 0),
  type                text NOT NULL CHECK (type IN ('market', 'limit')),
  limit_price         bigint NULL CHECK (limit_price > 0),
  status              text NOT NULL CHECK (status IN ('pending', 'accepted', 'placed', 'filled', 'rejected', 'expired', 'cancelled')),
  reason              text NULL,
  filled_quantity     integer NOT NULL DEFAULT 0,
  average_price       bigint NULL,
  fee                 bigint NULL,
  cancel_requested_at timestamptz NULL,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  CONSTRAINT orders_idempotency UNIQUE (customer_id, idempotency_key),
  CONSTRAINT orders_limit_price CHECK ((type = 'limit') = (limit_price IS NOT NULL))
);

CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC, id);
-- Operators and the saga-state metric look for orders that are not final.
CREATE INDEX orders_open_idx ON orders (status, updated_at) WHERE status IN ('pending', 'accepted', 'placed');

-- Append-only: one row per transition (and per cancel request), written with the new state.
CREATE TABLE order_history (
  id       bigserial PRIMARY KEY,
  order_id uuid NOT NULL REFERENCES orders (id),
  status   text NOT NULL,
  reason   text NULL,
  at       timestamptz NOT NULL
);
CREATE INDEX order_history_order_idx ON order_history (order_id, id);

-- Append-only record of every saga step the orchestrator took (calls to other services and their outcome).
CREATE TABLE saga_log (
  id       bigserial PRIMARY KEY,
  order_id uuid NOT NULL REFERENCES orders (id),
  step     text NOT NULL,
  outcome  text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
  detail   jsonb NULL,
  -- clock_timestamp, not now(): steps in one transaction happen at different times.
  at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX saga_log_order_idx ON saga_log (order_id, id);

-- The tables are append-only: refuse updates and deletes so the audit trail cannot be rewritten by accident.
CREATE FUNCTION orders_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER order_history_append_only BEFORE UPDATE OR DELETE ON order_history FOR EACH ROW EXECUTE FUNCTION orders_append_only();
CREATE TRIGGER saga_log_append_only BEFORE UPDATE OR DELETE ON saga_log FOR EACH ROW EXECUTE FUNCTION orders_append_only();
