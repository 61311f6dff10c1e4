-- The relay deletes published outbox rows and old inbox rows once a minute (messaging/retention.ts). These indexes
-- let each round find just the expired rows instead of scanning tables that grow by every event.
-- Not CONCURRENTLY: migrations run in a transaction. On a large existing outbox or inbox, building them blocks
-- writes to that table for the build's duration; run this file by hand with CONCURRENTLY first if that matters.
CREATE INDEX IF NOT EXISTS outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_handled_at_idx ON inbox (handled_at);
