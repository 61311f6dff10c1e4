import { randomUUID } from 'node:crypto';
import { queryAll, sqlLiteral, writeAtCommit, type Queryable } from '@simplebank/chassis';
import { customerLedgerAccount, type EntryDraft, type EntryKind, type Posting } from './domain/ledger.ts';
import type { ReservationStatus } from './domain/reservations.ts';

// BIGINT and NUMERIC columns arrive as strings (the chassis keeps them exact); they become bigints here.

export interface AccountRow {
  id: string;
  customer_id: string;
  currency: 'USD';
  created_at: Date;
}

export interface ReservationRow {
  id: string;
  account_id: string;
  kind: 'cash' | 'shares';
  symbol: string | null;
  amount: string | null;
  quantity: string | null;
  status: ReservationStatus;
  entry_id: string | null;
}

export interface DepositRow {
  id: string;
  account_id: string;
  amount: string;
  entry_id: string;
}

export interface StoredEntry {
  id: string;
  kind: EntryKind;
  reference: string;
  createdAt: Date;
  postings: Posting[];
}

async function one<R extends object>(q: Queryable, text: string, values: unknown[]): Promise<R | undefined> {
  const { rows } = await q.query<R & Record<string, unknown>>(text, values);
  return rows[0];
}

async function many<R extends object>(q: Queryable, text: string, values: unknown[] = []): Promise<R[]> {
  const { rows } = await q.query<R & Record<string, unknown>>(text, values);
  return rows;
}

// ── accounts ───────────────────────────────────────────────────────────────────────────────────────────

const ACCOUNT_COLUMNS = 'id, customer_id, currency, created_at';

/** Opens the account unless the customer already has one in that currency; concurrent calls end up with one. */
export async function openAccount(q: Queryable, customerId: string, currency: 'USD'): Promise<{ account: AccountRow; created: boolean }> {
  const inserted = await one<AccountRow>(
    q,
    `INSERT INTO accounts (customer_id, currency) VALUES ($1, $2) ON CONFLICT (customer_id, currency) DO NOTHING RETURNING ${ACCOUNT_COLUMNS}`,
    [customerId, currency],
  );
  if (inserted) return { account: inserted, created: true };
  const existing = await one<AccountRow>(q, `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = $1 AND currency = $2`, [customerId, currency]);
  if (!existing) throw new Error('account vanished after a conflicting insert');
  return { account: existing, created: false };
}

export const findAccount = (q: Queryable, id: string): Promise<AccountRow | undefined> =>
  one<AccountRow>(q, `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`, [id]);

/** Locks the account row: everything that could spend from the account queues behind this transaction. */
export const lockAccount = (q: Queryable, id: string): Promise<AccountRow | undefined> =>
  one<AccountRow>(q, `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 FOR UPDATE`, [id]);

export const listAccounts = (q: Queryable, customerId: string): Promise<AccountRow[]> =>
  many<AccountRow>(q, `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = $1 ORDER BY created_at, id`, [customerId]);

const LOCK_RESERVATION_ID = `SELECT pg_advisory_xact_lock(hashtextextended('reservation:' || $1, 0))`;

/**
 * Serialises every change to one reservation id (reserve, release, settle) for the rest of the transaction.
 * An advisory lock rather than a row lock, because the row may not exist yet when a release races its reserve.
 */
export async function lockReservationId(q: Queryable, id: string): Promise<void> {
  await q.query(LOCK_RESERVATION_ID, [id]);
}

// ── balances ───────────────────────────────────────────────────────────────────────────────────────────

// A customer's balances are stored (migration 004, customer_balances, kept by a trigger on postings) rather than
// summed over the account's whole history: one row per asset the account ever had a posting in, a total of 0
// included, as the sums were. Only customer accounts have them.

/** A customer account's balance per asset. */
export async function customerBalances(q: Queryable, accountId: string): Promise<Map<string, bigint>> {
  return sumsFrom(await many<SumRow>(q, balancesSql('$1'), [customerLedgerAccount(accountId)]));
}

