-- Instruments the simulated market lists. base_price (cents) is where each symbol's price walk is anchored:
-- every session opens within ±10 % of it (see src/domain/random-walk.ts).
CREATE TABLE instruments (
  symbol      text PRIMARY KEY CHECK (symbol ~ '^[A-Z][A-Z0-9.]{0,9}$'),
  name        text NOT NULL,
  currency    text NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
  base_price  bigint NOT NULL CHECK (base_price >= 100),
  created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO instruments (symbol, name, base_price) VALUES
  ('AAPL',  'Apple Inc.',                          19250),
  ('MSFT',  'Microsoft Corporation',               41530),
  ('GOOGL', 'Alphabet Inc. Class A',               17120),
  ('AMZN',  'Amazon.com, Inc.',                    18640),
  ('META',  'Meta Platforms, Inc. Class A',        50210),
  ('NVDA',  'NVIDIA Corporation',                  12180),
  ('TSLA',  'Tesla, Inc.',                         24890),
  ('BRK.B', 'Berkshire Hathaway Inc. Class B',     42170),
  ('JPM',   'JPMorgan Chase & Co.',                20360),
  ('V',     'Visa Inc. Class A',                   27540),
  ('JNJ',   'Johnson & Johnson',                   15420),
  ('WMT',   'Walmart Inc.',                         6830),
  ('PG',    'The Procter & Gamble Company',        16710),
  ('MA',    'Mastercard Incorporated Class A',     46250),
  ('HD',    'The Home Depot, Inc.',                35980),
  ('KO',    'The Coca-Cola Company',                6240),
  ('PEP',   'PepsiCo, Inc.',                       16950),
  ('DIS',   'The Walt Disney Company',              9870),
  ('NFLX',  'Netflix, Inc.',                       68420),
  ('INTC',  'Intel Corporation',                    3110),
  ('CSCO',  'Cisco Systems, Inc.',                  4960),
  ('ORCL',  'Oracle Corporation',                  14230),
  ('ADBE',  'Adobe Inc.',                          52680),
  ('CRM',   'Salesforce, Inc.',                    26740),
  ('XOM',   'Exxon Mobil Corporation',             11650),
  ('BAC',   'Bank of America Corporation',          3980),
  ('PFE',   'Pfizer Inc.',                          2870),
  ('NKE',   'NIKE, Inc. Class B',                   9410);
