/**
 * Market prices as the reserve step sizes holds with them. market-data quotes in ticks (a second by default, every
 * quote says the tick it belongs to), so asking again for each of hundreds of orders a second brings back the same
 * number: a price is kept for `ttlMs` (well under a tick) and one request per symbol is in flight at a time.
 * Only prices are kept: an unknown symbol (404) is asked about each time. `ttlMs` 0 asks every time.
 */
export class PriceCache {
  readonly #prices = new Map<string, { price: bigint; until: number }>();
  readonly #inFlight = new Map<string, Promise<bigint>>();

  constructor(
    private readonly ttlMs: number,
    private readonly fetch: (symbol: string) => Promise<bigint>,
    private readonly now: () => number = Date.now,
  ) {}

  get(symbol: string): Promise<bigint> {
    if (this.ttlMs <= 0) return this.fetch(symbol);
    const cached = this.#prices.get(symbol);
    if (cached && cached.until > this.now()) return Promise.resolve(cached.price);
    let pending = this.#inFlight.get(symbol);
    if (!pending) {
      pending = this.fetch(symbol)
        .then((price) => {
          this.#prices.set(symbol, { price, until: this.now() + this.ttlMs });
          return price;
        })
        .finally(() => this.#inFlight.delete(symbol));
      this.#inFlight.set(symbol, pending);
    }
    return pending;
  }
}

/**
 * Fee quotes by notional. A quote is a pure function of the notional and the fee schedule (fees records nothing
 * for it), so the same notional asked again within `ttlMs` gets the answer fees gave; the schedule can only change
 * with a restart of fees, and `ttlMs` bounds how long an old answer can outlive that. Orders of one symbol and
 * quantity priced in the same market-data tick ask for the same notional. Bounded: the oldest entry goes when full.
 */
export class QuoteCache {
  readonly #fees = new Map<string, { fee: string; until: number }>();
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly ttlMs: number,
    private readonly capacity: number,
    private readonly fetch: (notional: string) => Promise<string>,
    private readonly now: () => number = Date.now,
  ) {}

  get(notional: string): Promise<string> {
    if (this.ttlMs <= 0) return this.fetch(notional);
    const cached = this.#fees.get(notional);
    if (cached && cached.until > this.now()) return Promise.resolve(cached.fee);
    let pending = this.#inFlight.get(notional);
    if (!pending) {
      pending = this.fetch(notional)
        .then((fee) => {
          this.#fees.delete(notional);
          this.#fees.set(notional, { fee, until: this.now() + this.ttlMs });
          if (this.#fees.size > this.capacity) this.#fees.delete(this.#fees.keys().next().value!);
          return fee;
        })
        .finally(() => this.#inFlight.delete(notional));
      this.#inFlight.set(notional, pending);
    }
    return pending;
  }
}