/** What the account's active reservations hold back: cash in cents, shares per symbol (stored: migration 005). */
export async function activeHolds(q: Queryable, accountId: string): Promise<{ cash: bigint; shares: Map<string, bigint> }> {
  return holdsFrom(await many<HoldRow>(q, holdsSql('$1'), [accountId]));
}

type SumRow = { asset: string; total: string };
type HoldRow = { kind: 'cash' | 'shares'; symbol: string | null; total: string };

const sumsFrom = (rows: SumRow[]): Map<string, bigint> => new Map(rows.map((r) => [r.asset, BigInt(r.total)]));

function holdsFrom(rows: HoldRow[]): { cash: bigint; shares: Map<string, bigint> } {
  let cash = 0n;
  const shares = new Map<string, bigint>();
  for (const r of rows) {
    if (r.kind === 'cash') cash += BigInt(r.total);
    else shares.set(r.symbol!, BigInt(r.total));
  }
  return { cash, shares };
}

// The statements of a snapshot, values inlined: several statements then travel in one message (simple protocol),
// and the first one of a transaction goes with its BEGIN. Each statement of such a message still starts from a
// fresh snapshot (READ COMMITTED), taken after the statements before it got their locks: reads that follow a lock
// in the same message see everything committed before the lock was granted, exactly as separate round trips would.
const balancesSql = (ledgerAccountExpr: string) =>
  `SELECT asset, total::text AS total FROM customer_balances WHERE ledger_account = ${ledgerAccountExpr}`;
const holdsSql = (accountIdExpr: string) =>
  `SELECT kind, nullif(symbol, '') AS symbol, total::text AS total FROM account_holds WHERE account_id = ${accountIdExpr} AND total <> 0`;

export interface Balances {
  /** The customer account's balance per asset. */
  sums: Map<string, bigint>;
  holds: { cash: bigint; shares: Map<string, bigint> };
}

/** The account with its balances, in one round trip (three statements). */
export async function accountWithBalances(q: Queryable, id: string): Promise<{ account: AccountRow; balances: Balances } | undefined> {
  const lit = sqlLiteral(id);
  const [account, sums, holds] = (await q.query(
    `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ${lit}::uuid;
     ${balancesSql(sqlLiteral(customerLedgerAccount(id)))};
     ${holdsSql(`${lit}::uuid`)}`,
  )) as unknown as [{ rows: AccountRow[] }, { rows: SumRow[] }, { rows: HoldRow[] }];
  const row = account.rows[0];
  return row ? { account: row, balances: { sums: sumsFrom(sums.rows), holds: holdsFrom(holds.rows) } } : undefined;
}

export interface HoldSnapshot {
  reservation: ReservationRow | undefined;
  tombstone: boolean;
  /** Locked (FOR UPDATE) until the transaction ends; undefined when there is no such account. */
  account: AccountRow | undefined;
  /** The account's balances once it was locked. */
  balances: Balances;
}

/**
 * What a reserve or a settle decides on, in one round trip (the transaction's first, with its BEGIN): the
 * reservation id's advisory lock (lockReservationId), the reservation and its tombstone, then the account's row lock
 * (lockAccount) and, after it, the account's balances. Same locks in the same order as taking them one by one
 * (migrations 002 and 004, hold_snapshot). `accountId` names the account, or is omitted to use the reservation's own (settle).
 */
export async function holdSnapshot(tx: Queryable, reservationId: string, accountId?: string): Promise<HoldSnapshot> {
  const { rows } = await tx.query<{ snapshot: RawSnapshot }>('SELECT hold_snapshot($1::uuid, $2::uuid) AS snapshot', [reservationId, accountId ?? null]);
  const snap = rows[0]!.snapshot;
  return {
    reservation: snap.reservation ?? undefined,
    tombstone: snap.tombstone,
    account: snap.account ? { ...snap.account, created_at: new Date(snap.account.created_at) } : undefined,
    balances: { sums: sumsFrom(snap.sums), holds: holdsFrom(snap.holds) },
  };
}

interface RawSnapshot {
  reservation: ReservationRow | null;
  tombstone: boolean;
  account: (Omit<AccountRow, 'created_at'> & { created_at: string }) | null;
  sums: SumRow[];
  holds: HoldRow[];
}

