import type { Queryable } from '@simplebank/chassis';

export interface InstrumentRow {
  symbol: string;
  name: string;
  currency: 'USD';
  /** BIGINT cents, as pg returns it (a string). */
  base_price: string;
}

export async function loadInstruments(db: Queryable): Promise<InstrumentRow[]> {
  const { rows } = await db.query<InstrumentRow>('SELECT symbol, name, currency, base_price FROM instruments ORDER BY symbol');
  return rows;
}
