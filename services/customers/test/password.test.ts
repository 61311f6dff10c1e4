import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashPassword, normaliseEmail, verifyPassword, type ScryptParams } from '../src/domain/password.ts';

// A low cost keeps the unit tests fast; the parameters travel with each hash, so that is all it changes.
const cheap: ScryptParams = { logN: 10, r: 8, p: 1 };

test('a hash verifies its password and nothing else', async () => {
  const hash = await hashPassword('correct horse battery', cheap);
  assert.match(hash, /^scrypt\$10\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.ok(!hash.includes('correct horse'));
  assert.deepEqual(await verifyPassword('correct horse battery', hash, cheap), { ok: true, needsRehash: false });
  assert.deepEqual(await verifyPassword('correct horse batterY', hash, cheap), { ok: false, needsRehash: false });
});

test('the same password gets a different salt, hence a different hash, each time', async () => {
  const a = await hashPassword('same password', cheap);
  const b = await hashPassword('same password', cheap);
  assert.notEqual(a, b);
  assert.equal((await verifyPassword('same password', b, cheap)).ok, true);
});

test('a hash made with other parameters still verifies and asks to be redone', async () => {
  const old = await hashPassword('pa55word!', { logN: 11, r: 8, p: 1 });
  assert.deepEqual(await verifyPassword('pa55word!', old, cheap), { ok: true, needsRehash: true });
  // A wrong password never asks for a rehash (we would have nothing to hash).
  assert.deepEqual(await verifyPassword('wrong', old, cheap), { ok: false, needsRehash: false });
});

test('passwords are compared after Unicode normalisation', async () => {
  const composed = 'caf\u00e9-password';
  const decomposed = 'cafe\u0301-password';
  const hash = await hashPassword(composed, cheap);
  assert.equal((await verifyPassword(decomposed, hash, cheap)).ok, true);
});

test('a malformed stored hash fails closed', async () => {
  for (const bad of ['', 'plain', 'scrypt$x$8$1$AAAA$AAAA', 'bcrypt$10$8$1$AAAA$AAAA', 'scrypt$99$8$1$AAAA$AAAA']) {
    assert.deepEqual(await verifyPassword('anything', bad, cheap), { ok: false, needsRehash: false });
  }
});

test('emails normalise to trimmed lower case', () => {
  assert.equal(normaliseEmail('  Ada.Lovelace@Example.COM '), 'ada.lovelace@example.com');
});
