-- Orders as the simulated exchange sees them. One row per order id: OrderAccepted may arrive more than once.
CREATE TABLE exchange_orders (
  order_id        uuid PRIMARY KEY,
  account_id      uuid NOT NULL,
  symbol          text NOT NULL,
  side            text NOT NULL CHECK (side IN ('buy', 'sell')),
  quantity        integer NOT NULL CHECK (quantity > 0),
  type            text NOT NULL CHECK (type IN ('market', 'limit')),
  limit_price     bigint CHECK (limit_price > 0),          -- cents
  status          text NOT NULL CHECK (status IN ('open', 'filled', 'expired', 'rejected', 'cancelled')),
  reason          text,                                     -- why rejected
  fill_price      bigint CHECK (fill_price > 0),            -- cents
  -- Simulated exchange latency: the matcher does not look at the order before this instant.
  execute_after   timestamptz NOT NULL,
  expires_at      timestamptz,
  correlation_id  text NOT NULL,                            -- carried onto the events the matcher publishes
  executed_at     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((type = 'limit') = (limit_price IS NOT NULL)),
  CHECK ((status = 'filled') = (fill_price IS NOT NULL))
);

-- The matcher's work list: open orders only, so it stays small however long the history grows.
CREATE INDEX exchange_orders_open ON exchange_orders (execute_after) WHERE status = 'open';
CREATE INDEX exchange_orders_expiring ON exchange_orders (expires_at) WHERE status = 'open' AND expires_at IS NOT NULL;

-- Cancels that overtook their order (events are not ordered across subscriptions): applied when it arrives.
CREATE TABLE cancel_requests (
  order_id      uuid PRIMARY KEY,
  account_id    uuid NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now()
);
