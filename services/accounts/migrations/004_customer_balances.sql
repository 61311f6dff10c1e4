-- Customer balances are now stored (001's "balances are never stored" holds only for the house accounts from here
-- on). A reserve or a settle decides on the account's balances; as sums over its postings they cost time in
-- proportion to the account's whole history (~34 buffer reads per hold_snapshot at 150 orders an account), forever
-- growing. Stored, they are one row per asset the account has ever held, read through the primary key.
--
-- Only `customer:%` ledger accounts: the house accounts (exchange:clearing, fees:revenue, external:bank) take a
-- posting in every trade or deposit, so a stored row of theirs would be one hot row every such transaction queues
-- on until it commits; and nothing but the admin check (which sums everything) reads their balances. They stay
-- sums. A customer's rows are written only by that account's own entries (its settles, which already queue on the
-- account's row lock, and its deposits), so storing them adds no wait across accounts.
--
-- Kept exact by a trigger in the inserting transaction, not by the service: postings are append-only
-- (ledger_append_only refuses UPDATE and DELETE), so an insert is the only change a balance can follow, and a
-- rolled-back entry rolls its balance change back with it. A row stays when its total comes back to 0, exactly as
-- the sums listed every asset the account ever had a posting in. `GET /admin/ledger` (ledgerTotals) still sums
-- the postings themselves: the independent check.
CREATE TABLE customer_balances (
  ledger_account text NOT NULL CHECK (ledger_account LIKE 'customer:%'),
  asset          text NOT NULL,
  total          bigint NOT NULL,
  PRIMARY KEY (ledger_account, asset)
);
-- Every posting updates its row; `total` is not indexed, so the update can be heap-only (HOT, no index touched)
-- when the page has room: leave 20 % of each page for those versions (as orders does, migration 003).
ALTER TABLE customer_balances SET (fillfactor = 80);

CREATE FUNCTION customer_balance_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_balances (ledger_account, asset, total) VALUES (NEW.ledger_account, NEW.asset, NEW.amount)
    ON CONFLICT (ledger_account, asset) DO UPDATE SET total = customer_balances.total + EXCLUDED.total;
  RETURN NULL;
END $$;

-- Stops postings being written (by an instance still running the previous version) until this migration commits, so
-- the backfill below sees every posting committed before the trigger exists and the trigger every one after.
LOCK TABLE postings IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER postings_customer_balance AFTER INSERT ON postings
  FOR EACH ROW WHEN (NEW.ledger_account LIKE 'customer:%') EXECUTE FUNCTION customer_balance_add();

-- An existing bank's customers: their balances as the sums they were until now (zero totals included).
INSERT INTO customer_balances (ledger_account, asset, total)
  SELECT ledger_account, asset, sum(amount) FROM postings WHERE ledger_account LIKE 'customer:%' GROUP BY ledger_account, asset;

-- hold_snapshot as in 002, but the balances are read from customer_balances. The same locks in the same order:
-- the reservation id's advisory lock, then the account's row lock, then the reads — each read a fresh snapshot taken
-- after the row lock was granted, so a settle on this account that committed before then is in the balances.
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
    SELECT kind, symbol, sum(coalesce(amount, quantity))::text AS total
      FROM reservations WHERE account_id = v_account_id AND status = 'active' GROUP BY kind, symbol
  ) h;
  RETURN jsonb_build_object('reservation', v_reservation, 'tombstone', v_tombstone, 'account', v_account, 'sums', v_sums, 'holds', v_holds);
END $$;
