import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, isProblemError } from '@simplebank/chassis';
import { freePort } from '@simplebank/chassis/testing';
import { generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator } from '../src/auth.ts';

const log = createLogger({ service: 'test', level: 'silent' });

test('when the keys cannot be fetched, a token is neither accepted nor blamed: 503, not 401', async () => {
  const auth = createAuthenticator({
    jwksUrl: new URL(`http://127.0.0.1:${await freePort()}/.well-known/jwks.json`),
    issuer: 'iss',
    audience: 'aud',
    clockToleranceSeconds: 0,
    log,
  });
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: 'k' }).setIssuer('iss').setAudience('aud').setSubject(crypto.randomUUID()).setExpirationTime('5m').sign(privateKey);
  await assert.rejects(auth.verify(`Bearer ${token}`), (err: unknown) => isProblemError(err) && err.status === 503 && err.code === 'upstream_unavailable');
  // Malformed credentials are refused without looking for keys at all.
  for (const header of [undefined, '', 'Bearer', 'Bearer  ', 'Token abc', `Bearer ${token} extra`]) {
    await assert.rejects(auth.verify(header), (err: unknown) => isProblemError(err) && err.status === 401, String(header));
  }
});
