-- The masking suite's data set: a small retailer's customer database with
-- South African personal data. Loaded once per test binary by the superuser;
-- every object is owned by app_owner, as an application schema would be.
--
-- Roles (passwords are the role name with "_pw"):
--   app_owner   owns the tables (masked: not in unmasked_roles)
--   analyst     ordinary login role: reads and writes the tables (masked)
--   support     ordinary login role: reads only (masked)
--   dba_lead    in unmasked_roles: sees clear values
--   masking_svc the proxy's own catalog account (PG_BACKEND_URL)

SET password_encryption = 'scram-sha-256';
CREATE ROLE app_owner LOGIN PASSWORD 'app_owner_pw';
CREATE ROLE analyst LOGIN PASSWORD 'analyst_pw';
CREATE ROLE support LOGIN PASSWORD 'support_pw';
CREATE ROLE dba_lead LOGIN PASSWORD 'dba_lead_pw';
CREATE ROLE masking_svc LOGIN PASSWORD 'masking_svc_pw';
-- COPY ... TO PROGRAM is one of the bypass attempts: the analyst may run
-- programs on the server, so that the attempt works on a direct connection.
GRANT pg_execute_server_program TO analyst;
GRANT ALL ON SCHEMA public TO app_owner;
CREATE SCHEMA crm AUTHORIZATION app_owner;

SET ROLE app_owner;

CREATE TABLE customers (
    id            integer PRIMARY KEY,
    full_name     text NOT NULL,
    email         text,
    phone         text,
    national_id   text UNIQUE,   -- South African ID number: YYMMDD SSSS C A Z
    card_number   text,
    passport_no   varchar(9),
    date_of_birth date,
    credit_score  integer CHECK (credit_score BETWEEN 300 AND 850),
    city          text NOT NULL,
    notes         text
);

-- Premium customers: an inheritance child of customers (masked alike).
CREATE TABLE vip_customers (
    tier text NOT NULL
) INHERITS (customers);

INSERT INTO customers VALUES
 (1, 'Thandiwe Nkosi', 'thandiwe.nkosi@example.co.za', '+27 82 555 0101', '8001015009087', '4111111111111111', 'M00123456', '1980-01-01', 712, 'Johannesburg', 'prefers email'),
 (2, 'Pieter van der Merwe', 'pieter.vdm@example.co.za', '+27 83 555 0202', '7503125800083', '5500000000000004', 'M00234567', '1975-03-12', 655, 'Cape Town', 'VIP since 2019'),
 (3, 'Lerato Mokoena', 'lerato.m@mail.example.org', '+27 84 555 0303', '9207230123088', '340000000000009', 'A01234567', '1992-07-23', 803, 'Durban', NULL),
 (4, 'Sipho Dlamini', 'sipho@example.com', '+27 71 555 0404', '8512055555081', '6011000000000004', 'A02345678', '1985-12-05', 590, 'Pretoria', 'call after 5pm'),
 (5, 'Ayesha Patel', NULL, '+27 72 555 0505', '9001010000085', NULL, NULL, NULL, NULL, 'Durban', 'no email on file'),
 (6, 'Bo', 'no-at-sign.example.com', '+27 73 555 0606', '0105125009081', '3530111333300000', 'B03456789', '2001-05-12', 748, 'Polokwane', 'short name'),
 (7, 'Naledi Khumalo', '@no-local-part.example', '+27 74 555 0707', '9811300123085', '4012888888881881', 'B04567890', '1998-11-30', 689, 'Bloemfontein', NULL),
 (8, 'Élise Naudé', 'élise.naudé@example.fr', '+33 6 55 50 80 80', '8806150789086', '4222222222222220', 'F05678901', '1988-06-15', 777, 'Stellenbosch', 'bilingual'),
 (9, 'Sandile Zulu', 'sandile.z@example.com', '+27 76 555 0909', '9403035888082', '5105105105105100', 'Z06789012', '1994-03-03', 721, 'Pretoria', NULL);

INSERT INTO vip_customers VALUES
 (101, 'Kagiso Molefe', 'kagiso.molefe@vip.example.co.za', '+27 79 555 1101', '7707075111089', '378282246310005', 'K07890123', '1977-07-07', 836, 'Johannesburg', 'concierge', 'gold'),
 (102, 'Refilwe Sithole', 'refilwe.s@vip.example.co.za', '+27 79 555 1202', '8302145222086', '6011111111111117', 'R08901234', '1983-02-14', 802, 'Cape Town', NULL, 'platinum');

-- Orders: not masked; references customers.
CREATE TABLE orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL,
    product     text NOT NULL,
    quantity    integer NOT NULL,
    total       numeric(10,2) NOT NULL,
    status      text NOT NULL,
    ordered_at  date NOT NULL
);
INSERT INTO orders VALUES
 (1001, 1, 'kettle', 1, 499.00, 'shipped', '2024-01-05'),
 (1002, 1, 'toaster', 2, 798.00, 'paid', '2024-02-11'),
 (1003, 2, 'blender', 1, 1299.99, 'shipped', '2024-02-20'),
 (1004, 3, 'kettle', 3, 1497.00, 'returned', '2024-03-02'),
 (1005, 4, 'microwave', 1, 2199.00, 'paid', '2024-03-15'),
 (1006, 8, 'espresso machine', 1, 8999.00, 'shipped', '2024-04-01'),
 (1007, 101, 'fridge', 1, 15999.00, 'paid', '2024-04-09'),
 (1008, 9, 'kettle', 1, 499.00, 'new', '2024-05-01');
