-- The outbox keeps only the backlog: the relay deletes rows once the bus has acknowledged them (messaging/relay.ts)
-- instead of marking them published and pruning them an hour later. Marking was an UPDATE that could never be
-- heap-only (published_at was in both partial indexes), so every event cost a second row version, three more index
-- entries and their vacuum, in a table that held an hour of events. A delete only flags the row. A published event
-- is the bus's to keep: JetStream's streams keep every event, pg-boss the jobs of the queues subscribed to it.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_unpublished_idx;
DROP INDEX IF EXISTS outbox_published_at_idx;
ALTER TABLE outbox DROP COLUMN IF EXISTS published_at;
