import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMoney } from '@simplebank/money';
import { available, cashView, positionsView } from '../src/domain/balances.ts';
import { depositEntry } from '../src/domain/deposit.ts';
import { customerLedgerAccount, formatAmount, imbalances, journalEntry, LedgerError, MAX_POSTING, netFor, SYSTEM_ACCOUNTS, sumsByAsset } from '../src/domain/ledger.ts';
import { checkHold, checkSettlementCover, releaseOutcome, settleDecision, type Hold } from '../src/domain/reservations.ts';
import { grossAmount, netCash, tradeEntry, type Trade } from '../src/domain/settlement.ts';

const ACCOUNT = '11111111-1111-4111-8111-111111111111';
const ORDER = '22222222-2222-4222-8222-222222222222';
const customer = customerLedgerAccount(ACCOUNT);

const amountOf = (postings: { ledgerAccount: string; asset: string; amount: bigint }[], ledgerAccount: string, asset: string) =>
  postings.filter((p) => p.ledgerAccount === ledgerAccount && p.asset === asset).reduce((s, p) => s + p.amount, 0n);

const trade = (over: Partial<Trade> = {}): Trade => ({
  orderId: ORDER,
  accountId: ACCOUNT,
  currency: 'USD',
  side: 'buy',
  symbol: 'AAPL',
  quantity: 3,
  price: parseMoney('190.15'),
  fee: parseMoney('1.99'),
  ...over,
});

describe('journal entries', () => {
  it('accepts a balanced entry and drops zero postings', () => {
    const entry = journalEntry('deposit', 'd1', [
      { ledgerAccount: 'a:1', asset: 'USD', amount: 500n },
      { ledgerAccount: 'b:1', asset: 'USD', amount: -500n },
      { ledgerAccount: 'c:1', asset: 'USD', amount: 0n },
    ]);
    assert.equal(entry.postings.length, 2);
    assert.deepEqual(imbalances(entry.postings), []);
  });

  it('refuses an entry that does not sum to zero in every asset', () => {
    assert.throws(
      () =>
        journalEntry('trade', 'o1', [
          { ledgerAccount: 'a:1', asset: 'USD', amount: 500n },
          { ledgerAccount: 'b:1', asset: 'USD', amount: -500n },
          { ledgerAccount: 'a:1', asset: 'AAPL', amount: 2n },
          { ledgerAccount: 'b:1', asset: 'AAPL', amount: -1n },
        ]),
      (err: unknown) => err instanceof LedgerError && err.code === 'unbalanced_entry' && /AAPL 1/.test(err.message),
    );
  });

  it('does not let one asset offset another', () => {
    assert.throws(
      () => journalEntry('trade', 'o1', [{ ledgerAccount: 'a:1', asset: 'USD', amount: 5n }, { ledgerAccount: 'b:1', asset: 'AAPL', amount: -5n }]),
      (err: unknown) => err instanceof LedgerError && err.code === 'unbalanced_entry',
    );
  });

  it('refuses an entry with fewer than two movements', () => {
    assert.throws(() => journalEntry('deposit', 'd1', [{ ledgerAccount: 'a:1', asset: 'USD', amount: 0n }]), (err: unknown) => err instanceof LedgerError && err.code === 'empty_entry');
  });

  it('refuses postings beyond the ledger limit', () => {
    const big = MAX_POSTING + 1n;
    assert.throws(
      () => journalEntry('deposit', 'd1', [{ ledgerAccount: 'a:1', asset: 'USD', amount: big }, { ledgerAccount: 'b:1', asset: 'USD', amount: -big }]),
      (err: unknown) => err instanceof LedgerError && err.code === 'amount_out_of_range',
    );
  });

  it('formats cash as money and shares as whole numbers', () => {
    assert.equal(formatAmount('USD', -1230n), '-12.30');
    assert.equal(formatAmount('AAPL', -5n), '-5');
  });
});

