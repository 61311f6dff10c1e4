// The dead-letter admin routes of a real service on a real bus (pg-boss, and NATS JetStream): listing, replay,
// the service credential, and bad input, over HTTP as `simplebank dlq` uses them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineContract, defineService, event, implement, route, startService, type DeadLetterView, type RunningService } from '../../src/index.ts';
import { createTestDatabase } from '../../src/testing/postgres.ts';
import { cleanupStack, jetStreamReachable, NATS_MISSING, testBusUrl, waitFor } from './helpers.ts';

const TOKEN = 'test-service-token-0123456789';
const SUBSCRIPTION = 'lettered.react';

const contract = defineContract({
  service: 'lettered',
  routes: {
    emit: route({ method: 'POST', path: '/emit/:subject', params: z.object({ subject: z.string() }), responses: { 202: z.object({ eventId: z.string() }) } }),
  },
  events: { Happened: event('lettered.Happened.v1', z.object({ note: z.string() })) },
});

/** Per engine: whether the handler fails, and how often each event was handled successfully. */
interface Behaviour {
  failing: boolean;
  handled: Map<string, number>;
}

function letteredService(behaviour: Behaviour) {
  return defineService({
    contract,
    defaultPort: 0,
    migrations: new URL('../fixtures/migrations/', import.meta.url),
    bus: true,
    setup: (ctx) => ({
      routes: implement(contract, {
        emit: async ({ params }) => {
          const e = await ctx.db.tx((tx) => ctx.publish(tx, contract.events.Happened, { subject: params.subject, data: { note: 'hello' } }));
          return { status: 202, body: { eventId: e.id } };
        },
      }),
      subscriptions: [
        {
          name: SUBSCRIPTION,
          events: [contract.events.Happened],
          maxAttempts: 2,
          backoffMs: 10,
          async handle(e) {
            if (behaviour.failing) throw new Error(`cannot handle ${e.subject} yet`);
            behaviour.handled.set(e.id, (behaviour.handled.get(e.id) ?? 0) + 1);
          },
        },
      ],
    }),
  });
}

interface ProblemBody {
  code: string;
  status: number;
  errors?: { field: string; message: string }[];
}

const natsUp = await jetStreamReachable();

for (const engine of ['pg-boss', 'nats'] as const) {
  describe(`dead-letter admin routes on ${engine}`, { skip: engine === 'nats' && !natsUp ? NATS_MISSING : false }, () => {
    const cleanup = cleanupStack();
    const behaviour: Behaviour = { failing: true, handled: new Map() };
    let service: RunningService;
    // A well-formed id that names no dead letter on this bus.
    const unknownId = engine === 'nats' ? '999999999' : randomUUID();

    before(async () => {
      const data = await createTestDatabase('dlq_admin');
      cleanup.add(() => data.drop());
      const busUrl = await testBusUrl(engine, cleanup.add);
      service = await startService(letteredService(behaviour), { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', DATABASE_URL: data.url, BUS_URL: busUrl });
      cleanup.add(() => service.stop());
    });
    after(() => cleanup.run());

    /** `token` null: no credential at all. */
    const admin = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
      fetch(`${service.url}${path}`, { ...init, headers: token === null ? {} : { 'x-service-token': token } });
    const list = async (query = ''): Promise<DeadLetterView[]> => {
      const res = await admin(`/admin/dead-letters${query}`);
      assert.equal(res.status, 200, await res.clone().text());
      return ((await res.json()) as { deadLetters: DeadLetterView[] }).deadLetters;
    };
    const replay = (subscription: string, id: string) => admin(`/admin/dead-letters/${encodeURIComponent(subscription)}/${encodeURIComponent(id)}/replay`, { method: 'POST' });
    async function problem(res: Response, status: number, code: string): Promise<ProblemBody> {
      const body = (await res.json()) as ProblemBody;
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(body.code, code);
      return body;
    }

    test('without the service credential both routes answer 401', async () => {
      await problem(await admin('/admin/dead-letters', {}, null), 401, 'unauthorized');
      await problem(await admin('/admin/dead-letters', {}, 'wrong-token-0123456789'), 401, 'unauthorized');
      await problem(await admin(`/admin/dead-letters/${SUBSCRIPTION}/${unknownId}/replay`, { method: 'POST' }, null), 401, 'unauthorized');
    });

    test('bad input is a 400 naming the field; an unknown subscription or dead letter a 404; the service carries on', async () => {
      const fieldOf = async (res: Response) => (await problem(res, 400, 'validation_failed')).errors?.map((e) => e.field);
      assert.deepEqual(await fieldOf(await admin('/admin/dead-letters?limit=0')), ['query.limit']);
      assert.deepEqual(await fieldOf(await admin('/admin/dead-letters?limit=lots')), ['query.limit']);
      assert.deepEqual(await fieldOf(await admin('/admin/dead-letters?limit=100000')), ['query.limit']);
      assert.deepEqual(await fieldOf(await replay(SUBSCRIPTION, 'not-an-id')), ['params.id']);
      assert.deepEqual(await fieldOf(await replay(SUBSCRIPTION, engine === 'nats' ? randomUUID() : '42')), ['params.id']);
      await problem(await admin('/admin/dead-letters?subscription=nobody.listens'), 404, 'subscription_not_found');
      await problem(await replay('nobody.listens', unknownId), 404, 'subscription_not_found');
      await problem(await replay(SUBSCRIPTION, unknownId), 404, 'dead_letter_not_found');
      assert.equal((await fetch(`${service.url}/health/ready`)).status, 200);
    });

    test('a dead letter is listed, replayed once (202, then 404) and then handled exactly once', async () => {
      const emitted = await fetch(`${service.url}/emit/order-7`, { method: 'POST' });
      assert.equal(emitted.status, 202);
      const { eventId } = (await emitted.json()) as { eventId: string };
      const [letter] = await waitFor('the dead letter', async () => {
        const letters = await list();
        return letters.length > 0 ? letters : undefined;
      });
      assert.ok(letter);
      assert.equal(letter.subscription, SUBSCRIPTION);
      assert.equal(letter.eventId, eventId);
      assert.equal(letter.type, 'lettered.Happened.v1');
      assert.equal(letter.subject, 'order-7');
      assert.equal(letter.attempts, 2);
      assert.match(letter.error, /cannot handle order-7 yet/);
      assert.ok(!Number.isNaN(Date.parse(letter.deadLetteredAt)));
      assert.deepEqual(letter.event.data, { note: 'hello' });
      assert.deepEqual((await list(`?subscription=${SUBSCRIPTION}&limit=1`)).map((l) => l.id), [letter.id]);

      behaviour.failing = false;
      const replayed = await replay(SUBSCRIPTION, letter.id);
      assert.equal(replayed.status, 202, await replayed.clone().text());
      assert.deepEqual(await replayed.json(), { subscription: SUBSCRIPTION, id: letter.id, replayed: true });
      await problem(await replay(SUBSCRIPTION, letter.id), 404, 'dead_letter_not_found');

      await waitFor('the replayed event to be handled', () => behaviour.handled.has(eventId));
      // Nothing is left to deliver (no copy waiting or being handled), so the count below is final.
      await waitFor('an empty backlog', async () => {
        const stats = (await service.context.bus.subscriptionStats!()).find((s) => s.subscription === SUBSCRIPTION);
        return stats?.pending === 0 && stats.deadLetters === 0;
      });
      assert.equal(behaviour.handled.get(eventId), 1);
      assert.deepEqual(await list(), []);
    });
  });
}
