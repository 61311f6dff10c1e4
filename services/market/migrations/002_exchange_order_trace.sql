-- The trace context (W3C traceparent) of the intake that received the order, so the matcher's later fill, expiry
-- or rejection continues the order's trace. NULL when tracing is off or for orders received before it was kept.
ALTER TABLE exchange_orders ADD COLUMN traceparent text NULL;