-- orders.customer_id refers to customers or vip_customers (a foreign key
-- cannot reach the child's rows), so it is checked by this one instead.
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;

-- Payments: partitioned by range, masked at the parent.
CREATE TABLE payments (
    id             integer NOT NULL,
    customer_id    integer NOT NULL,
    paid_on        date NOT NULL,
    amount         numeric(10,2) NOT NULL,
    card_number    text,
    account_number text
) PARTITION BY RANGE (paid_on);
CREATE TABLE payments_2023 PARTITION OF payments FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO payments VALUES
 (1, 1, '2023-11-02', 250.00, '4111111111111111', '62001234567'),
 (2, 2, '2023-12-24', 1299.99, '5500000000000004', '62007654321'),
 (3, 4, '2024-03-15', 2199.00, '6011000000000004', '10098765432'),
 (4, 8, '2024-04-01', 8999.00, '4222222222222220', '40512345678'),
 (5, 9, '2024-05-01', 499.00, NULL, '99');

-- Free text the support desk keeps: not masked.
CREATE TABLE tickets (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL,
    subject     text NOT NULL
);
INSERT INTO tickets VALUES (1, 1, 'late delivery'), (2, 3, 'refund'), (3, 4, 'broken kettle');

-- A view that reads masked columns, one that reads none, a view over a
-- view, and a materialized view over a masked column.
CREATE VIEW customer_contacts AS
    SELECT id, full_name, email, phone, city FROM customers;
CREATE VIEW customer_cities AS
    SELECT id, city FROM customers;
CREATE VIEW customer_spend AS
    SELECT c.id, c.city, count(o.id) AS orders, coalesce(sum(o.total), 0) AS spent
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.city;
CREATE VIEW durban_contacts AS
    SELECT id, email FROM customer_contacts WHERE city = 'Durban';
CREATE MATERIALIZED VIEW customer_emails_mv AS
    SELECT id, email FROM customers;

-- Functions that read masked columns: SQL (string body and BEGIN ATOMIC),
-- plpgsql, and a plpgsql function that runs SQL given as text.
CREATE FUNCTION customer_email(cid integer) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT email FROM customers WHERE id = cid $$;
CREATE FUNCTION customer_card(cid integer) RETURNS text LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT card_number FROM customers WHERE id = cid; END;
CREATE FUNCTION customer_phone(cid integer) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE p text;
BEGIN
    SELECT phone INTO p FROM customers WHERE id = cid;
    RETURN p;
END $$;
CREATE FUNCTION run_report(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE q;
END $$;
-- A function that reads nothing masked.
CREATE FUNCTION order_count(cid integer) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM orders WHERE customer_id = cid $$;
-- The support desk is told the customer's email when a ticket is opened:
-- a trigger whose function reads a masked column.
CREATE FUNCTION ticket_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'ticket % opened for %', NEW.id, (SELECT email FROM customers WHERE id = NEW.customer_id);
    RETURN NEW;
END $$;
CREATE TRIGGER tickets_opened AFTER INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION ticket_opened();
-- A view over orders only, that calls a function reading customers.
CREATE VIEW order_contacts AS
    SELECT o.id, customer_email(o.customer_id) AS contact FROM orders o;

-- A table with a rule that reads a masked table: every contact request
-- logs the customer's email.
CREATE TABLE contact_log (customer_id integer, contact text);
CREATE TABLE contact_requests (customer_id integer NOT NULL, reason text);
CREATE RULE contact_requests_log AS ON INSERT TO contact_requests
    DO ALSO INSERT INTO contact_log SELECT id, email FROM customers WHERE id = NEW.customer_id;

-- Sales leads, kept twice: the marketing copy in public masks the email
-- only, the CRM's own in crm masks the phone as well (two masked tables of
-- one name, masked differently).
CREATE TABLE public.leads (id integer PRIMARY KEY, full_name text, email text, phone text, source text);
INSERT INTO public.leads VALUES
 (1, 'Mpho Radebe', 'mpho.radebe@leads.example.com', '+27 81 555 2101', 'fair'),
 (2, 'Johan Botha', 'johan.botha@leads.example.com', '+27 82 555 2202', 'web');
CREATE TABLE crm.leads (LIKE public.leads INCLUDING ALL);
INSERT INTO crm.leads VALUES
 (1, 'Nomsa Mahlangu', 'nomsa.mahlangu@crm.example.com', '+27 83 555 3301', 'referral'),
 (2, 'Werner Pretorius', 'werner.p@crm.example.com', '+27 84 555 3402', 'web');

-- Statistics for pg_stats.
ANALYZE customers;
ANALYZE payments;

RESET ROLE;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO support, dba_lead;
GRANT USAGE ON SCHEMA crm TO analyst, support, dba_lead;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA crm TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA crm TO support, dba_lead;
-- pg_statistic is readable by superusers only; the analyst is given it so
-- that the attempt through it works on a direct connection.
GRANT SELECT ON pg_catalog.pg_statistic TO analyst;

-- A harmless function of the analyst's own (one attempt replaces it).
CREATE FUNCTION product_names() RETURNS SETOF text LANGUAGE sql STABLE
    AS $$ SELECT product FROM orders $$;
ALTER FUNCTION product_names() OWNER TO analyst;
