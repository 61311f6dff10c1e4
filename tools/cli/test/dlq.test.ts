import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
// The CLI does not depend on the chassis; only this test borrows its HTTP server and dead-letter admin routes to stand
// in for a service (the routes on real buses are tested in the chassis: test/messaging/dead-letter-admin.test.ts).
import { createEnvelope, createHttpServer, createLogger, deadLetterAdminRoutes, defineContract, type Bus, type DeadLetter } from '../../../packages/chassis/src/index.ts';
import { dlq, formatDeadLetter, parseDlqArgs, type DlqIo } from '../src/commands/dlq.ts';
import { UsageError } from '../src/commands/admin-request.ts';

const TOKEN = 'cli-test-token-0123456789';

test('parse: list (the default), with a subscription, a limit and --json', () => {
  assert.deepEqual(parseDlqArgs(['orders']), { action: 'list', service: 'orders', json: false });
  assert.deepEqual(parseDlqArgs(['orders', 'list', '--subscription', 'orders.saga-market', '--limit', '5', '--json']), {
    action: 'list',
    service: 'orders',
    subscription: 'orders.saga-market',
    limit: 5,
    json: true,
  });
});

test('parse: replay and replay-all', () => {
  assert.deepEqual(parseDlqArgs(['orders', 'replay', 'orders.saga-market', '42']), { action: 'replay', service: 'orders', subscription: 'orders.saga-market', id: '42' });
  assert.deepEqual(parseDlqArgs(['orders', 'replay-all', 'orders.saga-market']), { action: 'replay-all', service: 'orders', subscription: 'orders.saga-market' });
});

test('parse: mistakes are usage errors that say what is wrong', () => {
  const bad: [string[], RegExp][] = [
    [[], /which service/],
    [['orders', 'purge'], /unknown action "purge"/],
    [['orders', 'replay'], /needs a subscription/],
    [['orders', 'replay', 'orders.saga-market'], /needs the dead letter's id/],
    [['orders', 'replay', 'orders.saga-market', '1', '2'], /unexpected arguments: 2/],
    [['orders', 'replay-all'], /needs a subscription/],
    [['orders', 'replay-all', 'orders.saga-market', '1'], /replay-all takes a subscription only/],
    [['orders', 'replay', 's', '1', '--limit', '3'], /--limit only goes with listing/],
    [['orders', '--limit', '0'], /--limit must be a whole number from 1 to 1000/],
    [['orders', '--limit', 'lots'], /--limit must be/],
    [['orders', '--subscription', ''], /--subscription needs a name/],
    [['orders', 'list', 'extra'], /unexpected arguments/],
    [['orders', '--bogus'], /Unknown option/],
  ];
  for (const [args, message] of bad) assert.throws(() => parseDlqArgs(args), (err: Error) => err instanceof UsageError && message.test(err.message), args.join(' '));
});

test('a dead letter is one line: when, subscription, id, type, event id, subject, attempts, error', () => {
  const line = formatDeadLetter({
    id: '7',
    subscription: 'orders.saga-market',
    eventId: 'e-1',
    type: 'market.TradeExecuted.v1',
    subject: 'order-1',
    deadLetteredAt: '2026-01-02T03:04:05.000Z',
    attempts: 5,
    error: 'accounts unavailable',
    event: {},
  });
  assert.equal(line, '2026-01-02T03:04:05.000Z  orders.saga-market  7  market.TradeExecuted.v1  event e-1  subject order-1  5 attempts  error: accounts unavailable');
});

/**
 * A bus holding dead letters in memory, as the admin routes see one. `failAgain`: a replayed event fails again at
 * once and comes back as a new dead letter (a new id), as it does while the cause is not fixed.
 */
function deadLetterStore(subscription: string, count: number, options: { failAgain?: boolean } = {}) {
  let letters: DeadLetter[] = Array.from({ length: count }, (_, n) => ({
    id: randomUUID(),
    subscription,
    event: createEnvelope('orders', { type: 'market.TradeExecuted.v1', subject: `order-${n}`, data: { n } }),
    error: 'accounts unavailable',
    failedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    attempts: 5,
  }));
  const replayed: string[] = [];
  const bus: Pick<Bus, 'kind' | 'deadLetters' | 'replay'> = {
    kind: 'pg-boss',
    deadLetters: async (s, limit = 100) => letters.filter((l) => l.subscription === s).slice(0, limit),
    replay: async (s, id) => {
      const letter = letters.find((l) => l.subscription === s && l.id === id);
      if (!letter) return false;
      letters = letters.filter((l) => l !== letter);
      replayed.push(letter.event.id);
      if (options.failAgain) letters.push({ ...letter, id: randomUUID(), failedAt: new Date(Date.UTC(2026, 0, 2)).toISOString() });
      return true;
    },
  };
  return { bus, replayed, letters: () => letters };
}

async function serviceWith(bus: Pick<Bus, 'kind' | 'deadLetters' | 'replay'> | undefined) {
  const log = createLogger({ service: 'orders', level: 'silent' });
  const { app } = createHttpServer({ contract: defineContract({ service: 'orders', routes: {} }), handlers: {}, log, serviceToken: TOKEN, readiness: {} });
  if (bus) deadLetterAdminRoutes(app, { service: 'orders', bus, subscriptions: ['orders.saga-market', 'orders.audit'], serviceToken: TOKEN, log });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
}

function captured(env: Record<string, string | undefined>): DlqIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { env, out: (t) => stdout.push(t), err: (t) => stderr.push(t), stdout, stderr };
}

