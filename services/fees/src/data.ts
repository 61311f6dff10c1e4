import type { Queryable } from '@simplebank/chassis';
import { formatMoney, type Minor } from '@simplebank/money';
import type { z } from 'zod';
import type { Charge } from './contract.ts';

/** A row of `charges` as pg returns it: BIGINT arrives as a string (kept exact, never a float). */
export interface ChargeRow {
  order_id: string;
  account_id: string;
  notional: string;
  fee: string;
  status: 'charged' | 'refunded';
  charged_at: Date;
  refunded_at: Date | null;
}

const COLUMNS = 'order_id, account_id, notional, fee, status, charged_at, refunded_at';

export const toCharge = (row: ChargeRow): z.infer<typeof Charge> => ({
  orderId: row.order_id,
  accountId: row.account_id,
  notional: formatMoney(BigInt(row.notional)),
  fee: formatMoney(BigInt(row.fee)),
  status: row.status,
});

/**
 * Inserts the charge unless the order already has one; returns the new row, or undefined when it existed.
 * A concurrent insert for the same order waits on the primary key and then does nothing, so exactly one
 * caller gets the row (and publishes the event).
 */
export async function insertCharge(
  tx: Queryable,
  charge: { orderId: string; accountId: string; notional: Minor; fee: Minor },
): Promise<ChargeRow | undefined> {
  // As the transaction's first query it travels with the BEGIN (one round trip).
  const { rows } = await tx.query<ChargeRow>(
    `INSERT INTO charges (order_id, account_id, notional, fee) VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING RETURNING ${COLUMNS}`,
    [charge.orderId, charge.accountId, charge.notional, charge.fee],
  );
  return rows[0];
}

export async function findCharge(q: Queryable, orderId: string): Promise<ChargeRow | undefined> {
  const { rows } = await q.query<ChargeRow>(`SELECT ${COLUMNS} FROM charges WHERE order_id = $1`, [orderId]);
  return rows[0];
}

/**
 * charged → refunded; returns the row only if this call made the transition. A concurrent refund blocks on the
 * row lock and then finds the status changed, so the refund (and its event) happens once.
 */
export async function markRefunded(tx: Queryable, orderId: string): Promise<ChargeRow | undefined> {
  const { rows } = await tx.query<ChargeRow>(
    `UPDATE charges SET status = 'refunded', refunded_at = now()
     WHERE order_id = $1 AND status = 'charged'
     RETURNING ${COLUMNS}`,
    [orderId],
  );
  return rows[0];
}
