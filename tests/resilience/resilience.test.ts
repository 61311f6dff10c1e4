// Issue 3's proof, against the whole bank started as `npm start` does (one process per service, real PostgreSQL,
// real HTTP). Faults are injected at runtime with `simplebank fault`'s own code, through each service's admin API.
// One bank for the five tests (they run one after another); every assertion is about counts and states, none
// about how long something took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { ApiClient, customerWithCash, eventually, FINAL, waitForStatus, type AccountView, type OrderView } from '../e2e/api.ts';
import { bankForThisFile } from '../e2e/harness.ts';
import { fault } from '../../tools/cli/src/commands/fault.ts';
import { urlEnvOf } from '../../tools/cli/src/commands/admin-request.ts';
import type { ServiceName } from '../../tools/cli/src/services.ts';

/** The gateway's in-flight limit in this bank (test 5); the default is 256. */
const GATEWAY_MAX_IN_FLIGHT = 50;
/** Orders a customer may place or cancel per minute in this bank (test 4); the default is 300 per 10 s. */
const ORDERS_PER_MINUTE = 5;

const fixture = bankForThisFile({
  serviceEnv: {
    gateway: {
      // Test 2: the edge's deadline for every operation (10 s by default), shorter so the test is short.
      REQUEST_DEADLINE_MS: '3000',
      // Test 5: a capacity a burst from one test process can exceed many times over.
      LOAD_SHED_MAX_IN_FLIGHT: String(GATEWAY_MAX_IN_FLIGHT),
      // Test 4: a small quota for the orders group. Everything else generous: the tests' anonymous requests all
      // come from 127.0.0.1, and must not be limited as one client.
      RATE_LIMIT_ORDERS_LIMIT: String(ORDERS_PER_MINUTE),
      RATE_LIMIT_ORDERS_WINDOW_MS: '60000',
      RATE_LIMIT_LIMIT: '100000',
      // Test 1: probe a recovered market-data 2 s after the circuit opened (5 s by default).
      RESILIENCE_MARKET_DATA_BREAKER_HALF_OPEN_AFTER_MS: '2000',
      // Test 3 measures the retry budget alone, on the gateway's calls to orders: the circuit stays closed
      // whatever the failure rate (with it on, fewer requests still would reach orders), the budget is its 20 %
      // without the low-traffic floor, over a window the test fits in.
      RESILIENCE_ORDERS_BREAKER_ENABLED: 'false',
      RESILIENCE_ORDERS_BUDGET_MIN_RETRIES_PER_SECOND: '0',
      RESILIENCE_ORDERS_BUDGET_WINDOW_MS: '60000',
    },
  },
});

/** `simplebank fault <args>` against this bank; its output, and its exit code checked. */
async function simplebankFault(...args: string[]): Promise<string> {
  const env: Record<string, string> = { SERVICE_TOKEN: fixture.bank.serviceToken };
  for (const [name, url] of Object.entries(fixture.bank.processUrls)) env[urlEnvOf(name)] = url;
  const out: string[] = [];
  const err: string[] = [];
  const code = await fault(args, { env, out: (t) => out.push(t), err: (t) => err.push(t) });
  assert.equal(code, 0, `simplebank fault ${args.join(' ')}: ${err.join('')}`);
  return out.join('');
}

interface FaultView {
  id: string;
  applied: number;
  failed: number;
}
const faultsOf = async (service: ServiceName): Promise<FaultView[]> => JSON.parse(await simplebankFault(service, 'list', '--json')) as FaultView[];

interface DependencyStats {
  breaker: { status: string; transitions: number };
  budget: { attempts: number; retries: number; windowAttempts: number; windowRetries: number };
}
interface ResilienceView {
  dependencies: Record<string, DependencyStats>;
  protection: { loadShedding: { inFlight: number; maxInFlight: number; shed: { in_flight: number } } };
}

/** A service's resilience admin view (service credential). */
async function resilienceOf(service: ServiceName): Promise<ResilienceView> {
  const res = await fetch(`${fixture.bank.urls[service]}/admin/resilience`, { headers: { 'x-service-token': fixture.bank.serviceToken } });
  assert.equal(res.status, 200);
  return (await res.json()) as ResilienceView;
}

interface PriceView {
  symbol: string;
  price: string;
  asOf: string;
  stale?: boolean;
  ageMs?: number;
}

