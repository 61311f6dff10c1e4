import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, runWithContext } from '../src/index.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, destination };
}

test('secrets and personal data are redacted; request and trace ids are added', () => {
  const { lines, destination } = capture();
  const log = createLogger({ service: 'test', destination });
  runWithContext({ requestId: 'req-1', traceId: 'f'.repeat(32), spanId: 'e'.repeat(16), sampled: true }, () => {
    log.info({ password: 'hunter2hunter2', body: { email: 'ada@example.com', password: 'p4ssw0rd!' }, req: { headers: { authorization: 'Bearer abc.def.ghi' } }, token: 'tok' }, 'hello');
  });
  const line = lines.join('');
  for (const secret of ['hunter2hunter2', 'ada@example.com', 'p4ssw0rd!', 'abc.def.ghi', '"tok"']) {
    assert.ok(!line.includes(secret), `log line leaks ${secret}: ${line}`);
  }
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.service, 'test');
  assert.equal(parsed.requestId, 'req-1');
  assert.equal(parsed.traceId, 'f'.repeat(32));
  assert.match(String(parsed.time), /^\d{4}-\d\d-\d\dT/);
});
