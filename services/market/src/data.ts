import { queryAll, sql, sqlLiteral, writeAtCommit, type Db, type Queryable } from '@simplebank/chassis';
import { formatMoney } from '@simplebank/money';
import type { z } from 'zod';
import type { ExchangeOrder, ExchangeOrderStatus } from './contract.ts';
import type { OpenOrder, OrderType, Side } from './domain/matching.ts';

type Status = z.infer<typeof ExchangeOrderStatus>;

export interface ExchangeOrderRow {
  order_id: string;
  account_id: string;
  symbol: string;
  side: Side;
  quantity: number;
  type: OrderType;
  /** BIGINT cents come back from pg as strings. */
  limit_price: string | null;
  status: Status;
  reason: string | null;
  fill_price: string | null;
  execute_after: Date;
  expires_at: Date | null;
  correlation_id: string;
  /** The intake's trace context: the matcher's events continue the order's trace. */
  traceparent: string | null;
  executed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewExchangeOrder {
  orderId: string;
  accountId: string;
  symbol: string;
  side: Side;
  quantity: number;
  type: OrderType;
  limitPrice: bigint | null;
  status: Status;
  reason: string | null;
  executeAfter: Date;
  expiresAt: Date | null;
  correlationId: string;
  traceparent?: string | undefined;
}

const COLUMNS = `order_id, account_id, symbol, side, quantity, type, limit_price, status, reason, fill_price,
  execute_after, expires_at, correlation_id, traceparent, executed_at, created_at, updated_at`;

export const toOpenOrder = (row: ExchangeOrderRow): OpenOrder => ({
  side: row.side,
  type: row.type,
  limitPrice: row.limit_price === null ? null : BigInt(row.limit_price),
  executeAfter: row.execute_after.getTime(),
  expiresAt: row.expires_at ? row.expires_at.getTime() : null,
});

export const toExchangeOrder = (row: ExchangeOrderRow): z.input<typeof ExchangeOrder> => ({
  orderId: row.order_id,
  symbol: row.symbol,
  side: row.side,
  quantity: row.quantity,
  type: row.type,
  limitPrice: row.limit_price === null ? null : formatMoney(BigInt(row.limit_price)),
  status: row.status,
  fillPrice: row.fill_price === null ? null : formatMoney(BigInt(row.fill_price)),
  expiresAt: row.expires_at ? row.expires_at.toISOString() : null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const LOCK_ORDER_KEY = `SELECT pg_advisory_xact_lock(hashtextextended('market.exchange_order:' || $1, 0))`;

/**
 * Serialises the event handlers of one order (intake and cancellation) for the rest of the transaction.
 * A row lock cannot do it: when a cancel overtakes its order there is no row yet, and without this lock the
 * two transactions could each miss the other's uncommitted write (order left open, cancel request dangling).
 */
export async function lockOrderKey(tx: Queryable, orderId: string): Promise<void> {
  // As a handler's first query it travels with the BEGIN and the inbox record.
  await tx.query(LOCK_ORDER_KEY, [orderId]);
}

/** The order if it is here (all columns NULL if not), and whether a cancel request for it was waiting (and is now taken). */
const INTAKE_SNAPSHOT = `WITH cancelled AS (
    DELETE FROM cancel_requests WHERE order_id = $1::uuid
      AND NOT EXISTS (SELECT 1 FROM exchange_orders WHERE order_id = $1::uuid) RETURNING order_id
  )
  SELECT e.*, EXISTS (SELECT 1 FROM cancelled) AS cancel_requested
    FROM (SELECT 1) AS one LEFT JOIN (SELECT ${COLUMNS} FROM exchange_orders WHERE order_id = $1::uuid) AS e ON true`;

/**
 * Intake's first message (with the BEGIN and the inbox record): the order key's lock (lockOrderKey), then whether
 * the order is already here, then a cancel request that overtook it, consumed (takeCancelRequest), unless the order
 * is already here (a duplicate OrderAccepted must leave everything as it is). Each statement reads after the lock.
 */
export async function intakeSnapshot(tx: Queryable, orderId: string): Promise<{ existing: ExchangeOrderRow | undefined; cancelRequested: boolean }> {
  // The lock is a statement of its own (the snapshot the next one reads with is taken after it is held); in a
  // transaction both go in one message.
  const [, found] = await queryAll(tx, [
    { text: LOCK_ORDER_KEY, values: [orderId] },
    { text: INTAKE_SNAPSHOT, values: [orderId] },
  ]);
  const { cancel_requested: cancelRequested, ...existing } = found!.rows[0] as ExchangeOrderRow & { cancel_requested: boolean };
  return { existing: existing.order_id === null ? undefined : existing, cancelRequested };
}

export async function findOrder(db: Queryable, orderId: string): Promise<ExchangeOrderRow | undefined> {
  const { rows } = await db.query<ExchangeOrderRow>(`SELECT ${COLUMNS} FROM exchange_orders WHERE order_id = $1`, [orderId]);
  return rows[0];
}

const ADD_ORDER = `INSERT INTO exchange_orders (order_id, account_id, symbol, side, quantity, type, limit_price, status, reason, execute_after, expires_at, correlation_id, traceparent)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;

/**
 * Adds the order; in a transaction it is written with the COMMIT (the intake checked under the order key's lock
 * that it is not there yet).
 */
export async function addOrder(tx: Queryable, o: NewExchangeOrder): Promise<void> {
  const values = [o.orderId, o.accountId, o.symbol, o.side, o.quantity, o.type, o.limitPrice, o.status, o.reason, o.executeAfter, o.expiresAt, o.correlationId, o.traceparent ?? null];
  await writeAtCommit(tx, ADD_ORDER, values);
}

/** Returns false when the order is already there (a duplicate OrderAccepted). */
export async function insertOrder(tx: Queryable, o: NewExchangeOrder): Promise<boolean> {
  const r = await tx.query(
    `INSERT INTO exchange_orders (order_id, account_id, symbol, side, quantity, type, limit_price, status, reason, execute_after, expires_at, correlation_id, traceparent)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (order_id) DO NOTHING`,
    [o.orderId, o.accountId, o.symbol, o.side, o.quantity, o.type, o.limitPrice?.toString() ?? null, o.status, o.reason, o.executeAfter, o.expiresAt, o.correlationId, o.traceparent ?? null],
  );
  return r.rowCount === 1;
}

/** Consumes a cancel request that arrived before its order; true if there was one. */
export async function takeCancelRequest(tx: Queryable, orderId: string): Promise<boolean> {
  const r = await tx.query('DELETE FROM cancel_requests WHERE order_id = $1', [orderId]);
  return (r.rowCount ?? 0) > 0;
}

export async function insertCancelRequest(tx: Queryable, orderId: string, accountId: string): Promise<void> {
  await tx.query('INSERT INTO cancel_requests (order_id, account_id) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING', [orderId, accountId]);
}

/** Locks the order whatever its state, waiting for a matcher that holds it (so a cancel sees the fill). */
export async function lockOrder(tx: Queryable, orderId: string): Promise<ExchangeOrderRow | undefined> {
  const { rows } = await tx.query<ExchangeOrderRow>(`SELECT ${COLUMNS} FROM exchange_orders WHERE order_id = $1 FOR UPDATE`, [orderId]);
  return rows[0];
}

/**
 * Locks the order if it is still open and no one else holds it. SKIP LOCKED is what keeps several matcher
 * instances from executing one order twice: the loser gets no row, and once the winner commits the row is no
 * longer open.
 */
export async function lockOpenOrder(tx: Queryable, orderId: string): Promise<ExchangeOrderRow | undefined> {
  const { rows } = await tx.query<ExchangeOrderRow>(
    `SELECT ${COLUMNS} FROM exchange_orders WHERE order_id = $1 AND status = 'open' FOR UPDATE SKIP LOCKED`,
    [orderId],
  );
  return rows[0];
}

/** Locks one open order due to expire at `now` that nobody else is working on. */
export async function lockNextExpired(tx: Queryable, now: Date): Promise<ExchangeOrderRow | undefined> {
  const { rows } = await tx.query<ExchangeOrderRow>(
    `SELECT ${COLUMNS} FROM exchange_orders
     WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1
     ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [now],
  );
  return rows[0];
}

/**
 * A matcher round's look, in one round trip and without locks: open orders due to expire by `now` (earliest
 * first), and open orders received by `now` (latency elapsed) that have not expired, oldest first.
 */
export async function dueOrders(db: Queryable, now: Date, limit: number): Promise<{ expiring: ExchangeOrderRow[]; executable: ExchangeOrderRow[] }> {
  const at = `${sqlLiteral(now)}::timestamptz`;
  const [expiring, executable] = (await db.query(
    `SELECT ${COLUMNS} FROM exchange_orders
      WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= ${at} ORDER BY expires_at LIMIT ${limit};
     SELECT ${COLUMNS} FROM exchange_orders
      WHERE status = 'open' AND execute_after <= ${at} AND (expires_at IS NULL OR expires_at > ${at})
      ORDER BY execute_after LIMIT ${limit}`,
  )) as unknown as [{ rows: ExchangeOrderRow[] }, { rows: ExchangeOrderRow[] }];
  return { expiring: expiring.rows, executable: executable.rows };
}

/**
 * Locks those of the given orders that are still open and that no one else holds (SKIP LOCKED: what keeps
 * several matcher instances from executing one order twice, as lockOpenOrder does for one). Inlined, so as a
 * transaction's first query it travels with the BEGIN.
 */
export async function lockOpenOrders(tx: Queryable, orderIds: string[]): Promise<ExchangeOrderRow[]> {
  if (orderIds.length === 0) return [];
  const { rows } = await tx.query<ExchangeOrderRow>(
    `SELECT ${COLUMNS} FROM exchange_orders
      WHERE order_id IN (${orderIds.map((id) => `${sqlLiteral(id)}::uuid`).join(', ')}) AND status = 'open'
      FOR UPDATE SKIP LOCKED`,
  );
  return rows;
}

export type Outcome = { status: 'filled'; fillPrice: bigint; executedAt: Date } | { status: 'expired' | 'cancelled' } | { status: 'rejected'; reason: string };

/** Makes several orders final in one statement (with the COMMIT, inside a transaction). */
export async function finalizeMany(tx: Queryable, outcomes: { orderId: string; outcome: Outcome }[]): Promise<void> {
  if (outcomes.length === 0) return;
  const rows = outcomes.map(({ orderId, outcome: o }) =>
    sql`(${orderId}::uuid, ${o.status}::text, ${o.status === 'filled' ? o.fillPrice : null}::bigint, ${o.status === 'filled' ? o.executedAt : null}::timestamptz, ${o.status === 'rejected' ? o.reason : null}::text)`,
  );
  const text = `UPDATE exchange_orders o SET status = v.status, fill_price = v.fill_price, executed_at = v.executed_at, reason = v.reason, updated_at = now()
    FROM (VALUES ${rows.join(', ')}) AS v(order_id, status, fill_price, executed_at, reason) WHERE o.order_id = v.order_id`;
  await writeAtCommit(tx, text);
}

/** Open orders the exchange has received by `now` (latency elapsed) and that have not expired. */
export async function executableOrders(db: Db, now: Date, limit: number): Promise<ExchangeOrderRow[]> {
  return db.many<ExchangeOrderRow>(
    `SELECT ${COLUMNS} FROM exchange_orders
     WHERE status = 'open' AND execute_after <= $1 AND (expires_at IS NULL OR expires_at > $1)
     ORDER BY execute_after LIMIT $2`,
    [now, limit],
  );
}

export async function finalize(
  tx: Queryable,
  orderId: string,
  outcome: { status: 'filled'; fillPrice: bigint; executedAt: Date } | { status: 'expired' | 'cancelled' } | { status: 'rejected'; reason: string },
): Promise<void> {
  await tx.query(
    `UPDATE exchange_orders SET status = $2, fill_price = $3, executed_at = $4, reason = $5, updated_at = now() WHERE order_id = $1`,
    [
      orderId,
      outcome.status,
      outcome.status === 'filled' ? outcome.fillPrice.toString() : null,
      outcome.status === 'filled' ? outcome.executedAt : null,
      outcome.status === 'rejected' ? outcome.reason : null,
    ],
  );
}

export async function countOpen(db: Db): Promise<number> {
  const row = await db.one<{ n: string }>(`SELECT count(*) AS n FROM exchange_orders WHERE status = 'open'`);
  return Number(row?.n ?? 0);
}
