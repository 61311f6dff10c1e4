/**
 * The Order aggregate: an explicit state machine, pure (no HTTP, SQL or bus).
 *
 *   pending ──accept──▶ accepted ──place──▶ placed ──fill──▶ filled
 *      │                   │                  │
 *      └───────────────────┴──────────────────┴──reject / expire / cancel──▶ rejected / expired / cancelled
 *
 * `requestCancel` does not change the status (only the exchange can say whether the order was cancelled or
 * filled first); it records the request so the saga can tell the market, and a repeated request is a no-op.
 *
 * Every transition appends a history entry; the data layer persists `changes` with the new state in the
 * same transaction, so the history can never disagree with the status.
 */
import type { Minor } from '@simplebank/money';

export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit';
export type OrderStatus = 'pending' | 'accepted' | 'placed' | 'filled' | 'rejected' | 'expired' | 'cancelled';

export const FINAL_STATUSES: readonly OrderStatus[] = ['filled', 'rejected', 'expired', 'cancelled'];
/** Statuses from which the order can still end without a fill. */
export const OPEN_STATUSES: readonly OrderStatus[] = ['pending', 'accepted', 'placed'];

export const isFinal = (status: OrderStatus): boolean => FINAL_STATUSES.includes(status);

export interface HistoryEntry {
  status: OrderStatus;
  at: Date;
  reason?: string;
}

export interface OrderState {
  id: string;
  customerId: string;
  accountId: string;
  symbol: string;
  side: Side;
  quantity: number;
  type: OrderType;
  /** Minor units; set for limit orders only. */
  limitPrice: Minor | null;
  status: OrderStatus;
  reason: string | null;
  filledQuantity: number;
  /** Minor units per share. */
  averagePrice: Minor | null;
  fee: Minor | null;
  cancelRequestedAt: Date | null;
  /** When funds or shares were reserved (accepted); null before that, and for orders stored before it was kept. */
  acceptedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export type OrderErrorCode = 'order_final' | 'illegal_transition' | 'invalid_order' | 'invalid_fill';

/** A move the state machine does not allow; `code` is stable, callers branch on it (HTTP maps it to 409). */
export class OrderError extends Error {
  readonly code: OrderErrorCode;
  readonly from?: OrderStatus;
  readonly action?: string;

  constructor(code: OrderErrorCode, message: string, details: { from?: OrderStatus; action?: string } = {}) {
    super(message);
    this.name = 'OrderError';
    this.code = code;
    if (details.from) this.from = details.from;
    if (details.action) this.action = details.action;
  }
}

export const isOrderError = (err: unknown): err is OrderError => err instanceof Error && err.name === 'OrderError';

export interface NewOrder {
  id: string;
  customerId: string;
  accountId: string;
  symbol: string;
  side: Side;
  quantity: number;
  type: OrderType;
  limitPrice: Minor | null;
}

export interface Fill {
  quantity: number;
  /** Execution price per share, minor units. */
  price: Minor;
  fee: Minor;
}

export class Order {
  #state: OrderState;
  #changes: HistoryEntry[] = [];

  private constructor(state: OrderState) {
    this.#state = { ...state };
  }

  /** A new order: pending, with its first history entry. */
  static submit(input: NewOrder, now: Date): Order {
    if (!Number.isSafeInteger(input.quantity) || input.quantity <= 0) {
      throw new OrderError('invalid_order', 'quantity must be a positive whole number of shares');
    }
    if ((input.type === 'limit') !== (input.limitPrice !== null)) {
      throw new OrderError('invalid_order', 'a limit price is required for limit orders and not allowed for market orders');
    }
    if (input.limitPrice !== null && input.limitPrice <= 0n) throw new OrderError('invalid_order', 'limit price must be positive');
    const order = new Order({
      ...input,
      status: 'pending',
      reason: null,
      filledQuantity: 0,
      averagePrice: null,
      fee: null,
      cancelRequestedAt: null,
      acceptedAt: null,
      createdAt: now,
      updatedAt: now,
    });
    order.#record('pending', now);
    return order;
  }

