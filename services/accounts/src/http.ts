import { randomUUID } from 'node:crypto';
import { answerItem, groupCommit, type Handlers, type Queryable } from '@simplebank/chassis';
import type { z } from 'zod';
import { formatMoney, parseMoney } from '@simplebank/money';
import { accountsContract, type ReservationRequest, type Settlement } from './contract.ts';
import type { AccountsContext } from './context.ts';
import {
  accountWithBalances,
  addReservation,
  addTombstone,
  claimDeposit,
  entriesFor,
  findAccount,
  findDepositByKey,
  holdSnapshot,
  insertEntry,
  ledgerTotals,
  listAccounts,
  lockAndFindReservation,
  setReservationReleased,
  setReservationSettled,
  type AccountRow,
  type Balances,
  type ReservationRow,
} from './data.ts';
import { available } from './domain/balances.ts';
import { depositEntry } from './domain/deposit.ts';
import { customerLedgerAccount, formatAmount, isCurrency, netFor } from './domain/ledger.ts';
import { checkHold, checkSettlementCover, releaseOutcome, settleDecision, type Hold } from './domain/reservations.ts';
import { tradeEntry } from './domain/settlement.ts';
import { openAndAnnounce } from './open-account.ts';
import { accountNotFound, idempotencyKeyReused, ledgerRules, refused, reservationNotFound } from './problems.ts';
import { accountSummary, detailView, entryView, reservationView } from './views.ts';

type AccountsHandlers = Handlers<typeof accountsContract>;

/** The account, if it exists and — when the caller names a customer — belongs to them; else 404 either way. */
async function scopedAccount(q: Queryable, id: string, customerId: string | undefined): Promise<AccountRow> {
  const account = await findAccount(q, id);
  if (!account || (customerId !== undefined && account.customer_id !== customerId)) throw accountNotFound();
  return account;
}

const holdOf = (r: Pick<ReservationRow, 'kind' | 'symbol' | 'amount' | 'quantity'>, currency: string): Hold =>
  r.kind === 'cash' ? { kind: 'cash', asset: currency, amount: BigInt(r.amount!) } : { kind: 'shares', asset: r.symbol!, amount: BigInt(r.quantity!) };

/** Available per asset (active holds subtracted), for the assets asked about. */
function availableOf({ sums, holds }: Balances, assets: Iterable<string>): Map<string, bigint> {
  const result = new Map<string, bigint>();
  for (const asset of assets) {
    const held = isCurrency(asset) ? holds.cash : (holds.shares.get(asset) ?? 0n);
    result.set(asset, available(sums.get(asset) ?? 0n, held));
  }
  return result;
}

