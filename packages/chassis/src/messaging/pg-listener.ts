import pg from 'pg';
import type { Logger } from '../log/logger.ts';

export interface PgListener {
  /** LISTENs on one more channel (on the same connection), now and after every reconnection. */
  add(channel: string): Promise<void>;
  close(): Promise<void>;
}

export interface PgListenerOptions {
  /** Connection config (a pool's `options`, or `{ connectionString }`). */
  config: pg.ClientConfig;
  channel: string;
  /** Called with the payload; `channel` says which, when the listener LISTENs on more than one (add()). */
  onNotify(payload: string, channel: string): void;
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
  const channels = new Set([options.channel]);
  /** The channels the current connection LISTENs on (empty while it is not connected). */
  let listening = new Set<string>();

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
    listening = new Set();
    let dropped = false;
    const onDrop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      if (client === c) listening = new Set();
      if (closed) return;
      options.log.warn({ err, channel: options.channel }, 'LISTEN connection lost; reconnecting');
      c.end().catch(() => {});
      scheduleReconnect();
    };
    c.on('error', onDrop);
    c.on('end', () => onDrop());
    c.on('notification', (msg) => {
      if (channels.has(msg.channel)) options.onNotify(msg.payload ?? '', msg.channel);
    });
    try {
      await c.connect();
      // Channels added while this ran are LISTENed too, until none is missing.
      for (let missing = [...channels]; missing.length > 0; missing = [...channels].filter((ch) => !listening.has(ch))) {
        await c.query(missing.map((ch) => `LISTEN ${pg.escapeIdentifier(ch)}`).join('; '));
        for (const ch of missing) listening.add(ch);
      }
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
    async add(channel) {
      if (channels.has(channel)) return;
      channels.add(channel);
      // Not connected yet (or reconnecting): the connection being made LISTENs on every channel.
      const c = client;
      if (!c || listening.size === 0) return;
      listening.add(channel);
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {
        if (client === c) listening.delete(channel);
      });
    },
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await client?.end().catch(() => {});
    },
  };
}
