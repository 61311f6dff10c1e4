-- Run once by the postgres image when its volume is new (/docker-entrypoint-initdb.d): one database per
-- stateful service, as tools/cli/src/services.ts names them, plus the bus's (pg-boss, if BUS_URL points at it).
CREATE DATABASE simplebank_customers;
CREATE DATABASE simplebank_accounts;
CREATE DATABASE simplebank_orders;
CREATE DATABASE simplebank_market;
CREATE DATABASE simplebank_market_data;
CREATE DATABASE simplebank_fees;
CREATE DATABASE simplebank_bus;
