-- The trace of the request that placed the order (W3C trace id), so an operator can follow the order's saga
-- across every service (`simplebank trace <orderId>`). NULL for orders placed before it was recorded.
ALTER TABLE orders ADD COLUMN trace_id text NULL;
