import type { Db } from '../data/db.ts';

export interface MessagingRetention {
  /** Published outbox rows are deleted this long after publication. Default 1 hour. */
  outboxRetentionMs?: number;
  /**
   * Inbox rows are deleted this long after their event was handled. Default 7 days. The inbox is the consumers'
   * memory of what they handled: a redelivery of an event older than this (a dead letter replayed after a
   * week, a republish from an old backup) is handled again. Keep it longer than any such delay you expect.
   */
  inboxRetentionMs?: number;
  /** Rows per DELETE. Default 1000. */
  pruneBatchSize?: number;
}

export const DEFAULT_OUTBOX_RETENTION_MS = 60 * 60_000;
export const DEFAULT_INBOX_RETENTION_MS = 7 * 24 * 60 * 60_000;

// Each DELETE is its own short transaction, so pruning a large backlog never holds many locks or a long snapshot.
// SKIP LOCKED lets the instances of a service prune concurrently without queueing behind each other.
// Both filters are served by indexes (migration 002): without them every round would scan the whole table.
const PRUNE_OUTBOX_SQL = `
  DELETE FROM outbox WHERE seq IN (
    SELECT seq FROM outbox WHERE published_at < now() - $1::float8 * interval '1 millisecond'
    LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;
const PRUNE_INBOX_SQL = `
  DELETE FROM inbox WHERE (consumer, event_id) IN (
    SELECT consumer, event_id FROM inbox WHERE handled_at < now() - $1::float8 * interval '1 millisecond'
    LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;

/**
 * Deletes published outbox rows and inbox rows past their retention, in batches, until none are left or
 * `shouldStop` says so. Returns how many rows of each it deleted. Unpublished outbox rows are never deleted.
 */
export async function pruneMessagingTables(
  db: Db,
  options: MessagingRetention = {},
  shouldStop: () => boolean = () => false,
): Promise<{ outbox: number; inbox: number }> {
  const batchSize = options.pruneBatchSize ?? 1000;
  const prune = async (sql: string, retentionMs: number) => {
    let deleted = 0;
    while (!shouldStop()) {
      const { rowCount } = await db.query(sql, [retentionMs, batchSize]);
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < batchSize) break;
    }
    return deleted;
  };
  const outbox = await prune(PRUNE_OUTBOX_SQL, options.outboxRetentionMs ?? DEFAULT_OUTBOX_RETENTION_MS);
  const inbox = await prune(PRUNE_INBOX_SQL, options.inboxRetentionMs ?? DEFAULT_INBOX_RETENTION_MS);
  return { outbox, inbox };
}
