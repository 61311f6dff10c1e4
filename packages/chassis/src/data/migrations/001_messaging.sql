-- Transactional outbox: events are written here in the same transaction as the state change they describe,
-- then relayed to the bus (messaging/relay.ts). seq gives the relay a total order to publish in.
CREATE TABLE IF NOT EXISTS outbox (
  seq          bigserial PRIMARY KEY,
  id           uuid NOT NULL UNIQUE,
  type         text NOT NULL,
  subject      text NOT NULL,
  envelope     jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz NULL
);

-- The relay only ever looks for unpublished rows; published ones pile up, so keep the index to the backlog.
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;

-- Idempotent consumer: one row per (consumer, event) handled, inserted in the same transaction as the effect.
CREATE TABLE IF NOT EXISTS inbox (
  consumer   text NOT NULL,
  event_id   uuid NOT NULL,
  handled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
