import type { Db, Queryable } from '@simplebank/chassis';
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
}

const COLUMNS = `order_id, account_id, symbol, side, quantity, type, limit_price, status, reason, fill_price,
  execute_after, expires_at, correlation_id, executed_at, created_at, updated_at`;

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

/**
 * Serialises the event handlers of one order (intake and cancellation) for the rest of the transaction.
 * A row lock cannot do it: when a cancel overtakes its order there is no row yet, and without this lock the
 * two transactions could each miss the other's uncommitted write (order left open, cancel request dangling).
 */
export async function lockOrderKey(tx: Queryable, orderId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('market.exchange_order:' || $1, 0))`, [orderId]);
}

export async function findOrder(db: Queryable, orderId: string): Promise<ExchangeOrderRow | undefined> {
  const { rows } = await db.query<ExchangeOrderRow>(`SELECT ${COLUMNS} FROM exchange_orders WHERE order_id = $1`, [orderId]);
  return rows[0];
}

/** Returns false when the order is already there (a duplicate OrderAccepted). */
export async function insertOrder(tx: Queryable, o: NewExchangeOrder): Promise<boolean> {
  const r = await tx.query(
    `INSERT INTO exchange_orders (order_id, account_id, symbol, side, quantity, type, limit_price, status, reason, execute_after, expires_at, correlation_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (order_id) DO NOTHING`,
    [o.orderId, o.accountId, o.symbol, o.side, o.quantity, o.type, o.limitPrice?.toString() ?? null, o.status, o.reason, o.executeAfter, o.expiresAt, o.correlationId],
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
