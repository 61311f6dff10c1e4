import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ProblemError, type Logger } from '@simplebank/chassis';
import { Ticker } from './contract.ts';
import type { PriceFeed } from './feed.ts';

interface StreamClient {
  res: ServerResponse;
  /** Symbols this client asked for; undefined = all. */
  symbols: Set<string> | undefined;
  /** Socket buffer full: skip ticks until it drains (a newer price supersedes an unsent one anyway). */
  blocked: boolean;
}

export interface PriceStream {
  /** Connected clients, for logs and tests. */
  size(): number;
  /** Ends every stream and stops the ticker (shutdown). */
  close(): void;
}

export const PRICE_STREAM_PATH = '/prices/stream';

const frame = (tick: number, data: string) => `event: price\nid: ${tick}\ndata: ${data}\n\n`;

/**
 * `GET /prices/stream[?symbols=AAPL,MSFT]`: server-sent events, one `price` event per symbol per tick.
 * Not a contract route (its body is a stream, not JSON), so it is registered on the raw fastify app.
 *
 * One timer for all clients, aligned to tick boundaries and running only while someone listens; each tick's
 * prices are computed and serialised once, then written to every client.
 */
export function registerPriceStream(app: FastifyInstance, feed: PriceFeed, log: Logger): PriceStream {
  const clients = new Set<StreamClient>();
  let timer: NodeJS.Timeout | undefined;
  let lastTick = -1;
  let closed = false;

  const send = (client: StreamClient, chunk: string) => {
    if (client.blocked || chunk.length === 0) return;
    if (!client.res.write(chunk)) {
      client.blocked = true;
      client.res.once('drain', () => {
        client.blocked = false;
      });
    }
  };

  const framesFor = (tick: number, nowMs: number) =>
    feed.prices(nowMs).map((p) => ({ symbol: p.symbol, text: frame(tick, JSON.stringify(p)) }));

  const chunkFor = (client: StreamClient, frames: { symbol: string; text: string }[]) =>
    frames.filter((f) => !client.symbols || client.symbols.has(f.symbol)).map((f) => f.text).join('');

  function schedule() {
    if (timer || closed || clients.size === 0) return;
    const now = Date.now();
    // Wake just after the next boundary so the tick computed there is the new one.
    timer = setTimeout(onTick, feed.tickMs - (now % feed.tickMs) + 1);
  }

  function onTick() {
    timer = undefined;
    const now = Date.now();
    const tick = feed.tickAt(now);
    if (tick > lastTick) {
      lastTick = tick;
      const frames = framesFor(tick, now);
      for (const client of clients) send(client, chunkFor(client, frames));
    }
    schedule();
  }

  function close() {
    closed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const client of clients) client.res.end();
    clients.clear();
  }

  app.get(PRICE_STREAM_PATH, async (request, reply) => {
    const raw = (request.query as Record<string, unknown>).symbols;
    let symbols: Set<string> | undefined;
    if (typeof raw === 'string' && raw.length > 0) {
      symbols = new Set(raw.split(','));
      for (const s of symbols) {
        if (!Ticker.safeParse(s).success) {
          throw new ProblemError(400, 'validation_failed', `query.symbols: not a ticker symbol: ${JSON.stringify(s)}`, {
            errors: [{ field: 'query.symbols', message: 'must be comma-separated upper-case ticker symbols' }],
          });
        }
        if (!feed.has(s)) throw new ProblemError(404, 'unknown_symbol', `no instrument ${s}`);
      }
    }
    if (closed) throw new ProblemError(503, 'unavailable', 'shutting down', {}, { 'retry-after': '1' });

    // From here on we write the response ourselves; fastify's reply is out of the picture.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Stops proxies (nginx) from buffering the stream.
      'x-accel-buffering': 'no',
      'x-request-id': request.work.requestId,
    });
    const client: StreamClient = { res, symbols, blocked: false };
    clients.add(client);
    res.on('close', () => {
      clients.delete(client);
      if (clients.size === 0 && timer) {
        clearTimeout(timer);
        timer = undefined;
      }
    });
    // Current prices right away: a new subscriber should not wait up to a tick for its first quote.
    const now = Date.now();
    send(client, `retry: ${Math.max(1000, feed.tickMs)}\n\n` + chunkFor(client, framesFor(feed.tickAt(now), now)));
    log.debug({ clients: clients.size, symbols: symbols ? [...symbols] : 'all' }, 'price stream opened');
    schedule();
  });

  // preClose runs before fastify waits for in-flight requests: an open stream would otherwise hold close() forever.
  app.addHook('preClose', async () => close());

  return { size: () => clients.size, close };
}
