import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createFormatter } from '../src/logs.ts';

const pino = (o: Record<string, unknown>) => JSON.stringify({ level: 30, time: '2026-01-02T03:04:05.678Z', pid: 1, service: 'accounts', version: '0.1.0', instance: '1', ...o });

test('pino lines become "time [service] level msg k=v"', () => {
  const f = createFormatter({ names: ['gateway', 'accounts'] });
  const out = f('accounts', 'stdout', pino({ msg: 'deposit accepted', requestId: 'r1', amount: '10.00', note: 'two words' }));
  assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} \[accounts\]\s+info {2}deposit accepted requestId=r1 amount=10\.00 note="two words"$/);
  assert.ok(!out.includes('version='), 'boilerplate fields are left out');
});

test('names are padded to the longest so messages line up', () => {
  const f = createFormatter({ names: ['gateway', 'market-data'] });
  const a = f('gateway', 'stdout', pino({ msg: 'x' }));
  const b = f('market-data', 'stdout', pino({ msg: 'x' }));
  assert.equal(a.indexOf(' info'), b.indexOf(' info'));
});

test('errors show their stack, indented', () => {
  const f = createFormatter({ names: ['orders'] });
  const out = f('orders', 'stdout', pino({ level: 50, msg: 'boom', err: { type: 'Error', message: 'bad', stack: 'Error: bad\n    at x' } }));
  assert.match(out, /error boom\n {4}Error: bad\n {8}at x$/);
});

test('non-JSON lines pass through; --json passes everything through untouched', () => {
  const f = createFormatter({ names: ['fees'] });
  assert.match(f('fees', 'stderr', 'Segmentation fault'), /\[fees\] Segmentation fault$/);
  const raw = pino({ msg: 'hi' });
  assert.equal(createFormatter({ names: ['fees'], json: true })('fees', 'stdout', raw), raw);
});

test('colour only when asked', () => {
  const line = pino({ level: 40, msg: 'careful' });
  assert.ok(!createFormatter({ names: ['fees'] })('fees', 'stdout', line).includes('\x1b['));
  assert.ok(createFormatter({ names: ['fees'], colour: true })('fees', 'stdout', line).includes('\x1b[33mwarn'));
});