test('1. market-data down: prices keep coming from the stale cache, flagged; the breaker opens, then closes and fresh prices return', async (t) => {
  const reader = new ApiClient(fixture.bank.gatewayUrl);
  const fresh = await reader.call<PriceView>('GET', '/prices/AAPL');
  assert.equal(fresh.status, 200);
  assert.equal(fresh.body.stale, undefined, 'a fresh price is not flagged');

  await simplebankFault('market-data', 'set', 'md-down', '--error-rate', '1', '--duration', '120');
  try {
    // Every price read still answers, with the last good price, flagged stale with its age, until the gateway's
    // breaker for market-data has seen enough failures to open.
    let reads = 0;
    for (;;) {
      const res = await reader.call<PriceView>('GET', '/prices/AAPL');
      reads++;
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.stale, true);
      assert.equal(res.body.price, fresh.body.price, 'the last price the gateway had');
      assert.equal(res.body.asOf, fresh.body.asOf);
      assert.ok(Number.isInteger(res.body.ageMs) && res.body.ageMs! >= 0, `age ${res.body.ageMs}`);
      const { breaker } = (await resilienceOf('gateway')).dependencies['market-data']!;
      if (breaker.status === 'open') {
        t.diagnostic(`breaker open after ${reads} stale reads`);
        break;
      }
      assert.ok(reads < 200, `the breaker never opened (${breaker.status})`);
    }
    // Open: calls are refused without reaching market-data, and the screen still gets its (stale) price.
    const applied = (await faultsOf('market-data'))[0]!.applied;
    const whileOpen = await reader.call<PriceView>('GET', '/prices/AAPL');
    assert.equal(whileOpen.status, 200);
    assert.equal(whileOpen.body.stale, true);
    // A symbol never read before has no stale price: an honest 503, with Retry-After.
    const unknown = await reader.call<{ code: string }>('GET', '/prices/MSFT');
    assert.equal(unknown.status, 503);
    assert.equal(unknown.body.code, 'upstream_unavailable');
    assert.ok(Number(unknown.headers.get('retry-after')) >= 1);
    // (The half-open probe may have fallen in between on a slow machine: at most one request per read.)
    assert.ok((await faultsOf('market-data'))[0]!.applied <= applied + 2, 'an open circuit sends nothing');
  } finally {
    await simplebankFault('market-data', 'clear');
  }

  // market-data is back: after its half-open delay the breaker lets a probe through, closes, and prices are fresh.
  const recovered = await eventually('a fresh price from a closed circuit', async () => {
    const res = await reader.call<PriceView>('GET', '/prices/AAPL');
    const { breaker } = (await resilienceOf('gateway')).dependencies['market-data']!;
    return res.status === 200 && res.body.stale === undefined && breaker.status === 'closed' ? { res, breaker } : undefined;
  });
  assert.ok(recovered.breaker.transitions >= 3, 'closed → open → half-open → closed');
  assert.notEqual(recovered.res.body.asOf, undefined);
});

// Runs before any other test calls orders through the gateway: the retry budget's window holds only its calls.
test('3. with 50 % of requests failing, retries add at most the 20 % budget to what reaches the dependency', async (t) => {
  const customer = new ApiClient(fixture.bank.gatewayUrl);
  await customer.signUpAndLogIn('Edsger Dijkstra');
  const before = (await resilienceOf('gateway')).dependencies.orders!;
  assert.equal(before.budget.windowAttempts, 0, 'nothing else in the budget window');
  await simplebankFault('orders', 'set', 'flaky', '--route', 'GET /orders', '--error-rate', '0.5', '--duration', '120');
  const calls = 200;
  const statuses: Record<number, number> = {};
  let received: FaultView;
  try {
    // Ten screens at a time listing the customer's orders: one gateway → orders call per request.
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < calls) {
          next++;
          const res = await customer.call('GET', '/orders');
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        }
      }),
    );
    received = (await faultsOf('orders')).find((f) => f.id === 'flaky')!;
  } finally {
    await simplebankFault('orders', 'clear');
  }
  const after = (await resilienceOf('gateway')).dependencies.orders!;
  const firstAttempts = after.budget.attempts - before.budget.attempts;
  const retries = after.budget.retries - before.budget.retries;
  t.diagnostic(`${firstAttempts} first attempts, ${retries} retries, ${received.applied} requests reached orders (${(received.applied / firstAttempts).toFixed(3)}×), answers ${JSON.stringify(statuses)}`);
  assert.equal(firstAttempts, calls, 'one first attempt per request');
  // Every request was answered (a failed call after its retries is a 503).
  assert.equal(Object.values(statuses).reduce((a, b) => a + b, 0), calls, JSON.stringify(statuses));
  // Counted where the requests arrive: orders saw every first attempt and every retry, no more.
  assert.equal(received.applied, firstAttempts + retries);
  assert.ok(retries > 0, 'failed calls are retried');
  assert.ok(received.applied <= 1.2 * firstAttempts, `${received.applied} requests reached orders for ${firstAttempts} first attempts`);
});

