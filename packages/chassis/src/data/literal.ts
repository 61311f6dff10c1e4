import pg from 'pg';

/**
 * SQL literals, for statements sent without parameters. A statement without parameters goes over the simple query
 * protocol, which can carry several statements in one round trip (`BEGIN; INSERT …`, `INSERT …; COMMIT`), where
 * parameters cannot be bound. Every value is escaped here, so building SQL with these is as safe as binding.
 *
 * - null/undefined → NULL; booleans → TRUE/FALSE; finite numbers and bigints → their digits (negative ones in
 *   parentheses, so `x - ${n}` stays an expression);
 * - strings → an escaped literal (`'it''s'`, `E'a\\b'`), typed by its context like a bound parameter;
 * - Dates → their ISO-8601 instant; arrays and plain objects → their JSON (cast with `::jsonb` where needed).
 */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  switch (typeof value) {
    case 'boolean':
      return value ? 'TRUE' : 'FALSE';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
      return value < 0 ? `(${value})` : String(value);
    case 'bigint':
      return value < 0n ? `(${value})` : value.toString();
    case 'string':
      return quote(value);
    case 'object':
      if (value instanceof Date) return `'${value.toISOString()}'`;
      return quote(JSON.stringify(value));
    default:
      throw new TypeError(`cannot be an SQL literal: ${typeof value}`);
  }
}

/** Nothing to escape in most strings (uuids, tickers, JSON without quotes or backslashes): checked natively first. */
const NEEDS_ESCAPING = /['\\]/;

function quote(value: string): string {
  return NEEDS_ESCAPING.test(value) ? pg.escapeLiteral(value) : `'${value}'`;
}

/** Tagged template: `sql\`SELECT … WHERE id = ${id}\`` with every value inlined as a literal (sqlLiteral). */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): string {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += sqlLiteral(values[i]) + strings[i + 1]!;
  return text;
}
