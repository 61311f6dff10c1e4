import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parsePart } from '../http/validation.ts';
import { sendProblem, serviceCredentialGuard } from '../protection/http-util.ts';
import type { Bus, DeadLetter } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

export const DEAD_LETTERS_ADMIN_PATH = '/admin/dead-letters';

/** Most dead letters one listing returns; the CLI's replay-all pages through more. */
export const MAX_DEAD_LETTERS_LISTED = 1000;

export interface DeadLetterAdminOptions {
  service: string;
  bus: Pick<Bus, 'kind' | 'deadLetters' | 'replay'>;
  /** This service's subscription names: only their dead letters are listed and replayed here. */
  subscriptions: readonly string[];
  serviceToken: string;
  log: { info(obj: object, msg: string): void };
}

const listQuery = z.strictObject({
  subscription: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_DEAD_LETTERS_LISTED).default(100),
});

// What replay() takes on each bus (see DeadLetter.id): a malformed id is bad input (400), a well-formed one that
// names nothing is a missing dead letter (404).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idSchemas = {
  'pg-boss': z.string().regex(UUID, 'a pg-boss dead letter id is a uuid'),
  nats: z.string().regex(/^[1-9][0-9]{0,15}$/, 'a NATS dead letter id is its sequence number in the DLQ stream'),
} as const;

/** A dead letter as `GET /admin/dead-letters` shows it. */
export interface DeadLetterView {
  id: string;
  subscription: string;
  eventId: string;
  type: string;
  subject: string;
  /** When it was dead-lettered (ISO 8601). */
  deadLetteredAt: string;
  attempts: number | undefined;
  error: string;
  event: EventEnvelope;
}

/**
 * A dead letter as the admin routes show it. The whole envelope (`event`, with its `data`) is included: the route
 * requires the service credential, which already lets its holder call every service's API and read the same data
 * there, and an operator cannot judge whether to replay an event (fixed cause? still wanted?) without seeing it. It is
 * never logged: the replay route logs ids only, and the request log has no response bodies.
 */
function shown(letter: DeadLetter): DeadLetterView {
  return {
    id: letter.id,
    subscription: letter.subscription,
    eventId: letter.event.id,
    type: letter.event.type,
    subject: letter.event.subject,
    deadLetteredAt: letter.failedAt,
    attempts: letter.attempts,
    error: letter.error,
    event: letter.event,
  };
}

/**
 * The operator's hands on the dead-letter queues of this service's subscriptions, service credential required
 * (`x-service-token`); registered only on services with a bus:
 *
 * - `GET /admin/dead-letters?subscription=<name>&limit=<n>`: dead letters oldest first, of one subscription or all
 *   of them (at most `limit`, default 100, up to 1000);
 * - `POST /admin/dead-letters/:subscription/:id/replay`: moves one back to its subscription, attempts starting
 *   again → 202; 404 `dead_letter_not_found` when there is no such dead letter (also when it was just replayed:
 *   a replay is done once, so a retried call never delivers twice; the inbox makes the handler idempotent anyway).
 *
 * An unknown subscription is 404 `subscription_not_found`; malformed input 400 `validation_failed` naming the field.
 */
export function deadLetterAdminRoutes(app: FastifyInstance, options: DeadLetterAdminOptions): void {
  const { service, bus, subscriptions, log } = options;
  const guard = serviceCredentialGuard(options.serviceToken);
  const known = new Set(subscriptions);
  const replayParams = z.strictObject({ subscription: z.string().min(1).max(200), id: idSchemas[bus.kind] });
  const unknownSubscription = (subscription: string) =>
    `${service} has no subscription ${subscription}; its subscriptions: ${subscriptions.join(', ') || 'none'}`;

  app.get(DEAD_LETTERS_ADMIN_PATH, { onRequest: guard }, async (request, reply) => {
    const { subscription, limit } = parsePart(listQuery, request.query, 'query')!;
    if (subscription !== undefined && !known.has(subscription)) {
      return sendProblem(reply, request, 404, 'subscription_not_found', unknownSubscription(subscription));
    }
    const lists = await Promise.all((subscription !== undefined ? [subscription] : subscriptions).map((s) => bus.deadLetters(s, limit)));
    const letters = lists
      .flat()
      .sort((a, b) => a.failedAt.localeCompare(b.failedAt))
      .slice(0, limit);
    return { service, bus: bus.kind, deadLetters: letters.map(shown) };
  });

  app.post(`${DEAD_LETTERS_ADMIN_PATH}/:subscription/:id/replay`, { onRequest: guard }, async (request, reply) => {
    const { subscription, id } = parsePart(replayParams, request.params, 'params')!;
    if (!known.has(subscription)) return sendProblem(reply, request, 404, 'subscription_not_found', unknownSubscription(subscription));
    if (!(await bus.replay(subscription, id))) {
      return sendProblem(reply, request, 404, 'dead_letter_not_found', `no dead letter ${id} in ${subscription} (never there, or replayed already)`);
    }
    log.info({ subscription, deadLetterId: id }, 'dead letter replayed by an operator');
    return reply.status(202).send({ subscription, id, replayed: true });
  });
}
