import {
  AckPolicy,
  DeliverPolicy,
  JSONCodec,
  RetentionPolicy,
  StorageType,
  connect,
  nanos,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import type { Logger } from '../log/logger.ts';
import { leaseSecondsOf, type Bus, type DeadLetter, type SubscriptionOptions } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { BUSY_RECHECK_MS, busySignal, type BackPressureOptions } from './loop-lag.ts';

export interface NatsBusOptions extends BackPressureOptions {
  url: string;
  service: string;
  log: Logger;
  /**
   * Names the streams (`<prefix>_EVENTS`, `<prefix>_DLQ`). Default `SIMPLEBANK`. Any other prefix also
   * prefixes the subjects (`<prefix>.events.<type>`), since two streams may not share subjects: this is how
   * tests get isolated streams on one server.
   */
  streamPrefix?: string;
}

/** What the dead-letter stream stores for each event that exhausted its attempts. */
interface DeadLetterRecord {
  subscription: string;
  event: EventEnvelope;
  error: string;
  failedAt: string;
  /** Deliveries it had (absent in records written before it was recorded). */
  attempts?: number;
}

const MAX_BACKOFF_MS = 5 * 60_000;
/** PubAcks awaited at once by publishBatch: enough to fill the pipe, few enough not to time out behind each other. */
const PUBLISH_WINDOW = 256;
const codec = JSONCodec<unknown>();

// Durable names and subject tokens may not contain `.`, `*`, `>` or whitespace.
const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

// Deleting a message that is gone (a concurrent replay deleted it) fails with code 500 and "no message found".
function isNotFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number }; message?: string };
  return e?.api_error?.code === 404 || e?.code === '404' || /not found|no message found/i.test(e?.message ?? '');
}

/** A counting semaphore: a subscription's handlers in flight on this instance, across its consumers. */
function limiter(max: number) {
  let active = 0;
  const waiters: (() => void)[] = [];
  return {
    async acquire() {
      while (active >= max) await new Promise<void>((r) => waiters.push(r));
      active++;
    },
    release() {
      active--;
      waiters.shift()?.();
    },
  };
}

/**
 * The distributed bus: NATS JetStream.
 *
 * - Stream `SIMPLEBANK_EVENTS` holds `events.<type>` (published with msgID = event id, so a republished
 *   envelope within the stream's duplicate window is stored once) and `replay.<subscription>`.
 * - A subscription is one durable pull consumer per event type (nats-server 2.9 allows one filter subject per
 *   consumer) plus one on its replay subject, named `<subscription>_<type>` and `<subscription>__replay`. All
 *   instances of a service pull from the same durables, so each event is handled once overall. New durables
 *   start at new messages: a subscription sees events published after it was first created.
 * - Retries: the handler's failure naks with a delay of backoffMs·2^(attempt−1); Delivery.attempt is the
 *   server's delivery count. After maxAttempts deliveries the event goes to stream `SIMPLEBANK_DLQ`, subject
 *   `dlq.<subscription>`, with the error, and the message is terminated. If that write fails it is nak'ed
 *   and dead-lettered on a later delivery, so it is never dropped.
 * - Crash recovery: the consumers' ack_wait is the subscription's leaseSeconds (15 s by default). From the moment
 *   a message arrives until it is acked, the instance sends `working()` every third of that, so a slow handler
 *   keeps its message; when the instance dies the server redelivers the message after ack_wait, to any
 *   instance, as its next attempt. A redelivery beyond maxAttempts (the last attempt crashed) is dead-lettered
 *   without running the handler again, as a failed last attempt would be.
 * - publishBatch sends every event before awaiting any PubAck (in windows of 256), on one connection, so the
 *   server stores them in the order given. If one fails, later ones may have been stored already: publishing
 *   the batch again stores the failed one after them, so order holds only for batches that succeed.
 * - Replay: replay() republishes a dead letter on `replay.<subscription>`, which only that subscription
 *   consumes (so other subscriptions of the type don't see it again), then deletes it from the DLQ. Attempts
 *   count from 1 again. Any instance of the owning service handles it, and the caller needs no handler.
 * - Back-pressure: while the process is behind (event-loop lag over maxEventLoopLagMs, loop-lag.ts), no new event is
 *   started; pulled messages wait (their leases kept alive) and the client pulls no more than its buffer holds.
 * - Ordering: with concurrency 1 the consumers have max_ack_pending 1, so events of one type are handled in
 *   publish order across all instances, retries included (a dead-lettered event is skipped). Events of
 *   different types, replays, and any subscription with concurrency > 1 have no ordering promise.
 * - Shutdown: messages pulled but not yet started when close() runs are nak'ed or, if still in the client's
 *   buffer, redelivered after ack_wait (the lease).
 */