test('2. accounts slower than the deadline: placing an order answers 504 in time, nothing is half-done, orders succeed afterwards', async () => {
  // Known: its account was listed through the gateway, which then need not ask accounts whose it is.
  const known = await customerWithCash(fixture.bank.gatewayUrl);
  // Unknown to the gateway (its account id comes from accounts directly): placing an order makes the gateway ask
  // accounts first, within the operation's deadline.
  const fresh = new ApiClient(fixture.bank.gatewayUrl);
  await fresh.signUpAndLogIn('Grace Hopper');
  const freshAccount = await eventually('the USD account', async () => {
    const res = await fetch(`${fixture.bank.urls.accounts}/accounts?customerId=${fresh.customerId}`, { headers: { 'x-service-token': fixture.bank.serviceToken } });
    return ((await res.json()) as { id: string }[])[0]?.id;
  });
  assert.equal((await fresh.call('POST', `/accounts/${freshAccount}/deposits`, { amount: '10000.00' }, { 'idempotency-key': 'cash' })).status, 201);
  const order = (accountId: string) => ({ accountId, symbol: 'AAPL', side: 'buy', quantity: 2, type: 'market' });

  // Every accounts route answers 8 s late: beyond the gateway's 3 s deadline and the saga's 5 s attempt timeout.
  await simplebankFault('accounts', 'set', 'slow', '--latency', '8000', '--duration', '120');
  let pendingId: string;
  try {
    const refused = await fresh.call<{ code: string }>('POST', '/orders', order(freshAccount), { 'idempotency-key': 'first' });
    // Had the gateway waited for accounts, the order would have been placed (202) 8 s later.
    assert.equal(refused.status, 504, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'upstream_timeout');

    // Accepted orders do not wait for accounts: the saga reserves in the background, and cannot while it is slow.
    const accepted = await known.api.call<OrderView>('POST', '/orders', order(known.accountId), { 'idempotency-key': 'during' });
    assert.equal(accepted.status, 202);
    pendingId = accepted.body.id;
    assert.equal((await known.api.call<OrderView>('GET', `/orders/${pendingId}`)).body.status, 'pending');
  } finally {
    await simplebankFault('accounts', 'clear');
  }

  // Nothing stays pending: the order accepted during the fault is reserved and filled once accounts answers again.
  await waitForStatus(known.api, pendingId, ['filled'], 90_000);
  // And new orders go through, for the customer the gateway did not know either.
  const again = await fresh.call<OrderView>('POST', '/orders', order(freshAccount), { 'idempotency-key': 'after' });
  assert.equal(again.status, 202, JSON.stringify(again.body));
  await waitForStatus(fresh, again.body.id, ['filled'], 90_000);

  // Nothing half-done: the refused placement left no order, every hold belongs to an order, none is left active.
  const ordersOf = async (api: ApiClient, accountId: string) => (await api.call<OrderView[]>('GET', `/orders?accountId=${accountId}`)).body;
  const freshOrders = await ordersOf(fresh, freshAccount);
  assert.deepEqual(freshOrders.map((o) => o.id), [again.body.id], 'the refused order does not exist');
  const knownOrders = await ordersOf(known.api, known.accountId);
  for (const o of [...freshOrders, ...knownOrders]) assert.ok(FINAL.has(o.status), `order ${o.id} is ${o.status}`);
  // (Polled: on a shared PostgreSQL server busy with other tests a connection may be refused for a moment.)
  const holds = await eventually('the holds of both accounts', async () => {
    const accounts = new pg.Client({ connectionString: fixture.bank.databaseUrls.accounts });
    try {
      await accounts.connect();
      return (await accounts.query<{ id: string }>('SELECT id FROM reservations WHERE account_id = ANY($1::uuid[])', [[freshAccount, known.accountId]])).rows;
    } finally {
      await accounts.end().catch(() => undefined);
    }
  });
  const orderIds = new Set([...freshOrders, ...knownOrders].map((o) => o.id));
  for (const r of holds) assert.ok(orderIds.has(r.id), `reservation ${r.id} has no order`);
  for (const [api, id] of [[fresh, freshAccount], [known.api, known.accountId]] as const) {
    const acct = (await api.call<AccountView>('GET', `/accounts/${id}`)).body;
    assert.equal(acct.cash.reserved, '0.00', 'no hold left behind');
  }
});

