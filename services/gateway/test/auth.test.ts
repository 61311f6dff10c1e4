import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { JWT_AUDIENCE, JWT_ISSUER } from '@simplebank/customers/contract';
import { api, assertProblem, fieldsOf } from './api.ts';
import { startStack, type Stack } from './stack.ts';

describe('gateway: sign-up, log-in and authentication', () => {
  let stack: Stack;
  let client: ReturnType<typeof api>;
  /** customers' real signing key, read from its database, to forge tokens that differ in one claim only. */
  let realKey: { kid: string; key: CryptoKey };

  before(async () => {
    stack = await startStack(['customers', 'accounts', 'gateway']);
    client = api(stack.url('gateway'));
    const row = await stack.running.customers!.context.db.one<{ kid: string; private_jwk: JWK }>('SELECT kid, private_jwk FROM signing_keys');
    realKey = { kid: row!.kid, key: (await importJWK(row!.private_jwk, 'EdDSA')) as CryptoKey };
  });
  after(async () => stack?.stop());

  const forge = async (claims: { iss?: string; aud?: string; sub?: string; exp?: number }, key = realKey) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: key.kid }).setIssuedAt(now).setExpirationTime(claims.exp ?? now + 600);
    if (claims.iss !== undefined) jwt.setIssuer(claims.iss);
    if (claims.aud !== undefined) jwt.setAudience(claims.aud);
    if (claims.sub !== undefined) jwt.setSubject(claims.sub);
    return jwt.sign(key.key);
  };

  test('sign-up answers 201 with the customer; the same email again (any case) is 409 email_taken', async () => {
    const res = await client.post<{ id: string; name: string; email: string }>('/api/v1/customers', {
      name: 'Ada Lovelace',
      email: 'Ada.Gateway@Example.com',
      password: 'difference-engine',
    });
    assert.equal(res.status, 201);
    assert.deepEqual(Object.keys(res.body).sort(), ['email', 'id', 'name']);
    assert.equal(res.body.email, 'ada.gateway@example.com');

    const again = await client.post('/api/v1/customers', { name: 'Ada', email: 'ADA.GATEWAY@example.com', password: 'difference-engine' });
    assertProblem(again, 409, 'email_taken');
  });

  test('sign-up with bad input is 400 naming each field', async () => {
    const res = await client.post('/api/v1/customers', { name: '', email: 'nope', password: 'short' });
    const problem = assertProblem(res, 400, 'validation_failed');
    assert.deepEqual(fieldsOf(problem).sort(), ['body.email', 'body.name', 'body.password']);
  });

  test('log-in answers a bearer token; bad credentials are 401 invalid_credentials', async () => {
    const customer = await client.newCustomer('Grace Hopper');
    const ok = await client.post<{ token: string; customerId: string; expiresAt: string }>('/api/v1/sessions', { email: customer.email, password: customer.password });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.customerId, customer.id);
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    assert.ok(Date.parse(ok.body.expiresAt) > Date.now());

    assertProblem(await client.post('/api/v1/sessions', { email: customer.email, password: 'wrong-password' }), 401, 'invalid_credentials');
    assertProblem(await client.post('/api/v1/sessions', { email: 'nobody@example.com', password: 'wrong-password' }), 401, 'invalid_credentials');
    const bad = assertProblem(await client.post('/api/v1/sessions', { email: 'not-an-email' }), 400, 'validation_failed');
    assert.deepEqual(fieldsOf(bad).sort(), ['body.email', 'body.password']);
  });

  test('a protected route without a token is 401 problem+json with WWW-Authenticate', async () => {
    const res = await client.get('/api/v1/accounts');
    assertProblem(res, 401, 'unauthorized');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="simplebank"');
    // Not a bearer credential at all.
    assertProblem(await client.request('GET', '/api/v1/accounts', { headers: { authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'unauthorized');
  });

  test('tokens that are garbage, foreign, expired, or for another issuer or audience are 401', async () => {
    const customer = await client.newCustomer('Token Tester');
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const foreignKey = { kid: 'not-ours', key: other.privateKey };
    // A key nobody published, claiming the real key's kid: the signature does not verify.
    const impostor = { kid: realKey.kid, key: other.privateKey };
    const good = { iss: JWT_ISSUER, aud: JWT_AUDIENCE, sub: customer.id };
    const cases: [string, string][] = [
      ['garbage', 'not.a.jwt'],
      ['unknown key', await forge(good, foreignKey)],
      ['wrong signature', await forge(good, impostor)],
      ['expired', await forge({ ...good, exp: Math.floor(Date.now() / 1000) - 600 })],
      ['other issuer', await forge({ ...good, iss: 'someone-else' })],
      ['other audience', await forge({ ...good, aud: 'another-api' })],
      ['no subject', await forge({ iss: JWT_ISSUER, aud: JWT_AUDIENCE })],
      ['subject not a customer id', await forge({ ...good, sub: 'admin' })],
    ];
    for (const [what, token] of cases) {
      const res = await client.get('/api/v1/accounts', token);
      assertProblem(res, 401, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="simplebank", error="invalid_token"', what);
    }
    // An unsigned token ("alg": "none") is refused before any key is looked up.
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(good)).toString('base64url')}.`;
    assertProblem(await client.get('/api/v1/accounts', none), 401, 'unauthorized');
    // The control: the same forging, untampered, is accepted.
    assert.equal((await client.get('/api/v1/accounts', await forge(good))).status, 200);
    // And the public key of the foreign pair is of course not in the JWKS.
    assert.ok(!JSON.stringify(await (await fetch(`${stack.url('customers')}/.well-known/jwks.json`)).json()).includes((await exportJWK(other.publicKey)).x!));
  });

  test('authentication comes before validation: an anonymous bad request learns only 401', async () => {
    const res = await client.post('/api/v1/accounts/not-a-uuid/deposits', { amount: 'lots' });
    assertProblem(res, 401, 'unauthorized');
    const order = await client.post('/api/v1/orders', { quantity: -1 });
    assertProblem(order, 401, 'unauthorized');
  });

  test('an unknown route is 404 problem+json, with or without a token', async () => {
    assertProblem(await client.get('/api/v1/nothing-here'), 404, 'route_not_found');
    assertProblem(await client.get('/api/v2/accounts'), 404, 'route_not_found');
    const customer = await client.newCustomer('Lost Customer');
    assertProblem(await client.get('/api/v1/nothing-here', customer.token), 404, 'route_not_found');
    // The internal APIs are not reachable through the gateway.
    assertProblem(await client.get('/accounts', customer.token), 404, 'route_not_found');
  });

  test('/openapi.json is OpenAPI 3.1 for the public /api/v1 paths, with bearer auth', async () => {
    const res = await client.get<{
      openapi: string;
      paths: Record<string, Record<string, { operationId: string; security?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, { type: string; scheme?: string }> };
      security: unknown[];
    }>('/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    const paths = Object.keys(res.body.paths).sort();
    assert.deepEqual(paths, [
      '/api/v1/accounts',
      '/api/v1/accounts/{id}',
      '/api/v1/accounts/{id}/deposits',
      '/api/v1/accounts/{id}/entries',
      '/api/v1/customers',
      '/api/v1/instruments',
      '/api/v1/orders',
      '/api/v1/orders/{id}',
      '/api/v1/prices/{symbol}',
      '/api/v1/sessions',
    ]);
    assert.deepEqual(Object.keys(res.body.paths['/api/v1/orders/{id}']!).sort(), ['delete', 'get']);
    assert.deepEqual(res.body.components.securitySchemes, { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } });
    assert.deepEqual(res.body.security, [{ bearer: [] }]);
    // Sign-up, log-in and market information are open; the rest inherit the bearer requirement.
    assert.deepEqual(res.body.paths['/api/v1/sessions']!.post!.security, []);
    assert.deepEqual(res.body.paths['/api/v1/prices/{symbol}']!.get!.security, []);
    assert.equal(res.body.paths['/api/v1/accounts']!.get!.security, undefined);
    assert.ok(res.body.paths['/api/v1/accounts']!.get!.responses['401']);
    assert.ok(res.body.paths['/api/v1/orders']!.post!.requestBody);
  });
});
