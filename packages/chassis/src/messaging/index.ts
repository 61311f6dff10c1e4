export { createEnvelope, type EventEnvelope, type NewEvent } from './envelope.ts';
export type { Bus, DeadLetter, Delivery, EventHandler, SubscriptionOptions } from './bus.ts';
export { appendToOutbox, OUTBOX_CHANNEL } from './outbox.ts';
export { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './relay.ts';
export { idempotentHandler, type InboxHandler } from './inbox.ts';
export { createBus, type CreateBusOptions } from './create-bus.ts';
export { createPgBossBus, BUS_CHANNEL, type PgBossBusOptions } from './pgboss-bus.ts';
export { createNatsBus, type NatsBusOptions } from './nats-bus.ts';
