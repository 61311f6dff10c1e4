-- Balances are sums over a customer's postings (postings_account_asset_idx covers them). The index can answer them
-- without visiting the table only for pages VACUUM has marked all-visible; postings are insert-only, so by default
-- autovacuum comes round after 20% new rows, and between its visits every balance query reads each new posting from
-- the table. Visit after 1% (or 1000 rows) instead. Reservations change status (active → settled/released) and
-- leave dead entries behind in reservations_active_idx, which every hold check walks past until they are vacuumed.
ALTER TABLE postings SET (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_insert_threshold = 1000);
ALTER TABLE reservations SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