/** The reservation id's advisory lock and the reservation, in one round trip (with the BEGIN when first). */
export async function lockAndFindReservation(tx: Queryable, id: string): Promise<ReservationRow | undefined> {
  const [, found] = await queryAll(tx, [
    { text: LOCK_RESERVATION_ID, values: [id] },
    { text: `SELECT ${RESERVATION_COLUMNS} FROM reservations WHERE id = $1::uuid`, values: [id] },
  ]);
  return found!.rows[0] as ReservationRow | undefined;
}

// ── journal ────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Records an entry and its postings; returns the entry id. The database re-checks the balance at commit.
 * In a transaction both inserts go with the COMMIT (writeAtCommit).
 */
export async function insertEntry(q: Queryable, entry: EntryDraft): Promise<string> {
  const id = randomUUID();
  await writeAtCommit(q, 'INSERT INTO journal_entries (id, kind, reference) VALUES ($1, $2, $3)', [id, entry.kind, entry.reference]);
  // Any number of postings in one statement of one text (arrays), in their order.
  await writeAtCommit(
    q,
    `INSERT INTO postings (entry_id, ledger_account, asset, amount)
     SELECT $1::uuid, * FROM unnest($2::text[], $3::text[], $4::bigint[])`,
    [id, entry.postings.map((p) => p.ledgerAccount), entry.postings.map((p) => p.asset), entry.postings.map((p) => p.amount.toString())],
  );
  return id;
}

/** Newest first: entries with a posting on the ledger account, each with all its postings (both sides). */
export async function entriesFor(q: Queryable, ledgerAccount: string, limit: number): Promise<StoredEntry[]> {
  const entries = await many<{ id: string; kind: EntryKind; reference: string; created_at: Date }>(
    q,
    `SELECT e.id, e.kind, e.reference, e.created_at FROM journal_entries e
      WHERE EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id AND p.ledger_account = $1)
      ORDER BY e.seq DESC LIMIT $2`,
    [ledgerAccount, limit],
  );
  if (entries.length === 0) return [];
  const postings = await many<{ entry_id: string; ledger_account: string; asset: string; amount: string }>(
    q,
    'SELECT entry_id, ledger_account, asset, amount::text AS amount FROM postings WHERE entry_id = ANY($1::uuid[]) ORDER BY id',
    [entries.map((e) => e.id)],
  );
  const byEntry = new Map<string, Posting[]>();
  for (const p of postings) {
    const list = byEntry.get(p.entry_id) ?? [];
    list.push({ ledgerAccount: p.ledger_account, asset: p.asset, amount: BigInt(p.amount) });
    byEntry.set(p.entry_id, list);
  }
  return entries.map((e) => ({ id: e.id, kind: e.kind, reference: e.reference, createdAt: e.created_at, postings: byEntry.get(e.id) ?? [] }));
}

// ── deposits ───────────────────────────────────────────────────────────────────────────────────────────

/**
 * Claims the idempotency key for a new deposit. Undefined when the key was already used on this account;
 * a concurrent claim of the same key waits for the first transaction and then finds its deposit.
 */
