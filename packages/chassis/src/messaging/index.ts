export { createEnvelope, type EventEnvelope, type NewEvent } from './envelope.ts';
export { DEFAULT_LEASE_SECONDS, type Bus, type DeadLetter, type Delivery, type EventHandler, type SubscriptionOptions, type SubscriptionStats } from './bus.ts';
export { appendToOutbox, onOutboxCommit, OUTBOX_CHANNEL } from './outbox.ts';
export { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './relay.ts';
export {
  pruneMessagingTables,
  DEFAULT_INBOX_RETENTION_MS,
  DEFAULT_OUTBOX_RETENTION_MS,
  type MessagingRetention,
} from './retention.ts';
export { idempotentHandler, type InboxEventHandler, type InboxHandler, type InboxOptions, type InboxOutcome } from './inbox.ts';
export { idempotentBatchHandler, type BatchDelivery, type BatchItem, type InboxBatchHandler } from './inbox-batch.ts';
export { createBus, type CreateBusOptions } from './create-bus.ts';
export { createPgBossBus, BUS_CHANNEL, type PgBossBusOptions } from './pgboss-bus.ts';
export { createNatsBus, type NatsBusOptions } from './nats-bus.ts';
export { deadLetterAdminRoutes, DEAD_LETTERS_ADMIN_PATH, MAX_DEAD_LETTERS_LISTED, type DeadLetterAdminOptions, type DeadLetterView } from './admin.ts';
