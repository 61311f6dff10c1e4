import { createRequire } from 'node:module';
import type pg from 'pg';
import { sqlLiteral } from './literal.ts';

/**
 * SQL-level prepared statements, for statements with parameters that travel in a message with others (db.ts: the
 * first query of a transaction with its BEGIN, deferred writes with the COMMIT). The simple query protocol, the only
 * one that carries several statements in one round trip, cannot bind parameters, so such a statement used to be
 * sent with its values inlined as literals, and PostgreSQL parsed, analysed and planned it afresh on every call
 * (place-order: ~24 plans per order, most of a millisecond of server CPU). Instead it runs as
 * `EXECUTE sxN('…', …)` of a statement prepared once on the connection (`PREPARE sxN AS <text>`), whose plan the
 * server caches as it does for the protocol-level named statements of db.ts' queryConfig.
 *
 * The arguments are the values as node-postgres would bind them (its own `prepareValue`: Dates, arrays, JSON), each
 * an untyped literal that takes the parameter's type, so a statement means exactly what it means bound.
 */

// node-postgres' conversion of a JavaScript value into a parameter's text (not in its type definitions).
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue(value: unknown): unknown };

/**
 * Distinct statement texts, at most: each connection keeps every statement it prepared until it closes, so texts of
 * varying shape (a VALUES list per row count) must not be fed here; pass such rows as one array or JSON parameter.
 */
export const MAX_PREPARED_STATEMENTS = 2000;

const namesByText = new Map<string, string>();
const textsByName = new Map<string, string>();
const preparedOn = new WeakMap<pg.ClientBase, Set<string>>();

export interface Execute {
  /** The prepared statement's name (`sx0`, `sx1`, …), the same for a text in every connection. */
  name: string;
  /** `EXECUTE name(args…)`. */
  sql: string;
}

/**
 * `text` with `values` as an `EXECUTE` of its prepared statement. Undefined when it cannot be one: a value that binds
 * as bytes (Buffer), or MAX_PREPARED_STATEMENTS texts already named.
 */
export function executeSql(text: string, values: readonly unknown[]): Execute | undefined {
  const args: string[] = [];
  for (const value of values) {
    const prepared = prepareValue(value);
    if (prepared === null) args.push('NULL');
    else if (typeof prepared === 'string') args.push(sqlLiteral(prepared));
    else return undefined;
  }
  let name = namesByText.get(text);
  if (name === undefined) {
    if (namesByText.size >= MAX_PREPARED_STATEMENTS) return undefined;
    name = `sx${namesByText.size}`;
    namesByText.set(text, name);
    textsByName.set(name, text);
  }
  return { name, sql: `EXECUTE ${name}(${args.join(', ')})` };
}

/**
 * The `PREPARE`s `client` still lacks of the statements `names`, as SQL to send ahead of the message that executes
 * them (empty: none), and how many statements that SQL holds. They count as prepared from now on: a caller whose
 * message fails must not reuse the connection (it cannot tell which of them ran).
 */
export function preparesFor(client: pg.ClientBase, names: Iterable<string>): { sql: string; count: number } {
  let prepared = preparedOn.get(client);
  if (prepared === undefined) {
    prepared = new Set();
    preparedOn.set(client, prepared);
  }
  let sql = '';
  let count = 0;
  for (const name of names) {
    if (prepared.has(name)) continue;
    prepared.add(name);
    sql += `PREPARE ${name} AS ${textsByName.get(name)!};\n`;
    count++;
  }
  return { sql, count };
}
