import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBus } from '../../src/messaging/create-bus.ts';
import { testLog } from './helpers.ts';

test('createBus picks the engine from the URL scheme', async () => {
  for (const [url, kind] of [
    ['postgres://postgres@127.0.0.1:5432/bus', 'pg-boss'],
    ['postgresql://postgres@127.0.0.1:5432/bus', 'pg-boss'],
    ['nats://127.0.0.1:4222', 'nats'],
  ] as const) {
    const bus = createBus({ url, service: 'test', log: testLog });
    assert.equal(bus.kind, kind, url);
    await bus.close(); // never started: nothing to connect or stop
  }
});

test('createBus rejects other URLs with an explanation, without echoing credentials', () => {
  assert.throws(() => createBus({ url: 'amqp://user:secret@host/vhost', service: 'test', log: testLog }), (err: Error) => {
    assert.match(err.message, /"amqp:\/\/"/);
    assert.match(err.message, /postgres:\/\/.*nats:\/\//);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
  assert.throws(() => createBus({ url: 'user:secret@localhost', service: 'test', log: testLog }), (err: Error) => {
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});
