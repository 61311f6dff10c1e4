import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import pg from 'pg';
import { createClient, isUpstreamError, startService, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, recordEvents, type EventRecorder, type TestDatabase } from '@simplebank/chassis/testing';
import { customersContract, JWT_AUDIENCE, JWT_ISSUER } from '../src/contract.ts';
import { service } from '../src/service.ts';

const TTL = 900;

describe('customers service', () => {
  let db: TestDatabase;
  let busDb: TestDatabase;
  let running: RunningService;
  let events: EventRecorder;
  const env = () => ({
    PORT: '0',
    DATABASE_URL: db.url,
    BUS_URL: busDb.url,
    SERVICE_TOKEN: 'test-token-0123456789',
    LOG_LEVEL: 'silent',
    JWT_TTL_SECONDS: String(TTL),
    SCRYPT_LOG_N: '12',
  });
  const client = () => createClient(customersContract, { baseUrl: running.url });
  const post = (path: string, body: unknown) =>
    fetch(`${running.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    [db, busDb] = await Promise.all([createTestDatabase('customers'), createTestDatabase('bus')]);
    running = await startService(service, env());
    // A stand-in for accounts: a durable subscription on the same bus, as a real consumer would have.
    events = await recordEvents({ busUrl: busDb.url, name: 'test.on-customer-registered', events: customersContract.events });
  });

  after(async () => {
    await events?.close();
    await running?.stop();
    await db?.drop();
    await busDb?.drop();
  });

  test('register answers 201 with the customer, email normalised', async () => {
    const c = client();
    try {
      const res = await c.register({ body: { name: 'Ada Lovelace', email: 'Ada@Example.com', password: 'difference-engine' } });
      assert.equal(res.status, 201);
      assert.equal(res.body.name, 'Ada Lovelace');
      assert.equal(res.body.email, 'ada@example.com');
      assert.deepEqual(Object.keys(res.body).sort(), ['email', 'id', 'name']);
      const got = await c.getCustomer({ params: { id: res.body.id } });
      assert.deepEqual(got.body, res.body);
    } finally {
      await c.close();
    }
  });

  test('a second sign-up with the same email in another case is 409 email_taken', async () => {
    const first = await post('/customers', { name: 'Grace', email: 'grace@example.com', password: 'cobol-rules-ok' });
    assert.equal(first.status, 201);
    const again = await post('/customers', { name: 'Grace H', email: 'GRACE@example.COM', password: 'another-password' });
    assert.equal(again.status, 409);
    assert.equal(again.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const problem = (await again.json()) as { code: string; status: number };
    assert.equal(problem.code, 'email_taken');
    assert.equal(problem.status, 409);
  });

  test('bad input is 400 naming the fields', async () => {
    const res = await post('/customers', { name: 'X', email: 'not-an-email', password: 'short' });
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { code: string; errors: { field: string }[] };
    assert.equal(problem.code, 'validation_failed');
    const fields = problem.errors.map((e) => e.field);
    assert.ok(fields.includes('body.email'), fields.join());
    assert.ok(fields.includes('body.password'), fields.join());
  });

  test('passwords are stored as scrypt hashes, emails in lower case', async () => {
    await post('/customers', { name: 'Alan', email: 'Alan@Example.com', password: 'enigma-machine' });
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const { rows } = await c.query<{ email: string; password_hash: string }>(`SELECT email, password_hash FROM customers WHERE email = 'alan@example.com'`);
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.password_hash, /^scrypt\$12\$8\$3\$/);
      assert.ok(!rows[0]!.password_hash.includes('enigma'));
    } finally {
      await c.end();
    }
  });

  test('login issues a JWT that verifies against the JWKS', async () => {
    const reg = await post('/customers', { name: 'Barbara', email: 'barbara@example.com', password: 'liskov-substitution' });
    const { id } = (await reg.json()) as { id: string };
    const c = client();
    try {
      const before = Date.now();
      // Logging in is case-insensitive on the email, like sign-up.
      const session = await c.authenticate({ body: { email: 'Barbara@Example.com', password: 'liskov-substitution' } });
      assert.equal(session.status, 200);
      assert.equal(session.body.customerId, id);
      assert.equal(session.headers['cache-control'], 'no-store');
      const expiresAt = Date.parse(session.body.expiresAt);
      assert.ok(Math.abs(expiresAt - (before + TTL * 1000)) < 5_000, 'expiresAt follows JWT_TTL_SECONDS');

      const jwks = await c.jwks({});
      assert.equal(jwks.body.keys.length, 1);
      const key = jwks.body.keys[0]!;
      assert.equal(key.d, undefined, 'the JWKS never carries the private key');
      assert.equal(key.use, 'sig');

      const header = decodeProtectedHeader(session.body.token);
      assert.equal(header.kid, key.kid);
      assert.equal(header.alg, 'EdDSA');

      const { payload } = await jwtVerify(session.body.token, createLocalJWKSet(jwks.body as unknown as JSONWebKeySet), {
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
      });
      assert.equal(payload.sub, id);
      assert.equal(payload.exp, Math.floor(expiresAt / 1000));
      assert.ok(typeof payload.jti === 'string');
    } finally {
      await c.close();
    }
  });

  test('wrong password and unknown email get the same 401 invalid_credentials', async () => {
    await post('/customers', { name: 'Edsger', email: 'edsger@example.com', password: 'goto-considered-harmful' });
    const wrong = await post('/sessions', { email: 'edsger@example.com', password: 'goto-is-fine' });
    const unknown = await post('/sessions', { email: 'nobody@example.com', password: 'goto-is-fine' });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    const [a, b] = (await Promise.all([wrong.json(), unknown.json()])) as Record<string, unknown>[];
    assert.equal(a!.code, 'invalid_credentials');
    // Same problem apart from nothing: the answer does not tell whether the email exists.
    assert.deepEqual(a, b);

    const c = client();
    try {
      await assert.rejects(
        c.authenticate({ body: { email: 'nobody@example.com', password: 'whatever' } }),
        (err: unknown) => isUpstreamError(err) && err.status === 401 && err.code === 'invalid_credentials',
      );
    } finally {
      await c.close();
    }
  });

  test('CustomerRegistered is published once, with the customer and no personal data', async () => {
    const reg = await post('/customers', { name: 'Margaret', email: 'margaret@example.com', password: 'apollo-guidance' });
    const { id } = (await reg.json()) as { id: string };

    await events.settled(running.context.db);
    const published = events.of(customersContract.events.CustomerRegistered.type, id);
    assert.equal(published.length, 1);
    assert.deepEqual(published[0]!.data, { customerId: id, name: 'Margaret' });
    assert.equal(published[0]!.source, 'customers');
    // Personal data stays home: the event names the customer but carries no email or password.
    assert.ok(!JSON.stringify(published[0]).includes('margaret@example.com'));
    assert.ok(!JSON.stringify(published[0]).includes('apollo-guidance'));
  });

  test('a duplicate sign-up publishes nothing', async () => {
    await events.settled(running.context.db);
    const before = events.events.length;
    const res = await post('/customers', { name: 'Ada again', email: 'ada@example.com', password: 'difference-engine' });
    assert.equal(res.status, 409);
    await events.settled(running.context.db);
    assert.equal(events.events.length, before);
  });

  test('signing keys survive a restart: same JWKS, old tokens still verify', async () => {
    const c1 = client();
    const jwksBefore = (await c1.jwks({})).body;
    const session = await c1.authenticate({ body: { email: 'ada@example.com', password: 'difference-engine' } });
    await c1.close();

    await running.stop();
    running = await startService(service, env());

    const c2 = client();
    try {
      const jwksAfter = (await c2.jwks({})).body;
      assert.deepEqual(jwksAfter, jwksBefore);
      const { payload } = await jwtVerify(session.body.token, createLocalJWKSet(jwksAfter as unknown as JSONWebKeySet), {
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
      });
      assert.equal(payload.sub, session.body.customerId);
      const again = await c2.authenticate({ body: { email: 'ada@example.com', password: 'difference-engine' } });
      assert.equal(decodeProtectedHeader(again.body.token).kid, jwksBefore.keys[0]!.kid);
    } finally {
      await c2.close();
    }
  });

  test('two instances starting together on one database create one key', async () => {
    const fresh = await createTestDatabase('customers');
    const e = { ...env(), DATABASE_URL: fresh.url };
    const [a, b] = await Promise.all([startService(service, e), startService(service, e)]);
    try {
      const [ja, jb] = await Promise.all([fetch(`${a.url}/.well-known/jwks.json`).then((r) => r.json()), fetch(`${b.url}/.well-known/jwks.json`).then((r) => r.json())]);
      assert.deepEqual(ja, jb);
      assert.equal((ja as { keys: unknown[] }).keys.length, 1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await fresh.drop();
    }
  });

  test('getCustomer of an unknown id is 404', async () => {
    const res = await fetch(`${running.url}/customers/00000000-0000-4000-8000-000000000000`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'not_found');
  });
});
