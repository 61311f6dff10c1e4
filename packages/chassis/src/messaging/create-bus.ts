import type { Logger } from '../log/logger.ts';
import type { Bus } from './bus.ts';
import { createNatsBus } from './nats-bus.ts';
import { createPgBossBus } from './pgboss-bus.ts';

export interface CreateBusOptions {
  /** `postgres://…` / `postgresql://…` for pg-boss (embedded default), `nats://…` for NATS JetStream. */
  url: string;
  service: string;
  log: Logger;
}

/** The bus engine is chosen by the URL's scheme, so switching engines is configuration only. */
export function createBus(options: CreateBusOptions): Bus {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(options.url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return createPgBossBus(options);
    case 'nats': {
      // `nats://host:4222?streams=PREFIX` namespaces the streams and durable consumers, so several banks (or test
      // runs) can share one NATS server without taking each other's events.
      const url = new URL(options.url);
      const streamPrefix = url.searchParams.get('streams') ?? undefined;
      url.search = '';
      return createNatsBus({ ...options, url: url.toString(), ...(streamPrefix ? { streamPrefix } : {}) });
    }
    default:
      throw new Error(
        // Only the scheme is echoed: the rest of a URL may hold credentials.
        `unsupported bus URL ${scheme ? `scheme "${scheme}://"` : '(no scheme)'}: ` +
          'use postgres:// or postgresql:// (pg-boss) or nats:// (NATS JetStream)',
      );
  }
}
