import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  closeOf,
  DEFAULT_CLOSE,
  endOfDay,
  expiryFor,
  isOpen,
  isValidTimeZone,
  parseTradingHours,
  wallClock,
  zonedTimeToEpoch,
  zoneOffsetMs,
} from '../src/domain/exchange-clock.ts';

const NY = 'America/New_York';
const iso = (ms: number) => new Date(ms).toISOString();
const at = (s: string) => Date.parse(s);

describe('exchange clock: time zone maths', () => {
  it('reads the wall clock in a zone, in winter and in summer', () => {
    assert.deepEqual(wallClock(at('2024-01-15T15:00:00Z'), NY), { year: 2024, month: 1, day: 15, hour: 10, minute: 0, second: 0, weekday: 1 });
    assert.equal(wallClock(at('2024-07-15T15:00:00Z'), NY).hour, 11);
    assert.equal(zoneOffsetMs(at('2024-01-15T15:00:00Z'), NY), -5 * 3_600_000);
    assert.equal(zoneOffsetMs(at('2024-07-15T15:00:00Z'), NY), -4 * 3_600_000);
    assert.equal(zoneOffsetMs(at('2024-07-15T15:00:00Z'), 'Asia/Kolkata'), 5.5 * 3_600_000);
  });

  it('converts a local time to an instant, either side of DST', () => {
    assert.equal(iso(zonedTimeToEpoch({ year: 2024, month: 3, day: 8, hour: 16, minute: 0 }, NY)), '2024-03-08T21:00:00.000Z');
    assert.equal(iso(zonedTimeToEpoch({ year: 2024, month: 3, day: 11, hour: 16, minute: 0 }, NY)), '2024-03-11T20:00:00.000Z');
    assert.equal(iso(zonedTimeToEpoch({ year: 2024, month: 6, day: 3, hour: 16, minute: 30 }, 'Europe/London')), '2024-06-03T15:30:00.000Z');
  });

  it('resolves a time skipped by spring-forward to just after the gap, and a repeated time to its first occurrence', () => {
    // 2024-03-10 02:30 does not exist in New York (02:00 EST → 03:00 EDT).
    assert.equal(iso(zonedTimeToEpoch({ year: 2024, month: 3, day: 10, hour: 2, minute: 30 }, NY)), '2024-03-10T07:30:00.000Z');
    // 2024-11-03 01:30 happens twice (EDT, then EST): the first is 05:30Z.
    assert.equal(iso(zonedTimeToEpoch({ year: 2024, month: 11, day: 3, hour: 1, minute: 30 }, NY)), '2024-11-03T05:30:00.000Z');
  });

  it('validates time zone names', () => {
    assert.ok(isValidTimeZone(NY));
    assert.ok(!isValidTimeZone('Mars/Olympus_Mons'));
  });
});

