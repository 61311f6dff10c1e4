/**
 * Accounts the gateway has seen accounts confirm as a customer's. An account never changes hands, so once
 * confirmed, "account A is customer C's" stays true: placing an order for it need not ask accounts again (and
 * have it sum the balances just to say yes). Bounded: when full, the entry used least recently goes. Only
 * confirmations are kept; any other answer is asked again next time.
 */
export class OwnershipCache {
  readonly #owners = new Map<string, string>();

  constructor(private readonly capacity: number) {}

  isOwner(accountId: string, customerId: string): boolean {
    const owner = this.#owners.get(accountId);
    if (owner === undefined) return false;
    // Most recently used last: Map keeps insertion order.
    this.#owners.delete(accountId);
    this.#owners.set(accountId, owner);
    return owner === customerId;
  }

  remember(accountId: string, customerId: string): void {
    this.#owners.delete(accountId);
    this.#owners.set(accountId, customerId);
    if (this.#owners.size > this.capacity) this.#owners.delete(this.#owners.keys().next().value!);
  }
}
