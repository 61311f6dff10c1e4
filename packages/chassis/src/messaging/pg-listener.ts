import pg from 'pg';
import type { Logger } from '../log/logger.ts';

export interface PgListener {
  close(): Promise<void>;
}

export interface PgListenerOptions {
  /** Connection config (a pool's `options`, or `{ connectionString }`). */
  config: pg.ClientConfig;
  channel: string;
  onNotify(payload: string): void;
  /** Called after every (re)connection: notifications sent while disconnected are lost, so callers catch up. */
  onConnect?(): void;
  log: Logger;
}

/**
 * LISTEN on a dedicated connection (a pooled one would be handed to other queries and miss notifications),
 * reconnecting with backoff if it drops. Notifications are only a latency optimisation for their callers,
 * which also poll, so a gap while reconnecting delays work but loses nothing.
 */
export function listen(options: PgListenerOptions): PgListener {
  let client: pg.Client | undefined;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const scheduleReconnect = () => {
    if (closed || retryTimer) return;
    const delay = Math.min(200 * 2 ** failures, 10_000);
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, delay);
    retryTimer.unref();
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ ...options.config, application_name: `listen:${options.channel}` });
    client = c;
    let dropped = false;
    const onDrop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      if (closed) return;
      options.log.warn({ err, channel: options.channel }, 'LISTEN connection lost; reconnecting');
      c.end().catch(() => {});
      scheduleReconnect();
    };
    c.on('error', onDrop);
    c.on('end', () => onDrop());
    c.on('notification', (msg) => {
      if (msg.channel === options.channel) options.onNotify(msg.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`);
      if (closed) {
        await c.end().catch(() => {});
        return;
      }
      failures = 0;
      options.onConnect?.();
    } catch (err) {
      onDrop(err as Error);
    }
  };

  void connect();

  return {
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await client?.end().catch(() => {});
    },
  };
}
