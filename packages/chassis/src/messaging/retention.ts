import type { Db } from '../data/db.ts';

export interface InboxRetention {
  /**
   * Inbox rows are deleted this long after their event was handled. Default 7 days. The inbox is the consumers'
   * memory of what they handled: a redelivery of an event older than this (a dead letter replayed after a
   * week, a republish from an old backup) is handled again. Keep it longer than any such delay you expect.
   */
  inboxRetentionMs?: number;
  /** Rows per DELETE. Default 1000. */
  pruneBatchSize?: number;
}

export const DEFAULT_INBOX_RETENTION_MS = 7 * 24 * 60 * 60_000;

// Each DELETE is its own short transaction, so pruning a large backlog never holds many locks or a long snapshot.
// SKIP LOCKED lets the instances of a service prune concurrently without queueing behind each other.
// The filter is served by an index (migration 002): without it every round would scan the whole table.
// (The outbox needs no pruning: the relay deletes each row once it is published.)
const PRUNE_INBOX_SQL = `
  DELETE FROM inbox WHERE (consumer, event_id) IN (
    SELECT consumer, event_id FROM inbox WHERE handled_at < now() - $1::float8 * interval '1 millisecond'
    LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;

/**
 * Deletes inbox rows past their retention, in batches, until none are left or `shouldStop` says so. Returns how
 * many it deleted.
 */
export async function pruneInbox(db: Db, options: InboxRetention = {}, shouldStop: () => boolean = () => false): Promise<number> {
  const batchSize = options.pruneBatchSize ?? 1000;
  const retentionMs = options.inboxRetentionMs ?? DEFAULT_INBOX_RETENTION_MS;
  let deleted = 0;
  while (!shouldStop()) {
    const { rowCount } = await db.query(PRUNE_INBOX_SQL, [retentionMs, batchSize]);
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) break;
  }
  return deleted;
}
