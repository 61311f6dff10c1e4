import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMoney, parseMoney } from '@simplebank/money';
import { computeFee, InvalidScheduleError, validateSchedule, type FeeSchedule } from '../src/domain/fee.ts';

const DEFAULT: FeeSchedule = { bps: 10, minimum: parseMoney('1.00'), maximum: parseMoney('50.00') };
const fee = (notional: string, schedule: FeeSchedule = DEFAULT) => formatMoney(computeFee(parseMoney(notional), schedule));

test('the default schedule charges 0.10% of the notional between 1.00 and 50.00', () => {
  assert.equal(fee('5000.00'), '5.00');
  assert.equal(fee('12345.67'), '12.35'); // 12.34567 → 12.35
  assert.equal(fee('1000.00'), '1.00'); // exactly the minimum
  assert.equal(fee('50000.00'), '50.00'); // exactly the maximum
});

test('a zero notional costs nothing, whatever the minimum', () => {
  assert.equal(fee('0.00'), '0.00');
  assert.equal(fee('0'), '0.00');
});

test('small trades pay the minimum, even above their notional', () => {
  assert.equal(fee('0.01'), '1.00');
  assert.equal(fee('999.99'), '1.00');
  assert.equal(fee('0.50'), '1.00');
});

test('large trades pay the maximum', () => {
  assert.equal(fee('50000.01'), '50.00');
  assert.equal(fee('9999999999999999.99'), '50.00');
});

test('rounds half up at the cent, computed exactly in integers', () => {
  const noLimits: FeeSchedule = { bps: 10, minimum: 0n, maximum: parseMoney('1000000.00') };
  // 10 bps of x cents = x / 1000 cents: the remainder decides.
  assert.equal(fee('1004.99', noLimits), '1.00'); // 100.499 cents → 100
  assert.equal(fee('1005.00', noLimits), '1.01'); // 100.5 cents → 101 (half goes up)
  assert.equal(fee('1005.01', noLimits), '1.01'); // 100.501 → 101
  assert.equal(fee('1015.00', noLimits), '1.02'); // 101.5 → 102 (half up, not to even)
  assert.equal(fee('0.01', noLimits), '0.00'); // 0.001 cents → 0
  assert.equal(fee('5.00', noLimits), '0.01'); // 0.5 cents → 1
  assert.equal(fee('4.99', noLimits), '0.00'); // 0.499 cents → 0
  // An odd rate and a notional floats get wrong: 0.1 + 0.2 style inputs stay exact.
  assert.equal(fee('333.33', { bps: 15, minimum: 0n, maximum: parseMoney('1000.00') }), '0.50'); // 49.9995 → 50
  assert.equal(fee('9999999999999999.99', { bps: 1, minimum: 0n, maximum: parseMoney('9999999999999999.99') }), '1000000000000.00'); // 99 999 999 999 999.9999 cents → up
});

test('the clamp applies after rounding', () => {
  // Just above the minimum, the rounded proportional fee shows through; just below, the minimum does.
  assert.equal(fee('1004.99'), '1.00'); // 1.00499 → 1.00
  assert.equal(fee('1005.00'), '1.01'); // 1.005 → 1.01, above the minimum
  assert.equal(fee('999.49'), '1.00'); // 0.99949 → 1.00 by the minimum
  // Rounding up to just above the maximum must not exceed it.
  assert.equal(fee('50004.99'), '50.00'); // 50.00499 → 50.00
  assert.equal(fee('50005.00'), '50.00'); // 50.005 → 50.01 → clamped
  // A flat fee: minimum == maximum.
  const flat: FeeSchedule = { bps: 10, minimum: parseMoney('1.00'), maximum: parseMoney('1.00') };
  assert.equal(fee('1.00', flat), '1.00');
  assert.equal(fee('100000.00', flat), '1.00');
});

test('a zero rate charges only the minimum; a zero minimum lets tiny trades be free', () => {
  assert.equal(fee('1000000.00', { bps: 0, minimum: parseMoney('1.00'), maximum: parseMoney('50.00') }), '1.00');
  assert.equal(fee('1.00', { bps: 10, minimum: 0n, maximum: parseMoney('50.00') }), '0.00');
});

test('a negative notional is refused', () => {
  assert.throws(() => computeFee(-1n, DEFAULT), RangeError);
});

test('validates the schedule as a whole', () => {
  assert.deepEqual(validateSchedule(DEFAULT), DEFAULT);
  assert.throws(() => validateSchedule({ ...DEFAULT, minimum: parseMoney('60.00') }), InvalidScheduleError);
  assert.throws(() => validateSchedule({ ...DEFAULT, minimum: -1n }), InvalidScheduleError);
  assert.throws(() => validateSchedule({ ...DEFAULT, bps: 10_001 }), InvalidScheduleError);
  assert.throws(() => validateSchedule({ ...DEFAULT, bps: 1.5 }), InvalidScheduleError);
  assert.throws(() => validateSchedule({ ...DEFAULT, bps: -1 }), InvalidScheduleError);
  // min == max is a flat fee: allowed.
  assert.doesNotThrow(() => validateSchedule({ ...DEFAULT, minimum: parseMoney('5.00'), maximum: parseMoney('5.00') }));
});
