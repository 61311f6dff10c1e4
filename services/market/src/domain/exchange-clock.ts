/**
 * Exchange time: trading hours and end-of-day expiry in the exchange's own time zone (America/New_York by
 * default), computed with Intl so daylight saving time is the IANA database's business, not ours.
 * Pure: every function takes the instant it reasons about.
 */

export interface WallClock {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

/** Minutes after local midnight, e.g. 16:00 → 960. */
export type MinuteOfDay = number;

export type TradingHours = { kind: 'always' } | { kind: 'session'; open: MinuteOfDay; close: MinuteOfDay };

/** Default close for end-of-day expiry when the exchange trades around the clock: 16:00, as NYSE and Nasdaq. */
export const DEFAULT_CLOSE: MinuteOfDay = 16 * 60;

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for an unknown zone, which config validation turns into a start-up error.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall clock in `timeZone` at instant `epochMs`. */
export function wallClock(epochMs: number, timeZone: string): WallClock {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS[parts.weekday!]!,
  };
}

/** How far `timeZone` is ahead of UTC at `epochMs`, in ms (New York in winter: −5 h). */
export function zoneOffsetMs(epochMs: number, timeZone: string): number {
  const w = wallClock(epochMs, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(epochMs / 1000) * 1000;
}

/**
 * The instant at which the wall clock in `timeZone` reads the given local date and time.
 * A time skipped by a spring-forward gap resolves to the instant just after the gap (02:30 → 03:30);
 * a time repeated by a fall-back overlap resolves to its first (daylight) occurrence.
 */
export function zonedTimeToEpoch(local: { year: number; month: number; day: number; hour: number; minute: number }, timeZone: string): number {
  const naive = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute);
  // Offsets on either side of the instant: if they differ, a transition happens within a day of it.
  const before = zoneOffsetMs(naive - 86_400_000, timeZone);
  const after = zoneOffsetMs(naive + 86_400_000, timeZone);
  const candidates = [naive - before, naive - after];
  // Keep the candidates whose wall clock is the one asked for; the earliest is the first occurrence.
  const exact = candidates.filter((c) => c + zoneOffsetMs(c, timeZone) === naive).sort((a, b) => a - b);
  if (exact.length > 0) return exact[0]!;
  // In a gap: no instant shows that time; the earlier offset carries it past the gap.
  return naive - before;
}

const addDays = (d: { year: number; month: number; day: number }, n: number) => {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
};

/**
 * End of the trading day for an order placed at `epochMs`: today's close in exchange time, or tomorrow's if
 * today's close has already passed (the order then lives through the next session).
 */
export function endOfDay(epochMs: number, timeZone: string, close: MinuteOfDay = DEFAULT_CLOSE): number {
  const now = wallClock(epochMs, timeZone);
  const at = (d: { year: number; month: number; day: number }) =>
    zonedTimeToEpoch({ ...d, hour: Math.floor(close / 60), minute: close % 60 }, timeZone);
  const today = at(now);
  return today > epochMs ? today : at(addDays(now, 1));
}

/**
 * When an order placed at `placedAtMs` expires: market orders never (they fill at once); limit orders after
 * `timeInForceSeconds` when configured (tests), else at the end of the exchange day.
 */
export function expiryFor(
  type: 'market' | 'limit',
  placedAtMs: number,
  options: { timeZone: string; close?: MinuteOfDay; timeInForceSeconds?: number | undefined },
): number | null {
  if (type === 'market') return null;
  if (options.timeInForceSeconds !== undefined) return placedAtMs + options.timeInForceSeconds * 1000;
  return endOfDay(placedAtMs, options.timeZone, options.close ?? DEFAULT_CLOSE);
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** `always`, or `HH:MM-HH:MM` (local exchange time, Monday to Friday). */
export function parseTradingHours(text: string): TradingHours {
  const value = text.trim().toLowerCase();
  if (value === 'always') return { kind: 'always' };
  const [from, to, ...rest] = value.split('-');
  const open = from ? HHMM.exec(from.trim()) : null;
  const close = to ? HHMM.exec(to.trim()) : null;
  if (!open || !close || rest.length > 0) throw new Error(`trading hours must be "always" or "HH:MM-HH:MM": ${JSON.stringify(text)}`);
  const o = Number(open[1]) * 60 + Number(open[2]);
  const c = Number(close[1]) * 60 + Number(close[2]);
  if (c <= o) throw new Error(`trading hours must close after they open: ${JSON.stringify(text)}`);
  return { kind: 'session', open: o, close: c };
}

/** Whether the exchange takes orders at `epochMs`: within the session, on a weekday, in exchange time. */
export function isOpen(hours: TradingHours, epochMs: number, timeZone: string): boolean {
  if (hours.kind === 'always') return true;
  const w = wallClock(epochMs, timeZone);
  if (w.weekday === 0 || w.weekday === 6) return false;
  const minute = w.hour * 60 + w.minute;
  return minute >= hours.open && minute < hours.close;
}

/** The close used for end-of-day expiry: the session's close, or 16:00 when trading around the clock. */
export const closeOf = (hours: TradingHours): MinuteOfDay => (hours.kind === 'session' ? hours.close : DEFAULT_CLOSE);