describe('deposit', () => {
  it('moves cash from the bank to the customer', () => {
    const entry = depositEntry({ depositId: 'd1', accountId: ACCOUNT, currency: 'USD', amount: 10_000n });
    assert.equal(entry.kind, 'deposit');
    assert.equal(entry.reference, 'd1');
    assert.equal(amountOf(entry.postings, customer, 'USD'), 10_000n);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.bank, 'USD'), -10_000n);
    assert.deepEqual(imbalances(entry.postings), []);
  });

  it('refuses a non-positive amount', () => {
    assert.throws(() => depositEntry({ depositId: 'd1', accountId: ACCOUNT, currency: 'USD', amount: 0n }), RangeError);
  });
});

describe('trade settlement', () => {
  it('buy: the customer pays gross + fee and receives the shares', () => {
    const entry = tradeEntry(trade());
    const gross = 3n * 19_015n; // 570.45
    assert.equal(grossAmount(trade()), gross);
    assert.equal(amountOf(entry.postings, customer, 'USD'), -(gross + 199n));
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.clearing, 'USD'), gross);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.fees, 'USD'), 199n);
    assert.equal(amountOf(entry.postings, customer, 'AAPL'), 3n);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.clearing, 'AAPL'), -3n);
    assert.deepEqual(imbalances(entry.postings), []);
    assert.equal(entry.postings.length, 5);
    assert.equal(entry.reference, ORDER);
  });

  it('sell: the customer delivers the shares and receives gross − fee', () => {
    const entry = tradeEntry(trade({ side: 'sell', quantity: 2 }));
    const gross = 2n * 19_015n;
    assert.equal(amountOf(entry.postings, customer, 'AAPL'), -2n);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.clearing, 'AAPL'), 2n);
    assert.equal(amountOf(entry.postings, customer, 'USD'), gross - 199n);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.clearing, 'USD'), -gross);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.fees, 'USD'), 199n);
    assert.deepEqual(imbalances(entry.postings), []);
  });

  it('a zero fee leaves no fee posting', () => {
    const entry = tradeEntry(trade({ fee: 0n }));
    assert.equal(entry.postings.length, 4);
    assert.equal(amountOf(entry.postings, SYSTEM_ACCOUNTS.fees, 'USD'), 0n);
  });

  it('is exact where floats are not: 3 × 0.10 is 0.30', () => {
    const t = trade({ price: parseMoney('0.10'), quantity: 3, fee: parseMoney('0.07') });
    assert.equal(grossAmount(t), 30n);
    assert.equal(netCash(t), 37n);
    assert.equal(netCash({ ...t, side: 'sell' }), 23n);
    assert.equal(amountOf(tradeEntry(t).postings, customer, 'USD'), -37n);
    assert.notEqual(0.1 * 3, 0.3); // why the ledger never sees a float
  });

  it('stays exact for large trades', () => {
    const t = trade({ price: parseMoney('99999.99'), quantity: 1_000_000, fee: parseMoney('0.01') });
    assert.equal(netCash(t), 9_999_999_000_000n + 1n);
    assert.deepEqual(imbalances(tradeEntry(t).postings), []);
  });

  it('refuses bad quantities, prices and fees', () => {
    assert.throws(() => tradeEntry(trade({ quantity: 1.5 })), RangeError);
    assert.throws(() => tradeEntry(trade({ quantity: 0 })), RangeError);
    assert.throws(() => tradeEntry(trade({ price: 0n })), RangeError);
    assert.throws(() => tradeEntry(trade({ fee: -1n })), RangeError);
  });

  it('netFor gives the customer side of an entry per asset', () => {
    const movement = netFor(customer, tradeEntry(trade()).postings);
    assert.deepEqual([...movement], [['AAPL', 3n], ['USD', -(3n * 19_015n + 199n)]]);
  });
});