export async function claimDeposit(q: Queryable, deposit: { id: string; accountId: string; key: string; amount: bigint }): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO deposits (id, account_id, idempotency_key, amount) VALUES ($1, $2, $3, $4)
     ON CONFLICT (account_id, idempotency_key) DO NOTHING`,
    [deposit.id, deposit.accountId, deposit.key, deposit.amount.toString()],
  );
  return r.rowCount === 1;
}

export const findDepositByKey = (q: Queryable, accountId: string, key: string): Promise<DepositRow | undefined> =>
  one<DepositRow>(
    q,
    `SELECT d.id, d.account_id, d.amount::text AS amount, e.id AS entry_id
       FROM deposits d JOIN journal_entries e ON e.kind = 'deposit' AND e.reference = d.id::text
      WHERE d.account_id = $1 AND d.idempotency_key = $2`,
    [accountId, key],
  );

// ── reservations ───────────────────────────────────────────────────────────────────────────────────────

const RESERVATION_COLUMNS = 'id, account_id, kind, symbol, amount::text AS amount, quantity::text AS quantity, status, entry_id';

export const findReservation = (q: Queryable, id: string): Promise<ReservationRow | undefined> =>
  one<ReservationRow>(q, `SELECT ${RESERVATION_COLUMNS} FROM reservations WHERE id = $1`, [id]);

export async function insertReservation(
  q: Queryable,
  r: { id: string; accountId: string; kind: 'cash' | 'shares'; symbol: string | null; amount: bigint | null; quantity: bigint | null; status: 'active' | 'released' },
): Promise<ReservationRow> {
  const row = await one<ReservationRow>(
    q,
    `INSERT INTO reservations (id, account_id, kind, symbol, amount, quantity, status) VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING ${RESERVATION_COLUMNS}`,
    [r.id, r.accountId, r.kind, r.symbol, r.amount?.toString() ?? null, r.quantity?.toString() ?? null, r.status],
  );
  return row!;
}

/** A new hold, written with the transaction's COMMIT (write above); returns the row as it will be stored. */
export async function addReservation(
  q: Queryable,
  r: { id: string; accountId: string; kind: 'cash' | 'shares'; symbol: string | null; amount: bigint | null; quantity: bigint | null; status: 'active' | 'released' },
): Promise<ReservationRow> {
  await writeAtCommit(q, 'INSERT INTO reservations (id, account_id, kind, symbol, amount, quantity, status) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    r.id,
    r.accountId,
    r.kind,
    r.symbol,
    r.amount,
    r.quantity,
    r.status,
  ]);
  return {
    id: r.id,
    account_id: r.accountId,
    kind: r.kind,
    symbol: r.symbol,
    amount: r.amount?.toString() ?? null,
    quantity: r.quantity?.toString() ?? null,
    status: r.status,
    entry_id: null,
  };
}

export async function setReservationReleased(q: Queryable, id: string): Promise<void> {
  await writeAtCommit(q, `UPDATE reservations SET status = 'released', updated_at = now() WHERE id = $1 AND status = 'active'`, [id]);
}

export async function setReservationSettled(q: Queryable, id: string, entryId: string): Promise<void> {
  await writeAtCommit(q, `UPDATE reservations SET status = 'settled', entry_id = $1, updated_at = now() WHERE id = $2 AND status = 'active'`, [entryId, id]);
}

export async function addTombstone(q: Queryable, id: string): Promise<void> {
  await writeAtCommit(q, 'INSERT INTO reservation_tombstones (id) VALUES ($1) ON CONFLICT DO NOTHING', [id]);
}

export async function hasTombstone(q: Queryable, id: string): Promise<boolean> {
  return (await one<{ id: string }>(q, 'SELECT id FROM reservation_tombstones WHERE id = $1', [id])) !== undefined;
}

// ── invariants ─────────────────────────────────────────────────────────────────────────────────────────

export interface LedgerTotalsRow {
  entries: number;
  postings: number;
  unbalancedEntries: number;
  totals: { asset: string; sum: bigint }[];
  activeReservations: number;
}

export async function ledgerTotals(q: Queryable): Promise<LedgerTotalsRow> {
  const counts = await one<{ entries: string; postings: string; unbalanced: string; active: string }>(
    q,
    `SELECT (SELECT count(*) FROM journal_entries) AS entries,
            (SELECT count(*) FROM postings) AS postings,
            (SELECT count(DISTINCT entry_id) FROM (SELECT entry_id FROM postings GROUP BY entry_id, asset HAVING sum(amount) <> 0) off) AS unbalanced,
            (SELECT count(*) FROM reservations WHERE status = 'active') AS active`,
    [],
  );
  const totals = await many<{ asset: string; total: string }>(q, 'SELECT asset, sum(amount)::text AS total FROM postings GROUP BY asset ORDER BY asset');
  return {
    entries: Number(counts!.entries),
    postings: Number(counts!.postings),
    unbalancedEntries: Number(counts!.unbalanced),
    totals: totals.map((t) => ({ asset: t.asset, sum: BigInt(t.total) })),
    activeReservations: Number(counts!.active),
  };
}
