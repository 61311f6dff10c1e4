import { test } from 'node:test';
import assert from 'node:assert/strict';
import { customerWithCash, eventually, FINAL, type OrderView } from './api.ts';
import { ledgerTotals, bankForThisFile } from './harness.ts';

// Services die; accepted orders must not. SIGKILL gives a service no chance to drain or flush anything.
const fixture = bankForThisFile();

// orders runs as two processes (its API, and orders-worker with the saga): either may die.
for (const victim of ['orders', 'orders-worker', 'market', 'accounts'] as const) {
  test(`orders accepted before ${victim} is SIGKILLed still reach a final state, each executed once`, async () => {
    const { api: customer, accountId } = await customerWithCash(fixture.bank.gatewayUrl, '100000.00');

    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await customer.call<{ id: string }>(
        'POST',
        '/orders',
        { accountId, symbol: i % 2 ? 'MSFT' : 'AAPL', side: 'buy', quantity: 1 + (i % 3), type: 'market' },
        { 'idempotency-key': `o-${i}` },
      );
      assert.equal(res.status, 202);
      ids.push(res.body.id);
      if (i === 5) {
        const before = fixture.bank.supervisor.get(victim).restarts;
        fixture.bank.supervisor.kill(victim, 'SIGKILL');
        await fixture.bank.supervisor.waitFor(victim, (s) => s.state === 'ready' && s.restarts > before, 60_000);
      }
    }

    const orders = await eventually('every order to be final', async () => {
      const all = await Promise.all(ids.map(async (id) => (await customer.call<OrderView>('GET', `/orders/${id}`)).body));
      return all.every((o) => FINAL.has(o.status)) ? all : undefined;
    }, 60_000);
    for (const o of orders) assert.equal(o.status, 'filled', `order ${o.id} ended ${o.status} (${o.reason ?? ''})`);

    const entries = await customer.call<{ kind: string; reference: string }[]>('GET', `/accounts/${accountId}/entries`);
    for (const id of ids) {
      assert.equal(entries.body.filter((e) => e.reference === id).length, 1, `order ${id} settled exactly once`);
    }
    const account = await customer.call<{ cash: { reserved: string }; positions: { symbol: string; quantity: number }[] }>('GET', `/accounts/${accountId}`);
    assert.equal(account.body.cash.reserved, '0.00');
    const shares = account.body.positions.reduce((n, p) => n + p.quantity, 0);
    assert.equal(shares, orders.reduce((n, o) => n + o.filledQuantity, 0));
    const totals = await ledgerTotals(fixture.bank);
    assert.equal(totals.unbalancedEntries, 0);
    assert.equal(totals.activeReservations, 0);
  });
}