  /** Rehydrates a stored order; no history is added. */
  static from(state: OrderState): Order {
    return new Order(state);
  }

  get state(): Readonly<OrderState> {
    return this.#state;
  }
  get id(): string {
    return this.#state.id;
  }
  get status(): OrderStatus {
    return this.#state.status;
  }
  get isFinal(): boolean {
    return isFinal(this.#state.status);
  }
  get cancelRequested(): boolean {
    return this.#state.cancelRequestedAt !== null;
  }

  /** History entries produced since the order was created or loaded (to persist with the new state). */
  get changes(): readonly HistoryEntry[] {
    return this.#changes;
  }

  /** Funds or shares are reserved. */
  accept(now: Date): void {
    this.#move('accept', ['pending'], 'accepted', now);
    this.#state.acceptedAt = now;
  }

  /** The exchange has the order. */
  place(now: Date): void {
    this.#move('place', ['accepted'], 'placed', now);
  }

  /** The exchange executed the order (whole fills: the simulated exchange never splits an order). */
  fill(fill: Fill, now: Date): void {
    this.#guard('fill', ['placed']);
    this.checkFill(fill.quantity, fill.price);
    if (fill.fee < 0n) throw new OrderError('invalid_fill', 'fee must not be negative');
    this.#state.filledQuantity = fill.quantity;
    this.#state.averagePrice = fill.price;
    this.#state.fee = fill.fee;
    this.#move('fill', ['placed'], 'filled', now);
  }

  /**
   * Throws unless an execution of `quantity` at `price` fits this order. The saga asks before charging and
   * settling, so a malformed execution never reaches the ledger.
   */
  checkFill(quantity: number, price: bigint): void {
    if (!Number.isSafeInteger(quantity) || quantity <= 0 || quantity > this.#state.quantity) {
      throw new OrderError('invalid_fill', `fill quantity ${quantity} is not within 1..${this.#state.quantity}`);
    }
    if (price <= 0n) throw new OrderError('invalid_fill', 'fill price must be positive');
  }

  reject(reason: string, now: Date): void {
    this.#move('reject', OPEN_STATUSES, 'rejected', now, reason);
  }

  expire(now: Date): void {
    this.#move('expire', OPEN_STATUSES, 'expired', now);
  }

  cancel(now: Date, reason?: string): void {
    this.#move('cancel', OPEN_STATUSES, 'cancelled', now, reason);
  }

  /**
   * The customer asked to cancel an order the exchange may already have. Returns false when it was already
   * requested (nothing new to tell the market). A pending order is cancelled directly with `cancel`.
   */
  requestCancel(now: Date): boolean {
    this.#guard('requestCancel', ['accepted', 'placed']);
    if (this.#state.cancelRequestedAt) return false;
    this.#state.cancelRequestedAt = now;
    this.#state.updatedAt = now;
    // The status does not change; the entry shows when the request was made.
    this.#changes.push({ status: this.#state.status, at: now, reason: 'cancel requested' });
    return true;
  }

  #guard(action: string, from: readonly OrderStatus[]): void {
    const status = this.#state.status;
    if (from.includes(status)) return;
    if (isFinal(status)) throw new OrderError('order_final', `order is already ${status}`, { from: status, action });
    throw new OrderError('illegal_transition', `cannot ${action} an order that is ${status}`, { from: status, action });
  }

  #move(action: string, from: readonly OrderStatus[], to: OrderStatus, now: Date, reason?: string): void {
    this.#guard(action, from);
    this.#state.status = to;
    if (reason !== undefined) this.#state.reason = reason;
    this.#state.updatedAt = now;
    this.#record(to, now, reason);
  }

  #record(status: OrderStatus, at: Date, reason?: string): void {
    this.#changes.push(reason !== undefined ? { status, at, reason } : { status, at });
  }
}
