/**
 * SQL for the orders service: the `orders` table, its append-only `order_history`, and the `saga_log`.
 * Money columns are BIGINT minor units; pg hands them back as strings and we turn them into bigint here.
 */
import { gatherer, isTxClient, parseTraceparent, sql, sqlLiteral, type Queryable, type TxClient } from '@simplebank/chassis';
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
  accepted_at: Date | null;
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
    acceptedAt: row.accepted_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface StoredOrder {
  order: Order;
  requestHash: string;
}

/**
 * Writes inside a `db.tx` transaction are deferred to its commit (TxClient.beforeCommit): they travel in the
 * COMMIT's round trip with the outbox rows the same transaction publishes, gathered into one statement (the order's
 * update, its new history entries and the saga steps, as data-modifying CTEs). Nothing in a transaction here reads
 * back what it wrote (the saga steps and the routes work on the Order in memory), and if a deferred write fails the
 * whole transaction rolls back, as it would have a moment earlier. Elsewhere (the pool, tests) they run at once.
 */
interface PendingWrites {
  /** Each order's latest state, as a row of UPDATE_COLUMNS: an order saved twice is written once, as it ended. */
  updates: Map<string, string>;
  history: string[];
  steps: string[];
}

/** The columns of saveOrder's row, in its order (saveOrder casts each value: a VALUES list types a column by its first row otherwise). */
const UPDATE_COLUMNS = 'id, status, reason, filled_quantity, average_price, fee, cancel_requested_at, accepted_at, updated_at';

const pending = gatherer((): PendingWrites => ({ updates: new Map(), history: [], steps: [] }), gathered);

function gathered({ updates, history, steps }: PendingWrites): string {
  const parts = [
    ...(updates.size > 0
      ? [
          `UPDATE orders o SET status = v.status, reason = v.reason, filled_quantity = v.filled_quantity, average_price = v.average_price, fee = v.fee,
             cancel_requested_at = v.cancel_requested_at, accepted_at = v.accepted_at, updated_at = v.updated_at
           FROM (VALUES ${[...updates.values()].join(', ')}) AS v(${UPDATE_COLUMNS}) WHERE o.id = v.id`,
        ]
      : []),
    ...(history.length > 0 ? [`INSERT INTO order_history (order_id, status, reason, at) VALUES ${history.join(', ')}`] : []),
    ...(steps.length > 0 ? [`INSERT INTO saga_log (order_id, step, outcome, detail, at) VALUES ${steps.join(', ')}`] : []),
  ];
  if (parts.length === 0) return '';
  return parts.length === 1 ? parts[0]! : `WITH ${parts.slice(0, -1).map((p, i) => `w${i} AS (${p})`).join(', ')} ${parts.at(-1)}`;
}

const historyRows = (orderId: string, entries: readonly HistoryEntry[]): string[] =>
  entries.map((e) => `(${sqlLiteral(orderId)}::uuid, ${sqlLiteral(e.status)}, ${sqlLiteral(e.reason ?? null)}, ${sqlLiteral(e.at)}::timestamptz)`);

