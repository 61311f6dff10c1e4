-- What an account's active reservations hold back is now stored too, as 004 did for balances. Summed, it walked
-- reservations_active_idx for the account, and under load that index is mostly entries of holds settled or released
-- since autovacuum last came round (a hold lives for well under a second): ~55 buffer reads per hold_snapshot at
-- 200 orders/s over 40 accounts, the accounts database's largest cost. Stored, it is one row per account and kind
-- (and symbol, for shares), read through the primary key.
--
-- Kept exact by a trigger on reservations, in the writing transaction: a hold counts while its status is 'active',
-- so an insert of an active hold adds it, a status change away from 'active' (settled, released) takes it off, and a
-- rolled-back reserve or settle rolls its change back with it. Reservations are written only by the reservation
-- routes, one transaction at a time (src/http.ts, RESERVATION_BATCH), each after the account's row lock, so these
-- rows add no wait and no lock order of their own. A row stays at 0 when its holds end; readers skip zero rows, as
-- the sums had no row for them. `GET /admin/ledger` still counts the active reservations themselves, and
-- test/hold-totals.test.ts checks the stored totals against the sums.
CREATE TABLE account_holds (
  account_id uuid NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('cash', 'shares')),
  -- '' for cash (a primary key column cannot be NULL): the account's own currency.
  symbol     text NOT NULL,
  total      bigint NOT NULL CHECK (total >= 0),
  PRIMARY KEY (account_id, kind, symbol)
);
-- Every reserve and every settle updates a row; `total` is not indexed, so leave room for heap-only updates.
ALTER TABLE account_holds SET (fillfactor = 80);

CREATE FUNCTION account_holds_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.status = 'active' THEN
    UPDATE account_holds SET total = total - coalesce(OLD.amount, OLD.quantity)
     WHERE account_id = OLD.account_id AND kind = OLD.kind AND symbol = coalesce(OLD.symbol, '');
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.status = 'active' THEN
    INSERT INTO account_holds (account_id, kind, symbol, total)
      VALUES (NEW.account_id, NEW.kind, coalesce(NEW.symbol, ''), coalesce(NEW.amount, NEW.quantity))
      ON CONFLICT (account_id, kind, symbol) DO UPDATE SET total = account_holds.total + EXCLUDED.total;
  END IF;
  RETURN NULL;
END $$;

-- Stops reservations being written (by an instance still running the previous version) until this migration
-- commits, so the backfill sees every hold committed before the triggers exist and the triggers every one after.
LOCK TABLE reservations IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER reservations_hold_added AFTER INSERT ON reservations
  FOR EACH ROW WHEN (NEW.status = 'active') EXECUTE FUNCTION account_holds_follow();
CREATE TRIGGER reservations_hold_changed AFTER UPDATE ON reservations
  FOR EACH ROW WHEN (OLD.status = 'active' OR NEW.status = 'active') EXECUTE FUNCTION account_holds_follow();
CREATE TRIGGER reservations_hold_removed AFTER DELETE ON reservations
  FOR EACH ROW WHEN (OLD.status = 'active') EXECUTE FUNCTION account_holds_follow();

INSERT INTO account_holds (account_id, kind, symbol, total)
  SELECT account_id, kind, coalesce(symbol, ''), sum(coalesce(amount, quantity))
    FROM reservations WHERE status = 'active' GROUP BY account_id, kind, coalesce(symbol, '');

-- Nothing on the hot path reads holds by account any more, and the index made every settle and release a full
-- (non-HOT) update: its predicate names `status`, so each change of status wrote new index entries for the row. Without
-- it a status change touches no indexed column and can stay on its page (room left for that below). The admin count of
-- active holds (ledgerTotals) scans the table, as it sums every posting anyway.
DROP INDEX reservations_active_idx;
ALTER TABLE reservations SET (fillfactor = 80);

-- hold_snapshot as in 004, but the holds are read from account_holds. The same locks in the same order.
CREATE OR REPLACE FUNCTION hold_snapshot(p_reservation uuid, p_account uuid) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_reservation jsonb;
  v_tombstone boolean;
  v_account_id uuid := p_account;
  v_account jsonb;
  v_sums jsonb;
  v_holds jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('reservation:' || p_reservation::text, 0));
  SELECT to_jsonb(r) INTO v_reservation FROM (
    SELECT id, account_id, kind, symbol, amount::text AS amount, quantity::text AS quantity, status, entry_id
      FROM reservations WHERE id = p_reservation
  ) r;
  v_tombstone := EXISTS (SELECT 1 FROM reservation_tombstones WHERE id = p_reservation);
  IF v_account_id IS NULL THEN
    v_account_id := (v_reservation ->> 'account_id')::uuid;
  END IF;
  SELECT to_jsonb(a) INTO v_account FROM (
    SELECT id, customer_id, currency, created_at FROM accounts WHERE id = v_account_id FOR UPDATE
  ) a;
  SELECT coalesce(jsonb_agg(jsonb_build_object('asset', asset, 'total', total)), '[]'::jsonb) INTO v_sums FROM (
    SELECT asset, total::text AS total FROM customer_balances WHERE ledger_account = 'customer:' || v_account_id::text
  ) s;
  SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'symbol', symbol, 'total', total)), '[]'::jsonb) INTO v_holds FROM (
    SELECT kind, nullif(symbol, '') AS symbol, total::text AS total
      FROM account_holds WHERE account_id = v_account_id AND total <> 0
  ) h;
  RETURN jsonb_build_object('reservation', v_reservation, 'tombstone', v_tombstone, 'account', v_account, 'sums', v_sums, 'holds', v_holds);
END $$;
