import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basisPoints, formatMoney, parseMoney, scale, times, MoneyFormatError } from '../src/money.ts';
import { positiveAmountString } from '../src/schemas.ts';

test('parses and formats decimal strings exactly', () => {
  assert.equal(parseMoney('12.3'), 1230n);
  assert.equal(parseMoney('0.01'), 1n);
  assert.equal(parseMoney('-5'), -500n);
  assert.equal(formatMoney(1230n), '12.30');
  assert.equal(formatMoney(-1n), '-0.01');
  assert.equal(formatMoney(parseMoney('9999999999999999.99')), '9999999999999999.99');
});

test('rejects what is not an exact two-decimal amount', () => {
  for (const bad of ['1.234', '1e3', ' 1', '01', '', '.5', '1.', 'NaN', '0x10']) {
    assert.throws(() => parseMoney(bad), MoneyFormatError, bad);
  }
});

test('0.1 + 0.2 is exactly 0.3', () => {
  assert.equal(formatMoney(parseMoney('0.1') + parseMoney('0.2')), '0.30');
});

test('multiplies by whole quantities and refuses fractional shares', () => {
  assert.equal(times(parseMoney('187.23'), 3), parseMoney('561.69'));
  assert.throws(() => times(100n, 1.5), RangeError);
});

test('scales with explicit rounding', () => {
  assert.equal(basisPoints(parseMoney('1000.00'), 10), parseMoney('1.00'));
  assert.equal(basisPoints(parseMoney('10.05'), 10), 1n); // 0.01005 → 0.01 half-up
  assert.equal(scale(101n, 1n, 2n, 'half-up'), 51n);
  assert.equal(scale(101n, 1n, 2n, 'down'), 50n);
  assert.equal(scale(100n, 1n, 3n, 'up'), 34n);
});

test('wire schema accepts positive amounts only', () => {
  assert.equal(positiveAmountString.safeParse('10.00').success, true);
  assert.equal(positiveAmountString.safeParse('0.00').success, false);
  assert.equal(positiveAmountString.safeParse('-1.00').success, false);
  assert.equal(positiveAmountString.safeParse(10).success, false);
});
