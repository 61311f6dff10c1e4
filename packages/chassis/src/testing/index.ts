export * from './postgres.ts';
export { freePort, startEmbeddedPostgres } from './embedded.ts';
export { recordEvents, type EventRecorder, type OutboxDatabase, type RecordEventsOptions } from './events.ts';