describe('exchange clock: end of day (time in force)', () => {
  it('an order placed before the close expires at today\'s close in New York', () => {
    assert.equal(iso(endOfDay(at('2024-01-15T15:00:00Z'), NY)), '2024-01-15T21:00:00.000Z'); // 10:00 EST → 16:00 EST
    assert.equal(iso(endOfDay(at('2024-07-15T15:00:00Z'), NY)), '2024-07-15T20:00:00.000Z'); // 11:00 EDT → 16:00 EDT
  });

  it('an order placed at or after the close expires at tomorrow\'s close', () => {
    assert.equal(iso(endOfDay(at('2024-01-15T21:00:00Z'), NY)), '2024-01-16T21:00:00.000Z'); // exactly 16:00
    assert.equal(iso(endOfDay(at('2024-01-15T23:30:00Z'), NY)), '2024-01-16T21:00:00.000Z'); // 18:30 EST
    // 23:30 EST on Jan 15 is already Jan 16 in UTC: the exchange day is what counts.
    assert.equal(iso(endOfDay(at('2024-01-16T04:30:00Z'), NY)), '2024-01-16T21:00:00.000Z');
  });

  it('crosses the spring-forward change: placed on EST evening, expires at 16:00 EDT', () => {
    // Sat 2024-03-09 17:00 EST; Sunday's close is after the switch to daylight time.
    assert.equal(iso(endOfDay(at('2024-03-09T22:00:00Z'), NY)), '2024-03-10T20:00:00.000Z');
    // On the day itself, at 01:30 EST (before the gap).
    assert.equal(iso(endOfDay(at('2024-03-10T06:30:00Z'), NY)), '2024-03-10T20:00:00.000Z');
  });

  it('crosses the fall-back change: placed on EDT evening, expires at 16:00 EST', () => {
    assert.equal(iso(endOfDay(at('2024-11-02T21:00:00Z'), NY)), '2024-11-03T21:00:00.000Z'); // Sat 17:00 EDT
    // During the repeated hour (01:30 EST, second occurrence) the close is still that day's.
    assert.equal(iso(endOfDay(at('2024-11-03T06:30:00Z'), NY)), '2024-11-03T21:00:00.000Z');
  });

  it('works in other zones: London (BST), Tokyo (no DST), Sydney (southern DST)', () => {
    assert.equal(iso(endOfDay(at('2024-03-29T10:00:00Z'), 'Europe/London', 16 * 60 + 30)), '2024-03-29T16:30:00.000Z'); // GMT
    assert.equal(iso(endOfDay(at('2024-04-02T10:00:00Z'), 'Europe/London', 16 * 60 + 30)), '2024-04-02T15:30:00.000Z'); // BST
    assert.equal(iso(endOfDay(at('2024-07-01T01:00:00Z'), 'Asia/Tokyo', 15 * 60)), '2024-07-01T06:00:00.000Z');
    assert.equal(iso(endOfDay(at('2024-07-01T07:00:00Z'), 'Asia/Tokyo', 15 * 60)), '2024-07-02T06:00:00.000Z');
    // Sydney: AEDT (+11) until 2024-04-07 03:00, then AEST (+10).
    assert.equal(iso(endOfDay(at('2024-04-05T23:00:00Z'), 'Australia/Sydney')), '2024-04-06T05:00:00.000Z');
    assert.equal(iso(endOfDay(at('2024-04-06T06:00:00Z'), 'Australia/Sydney')), '2024-04-07T06:00:00.000Z');
  });

  it('is always in the future and at most about a day ahead', () => {
    const start = at('2024-01-01T00:00:00Z');
    for (let t = start; t < start + 400 * 86_400_000; t += 7 * 3_600_000 + 13 * 60_000) {
      const eod = endOfDay(t, NY);
      assert.ok(eod > t && eod - t <= 25 * 3_600_000, `${iso(t)} → ${iso(eod)}`);
      const w = wallClock(eod, NY);
      assert.equal(w.hour * 60 + w.minute, DEFAULT_CLOSE);
    }
  });
});

describe('exchange clock: expiry and trading hours', () => {
  it('market orders never expire; limit orders at the close or after the configured time in force', () => {
    const t = at('2024-01-15T15:00:00Z');
    assert.equal(expiryFor('market', t, { timeZone: NY }), null);
    assert.equal(iso(expiryFor('limit', t, { timeZone: NY })!), '2024-01-15T21:00:00.000Z');
    assert.equal(expiryFor('limit', t, { timeZone: NY, timeInForceSeconds: 1 }), t + 1000);
    assert.equal(iso(expiryFor('limit', t, { timeZone: NY, close: 12 * 60 })!), '2024-01-15T17:00:00.000Z');
  });

  it('parses trading hours', () => {
    assert.deepEqual(parseTradingHours('always'), { kind: 'always' });
    assert.deepEqual(parseTradingHours('09:30-16:00'), { kind: 'session', open: 570, close: 960 });
    for (const bad of ['9:30-16:00', '16:00-09:30', '09:30', 'sometimes', '09:30-16:00-18:00', '24:00-25:00']) {
      assert.throws(() => parseTradingHours(bad), Error, bad);
    }
    assert.equal(closeOf(parseTradingHours('09:30-16:30')), 990);
    assert.equal(closeOf(parseTradingHours('always')), DEFAULT_CLOSE);
  });

  it('is open 09:30–16:00 New York time on weekdays only', () => {
    const hours = parseTradingHours('09:30-16:00');
    assert.ok(isOpen(hours, at('2024-01-15T14:30:00Z'), NY)); // Mon 09:30 EST
    assert.ok(!isOpen(hours, at('2024-01-15T14:29:00Z'), NY)); // 09:29
    assert.ok(isOpen(hours, at('2024-01-15T20:59:00Z'), NY)); // 15:59
    assert.ok(!isOpen(hours, at('2024-01-15T21:00:00Z'), NY)); // 16:00: closed
    assert.ok(isOpen(hours, at('2024-07-15T13:30:00Z'), NY)); // 09:30 EDT
    assert.ok(!isOpen(hours, at('2024-01-13T15:00:00Z'), NY)); // Saturday
    assert.ok(isOpen(parseTradingHours('always'), at('2024-01-13T15:00:00Z'), NY));
  });
});