export function accountRoutes(ctx: AccountsContext): Pick<AccountsHandlers, 'openAccount' | 'listAccounts' | 'getAccount' | 'deposit' | 'listEntries' | 'ledgerTotals'> {
  const { db } = ctx;
  const deposits = ctx.metrics.counter<'currency'>({ name: 'simplebank_deposits_total', help: 'deposits accepted (a repeated idempotency key is not a new one), by currency', labelNames: ['currency'] });
  return {
    async openAccount({ body }) {
      const { account, created, summary } = await db.tx(async (tx) => {
        const opened = await openAndAnnounce(ctx, tx, body.customerId, body.currency);
        return { ...opened, summary: await accountSummary(tx, opened.account) };
      });
      const headers = { location: `/accounts/${account.id}` };
      return created ? { status: 201, body: summary, headers } : { status: 200, body: summary, headers };
    },

    async listAccounts({ query }) {
      const accounts = await listAccounts(db, query.customerId);
      return { status: 200, body: await Promise.all(accounts.map((a) => accountSummary(db, a))) };
    },

    async getAccount({ params, query }) {
      // The account and its balances in one round trip.
      const found = await accountWithBalances(db, params.id);
      if (!found || (query.customerId !== undefined && found.account.customer_id !== query.customerId)) throw accountNotFound();
      return { status: 200, body: detailView(found.account, found.balances) };
    },

    async deposit({ params, query, headers, body }) {
      const key = headers['idempotency-key'];
      const amount = parseMoney(body.amount);
      const result = await db.tx(async (tx) => {
        const account = await scopedAccount(tx, params.id, query.customerId);
        const depositId = randomUUID();
        const entry = ledgerRules(() => depositEntry({ depositId, accountId: account.id, currency: account.currency, amount }));
        if (!(await claimDeposit(tx, { id: depositId, accountId: account.id, key, amount }))) {
          // A retry: answer as the first time, unless the key is being reused for something else.
          const prior = await findDepositByKey(tx, account.id, key);
          if (!prior) throw new Error('deposit key claimed but no deposit found');
          if (BigInt(prior.amount) !== amount) throw idempotencyKeyReused();
          return { id: prior.id, accountId: account.id, entryId: prior.entry_id, amount: formatMoney(BigInt(prior.amount)) };
        }
        const entryId = await insertEntry(tx, entry);
        await ctx.publish(tx, accountsContract.events.FundsDeposited, {
          subject: account.id,
          data: { accountId: account.id, depositId, amount: formatMoney(amount) },
        });
        tx.afterCommit(() => deposits.inc({ currency: account.currency }));
        return { id: depositId, accountId: account.id, entryId, amount: formatMoney(amount) };
      });
      return { status: 201, body: result };
    },

    async listEntries({ params, query }) {
      const account = await scopedAccount(db, params.id, query.customerId);
      const entries = await entriesFor(db, customerLedgerAccount(account.id), query.limit);
      return { status: 200, body: entries.map(entryView) };
    },

    async ledgerTotals() {
      // One snapshot, so counts and sums describe the same ledger even while trades are being written.
      const totals = await db.tx(async (tx) => {
        await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        return ledgerTotals(tx);
      });
      return {
        status: 200,
        body: { ...totals, totals: totals.totals.map((t) => ({ asset: t.asset, sum: formatAmount(t.asset, t.sum) })) },
      };
    },
  };
}

/**
 * The saga's calls (reserve, release, settle) come in bursts under load: those that arrive together share one
 * transaction (chassis groupCommit), each seeing what the ones before it wrote, so a burst costs one BEGIN and one
 * COMMIT, and the calls on one account queue in memory instead of on its row lock. One such transaction at a time:
 * a batch locks several accounts in the order its calls came, and two at once could deadlock. A refusal (409) rolls
 * its batch back and every call of it runs again alone, with the outcome it would have had alone.
 */
export const RESERVATION_BATCH = { maxSize: 32, transactions: 1 };

type ReserveBody = z.infer<typeof ReservationRequest>;
type SettleBody = z.infer<typeof Settlement>;

