import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createPriceWalk,
  hash32,
  mulberry32,
  OPEN_SPREAD_BPS,
  PRICE_FLOOR_CENTS,
  priceAtTick,
  SESSION_TICKS,
  sessionOpen,
  step,
  tickAt,
} from '../src/domain/random-walk.ts';

const AAPL_BASE = 19_250n;
// A tick well inside some session, as the clock would give in 2025.
const NOW_TICK = tickAt(Date.UTC(2025, 5, 2, 14, 30), 1000);

describe('random walk', () => {
  it('hash and PRNG are stable (same input → same output, on every platform)', () => {
    assert.equal(hash32('42|AAPL|1|walk'), hash32('42|AAPL|1|walk'));
    assert.notEqual(hash32('42|AAPL|1|walk'), hash32('42|MSFT|1|walk'));
    const a = mulberry32(123);
    const b = mulberry32(123);
    assert.deepEqual(a, b);
    assert.ok(a.value >= 0 && a.value < 1);
  });

  it('is deterministic: same seed, symbol and tick → same price, across walks and from scratch', () => {
    const w1 = createPriceWalk({ seed: 42 });
    const w2 = createPriceWalk({ seed: 42 });
    for (const t of [NOW_TICK, NOW_TICK + 1, NOW_TICK + 500]) {
      const p = w1.priceAt('AAPL', AAPL_BASE, t);
      assert.equal(w2.priceAt('AAPL', AAPL_BASE, t), p);
      assert.equal(priceAtTick({ seed: 42 }, 'AAPL', AAPL_BASE, t), p);
      assert.equal(typeof p, 'bigint');
    }
  });

  it('the same tick asked again gives the same price (the cache does not drift)', () => {
    const w = createPriceWalk({ seed: 42 });
    const p = w.priceAt('MSFT', 41_530n, NOW_TICK);
    assert.equal(w.priceAt('MSFT', 41_530n, NOW_TICK), p);
    w.priceAt('MSFT', 41_530n, NOW_TICK + 10);
    // Going back in time (a clock step backwards) recomputes rather than answering a later price.
    assert.equal(w.priceAt('MSFT', 41_530n, NOW_TICK), p);
  });

  it('depends on the seed and the symbol', () => {
    const series = (seed: number, symbol: string) =>
      Array.from({ length: 50 }, (_, i) => priceAtTick({ seed }, symbol, 10_000n, NOW_TICK + i)).join(',');
    assert.notEqual(series(42, 'AAPL'), series(43, 'AAPL'));
    assert.notEqual(series(42, 'AAPL'), series(42, 'MSFT'));
  });

  it('moves by at most stepBps of the price per tick and stays positive, in whole cents', () => {
    const stepBps = 5;
    const w = createPriceWalk({ seed: 7, stepBps });
    let prev = w.priceAt('TSLA', 24_890n, NOW_TICK);
    let moved = 0;
    for (let t = NOW_TICK + 1; t < NOW_TICK + 5_000; t++) {
      const p = w.priceAt('TSLA', 24_890n, t);
      const bound = (Number(prev) * stepBps) / 10_000;
      assert.ok(Math.abs(Number(p - prev)) <= Math.ceil(bound), `tick ${t}: ${prev} → ${p} exceeds ${bound}`);
      assert.ok(p >= PRICE_FLOOR_CENTS);
      if (p !== prev) moved++;
      prev = p;
    }
    assert.ok(moved > 1_000, 'the price actually walks');
  });

  it('never goes below 1.00, even from the floor with large steps', () => {
    for (let i = 0; i < 1_000; i++) assert.ok(step(100n, i / 1_000, 1_000) >= PRICE_FLOOR_CENTS);
    assert.equal(step(100n, 0, 1_000), PRICE_FLOOR_CENTS);
    const w = createPriceWalk({ seed: 1, stepBps: 1_000 });
    for (let t = NOW_TICK; t < NOW_TICK + 3_000; t++) assert.ok(w.priceAt('PENNY', 100n, t) >= PRICE_FLOOR_CENTS);
  });

  it('opens each session within ±10 % of the base price, and sessions differ', () => {
    const opens = new Set<bigint>();
    for (let session = 20_000; session < 20_050; session++) {
      const open = sessionOpen(42, 'AAPL', session, AAPL_BASE);
      const spread = (AAPL_BASE * BigInt(OPEN_SPREAD_BPS)) / 10_000n;
      assert.ok(open >= AAPL_BASE - spread && open <= AAPL_BASE + spread, `${open}`);
      opens.add(open);
      // The first tick of a session is its open.
      assert.equal(priceAtTick({ seed: 42 }, 'AAPL', AAPL_BASE, session * SESSION_TICKS), open);
    }
    assert.ok(opens.size > 10);
  });

  it('a session restarts from its own open, so any tick is reachable without walking from the epoch', () => {
    const w = createPriceWalk({ seed: 42 });
    const nextSession = Math.floor(NOW_TICK / SESSION_TICKS) + 1;
    const lastTickOfSession = nextSession * SESSION_TICKS - 1;
    assert.equal(w.priceAt('AAPL', AAPL_BASE, lastTickOfSession), priceAtTick({ seed: 42 }, 'AAPL', AAPL_BASE, lastTickOfSession));
    assert.equal(w.priceAt('AAPL', AAPL_BASE, nextSession * SESSION_TICKS), sessionOpen(42, 'AAPL', nextSession, AAPL_BASE));
  });

  it('rejects a nonsensical step size', () => {
    assert.throws(() => createPriceWalk({ seed: 1, stepBps: 0 }), RangeError);
  });
});
