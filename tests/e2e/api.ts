import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

/** A customer's view of the public API, as a person with curl would use it. */
export class ApiClient {
  token?: string;
  customerId?: string;
  constructor(readonly base: string) {}

  async call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
  }

  async signUpAndLogIn(name = 'Ada Lovelace'): Promise<void> {
    const email = `${randomUUID()}@example.com`;
    const password = 'correct horse battery';
    const created = await this.call<{ id: string }>('POST', '/customers', { name, email, password });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = await this.call<{ token: string; customerId: string }>('POST', '/sessions', { email, password });
    assert.equal(session.status, 200);
    this.token = session.body.token;
    this.customerId = session.body.customerId;
    assert.equal(this.customerId, created.body.id);
  }
}

export interface Cash {
  available: string;
  reserved: string;
}
export interface AccountView {
  id: string;
  currency: string;
  cash: Cash;
  positions: { symbol: string; quantity: number; reserved: number }[];
}
export interface OrderView {
  id: string;
  status: string;
  reason: string | null;
  averagePrice: string | null;
  fee: string | null;
  filledQuantity: number;
  history: { status: string; at: string; reason?: string }[];
}

export const FINAL = new Set(['filled', 'rejected', 'expired', 'cancelled']);

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A new customer, signed up and logged in, whose USD account (opened by an event, so waited for) holds `deposit`.
 * The account is found through the gateway, so the gateway has seen it too.
 */
export async function customerWithCash(gatewayUrl: string, deposit = '10000.00', name?: string): Promise<{ api: ApiClient; accountId: string }> {
  const api = new ApiClient(gatewayUrl);
  await api.signUpAndLogIn(name);
  const accountId = await eventually('the USD account to be opened', async () => (await api.call<{ id: string }[]>('GET', '/accounts')).body[0]?.id);
  const res = await api.call('POST', `/accounts/${accountId}/deposits`, { amount: deposit }, { 'idempotency-key': randomUUID() });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { api, accountId };
}

/** Waits until the order is in one of `statuses` — or final, in which case it must be one of them. */
export async function waitForStatus(api: ApiClient, orderId: string, statuses: string[], timeoutMs = 30_000): Promise<OrderView> {
  const order = await eventually(`order ${orderId} to be ${statuses.join('|')}`, async () => {
    const res = await api.call<OrderView>('GET', `/orders/${orderId}`);
    if (res.status !== 200) throw new Error(`GET order answered ${res.status}`);
    return statuses.includes(res.body.status) || FINAL.has(res.body.status) ? res.body : undefined;
  }, timeoutMs);
  assert.ok(statuses.includes(order.status), `order ${orderId} ended ${order.status} (${order.reason ?? ''}), expected ${statuses.join('|')}`);
  return order;
}