export function reservationRoutes(ctx: AccountsContext): Pick<AccountsHandlers, 'reserve' | 'release' | 'settle' | 'reserveBatch' | 'settleBatch'> {
  const inGroup = groupCommit(ctx.db, RESERVATION_BATCH);

  // Alone, each of these is two round trips: the transaction's first message takes its locks and reads what the
  // decision needs (data.ts: holdSnapshot, lockAndFindReservation), and its writes go with the COMMIT.

  /** PUT /reservations/:id's work, shared by reserveBatch's items. */
  function reserveOne(id: string, body: ReserveBody) {
    return inGroup(async (tx) => {
      // The reservation id's lock serialises reserve/release/settle of this hold; the account's row lock queues
      // every hold on the account, so two reservations can never both spend the same cash.
      const snap = await holdSnapshot(tx, id, body.accountId);
      if (snap.reservation) return { status: 200 as const, body: reservationView(snap.reservation) };
      const account = snap.account;
      if (!account) throw accountNotFound();
      const hold: Hold = body.kind === 'cash'
        ? { kind: 'cash', asset: account.currency, amount: parseMoney(body.amount) }
        : { kind: 'shares', asset: body.symbol, amount: BigInt(body.quantity) };
      const row = {
        id,
        accountId: account.id,
        kind: hold.kind,
        symbol: hold.kind === 'shares' ? hold.asset : null,
        amount: hold.kind === 'cash' ? hold.amount : null,
        quantity: hold.kind === 'shares' ? hold.amount : null,
      };
      if (snap.tombstone) {
        // The order was compensated before this reserve arrived: record the hold as already released.
        return { status: 200 as const, body: reservationView(await addReservation(tx, { ...row, status: 'released' })) };
      }
      const free = availableOf(snap.balances, [hold.asset]).get(hold.asset) ?? 0n;
      const refusal = checkHold(hold, free);
      if (refusal) throw refused(refusal);
      return { status: 201 as const, body: reservationView(await addReservation(tx, { ...row, status: 'active' })) };
    });
  }

  /** POST /reservations/:id/settle's work, shared by settleBatch's items. */
  async function settleOne(id: string, body: SettleBody) {
    const entryId = await inGroup(async (tx) => {
      const snap = await holdSnapshot(tx, id);
      const reservation = snap.reservation;
      if (!reservation) {
        if (snap.tombstone) throw refused({ code: 'reservation_released', detail: 'the order was compensated before it was reserved' });
        throw reservationNotFound();
      }
      const decision = settleDecision(reservation, body);
      if (decision.action === 'already-settled') return reservation.entry_id!;
      if (decision.action === 'refuse') throw refused(decision.refusal);

      const account = snap.account;
      if (!account) throw accountNotFound();
      const trade = {
        orderId: id,
        accountId: account.id,
        currency: account.currency,
        side: body.side,
        symbol: body.symbol,
        quantity: body.quantity,
        price: parseMoney(body.price),
        fee: parseMoney(body.fee),
      };
      const entry = ledgerRules(() => tradeEntry(trade));
      const movement = netFor(customerLedgerAccount(account.id), entry.postings);
      const refusal = checkSettlementCover(movement, availableOf(snap.balances, movement.keys()), holdOf(reservation, account.currency));
      if (refusal) throw refused(refusal);

      const newEntryId = await insertEntry(tx, entry);
      await setReservationSettled(tx, id, newEntryId);
      await ctx.publish(tx, accountsContract.events.TradeSettled, {
        subject: account.id,
        correlationId: id,
        data: { accountId: account.id, orderId: id, side: body.side, symbol: body.symbol, quantity: body.quantity, price: body.price, fee: body.fee },
      });
      return newEntryId;
    });
    return { status: 200 as const, body: { id, entryId, status: 'settled' as const } };
  }

  return {
    reserve: ({ params, body }) => reserveOne(params.id, body),

    async release({ params }) {
      const status = await inGroup(async (tx) => {
        const existing = await lockAndFindReservation(tx, params.id);
        const outcome = releaseOutcome(existing?.status);
        if (outcome.release) await setReservationReleased(tx, params.id);
        else if (outcome.status === 'unknown') await addTombstone(tx, params.id);
        return outcome.status;
      });
      return { status: 200, body: { id: params.id, status } };
    },

    settle: ({ params, body }) => settleOne(params.id, body),

    // Each item goes the way a lone call goes, side by side, so group commit puts them in one transaction. A refusal
    // (4xx) is that item's answer; anything else fails the call, and the caller makes the items one by one.
    reserveBatch: async ({ body }) => ({
      status: 200,
      body: { results: await Promise.all(body.reservations.map(({ id, ...hold }) => answerItem(reserveOne(id, hold as ReserveBody)))) },
    }),

    settleBatch: async ({ body }) => ({
      status: 200,
      body: { results: await Promise.all(body.settlements.map(({ id, ...terms }) => answerItem(settleOne(id, terms)))) },
    }),
  };
}

export const routes = (ctx: AccountsContext): AccountsHandlers => ({ ...accountRoutes(ctx), ...reservationRoutes(ctx) });
