-- The saga's first step (reserve) takes its work from here instead of from an OrderSubmitted event that orders
-- published to itself. The row is written with the order, in the same statement, and deleted in the transaction
-- that takes the order past `pending`: the order's own database is the durable to-do list, with none of the bus's
-- round trip (an outbox row, a job inserted, claimed and completed, an inbox row) for an event no other service
-- reads. A failed attempt moves `due_at` on (backoff) and counts `attempts`; `traceparent` keeps the placing
-- request's trace, which the step continues.
CREATE TABLE reserve_queue (
  order_id    uuid PRIMARY KEY REFERENCES orders (id),
  due_at      timestamptz NOT NULL,
  attempts    integer NOT NULL DEFAULT 0,
  traceparent text NULL
);
CREATE INDEX reserve_queue_due_idx ON reserve_queue (due_at);

-- Orders placed before this migration whose OrderSubmitted had not been handled yet: queued here instead (the step
-- is idempotent, so an order that was handled after all is left as it is).
INSERT INTO reserve_queue (order_id, due_at) SELECT id, now() FROM orders WHERE status = 'pending';
