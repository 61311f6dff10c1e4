-- When the order was accepted, kept on the order itself: the completion-time metric (accepted → final) reads it from
-- the row the final step has already locked, instead of a query into order_history after every final transition.
ALTER TABLE orders ADD COLUMN accepted_at timestamptz NULL;
UPDATE orders o SET accepted_at = h.at
  FROM (SELECT DISTINCT ON (order_id) order_id, at FROM order_history WHERE status = 'accepted' ORDER BY order_id, id) h
 WHERE h.order_id = o.id;

-- Every saga step updates its order's row (status, updated_at, …). With an index on a column that changes, each of
-- those updates adds an entry to every index of the table; with none, PostgreSQL can make it a heap-only (HOT)
-- update, in place on the same page, no index touched, if the page has room: hence the fillfactor, which leaves 20 %
-- of each new page free for the versions its orders' steps write. orders_open_idx (status, updated_at) was such an
-- index, and nothing in the service reads through it: an operator's "open orders" query scans the table instead.
DROP INDEX orders_open_idx;
ALTER TABLE orders SET (fillfactor = 80);
