import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleValue, type Exposition } from '@simplebank/chassis';
import type { ServiceName } from '../../tools/cli/src/services.ts';
import { customerWithCash, eventually, waitForStatus } from '../e2e/api.ts';
import { bankForThisFile } from '../e2e/harness.ts';
import { metricCatalog, scrapeAll, scrapeExpositions, type CatalogEntry } from './scrape.ts';

// The whole bank, started as `npm start` does: one order placed through the gateway until filled, then every
// service scraped. Each exports the catalog's metrics (docs/observability.md) that apply to it, with the catalog's
// types and labels, and the counters of the order's path have moved.

/** Services that call others (per-dependency metrics), and services with an outbox (messaging metrics). */
const CALLERS: ServiceName[] = ['gateway', 'orders', 'market'];
const WITH_OUTBOX: ServiceName[] = ['customers', 'accounts', 'orders', 'market', 'fees'];

function exportersOf(entry: CatalogEntry, services: ServiceName[]): ServiceName[] {
  if (entry.service) return services.filter((s) => s === entry.service);
  if (entry.section.startsWith('HTTP server')) return services;
  if (entry.section.startsWith('Dependencies') || entry.section.startsWith('Resilience')) return services.filter((s) => CALLERS.includes(s));
  if (entry.section.startsWith('Messaging')) return services.filter((s) => WITH_OUTBOX.includes(s));
  throw new Error(`catalog section "${entry.section}" has no rule in this test`);
}

const fixture = bankForThisFile();

test('an order placed through the gateway moves the metrics of every service on its path', async () => {
  const { api: ada, accountId } = await customerWithCash(fixture.bank.gatewayUrl, '5000.00');
  const placed = await ada.call<{ id: string }>('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 2, type: 'market' }, { 'idempotency-key': crypto.randomUUID() });
  assert.equal(placed.status, 202, JSON.stringify(placed.body));
  await waitForStatus(ada, placed.body.id, ['filled']);

  // Business counters and the completion time are recorded after their transaction commits.
  const scraped = await eventually('the order to be counted as filled and timed', async () => {
    const all = await scrapeExpositions(fixture.bank);
    return sampleValue(all.get('orders')!, 'simplebank_order_completion_seconds_count', { status: 'filled' }) >= 1 ? all : undefined;
  });
  const at = (service: ServiceName): Exposition => scraped.get(service)!;

  assert.ok(sampleValue(at('gateway'), 'http_server_request_duration_seconds_count', { method: 'POST', route: '/api/v1/orders', status_class: '2xx' }) >= 1);
  assert.ok(sampleValue(at('gateway'), 'http_client_request_duration_seconds_count', { dependency: 'orders', operation: 'placeOrder', outcome: 'ok' }) >= 1);
  assert.ok(sampleValue(at('orders'), 'simplebank_orders_transitions_total', { status: 'filled' }) >= 1);
  for (const status of ['pending', 'accepted', 'placed']) assert.ok(sampleValue(at('orders'), 'simplebank_orders_transitions_total', { status }) >= 1, status);
  assert.ok(sampleValue(at('orders'), 'http_client_request_duration_seconds_count', { dependency: 'accounts', operation: 'reserve', outcome: 'ok' }) >= 1);
  assert.ok(sampleValue(at('orders'), 'outbox_published_total') >= 1);
  // The order's reserve step is done: nothing left in the queue, nothing waiting (orders-worker exports both).
  assert.ok(at('orders').samples.some((s) => s.name === 'simplebank_orders_reserve_queue_orders'), 'the reserve queue is measured');
  assert.equal(sampleValue(at('orders'), 'simplebank_orders_reserve_queue_orders'), 0);
  assert.equal(sampleValue(at('orders'), 'simplebank_orders_reserve_queue_lag_seconds'), 0);
  assert.ok(sampleValue(at('orders'), 'bus_handler_duration_seconds_count', { outcome: 'ok' }) >= 1);
  assert.ok(sampleValue(at('market'), 'bus_handler_duration_seconds_count', { event_type: 'orders.OrderAccepted.v1', outcome: 'ok' }) >= 1);
  assert.ok(sampleValue(at('accounts'), 'simplebank_deposits_total', { currency: 'USD' }) >= 1);
  assert.ok(sampleValue(at('fees'), 'simplebank_fees_charged_total', { currency: 'USD' }) >= 1);
  for (const service of fixture.bank.services) {
    assert.equal(sampleValue(at(service), 'bus_dead_letter_events'), 0, `${service} has no dead letters`);
    assert.equal(sampleValue(at(service), 'outbox_lag_seconds') < 60, true, `${service}'s outbox keeps up`);
  }
});

test("every service exports the catalog's metrics that apply to it, with the catalog's types and labels", async () => {
  const catalog = await metricCatalog();
  assert.ok(catalog.length >= 24, `the catalog has its metrics (${catalog.length})`);
  const names = await scrapeAll(fixture.bank);
  const expositions = await scrapeExpositions(fixture.bank);
  const missing: string[] = [];
  for (const entry of catalog) {
    for (const service of exportersOf(entry, fixture.bank.services)) {
      const exposition = expositions.get(service)!;
      const family = exposition.families.get(entry.name);
      if (!family || !names.get(service)!.has(entry.name)) {
        missing.push(`${service}: ${entry.name}`);
        continue;
      }
      assert.equal(family.type, entry.type, `${service}: ${entry.name} is a ${entry.type}`);
      for (const s of exposition.samples.filter((x) => x.name === entry.name || x.name.startsWith(`${entry.name}_`))) {
        const labels = Object.keys(s.labels).filter((l) => l !== 'le');
        assert.deepEqual(labels.sort(), [...entry.labels].sort(), `${service}: ${s.name} has the catalog's labels`);
      }
    }
  }
  assert.deepEqual(missing, [], 'catalog metrics not exported');
  // Histograms are queried by their series names.
  assert.ok(names.get('gateway')!.has('http_server_request_duration_seconds_bucket'));
  // Process metrics on every service.
  for (const service of fixture.bank.services) {
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(names.get(service)!.has(name), `${service}: ${name}`);
    }
  }
});

test('labels stay bounded: no id, raw path or personal data in any label of any service', async () => {
  const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
  for (const [service, exposition] of await scrapeExpositions(fixture.bank)) {
    for (const s of exposition.samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        assert.doesNotMatch(value, UUID, `${service}: ${s.name}{${label}} carries an id`);
        assert.doesNotMatch(value, /@/, `${service}: ${s.name}{${label}} carries an email`);
      }
      if (s.labels.route !== undefined) assert.ok(s.labels.route === 'unmatched' || s.labels.route.startsWith('/'), `${service}: route ${s.labels.route}`);
    }
  }
});