async function appendHistory(q: Queryable, orderId: string, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  if (isTxClient(q)) {
    pending(q).history.push(...historyRows(orderId, entries));
    return;
  }
  const values: unknown[] = [];
  const rows = entries.map((e, i) => {
    values.push(orderId, e.status, e.reason ?? null, e.at);
    const p = i * 4;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4})`;
  });
  await q.query(`INSERT INTO order_history (order_id, status, reason, at) VALUES ${rows.join(', ')}`, values);
}

const INSERT_ORDER = `WITH inserted AS (
    INSERT INTO orders (id, customer_id, account_id, idempotency_key, request_hash, symbol, side, quantity, type, limit_price,
                        status, reason, filled_quantity, average_price, fee, cancel_requested_at, created_at, updated_at, trace_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
    ON CONFLICT ON CONSTRAINT orders_idempotency DO NOTHING
    RETURNING id
  ), history AS (
    INSERT INTO order_history (order_id, status, reason, at)
    SELECT inserted.id, h.status, h.reason, h.at
      FROM inserted, ROWS FROM (jsonb_to_recordset($20::jsonb) AS (status text, reason text, at timestamptz)) WITH ORDINALITY AS h(status, reason, at, n) ORDER BY h.n
  ), submitted AS (
    INSERT INTO saga_log (order_id, step, outcome, detail, at) SELECT inserted.id, 'submit', 'ok', $21::jsonb, $17 FROM inserted
  ), queued AS (
    INSERT INTO reserve_queue (order_id, due_at, traceparent) SELECT inserted.id, $17, $22 FROM inserted
  )
  SELECT id FROM inserted`;

/**
 * Inserts a new order with its first history entry, the saga log's `submit` step (`submitStep`, as `logStep` would
 * write it) and its entry in the reserve queue (with `traceparent`: the order keeps its trace id, and the step
 * continues the trace); returns false (and writes nothing) when the customer already used this idempotency key. A
 * concurrent insert with the same key waits for the other transaction and then reports the conflict, so two
 * requests never create two orders.
 */
export async function insertOrder(
  tx: Queryable,
  order: Order,
  idempotencyKey: string,
  requestHash: string,
  traceparent: string | undefined,
  submitStep: Record<string, unknown>,
): Promise<boolean> {
  const s = order.state;
  const values = [
    s.id, s.customerId, s.accountId, idempotencyKey, requestHash, s.symbol, s.side, s.quantity, s.type, s.limitPrice,
    s.status, s.reason, s.filledQuantity, s.averagePrice, s.fee, s.cancelRequestedAt, s.createdAt, s.updatedAt, parseTraceparent(traceparent)?.traceId ?? null,
    JSON.stringify(order.changes.map((e) => ({ status: e.status, reason: e.reason ?? null, at: e.at }))),
    JSON.stringify(submitStep),
    traceparent ?? null,
  ];
  // One prepared statement (as a transaction's first query it travels with the BEGIN: one round trip) for everything a
  // new order writes; the saga log's row deferred to the commit instead would be a statement planned per order.
  const res = await tx.query(INSERT_ORDER, values);
  return res.rows.length === 1;
}

export async function findByIdempotencyKey(q: Queryable, customerId: string, idempotencyKey: string): Promise<StoredOrder | undefined> {
  const { rows } = await q.query<OrderRow>('SELECT * FROM orders WHERE customer_id = $1 AND idempotency_key = $2', [customerId, idempotencyKey]);
  const row = rows[0];
  return row ? { order: Order.from(toState(row)), requestHash: row.request_hash } : undefined;
}

export async function findOrder(q: Queryable, id: string): Promise<Order | undefined> {
  // As a transaction's first query it travels with the BEGIN (and the inbox record).
  const { rows } = await q.query<OrderRow>('SELECT * FROM orders WHERE id = $1', [id]);
  return rows[0] ? Order.from(toState(rows[0])) : undefined;
}

/**
 * Loads the order and locks its row until the transaction ends: every transition goes through here, so
 * concurrent deliveries and requests for one order take turns and each sees the state the last one left.
 */
export async function lockOrder(tx: Queryable, id: string): Promise<Order | undefined> {
  // As a handler's first query it travels with the BEGIN and the inbox record (one round trip).
  const { rows } = await tx.query<OrderRow>('SELECT * FROM orders WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ? Order.from(toState(rows[0])) : undefined;
}

/**
 * Several orders locked as lockOrder locks one, in id order (two batches sharing orders then wait for each other
 * instead of deadlocking); ids not found are missing from the map.
 */
export async function lockOrders(tx: Queryable, ids: readonly string[]): Promise<Map<string, Order>> {
  // As a batch's first query it travels with the BEGIN.
  const { rows } = await tx.query<OrderRow>('SELECT * FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE', [ids]);
  return new Map(rows.map((r) => [r.id, Order.from(toState(r))]));
}

/** Writes the order's new state and the history entries its transitions produced. Call with the row locked. */
export async function saveOrder(tx: Queryable, order: Order): Promise<void> {
  const s = order.state;
  if (isTxClient(tx)) {
    pending(tx).updates.set(
      s.id,
      sql`(${s.id}::uuid, ${s.status}::text, ${s.reason}::text, ${s.filledQuantity}::int, ${s.averagePrice}::bigint, ${s.fee}::bigint,
          ${s.cancelRequestedAt}::timestamptz, ${s.acceptedAt}::timestamptz, ${s.updatedAt}::timestamptz)`,
    );
    await appendHistory(tx, s.id, order.changes);
    return;
  }
  await tx.query(
    `UPDATE orders SET status = $2, reason = $3, filled_quantity = $4, average_price = $5, fee = $6, cancel_requested_at = $7, accepted_at = $8,
       updated_at = $9
     WHERE id = $1`,
    [s.id, s.status, s.reason, s.filledQuantity, s.averagePrice?.toString() ?? null, s.fee?.toString() ?? null, s.cancelRequestedAt, s.acceptedAt, s.updatedAt],
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
export async function logStep(
  q: Queryable,
  orderId: string,
  step: string,
  outcome: SagaLogEntry['outcome'],
  detail?: Record<string, unknown>,
  at: Date = new Date(),
): Promise<void> {
  if (isTxClient(q)) {
    // Deferred to the commit: the time is when the step happened (the column default would say when it was written).
    const json = detail === undefined ? null : JSON.stringify(detail);
    pending(q).steps.push(sql`(${orderId}::uuid, ${step}, ${outcome}, ${json}::jsonb, ${at}::timestamptz)`);
    return;
  }
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

/** The trace id recorded with the order when it was placed: undefined for no such order, null if none was recorded. */
export async function traceIdOf(q: Queryable, orderId: string): Promise<string | null | undefined> {
  const { rows } = await q.query<{ trace_id: string | null }>('SELECT trace_id FROM orders WHERE id = $1', [orderId]);
  return rows[0] ? rows[0].trace_id : undefined;
}

/** Channel that wakes the reserve worker when orders are queued (chassis: wakeAfterCommit). */
export const RESERVE_CHANNEL = 'orders_reserve';

/** A reserve step to take: its order (as it is, not locked) and its queue entry. */
export interface ReserveWork {
  orderId: string;
  /** Always there: a queue row references its order. */
  order: Order;
  /** Failed attempts so far. */
  attempts: number;
  traceparent: string | null;
}

type ClaimRow = OrderRow & { queued_attempts: number; queued_traceparent: string | null };

/**
 * Reserve steps `which` selects, held until the transaction ends: their queue rows are locked (SKIP LOCKED: rows
 * another transaction holds are left to it), their orders are not, so a customer's cancel never waits for the step's
 * calls. The order comes in the same query: one round trip, with the BEGIN.
 */
async function claimReserve(tx: Queryable, which: string, values: unknown[]): Promise<ReserveWork[]> {
  const { rows } = await tx.query<ClaimRow>(
    `SELECT q.attempts AS queued_attempts, q.traceparent AS queued_traceparent, o.*
      FROM reserve_queue q JOIN orders o ON o.id = q.order_id ${which} FOR UPDATE OF q SKIP LOCKED`,
    values,
  );
  return rows.map((r) => ({ orderId: r.id, order: Order.from(toState(r)), attempts: r.queued_attempts, traceparent: r.queued_traceparent }));
}

/** Up to `limit` due reserve steps, oldest first. */
export const claimReserveWork = (tx: Queryable, limit: number): Promise<ReserveWork[]> =>
  claimReserve(tx, 'WHERE q.due_at <= now() ORDER BY q.due_at LIMIT $1', [limit]);

/** The reserve step of one order if it is still queued and nobody else holds it (due or not): none or one. */
export const claimReserveOf = (tx: Queryable, orderId: string): Promise<ReserveWork[]> => claimReserve(tx, 'WHERE q.order_id = $1', [orderId]);

/** The steps are done: their queue rows go with the transaction's commit. */
export function reserveDone(tx: TxClient, orderIds: readonly string[]): void {
  tx.beforeCommit('DELETE FROM reserve_queue WHERE order_id = ANY($1::uuid[])', [orderIds]);
}

/** A failed attempt: counted, and the step is due again after `delayMs`. */
export async function reserveLater(q: Queryable, orderId: string, delayMs: number): Promise<void> {
  await q.query(`UPDATE reserve_queue SET attempts = attempts + 1, due_at = now() + $2 * interval '1 millisecond' WHERE order_id = $1`, [orderId, delayMs]);
}
