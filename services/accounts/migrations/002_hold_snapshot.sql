-- What a reserve or a settle decides on, in one call (src/data.ts, holdSnapshot): the reservation id's advisory
-- lock, the reservation and its tombstone, then the account's row lock and, after it, the account's balances.
-- The same locks in the same order as taking them one statement at a time. The function is VOLATILE, so each
-- query in it starts from a fresh snapshot (READ COMMITTED): whatever follows a lock sees everything committed
-- before that lock was granted. Its plans are prepared once per connection (PL/pgSQL keeps them), where the same
-- statements sent as SQL text are parsed and planned on every call.
-- p_account: the account to lock; NULL = the reservation's own (settle).
CREATE FUNCTION hold_snapshot(p_reservation uuid, p_account uuid) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
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
    SELECT asset, sum(amount)::text AS total FROM postings WHERE ledger_account = 'customer:' || v_account_id::text GROUP BY asset
  ) s;
  SELECT coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'symbol', symbol, 'total', total)), '[]'::jsonb) INTO v_holds FROM (
    SELECT kind, symbol, sum(coalesce(amount, quantity))::text AS total
      FROM reservations WHERE account_id = v_account_id AND status = 'active' GROUP BY kind, symbol
  ) h;
  RETURN jsonb_build_object('reservation', v_reservation, 'tombstone', v_tombstone, 'account', v_account, 'sums', v_sums, 'holds', v_holds);
END $$;