export function createNatsBus(options: NatsBusOptions): Bus {
  const { service, log } = options;
  const busy = busySignal(options);
  const prefix = options.streamPrefix ?? 'SIMPLEBANK';
  const root = prefix === 'SIMPLEBANK' ? '' : `${token(prefix).toLowerCase()}.`;
  const eventsStream = `${token(prefix)}_EVENTS`;
  const dlqStream = `${token(prefix)}_DLQ`;
  const eventSubject = (type: string) => `${root}events.${type}`;
  const replaySubject = (subscription: string) => `${root}replay.${token(subscription)}`;
  const dlqSubject = (subscription: string) => `${root}dlq.${token(subscription)}`;

  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  let closing = false;
  let handlersInFlight = 0;
  const consumers: { messages: ConsumerMessages; loop: Promise<void> }[] = [];
  /** The durables of each subscription made here, for subscriptionStats(). */
  const subscribed = new Map<string, string[]>();

  const conn = () => {
    if (!nc || !js || !jsm) throw new Error('NATS bus not started');
    return { nc, js, jsm };
  };

  async function ensureStream(name: string, subjects: string[], maxAgeDays: number) {
    const { jsm } = conn();
    try {
      await jsm.streams.info(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add({
        name,
        subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: nanos(maxAgeDays * 24 * 3600 * 1000),
        duplicate_window: nanos(2 * 60 * 1000),
      });
    }
  }

  async function ensureConsumer(durable: string, filterSubject: string, maxAckPending: number, ackWaitMs: number) {
    const { jsm } = conn();
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: filterSubject,
      // Attempts are counted and dead-lettered by us; the server must never drop a message on its own.
      max_deliver: -1,
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: maxAckPending,
    };
    try {
      const info = await jsm.consumers.info(eventsStream, durable);
      // A durable outlives the code that created it: the running code's settings win.
      if (info.config.max_ack_pending !== maxAckPending || info.config.ack_wait !== nanos(ackWaitMs)) {
        await jsm.consumers.update(eventsStream, durable, { max_ack_pending: maxAckPending, ack_wait: nanos(ackWaitMs) });
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.consumers.add(eventsStream, config);
    }
  }

  async function deadLetter(sub: SubscriptionOptions, event: EventEnvelope, error: string, streamSeq: number, attempts: number) {
    const record: DeadLetterRecord = { subscription: sub.name, event, error, failedAt: new Date().toISOString(), attempts };
    // msgID makes a retried write (ack lost) store one dead letter, not two.
    await conn().js.publish(dlqSubject(sub.name), codec.encode(record), { msgID: `${sub.name}:${streamSeq}:${event.id}` });
  }

  // Messages are terminated with a bare m.term(), no reason: nats-server before 2.10 ignores `+TERM <reason>`, so the
  // message would stay unacknowledged and come back every ack_wait forever, dead-lettered again each time.
  async function handle(sub: SubscriptionOptions, m: JsMsg) {
    const maxAttempts = sub.maxAttempts ?? 5;
    const attempt = m.info.deliveryCount;
    let event: EventEnvelope;
    try {
      event = m.json<EventEnvelope>();
    } catch (err) {
      log.error({ err, subscription: sub.name, subject: m.subject, seq: m.seq }, 'unparseable event terminated');
      m.term();
      return;
    }
    const fields = { subscription: sub.name, eventId: event.id, type: event.type, attempt };
    const backoffMs = Math.min((sub.backoffMs ?? 200) * 2 ** (attempt - 1), MAX_BACKOFF_MS);
    if (attempt > maxAttempts) {
      // Redelivered past the last attempt: its ack_wait lapsed (the instance handling it died or stalled), or
      // the dead-lettering after a failed last attempt itself failed.
      const error = 'lease expired or dead-lettering failed: the last attempt never acknowledged the event';
      try {
        // The handler was started maxAttempts times; later deliveries only retry the dead-lettering.
        await deadLetter(sub, event, error, m.info.streamSequence, maxAttempts);
        m.term();
        log.error(fields, 'event abandoned on its last attempt; dead-lettered');
      } catch (dlqErr) {
        log.error({ ...fields, dlqErr }, 'could not dead-letter event; will retry');
        m.nak(backoffMs);
      }
      return;
    }
    try {
      await sub.handler(event, { attempt });
      m.ack();
    } catch (err) {
      if (attempt < maxAttempts) {
        log.warn({ ...fields, err, retryInMs: backoffMs }, 'event handler failed; will retry');
        m.nak(backoffMs);
        return;
      }
      try {
        await deadLetter(sub, event, err instanceof Error ? err.message : String(err), m.info.streamSequence, attempt);
        m.term();
        log.error({ ...fields, err }, 'event handler failed on its last attempt; dead-lettered');
      } catch (dlqErr) {
        log.error({ ...fields, err, dlqErr }, 'could not dead-letter event; will retry');
        m.nak(backoffMs);
      }
    }
  }

  async function consume(sub: SubscriptionOptions, durable: string, slots: ReturnType<typeof limiter>, leaseMs: number) {
    const consumer = await conn().js.consumers.get(eventsStream, durable);
    const messages = await consumer.consume({ max_messages: sub.concurrency ?? 8 });
    const loop = (async () => {
      for await (const m of messages) {
        if (closing) {
          m.nak();
          continue;
        }
        // From arrival, not from the handler's start: a message may wait here for a slot (the slots are shared by
        // the subscription's consumers) or for the process to catch up, and the server's ack_wait has been running
        // since it was sent.
        const heartbeat = setInterval(() => m.working(), leaseMs / 3);
        // Back-pressure, as the pg-boss worker's: while the process is behind, no new event is started. The loop
        // stops reading, so the client stops pulling once its buffer (max_messages) is full: the rest wait on the
        // server.
        while (busy?.() && !closing) await new Promise((r) => setTimeout(r, BUSY_RECHECK_MS));
        await slots.acquire();
        handlersInFlight++;
        void handle(sub, m)
          .catch((err: unknown) => log.error({ err, subscription: sub.name }, 'event handling crashed'))
          .finally(() => {
            clearInterval(heartbeat);
            handlersInFlight--;
            slots.release();
          });
      }
    })();
    consumers.push({ messages, loop });
  }

  const bus: Bus = {
    kind: 'nats',

    async start() {
      if (nc) return;
      nc = await connect({ servers: options.url, name: service, maxReconnectAttempts: -1 });
      js = nc.jetstream();
      jsm = await nc.jetstreamManager();
      await ensureStream(eventsStream, [`${root}events.>`, `${root}replay.>`], 7);
      await ensureStream(dlqStream, [`${root}dlq.>`], 30);
    },

    async publish(event) {
      await conn().js.publish(eventSubject(event.type), codec.encode(event), { msgID: event.id });
    },

    async publishBatch(events) {
      const { js } = conn();
      for (let i = 0; i < events.length; i += PUBLISH_WINDOW) {
        // js.publish writes the message before its first await, so the calls go out in array order.
        const acks = events
          .slice(i, i + PUBLISH_WINDOW)
          .map((e) => js.publish(eventSubject(e.type), codec.encode(e), { msgID: e.id }));
        // Settle all before throwing, so no rejection goes unhandled.
        const failed = (await Promise.allSettled(acks)).find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    },

    async subscribe(sub) {
      if (closing) throw new Error('bus is closing');
      const concurrency = sub.concurrency ?? 8;
      const maxAckPending = concurrency === 1 ? 1 : 1000;
      const base = token(sub.name);
      const bindings = [
        ...sub.types.map((type) => ({ durable: `${base}_${token(type)}`, subject: eventSubject(type) })),
        { durable: `${base}__replay`, subject: replaySubject(sub.name) },
      ];
      const leaseMs = leaseSecondsOf(sub) * 1000;
      const slots = limiter(concurrency);
      for (const b of bindings) await ensureConsumer(b.durable, b.subject, maxAckPending, leaseMs);
      for (const b of bindings) await consume(sub, b.durable, slots, leaseMs);
      subscribed.set(sub.name, bindings.map((b) => b.durable));
    },

    async deadLetters(subscription, limit = 100) {
      const { js, jsm } = conn();
      const subject = dlqSubject(subscription);
      const info = await jsm.streams.info(dlqStream, { subjects_filter: subject });
      const count = Math.min(limit, info.state.subjects?.[subject] ?? 0);
      if (count === 0) return [];
      const reader = await js.consumers.get(dlqStream, { filterSubjects: subject });
      const out: DeadLetter[] = [];
      try {
        const batch = await reader.fetch({ max_messages: count, expires: 5000 });
        for await (const m of batch) {
          const r = m.json<DeadLetterRecord>();
          out.push({ id: String(m.seq), subscription: r.subscription, event: r.event, error: r.error, failedAt: r.failedAt, ...(r.attempts !== undefined ? { attempts: r.attempts } : {}) });
          if (out.length >= count) break;
        }
      } finally {
        await reader.delete().catch(() => {});
      }
      return out;
    },

    async replay(subscription, deadLetterId) {
      const { js, jsm } = conn();
      const seq = Number(deadLetterId);
      if (!Number.isSafeInteger(seq) || seq <= 0) return false;
      let record: DeadLetterRecord;
      try {
        const stored = await jsm.streams.getMessage(dlqStream, { seq });
        if (stored.subject !== dlqSubject(subscription)) return false;
        record = stored.json<DeadLetterRecord>();
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
      // msgID: replaying the same dead letter twice (a retried call) stores one replay.
      await js.publish(replaySubject(subscription), codec.encode(record.event), { msgID: `replay:${dlqStream}:${seq}` });
      await jsm.streams.deleteMessage(dlqStream, seq).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      return true;
    },

    // Per subscription: messages its durables have not had acknowledged yet (not delivered, or delivered and not
    // acked: being handled or waiting for a retry), and its subject's messages in the DLQ stream (one request for all).
    async subscriptionStats() {
      if (subscribed.size === 0) return [];
      const { jsm } = conn();
      const dlq = await jsm.streams.info(dlqStream, { subjects_filter: `${root}dlq.>` });
      const dead = dlq.state.subjects ?? {};
      return Promise.all(
        [...subscribed].map(async ([subscription, durables]) => {
          const infos = await Promise.all(durables.map((d) => jsm.consumers.info(eventsStream, d)));
          const pending = infos.reduce((n, i) => n + i.num_pending + i.num_ack_pending, 0);
          return { subscription, pending, deadLetters: dead[dlqSubject(subscription)] ?? 0 };
        }),
      );
    },

    async ping() {
      await conn().jsm.getAccountInfo();
    },

    async close() {
      if (closing) return;
      closing = true;
      for (const c of consumers) c.messages.stop();
      await Promise.all(consumers.map((c) => c.loop));
      const deadline = Date.now() + 30_000;
      while (handlersInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (handlersInFlight > 0) log.warn({ handlersInFlight }, 'closing the bus with handlers still running');
      // drain() flushes the acks written by the handlers that just finished before closing.
      if (nc && !nc.isClosed()) await nc.drain();
    },
  };
  return bus;
}
