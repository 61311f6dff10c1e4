/**
 * Money is never a float. Inside code an amount is a bigint of minor units (cents); on the wire and in JSON it
 * is a decimal string with exactly two decimals ("1234.50"). Share quantities are whole numbers.
 */
export type Minor = bigint;

export const SCALE = 2;
const FACTOR = 10n ** BigInt(SCALE);
const DECIMAL = /^(-)?(0|[1-9]\d{0,15})(?:\.(\d{1,2}))?$/;

export class MoneyFormatError extends Error {
  constructor(value: unknown) {
    super(`not a decimal amount with at most ${SCALE} decimals: ${JSON.stringify(value)}`);
    this.name = 'MoneyFormatError';
  }
}

/** "12.3" → 1230n. Rejects floats-as-strings with more precision, exponents, and whitespace. */
export function parseMoney(value: string): Minor {
  const m = DECIMAL.exec(value);
  if (!m) throw new MoneyFormatError(value);
  const [, sign, whole, frac = ''] = m;
  const minor = BigInt(whole!) * FACTOR + BigInt(frac.padEnd(SCALE, '0') || '0');
  return sign ? -minor : minor;
}

export const isMoneyString = (value: string): boolean => DECIMAL.test(value);

/** 1230n → "12.30". */
export function formatMoney(minor: Minor): string {
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const whole = abs / FACTOR;
  const frac = (abs % FACTOR).toString().padStart(SCALE, '0');
  return `${negative ? '-' : ''}${whole}.${frac}`;
}

/** price × quantity, exact. */
export function times(price: Minor, quantity: number | bigint): Minor {
  if (typeof quantity === 'number' && !Number.isSafeInteger(quantity)) throw new RangeError(`quantity must be a whole number: ${quantity}`);
  return price * BigInt(quantity);
}

export type Rounding = 'up' | 'down' | 'half-up';

/** a × numerator / denominator, rounded as asked (for rates: basis points, slippage). Works for a ≥ 0. */
export function scale(amount: Minor, numerator: bigint, denominator: bigint, rounding: Rounding = 'half-up'): Minor {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const product = amount * numerator;
  const q = product / denominator;
  const r = product % denominator;
  if (r === 0n) return q;
  const positive = product > 0n;
  switch (rounding) {
    case 'down':
      return positive ? q : q - 1n;
    case 'up':
      return positive ? q + 1n : q;
    case 'half-up': {
      const twice = (r < 0n ? -r : r) * 2n;
      if (twice >= denominator) return positive ? q + 1n : q - 1n;
      return q;
    }
  }
}

/** amount × bps / 10 000 (1 bp = 0.01%). */
export const basisPoints = (amount: Minor, bps: bigint | number, rounding: Rounding = 'half-up'): Minor => scale(amount, BigInt(bps), 10_000n, rounding);

export const sum = (amounts: Iterable<Minor>): Minor => {
  let total = 0n;
  for (const a of amounts) total += a;
  return total;
};

export const min = (a: Minor, b: Minor): Minor => (a < b ? a : b);
export const max = (a: Minor, b: Minor): Minor => (a > b ? a : b);
