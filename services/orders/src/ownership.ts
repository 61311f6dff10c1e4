/**
 * Which customer owns an account, as accounts has confirmed it. An account never changes hands, so a confirmed
 * owner stays true and asking accounts again for every order would only cost a round trip. Bounded: when full,
 * the entry used least recently goes. Only confirmations are kept; a "not yours" answer is always asked again.
 */
export class OwnershipCache {
  readonly #owners = new Map<string, string>();

  constructor(private readonly capacity: number) {}

  /** The confirmed owner of the account, or undefined when not known here. */
  ownerOf(accountId: string): string | undefined {
    const owner = this.#owners.get(accountId);
    if (owner !== undefined) {
      // Most recently used last: Map keeps insertion order.
      this.#owners.delete(accountId);
      this.#owners.set(accountId, owner);
    }
    return owner;
  }

  remember(accountId: string, customerId: string): void {
    this.#owners.delete(accountId);
    this.#owners.set(accountId, customerId);
    if (this.#owners.size > this.capacity) this.#owners.delete(this.#owners.keys().next().value!);
  }
}