describe('balances', () => {
  it('available is the balance less active holds', () => {
    assert.equal(available(10_000n, 2_500n), 7_500n);
    assert.deepEqual(cashView(10_000n, 2_500n), { balance: 10_000n, reserved: 2_500n, available: 7_500n });
  });

  it('positions come from the sums, skip cash and empty ones, and subtract share holds', () => {
    const sums = sumsByAsset([
      { ledgerAccount: customer, asset: 'USD', amount: 5_000n },
      { ledgerAccount: customer, asset: 'MSFT', amount: 4n },
      { ledgerAccount: customer, asset: 'AAPL', amount: 10n },
      { ledgerAccount: customer, asset: 'TSLA', amount: 2n },
      { ledgerAccount: customer, asset: 'TSLA', amount: -2n },
    ]);
    assert.deepEqual(positionsView(sums, new Map([['AAPL', 3n]])), [
      { symbol: 'AAPL', quantity: 10n, reserved: 3n, available: 7n },
      { symbol: 'MSFT', quantity: 4n, reserved: 0n, available: 4n },
    ]);
  });
});

describe('reservations', () => {
  const cash = (amount: bigint): Hold => ({ kind: 'cash', asset: 'USD', amount });

  it('a hold fits exactly what is available, and no more', () => {
    assert.equal(checkHold(cash(1_000n), 1_000n), undefined);
    assert.deepEqual(checkHold(cash(1_001n), 1_000n), { code: 'insufficient_funds', detail: '10.01 USD requested, 10.00 available' });
    assert.equal(checkHold({ kind: 'shares', asset: 'AAPL', amount: 4n }, 3n)?.code, 'insufficient_shares');
  });

  it('release is a no-op for released, settled and unknown holds', () => {
    assert.deepEqual(releaseOutcome('active'), { release: true, status: 'released' });
    assert.deepEqual(releaseOutcome('released'), { release: false, status: 'released' });
    assert.deepEqual(releaseOutcome('settled'), { release: false, status: 'settled' });
    assert.deepEqual(releaseOutcome(undefined), { release: false, status: 'unknown' });
  });

  it('settles only active holds of the matching kind and symbol', () => {
    assert.deepEqual(settleDecision({ status: 'active', kind: 'cash', symbol: null }, { side: 'buy', symbol: 'AAPL' }), { action: 'settle' });
    assert.deepEqual(settleDecision({ status: 'settled', kind: 'cash', symbol: null }, { side: 'buy', symbol: 'AAPL' }), { action: 'already-settled' });
    const released = settleDecision({ status: 'released', kind: 'cash', symbol: null }, { side: 'buy', symbol: 'AAPL' });
    assert.equal(released.action === 'refuse' && released.refusal.code, 'reservation_released');
    const wrongKind = settleDecision({ status: 'active', kind: 'cash', symbol: null }, { side: 'sell', symbol: 'AAPL' });
    assert.equal(wrongKind.action === 'refuse' && wrongKind.refusal.code, 'reservation_mismatch');
    const wrongSymbol = settleDecision({ status: 'active', kind: 'shares', symbol: 'MSFT' }, { side: 'sell', symbol: 'AAPL' });
    assert.equal(wrongSymbol.action === 'refuse' && wrongSymbol.refusal.code, 'reservation_mismatch');
  });

  it('a buy above its hold settles only if the account has the difference available', () => {
    const movement = new Map([['USD', -1_200n], ['AAPL', 2n]]);
    // Held 10.00, need 12.00: 2.00 more must be available.
    assert.equal(checkSettlementCover(movement, new Map([['USD', 200n]]), cash(1_000n)), undefined);
    assert.equal(checkSettlementCover(movement, new Map([['USD', 199n]]), cash(1_000n))?.code, 'insufficient_funds');
    // Below its hold: the rest is simply no longer held.
    assert.equal(checkSettlementCover(new Map([['USD', -800n]]), new Map([['USD', 0n]]), cash(1_000n)), undefined);
  });

  it('a sell needs its shares, counting the ones it held', () => {
    const hold: Hold = { kind: 'shares', asset: 'AAPL', amount: 5n };
    assert.equal(checkSettlementCover(new Map([['AAPL', -5n], ['USD', 900n]]), new Map([['AAPL', 0n]]), hold), undefined);
    assert.equal(checkSettlementCover(new Map([['AAPL', -6n]]), new Map([['AAPL', 0n]]), hold)?.code, 'insufficient_shares');
  });
});
