-- One charge per executed order. order_id is the key so a retried charge finds the first one instead of
-- charging twice. Money is BIGINT cents; the fee is stored, never recomputed, so a schedule change does not
-- rewrite history (a repeat charge or a refund returns exactly what was charged).
CREATE TABLE charges (
  order_id    uuid PRIMARY KEY,
  account_id  uuid NOT NULL,
  notional    bigint NOT NULL CHECK (notional >= 0),
  fee         bigint NOT NULL CHECK (fee >= 0),
  status      text NOT NULL DEFAULT 'charged' CHECK (status IN ('charged', 'refunded')),
  charged_at  timestamptz NOT NULL DEFAULT now(),
  refunded_at timestamptz NULL,
  -- The two go together: a refunded charge knows when, a charged one has not been refunded.
  CHECK ((status = 'refunded') = (refunded_at IS NOT NULL))
);

-- Account statements and reconciliation list an account's charges by time.
CREATE INDEX charges_account_idx ON charges (account_id, charged_at);