test('against a service: list, replay one, replay again (not found), errors explained', async () => {
  const store = deadLetterStore('orders.saga-market', 3);
  const service = await serviceWith(store.bus);
  const env = { ORDERS_URL: service.url, SERVICE_TOKEN: TOKEN };
  try {
    let io = captured(env);
    assert.equal(await dlq(['orders'], io), 0, io.stderr.join(''));
    const lines = io.stdout.join('').trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^2026-01-01T00:00:00.000Z {2}orders\.saga-market {2}[0-9a-f-]{36} {2}market\.TradeExecuted\.v1 {2}event [0-9a-f-]{36} {2}subject order-0 {2}5 attempts {2}error: accounts unavailable$/);

    io = captured(env);
    assert.equal(await dlq(['orders', '--subscription', 'orders.saga-market', '--limit', '2', '--json'], io), 0);
    const listed = JSON.parse(io.stdout.join('')) as { id: string; event: { data: unknown } }[];
    assert.deepEqual(listed.map((l) => l.event.data), [{ n: 0 }, { n: 1 }]);

    const [first] = store.letters();
    assert.ok(first);
    io = captured(env);
    assert.equal(await dlq(['orders', 'replay', 'orders.saga-market', first.id], io), 0, io.stderr.join(''));
    assert.match(io.stdout.join(''), new RegExp(`dead letter ${first.id} replayed to orders.saga-market`));
    assert.deepEqual(store.replayed, [first.event.id]);
    io = captured(env);
    assert.equal(await dlq(['orders', 'replay', 'orders.saga-market', first.id], io), 1);
    assert.match(io.stderr.join(''), /answered 404: no dead letter .* \(never there, or replayed already\)/);

    io = captured(env);
    assert.equal(await dlq(['orders', 'replay', 'orders.saga-market', 'not-an-id'], io), 1);
    assert.match(io.stderr.join(''), /answered 400: .*\n {2}params\.id: a pg-boss dead letter id is a uuid/);
    io = captured(env);
    assert.equal(await dlq(['orders', '--subscription', 'orders.nothing'], io), 1);
    assert.match(io.stderr.join(''), /answered 404: orders has no subscription orders\.nothing; its subscriptions: orders\.saga-market, orders\.audit/);
    io = captured({ ...env, SERVICE_TOKEN: 'wrong-token-0123456789' });
    assert.equal(await dlq(['orders'], io), 1);
    assert.match(io.stderr.join(''), /refused the service credential/);
    io = captured(env);
    assert.equal(await dlq(['orders', '--subscription', 'orders.audit'], io), 0);
    assert.equal(io.stdout.join(''), 'orders: no dead letters in orders.audit\n');
    io = captured(env);
    assert.equal(await dlq(['--help'], io), 0);
    assert.match(io.stdout.join(''), /simplebank dlq <service> replay-all <subscription>/);
  } finally {
    await service.close();
  }
});

test('replay-all replays every dead letter of the subscription, across pages, each event once even when it fails again', async () => {
  for (const failAgain of [false, true]) {
    const store = deadLetterStore('orders.saga-market', 230, { failAgain });
    const service = await serviceWith(store.bus);
    try {
      const io = captured({ ORDERS_URL: service.url, SERVICE_TOKEN: TOKEN });
      assert.equal(await dlq(['orders', 'replay-all', 'orders.saga-market'], io), 0, io.stderr.join(''));
      assert.equal(io.stdout.join(''), 'orders: 230 dead letter(s) of orders.saga-market replayed\n');
      assert.equal(new Set(store.replayed).size, 230);
      assert.equal(store.replayed.length, 230, 'an event was replayed twice');
      assert.equal(store.letters().length, failAgain ? 230 : 0);
    } finally {
      await service.close();
    }
  }
});

test('a service without a bus, and one that is down', async () => {
  const service = await serviceWith(undefined);
  const env = { FEES_URL: service.url, SERVICE_TOKEN: TOKEN };
  try {
    const io = captured(env);
    assert.equal(await dlq(['fees'], io), 1);
    assert.match(io.stderr.join(''), /fees has no event bus, so no dead letters/);
  } finally {
    await service.close();
  }
  const io = captured(env);
  assert.equal(await dlq(['fees'], io), 1, 'the server is closed now');
  assert.match(io.stderr.join(''), /fees is not reachable at/);
});
