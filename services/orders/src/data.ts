/**
 * SQL for the orders service: the `orders` table, its append-only `order_history`, and the `saga_log`.
 * Money columns are BIGINT minor units; pg hands them back as strings and we turn them into bigint here.
 */
import type { Queryable } from '@simplebank/chassis';
import { Order, type HistoryEntry, type OrderState, type OrderStatus } from './domain/order.ts';

interface OrderRow {
  id: string;
  customer_id: string;
  account_id: string;
  idempotency_key: string;
  request_hash: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: number;
  type: 'market' | 'limit';
  limit_price: string | null;
  status: OrderStatus;
  reason: string | null;
  filled_quantity: number;
  average_price: string | null;
  fee: string | null;
  cancel_requested_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface HistoryRow {
  order_id: string;
  status: OrderStatus;
  reason: string | null;
  at: Date;
}

export interface SagaLogEntry {
  orderId: string;
  step: string;
  outcome: 'ok' | 'failed' | 'skipped';
  detail: Record<string, unknown> | null;
  at: Date;
}

const bigintOrNull = (v: string | null): bigint | null => (v === null ? null : BigInt(v));

function toState(row: OrderRow): OrderState {
  return {
    id: row.id,
    customerId: row.customer_id,
    accountId: row.account_id,
    symbol: row.symbol,
    side: row.side,
    quantity: row.quantity,
    type: row.type,
    limitPrice: bigintOrNull(row.limit_price),
    status: row.status,
    reason: row.reason,
    filledQuantity: row.filled_quantity,
    averagePrice: bigintOrNull(row.average_price),
    fee: bigintOrNull(row.fee),
    cancelRequestedAt: row.cancel_requested_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface StoredOrder {
  order: Order;
  requestHash: string;
}

async function appendHistory(q: Queryable, orderId: string, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const values: unknown[] = [];
  const rows = entries.map((e, i) => {
    values.push(orderId, e.status, e.reason ?? null, e.at);
    const p = i * 4;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4})`;
  });
  await q.query(`INSERT INTO order_history (order_id, status, reason, at) VALUES ${rows.join(', ')}`, values);
}

/**
 * Inserts a new order with its first history entry; returns false (and writes nothing) when the customer
 * already used this idempotency key. A concurrent insert with the same key waits for the other transaction
 * and then reports the conflict, so two requests never create two orders.
 */
export async function insertOrder(tx: Queryable, order: Order, idempotencyKey: string, requestHash: string): Promise<boolean> {
  const s = order.state;
  const res = await tx.query(
    `INSERT INTO orders (id, customer_id, account_id, idempotency_key, request_hash, symbol, side, quantity, type, limit_price,
                         status, reason, filled_quantity, average_price, fee, cancel_requested_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
     ON CONFLICT ON CONSTRAINT orders_idempotency DO NOTHING`,
    [
      s.id, s.customerId, s.accountId, idempotencyKey, requestHash, s.symbol, s.side, s.quantity, s.type, s.limitPrice?.toString() ?? null,
      s.status, s.reason, s.filledQuantity, s.averagePrice?.toString() ?? null, s.fee?.toString() ?? null, s.cancelRequestedAt, s.createdAt, s.updatedAt,
    ],
  );
  if (res.rowCount === 0) return false;
  await appendHistory(tx, s.id, order.changes);
  return true;
}

export async function findByIdempotencyKey(q: Queryable, customerId: string, idempotencyKey: string): Promise<StoredOrder | undefined> {
  const { rows } = await q.query<OrderRow>('SELECT * FROM orders WHERE customer_id = $1 AND idempotency_key = $2', [customerId, idempotencyKey]);
  const row = rows[0];
  return row ? { order: Order.from(toState(row)), requestHash: row.request_hash } : undefined;
}

export async function findOrder(q: Queryable, id: string): Promise<Order | undefined> {
  const { rows } = await q.query<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
  return rows[0] ? Order.from(toState(rows[0])) : undefined;
}

/**
 * Loads the order and locks its row until the transaction ends: every transition goes through here, so
 * concurrent deliveries and requests for one order take turns and each sees the state the last one left.
 */
export async function lockOrder(tx: Queryable, id: string): Promise<Order | undefined> {
  const { rows } = await tx.query<OrderRow>('SELECT * FROM orders WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ? Order.from(toState(rows[0])) : undefined;
}

/** Writes the order's new state and the history entries its transitions produced. Call with the row locked. */
export async function saveOrder(tx: Queryable, order: Order): Promise<void> {
  const s = order.state;
  await tx.query(
    `UPDATE orders SET status = $2, reason = $3, filled_quantity = $4, average_price = $5, fee = $6, cancel_requested_at = $7, updated_at = $8
     WHERE id = $1`,
    [s.id, s.status, s.reason, s.filledQuantity, s.averagePrice?.toString() ?? null, s.fee?.toString() ?? null, s.cancelRequestedAt, s.updatedAt],
  );
  await appendHistory(tx, s.id, order.changes);
}

export async function listOrders(q: Queryable, filter: { customerId: string; accountId?: string; limit: number }): Promise<Order[]> {
  const { rows } = await q.query<OrderRow>(
    `SELECT * FROM orders WHERE customer_id = $1 AND ($2::uuid IS NULL OR account_id = $2)
     ORDER BY created_at DESC, id LIMIT $3`,
    [filter.customerId, filter.accountId ?? null, filter.limit],
  );
  return rows.map((r) => Order.from(toState(r)));
}

export async function historyOf(q: Queryable, orderIds: string[]): Promise<Map<string, HistoryEntry[]>> {
  const byOrder = new Map<string, HistoryEntry[]>(orderIds.map((id) => [id, []]));
  if (orderIds.length === 0) return byOrder;
  const { rows } = await q.query<HistoryRow>('SELECT order_id, status, reason, at FROM order_history WHERE order_id = ANY($1::uuid[]) ORDER BY id', [orderIds]);
  for (const r of rows) byOrder.get(r.order_id)?.push(r.reason !== null ? { status: r.status, at: r.at, reason: r.reason } : { status: r.status, at: r.at });
  return byOrder;
}

/** Records one saga step. Use the handler's transaction: a step rolled back with its transition leaves no record. */
export async function logStep(q: Queryable, orderId: string, step: string, outcome: SagaLogEntry['outcome'], detail?: Record<string, unknown>): Promise<void> {
  await q.query('INSERT INTO saga_log (order_id, step, outcome, detail) VALUES ($1, $2, $3, $4::jsonb)', [
    orderId,
    step,
    outcome,
    detail === undefined ? null : JSON.stringify(detail),
  ]);
}

export async function sagaLog(q: Queryable, orderId: string): Promise<SagaLogEntry[]> {
  const { rows } = await q.query<{ order_id: string; step: string; outcome: SagaLogEntry['outcome']; detail: Record<string, unknown> | null; at: Date }>(
    'SELECT order_id, step, outcome, detail, at FROM saga_log WHERE order_id = $1 ORDER BY id',
    [orderId],
  );
  return rows.map((r) => ({ orderId: r.order_id, step: r.step, outcome: r.outcome, detail: r.detail, at: r.at }));
}
