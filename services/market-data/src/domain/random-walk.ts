/**
 * The price feed: a seeded random walk in integer cents that every instance computes identically, so any
 * instance answers the same price for the same symbol at the same tick without sharing state.
 *
 * - Time is cut into ticks (`tick = floor(now / tickMs)`) and ticks into sessions of `SESSION_TICKS` ticks
 *   (one UTC day at the default 1 s tick). A session opens at a price derived from the instrument's base price
 *   and (seed, symbol, session), then walks one step per tick with a mulberry32 PRNG seeded from the same triple.
 *   Restarting from a derived open each session bounds the work to reach any tick (at most SESSION_TICKS steps)
 *   instead of walking from the epoch; the jump between sessions is the overnight gap of a real market.
 * - Each step moves the price by at most `stepBps` basis points of the current price, rounded to whole cents,
 *   and never below the floor (1.00). A float is used for the random draw only; prices are always integers.
 * - `PriceWalk` remembers the last tick reached per symbol, so following the clock is O(1) amortised.
 *
 * No I/O here: instruments come in as arguments.
 */

/** Ticks per session; 86 400 × 1 s = one UTC day at the default tick, so sessions line up with days. */
export const SESSION_TICKS = 86_400;
/** Lowest price the walk may reach, in cents (1.00). */
export const PRICE_FLOOR_CENTS = 100n;
/** Largest distance of a session's open from the base price, in basis points (±10 %). */
export const OPEN_SPREAD_BPS = 1_000;
/** Default largest step per tick, in basis points of the current price. */
export const DEFAULT_STEP_BPS = 5;

export interface WalkOptions {
  seed: number;
  /** Largest move per tick in basis points of the current price (default 5 = 0.05 %). */
  stepBps?: number;
}

/** FNV-1a, 32 bits: a stable hash of the seed text (same on every platform and Node version). */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One mulberry32 step: the next 32-bit state and a uniform draw in [0, 1). */
export function mulberry32(state: number): { state: number; value: number } {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { state: next, value: ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296 };
}

export const tickAt = (nowMs: number, tickMs: number): number => Math.floor(nowMs / tickMs);
export const sessionOf = (tick: number): number => Math.floor(tick / SESSION_TICKS);

/** A session's opening price: the base price moved by at most ±OPEN_SPREAD_BPS, deterministically. */
export function sessionOpen(seed: number, symbol: string, session: number, baseCents: bigint): bigint {
  const { value } = mulberry32(hash32(`${seed}|${symbol}|${session}|open`));
  const bps = Math.round((value * 2 - 1) * OPEN_SPREAD_BPS);
  const open = baseCents + (baseCents * BigInt(bps)) / 10_000n;
  return open < PRICE_FLOOR_CENTS ? PRICE_FLOOR_CENTS : open;
}

/** One tick of the walk: a uniform move of at most stepBps of the price, in whole cents, floored at 1.00. */
export function step(priceCents: bigint, draw: number, stepBps: number): bigint {
  // The draw is the only float; the move is rounded to whole cents before it touches the price.
  const maxMove = (Number(priceCents) * stepBps) / 10_000;
  const move = BigInt(Math.round((draw * 2 - 1) * maxMove));
  const next = priceCents + move;
  return next < PRICE_FLOOR_CENTS ? PRICE_FLOOR_CENTS : next;
}

interface WalkState {
  session: number;
  baseCents: bigint;
  tick: number;
  price: bigint;
  rng: number;
}

function sessionStart(seed: number, symbol: string, session: number, baseCents: bigint): WalkState {
  return {
    session,
    baseCents,
    // The price "at" the session's first tick is the open; steps apply from the next tick on.
    tick: session * SESSION_TICKS,
    price: sessionOpen(seed, symbol, session, baseCents),
    rng: hash32(`${seed}|${symbol}|${session}|walk`),
  };
}

function advance(state: WalkState, toTick: number, stepBps: number): void {
  while (state.tick < toTick) {
    const r = mulberry32(state.rng);
    state.rng = r.state;
    state.price = step(state.price, r.value, stepBps);
    state.tick++;
  }
}

/** The price of `symbol` at `tick`, computed from scratch (the reference the cached walk must agree with). */
export function priceAtTick(options: WalkOptions, symbol: string, baseCents: bigint, tick: number): bigint {
  const state = sessionStart(options.seed, symbol, sessionOf(tick), baseCents);
  advance(state, tick, options.stepBps ?? DEFAULT_STEP_BPS);
  return state.price;
}

export interface PriceWalk {
  /** Price in cents of `symbol` (base price `baseCents`) at `tick`; O(1) amortised when ticks move forward. */
  priceAt(symbol: string, baseCents: bigint, tick: number): bigint;
}

export function createPriceWalk(options: WalkOptions): PriceWalk {
  const stepBps = options.stepBps ?? DEFAULT_STEP_BPS;
  if (!(stepBps > 0 && stepBps <= 1_000)) throw new RangeError(`stepBps must be in (0, 1000]: ${stepBps}`);
  const last = new Map<string, WalkState>();
  return {
    priceAt(symbol, baseCents, tick) {
      let state = last.get(symbol);
      const session = sessionOf(tick);
      // Start over on a new session, a changed base price, or a clock that went backwards.
      if (!state || state.session !== session || state.baseCents !== baseCents || state.tick > tick) {
        state = sessionStart(options.seed, symbol, session, baseCents);
        last.set(symbol, state);
      }
      advance(state, tick, stepBps);
      return state.price;
    },
  };
}
