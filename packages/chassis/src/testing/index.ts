export * from './postgres.ts';
export { freePort, startEmbeddedPostgres } from './embedded.ts';
