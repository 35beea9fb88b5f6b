package masking

import (
	"strings"
	"testing"
)

// catalogWithExtras adds to testCatalog a materialized view, a view over a
// view, a self-referencing view and the known function names.
func catalogWithExtras(t *testing.T) *Catalog {
	c := testCatalog(t)
	c.addView(&View{OID: 16501, Schema: "public", Name: "mv", Kind: 'm'})
	c.addView(&View{OID: 16502, Schema: "public", Name: "ft", Kind: 'f'})
	c.addView(&View{OID: 16503, Schema: "public", Name: "ruled", Kind: 'r'})
	c.addView(&View{OID: 16504, Schema: "public", Name: "v2", Kind: 'v', Def: "SELECT email FROM customer_emails"})
	c.addView(&View{OID: 16505, Schema: "public", Name: "loop", Kind: 'v', Def: "SELECT * FROM loop"})
	c.addView(&View{OID: 16506, Schema: "public", Name: "broken", Kind: 'v', Def: "not sql"})
	c.known = map[string]bool{"lower": true, "count": true, "max": true, "leak": true, "generate_series": true, "strpos": true, "char_length": true, "left": true, "regexp_replace": true}
	return c
}

func TestRewriteCases(t *testing.T) {
	c := catalogWithExtras(t)
	masked := "pgproxy_masked"
	for _, tc := range []struct {
		sql     string
		refused string   // a fragment of the refusal, "" when accepted
		has     []string // fragments of the rewritten SQL
		hasNot  []string
		changed bool
	}{
		{sql: "SELECT email FROM customers UNION SELECT email FROM public.customers", changed: true, has: []string{"UNION", "FROM public.customers pgproxy_masked"}},
		{sql: "SELECT email FROM customers EXCEPT SELECT 'x'", changed: true, has: []string{masked}},
		{sql: "WITH RECURSIVE customers AS (SELECT 1 AS email UNION ALL SELECT email FROM customers WHERE false) SELECT * FROM customers", changed: false},
		{sql: "WITH a AS (SELECT email FROM customers), customers AS (SELECT 1 AS email) SELECT * FROM a, customers", changed: true, has: []string{masked}},
		{sql: "WITH customers AS (SELECT email FROM customers) SELECT * FROM customers", changed: true, has: []string{"FROM customers pgproxy_masked"}},
		{sql: "SELECT (SELECT max(email) FROM customers)", changed: true, has: []string{masked}},
		{sql: "SELECT * FROM other.customers", changed: false},
		{sql: "SELECT * FROM customers x (a, b)", changed: true, has: []string{") x(a, b)"}},
		{sql: "SELECT * FROM customers TABLESAMPLE bernoulli (10) REPEATABLE (1)", changed: true, has: []string{"pgproxy_masked TABLESAMPLE bernoulli(10) REPEATABLE (1)"}},
		{sql: "SELECT * FROM generate_series(1,2) g JOIN customers c ON c.id = g", changed: true, has: []string{") c ON"}},
		{sql: "SELECT * FROM mv", refused: "materialized view public.mv"},
		{sql: "SELECT * FROM ft", refused: "foreign table public.ft"},
		{sql: "SELECT * FROM ruled", refused: "table with rules public.ruled"},
		{sql: "SELECT * FROM v2", changed: true, has: []string{") customer_emails) v2"}},
		{sql: "SELECT * FROM loop", refused: "refers to itself"},
		{sql: "SELECT * FROM broken", refused: "cannot be rewritten"},
		{sql: "SELECT * FROM customer_emails TABLESAMPLE system (1)", refused: "TABLESAMPLE of the view"},
		{sql: "SELECT * FROM customer_emails e", changed: true, has: []string{") e"}},
		{sql: "SELECT nope(email) FROM customers", refused: "the function nope is not in the catalog"},
		{sql: "SELECT lower(email) FROM customers", changed: true},
		{sql: "SELECT leak()", refused: "calling leak is not allowed"},
		{sql: "SELECT dblink_exec('x')", refused: "another connection"},
		{sql: "EXPLAIN (ANALYZE false) SELECT email FROM customers", changed: true},
		{sql: "EXPLAIN (ANALYZE off) SELECT email FROM customers", changed: true},
		{sql: "EXPLAIN (ANALYZE 0) SELECT email FROM customers", changed: true},
		{sql: "EXPLAIN (ANALYZE) SELECT email FROM customers", refused: "EXPLAIN ANALYZE"},
		{sql: "EXPLAIN ANALYZE SELECT 1", changed: false},
		{sql: "INSERT INTO customers (id, email) VALUES (1, 'x') ON CONFLICT ON CONSTRAINT customers_pkey DO NOTHING", refused: "ON CONFLICT"},
		{sql: "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO NOTHING", changed: false},
		{sql: "INSERT INTO customers (id) VALUES (1) ON CONFLICT ((lower(email))) DO NOTHING", refused: "ON CONFLICT"},
		{sql: "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) WHERE email = 'a' DO NOTHING", refused: "ON CONFLICT"},
		{sql: "INSERT INTO customers AS c (id, email) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email", changed: false},
		{sql: "INSERT INTO customers AS c (id, email) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = c.email", refused: "would copy its value"},
		{sql: "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 2 WHERE customers.ssn = '1'", changed: true, has: []string{"'***MASKED***'"}},
		{sql: "INSERT INTO customers (id) VALUES (1) RETURNING customers.*", changed: true, has: []string{"AS email", "NULL::int AS score"}},
		{sql: "INSERT INTO customers AS c (id) VALUES (1) RETURNING c.email, id", changed: true, has: []string{"AS email", "RETURNING"}},
		{sql: "INSERT INTO customers (id) VALUES (1) RETURNING other.*", changed: false},
		{sql: "UPDATE customers c SET id = 1 WHERE c.email = 'a'", changed: true, has: []string{"c.email IS NULL"}},
		{sql: "UPDATE customers SET id = 1 WHERE public.customers.email = 'a'", changed: true, has: []string{"pg_catalog.strpos"}},
		{sql: "UPDATE customers SET id = 1 WHERE customers = NULL", refused: "whole-row reference"},
		{sql: "UPDATE customers SET id = 1 FROM customers c2 WHERE c2.email = 'x'", changed: true, has: []string{") c2"}},
		{sql: "UPDATE customers SET email = 'new' WHERE id = 1", changed: false},
		{sql: "DELETE FROM customers WHERE EXISTS (SELECT 1 FROM orders o WHERE o.email = customers.email)", changed: true, has: []string{"customers.email IS NULL"}},
		{sql: "DELETE FROM customers WHERE id = 1 RETURNING *", changed: true, has: []string{"AS name"}},
		{sql: "DELETE FROM orders USING customers c WHERE c.email = orders.x", changed: true, has: []string{") c"}},
		{sql: "MERGE INTO customers c USING orders o ON o.id = c.id WHEN MATCHED THEN DELETE", refused: "MERGE into the masked table"},
		{sql: "MERGE INTO orders o USING customers c ON o.id = c.id WHEN MATCHED THEN DELETE", changed: true, has: []string{masked}},
		{sql: "COPY customers (email) TO STDOUT", changed: true, has: []string{"COPY (SELECT email FROM"}},
		{sql: "COPY customers FROM STDIN", changed: false},
		{sql: "COPY customer_emails TO STDOUT", refused: "COPY of public.customer_emails"},
		{sql: "COPY orders TO STDOUT", changed: false},
		{sql: "COPY customers TO '/tmp/x'", refused: "server file"},
		{sql: "PREPARE p AS SELECT email FROM customers", changed: true, has: []string{masked}},
		{sql: "DECLARE cur CURSOR FOR SELECT email FROM customers", changed: true, has: []string{masked}},
		{sql: "CREATE TABLE x AS SELECT email FROM customers", changed: true, has: []string{masked}},
		{sql: "SELECT email INTO x FROM customers", changed: true, has: []string{masked}},
		{sql: "CREATE VIEW v AS SELECT email FROM customers", changed: true, has: []string{masked}},
		{sql: "CREATE VIEW customers AS SELECT 1", refused: "CREATE VIEW over the masked table"},
		{sql: "CREATE RULE r AS ON INSERT TO orders DO ALSO INSERT INTO log SELECT email FROM customers", refused: "rule that reads a masked table"},
		{sql: "CREATE INDEX ON customers (email)", refused: "CREATE INDEX on the masked table"},
		{sql: "CREATE INDEX ON orders (id)", changed: false},
		{sql: "CREATE TRIGGER t BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION f()", refused: "CREATE TRIGGER on"},
		{sql: "CREATE POLICY p ON customers USING (true)", refused: "CREATE POLICY on"},
		{sql: "CREATE STATISTICS s ON email, name FROM customers", refused: "CREATE STATISTICS on"},
		{sql: "ALTER TABLE customer_emails RENAME TO x", refused: "renaming public.customer_emails"},
		{sql: "ALTER TABLE customers SET SCHEMA other", refused: "moving the masked table"},
		{sql: "ALTER TABLE orders ADD COLUMN y int", changed: false},
		{sql: "CREATE EXTENSION dblink", refused: "CREATE EXTENSION"},
		{sql: "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", refused: "foreign servers"},
		{sql: "ALTER SYSTEM SET work_mem = '1MB'", refused: "ALTER SYSTEM"},
		{sql: "LOAD 'x'", refused: "LOAD"},
		{sql: "LOCK customers", changed: false},
		{sql: "SET work_mem = '1MB'", changed: false},
		{sql: "SELECT * FROM pg_statistic", refused: "sampled column values"},
	} {
		res := rewrite(t, c, tc.sql)
		if tc.refused != "" {
			if res.Err == nil || !strings.Contains(res.Err.Message, tc.refused) {
				t.Errorf("%s: want a refusal containing %q, got %v (%s)", tc.sql, tc.refused, res.Err, res.SQL)
			} else if res.SQL != tc.sql || res.Changed || res.Err.Code != "42501" {
				t.Errorf("%s: a refusal is 42501 and forwards nothing: %+v", tc.sql, res)
			}
			continue
		}
		if res.Err != nil {
			t.Errorf("%s: refused: %s", tc.sql, res.Err.Message)
			continue
		}
		if res.Changed != tc.changed {
			t.Errorf("%s: changed %v, want %v: %s", tc.sql, res.Changed, tc.changed, res.SQL)
		}
		if !tc.changed && res.SQL != tc.sql {
			t.Errorf("%s: unchanged statement forwarded as %s", tc.sql, res.SQL)
		}
		for _, h := range tc.has {
			if !strings.Contains(res.SQL, h) {
				t.Errorf("%s: %q not in\n%s", tc.sql, h, res.SQL)
			}
		}
		for _, h := range tc.hasNot {
			if strings.Contains(res.SQL, h) {
				t.Errorf("%s: %q in\n%s", tc.sql, h, res.SQL)
			}
		}
	}
}

func TestRewriteHMACRefusesKeyChannels(t *testing.T) {
	c := testCatalog(t)
	c.cfg.Tables[0].Columns = append(c.cfg.Tables[0].Columns, Column{Name: "note", Mask: HMAC})
	c.cfg.HMACKey = []byte("0123456789abcdef")
	for _, sql := range []string{"SELECT query FROM pg_stat_activity", "SELECT current_query()", "EXPLAIN SELECT * FROM customers",
		"CREATE VIEW v AS SELECT * FROM customers", "SELECT * FROM pg_prepared_statements"} {
		if res := rewrite(t, c, sql); res.Err == nil {
			t.Errorf("%s: not refused with an hmac mask configured", sql)
		}
	}
	plain := testCatalog(t)
	for _, sql := range []string{"SELECT query FROM pg_stat_activity", "EXPLAIN SELECT * FROM customers"} {
		if res := rewrite(t, plain, sql); res.Err != nil {
			t.Errorf("%s: refused without an hmac mask: %s", sql, res.Err.Message)
		}
	}
}