test('4. a client over its rate limit gets 429 with Retry-After; another client is unaffected', async () => {
  const alice = new ApiClient(fixture.bank.gatewayUrl);
  const bob = new ApiClient(fixture.bank.gatewayUrl);
  await alice.signUpAndLogIn('Alice');
  await bob.signUpAndLogIn('Bob');
  // Cancelling an order that does not exist: in the orders group, and harmless.
  const cancel = (who: ApiClient) => who.call<{ code: string }>('DELETE', `/orders/${crypto.randomUUID()}`);
  for (let i = 0; i < ORDERS_PER_MINUTE; i++) {
    const res = await cancel(alice);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('ratelimit-limit'), String(ORDERS_PER_MINUTE));
    assert.equal(res.headers.get('ratelimit-remaining'), String(ORDERS_PER_MINUTE - 1 - i));
  }
  const limited = await cancel(alice);
  assert.equal(limited.status, 429);
  assert.equal(limited.body.code, 'rate_limited');
  assert.ok(Number(limited.headers.get('retry-after')) >= 1, `Retry-After ${limited.headers.get('retry-after')}`);
  assert.equal(limited.headers.get('ratelimit-remaining'), '0');

  // Bob comes from the same address, with his own token: his own quota.
  const other = await cancel(bob);
  assert.equal(other.status, 404);
  assert.equal(other.headers.get('ratelimit-remaining'), String(ORDERS_PER_MINUTE - 1));
  // And Alice's other routes are in another group.
  assert.equal((await alice.call('GET', '/accounts')).status, 200);
});

test('5. a burst far beyond capacity: the excess gets 503 + Retry-After at once, admitted requests succeed, nothing crashes', async (t) => {
  const burst = GATEWAY_MAX_IN_FLIGHT * 4;
  const restartsBefore = fixture.bank.services.map((s) => fixture.bank.supervisor.get(s).restarts);
  // The gateway holds every instruments request until the fault is cleared: admitted requests stay in flight, as
  // slow work would, so exactly the in-flight limit is admitted and everything beyond it arrives while they wait.
  await simplebankFault('gateway', 'set', 'hold', '--route', 'GET /api/v1/instruments', '--hang', '--duration', '120');
  const answers: { status: number; retryAfter: string | null; code?: string }[] = [];
  let pending: Promise<void>[] = [];
  try {
    pending = Array.from({ length: burst }, () =>
      fetch(`${fixture.bank.gatewayUrl}/api/v1/instruments`, { signal: AbortSignal.timeout(60_000) }).then(async (res) => {
        const body = (await res.json()) as { code?: string };
        answers.push({ status: res.status, retryAfter: res.headers.get('retry-after'), ...(body.code ? { code: body.code } : {}) });
      }),
    );
    // The excess is answered while the admitted requests are still held.
    await eventually('the excess to be answered', async () => (answers.length >= burst - GATEWAY_MAX_IN_FLIGHT ? true : undefined));
    const shedding = (await resilienceOf('gateway')).protection.loadShedding;
    assert.equal(shedding.inFlight, GATEWAY_MAX_IN_FLIGHT, 'the admitted requests are in flight');
    assert.equal(answers.length, burst - GATEWAY_MAX_IN_FLIGHT, 'none of the admitted ones has been answered yet');
    for (const a of answers) {
      assert.equal(a.status, 503);
      assert.equal(a.code, 'overloaded');
      assert.equal(a.retryAfter, '1');
    }
  } finally {
    await simplebankFault('gateway', 'clear');
  }
  await Promise.all(pending);
  const ok = answers.filter((a) => a.status === 200).length;
  assert.equal(ok, GATEWAY_MAX_IN_FLIGHT, 'every admitted request succeeded');
  t.diagnostic(`${burst} requests: ${ok} admitted and answered 200, ${burst - ok} shed with 503`);
  assert.equal(answers.length, burst);

  // No service crashed or was restarted, and the bank serves as before.
  assert.deepEqual(fixture.bank.services.map((s) => fixture.bank.supervisor.get(s).restarts), restartsBefore);
  for (const s of fixture.bank.services) assert.notEqual(fixture.bank.supervisor.get(s).state, 'restarting', s);
  await eventually('the gateway ready again', async () => ((await fetch(`${fixture.bank.gatewayUrl}/health/ready`)).status === 200 ? true : undefined));
  assert.equal((await fetch(`${fixture.bank.gatewayUrl}/api/v1/instruments`)).status, 200);
});
