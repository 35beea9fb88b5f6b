-- Sample shop data for hack/demo.sh: deterministic (no random()), generated in SQL.
-- customers: 5,000 rows with personal data the masking features are meant for;
-- orders: 20,000 rows referencing them; page_views: 2,000,000 rows, big enough for the
-- guardrails to block a statement that reads all of it.
BEGIN;

CREATE TABLE customers (
    id          bigint PRIMARY KEY,
    full_name   text        NOT NULL,
    email       text        NOT NULL UNIQUE,
    phone       text        NOT NULL,
    national_id text        NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id bigint        NOT NULL REFERENCES customers (id),
    amount      numeric(10,2) NOT NULL,
    status      text          NOT NULL,
    ordered_at  timestamptz   NOT NULL
);

INSERT INTO customers (id, full_name, email, phone, national_id, created_at)
SELECT i,
       f.name || ' ' || l.name,
       lower(f.name) || '.' || lower(l.name) || i || '@example.com',
       '+1-555-' || lpad(((i * 7919) % 1000)::text, 3, '0') || '-' || lpad(((i * 104729) % 10000)::text, 4, '0'),
       lpad((100 + (i * 37) % 800)::text, 3, '0') || '-' || lpad((1 + (i * 53) % 99)::text, 2, '0')
           || '-' || lpad((1 + (i * 7907) % 9999)::text, 4, '0'),
       timestamptz '2023-01-01 00:00:00+00' + i * interval '97 minutes'
FROM generate_series(1, 5000) AS i
CROSS JOIN LATERAL (SELECT (ARRAY['Ada','Alan','Grace','Edsger','Barbara','Donald','Frances','John',
        'Margaret','Ken','Radia','Dennis','Hedy','Tim','Karen','Linus','Sophie','Niklaus','Annie','Brian'])
        [1 + i % 20] AS name) AS f
CROSS JOIN LATERAL (SELECT (ARRAY['Lovelace','Turing','Hopper','Dijkstra','Liskov','Knuth','Allen',
        'Backus','Hamilton','Thompson','Perlman','Ritchie','Lamarr','Berners-Lee','Jones','Torvalds',
        'Wilson','Wirth','Easley','Kernighan'])[1 + (i * 7) % 20] AS name) AS l;

INSERT INTO orders (id, customer_id, amount, status, ordered_at)
SELECT i,
       1 + (i * 7919) % 5000,
       round(5 + ((i * 7937) % 99500) / 100.0, 2),
       (ARRAY['delivered','delivered','delivered','shipped','paid','pending','refunded','cancelled'])[1 + (i * 31) % 8],
       timestamptz '2023-02-01 00:00:00+00' + i * interval '23 minutes'
FROM generate_series(1, 20000) AS i;

CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_ordered_at_idx  ON orders (ordered_at);
CREATE INDEX orders_status_idx      ON orders (status);
CREATE INDEX customers_created_at_idx ON customers (created_at);

CREATE TABLE page_views (
    id          bigint      PRIMARY KEY,
    customer_id bigint      NOT NULL,
    path        text        NOT NULL,
    viewed_at   timestamptz NOT NULL
);

INSERT INTO page_views (id, customer_id, path, viewed_at)
SELECT i,
       1 + (i::bigint * 7919) % 5000,
       (ARRAY['/','/search','/cart','/checkout','/account','/help'])[1 + (i * 13) % 6]
           || CASE WHEN i % 3 = 0 THEN '/' || (i % 997) ELSE '' END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '15 seconds'
FROM generate_series(1, 2000000) AS i;

CREATE INDEX page_views_customer_id_idx ON page_views (customer_id);
CREATE INDEX page_views_viewed_at_idx   ON page_views (viewed_at);

COMMIT;
ANALYZE customers;
ANALYZE orders;
ANALYZE page_views;
