import assert from 'node:assert/strict';
import { test } from 'node:test';
import { customerWithCash, waitForStatus } from '../e2e/api.ts';
import { bankForThisFile } from '../e2e/harness.ts';
import { recordedSeries, referencedSeries } from './ops-artifacts.ts';
import { scrapeAll } from './scrape.ts';

// The whole bank, one order through it, then every service scraped: a rule or dashboard that refers to a metric
// no service exports would show nothing (or never fire) in production, so it fails here.

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

const fixture = bankForThisFile({ env: { LOG_LEVEL: 'warn' } });

test('every metric that a rule or dashboard refers to is exported by some service of a running bank', { timeout: 180_000 }, async () => {
  const b = fixture.bank;

  // One customer, one deposit, one market order filled: the HTTP, client, messaging and saga metrics all move.
  const { api, accountId } = await customerWithCash(b.gatewayUrl, '1000.00');
  const order = await api.call<{ id: string }>('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 1, type: 'market' }, { 'idempotency-key': crypto.randomUUID() });
  assert.equal(order.status, 202, JSON.stringify(order.body));
  assert.equal((await waitForStatus(api, order.body.id, ['filled'])).status, 'filled');

  const scraped = await scrapeAll(b);
  assert.deepEqual([...scraped.keys()].sort(), [...b.services].sort(), 'every running service was scraped');
  const exported = new Set([...scraped.values()].flatMap((names) => [...names]));
  // scrapeAll may name a histogram by its family (x) or by its series (x_bucket, x_sum, x_count): accept both.
  const isExported = (name: string) =>
    exported.has(name) || (HISTOGRAM_SERIES.test(name) && exported.has(name.replace(HISTOGRAM_SERIES, ''))) || ['_bucket', '_sum', '_count'].some((s) => exported.has(name + s));

  const recorded = recordedSeries();
  const notExported = [...referencedSeries()]
    // `up` is Prometheus' own; recorded series are checked through the metrics their rules read.
    .filter(([name]) => name !== 'up' && !recorded.has(name) && !isExported(name))
    .map(([name, where]) => `${name} (in ${[...new Set(where)].join('; ')})`);
  assert.deepEqual(notExported, [], 'referred to by deploy/observability but exported by no service');

  // The latency SLO counts requests within 0.5 s: that must be a bucket boundary, or the SLI reads nothing.
  const res = await fetch(`${b.urls.gateway}/metrics`, { headers: { 'x-service-token': b.serviceToken } });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^http_server_request_duration_seconds_bucket\{[^}]*le="0\.5"[^}]*\} /m, 'le="0.5" is a bucket of http_server_request_duration_seconds');
});
