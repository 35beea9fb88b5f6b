package masking

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// moreCatalog is testCatalog with what the end-to-end suite (tests/masking)
// found missing: an hmac mask (when hmac is set), function names the
// database knows, a unique index over a masked column, a view calling an
// unsafe function, tables whose writes or reads run one, and a second
// table of one name masked differently in two schemas.
func moreCatalog(t *testing.T, hmac bool) *Catalog {
	t.Helper()
	c := testCatalog(t)
	c.refused, c.rfName = map[[2]string]*refusedRel{}, map[string][]*refusedRel{}
	if hmac {
		c.cfg.HMACKey = []byte("0123456789abcdef0123")
		tb := c.cfg.Table("public", "customers")
		tb.Columns = append(tb.Columns, Column{Name: "token", Mask: HMAC})
		rel := c.rels[[2]string{"public", "customers"}]
		m := tb.Columns[len(tb.Columns)-1]
		rel.Columns = append(rel.Columns, RelColumn{Name: "token", Num: 6, Type: Type{SQL: "text", Text: true}, Mask: &m})
	}
	c.rels[[2]string{"public", "customers"}].uniqueMasked = true
	c.known = map[string]bool{"leak": true, "lower": true, "set_config": true, "ts_rewrite": true, "count": true,
		"customer_note": true, "harmless": true, "current_setting": true, "upper": true, "plainto_tsquery": true}
	for _, f := range []string{"strpos", "left", "regexp_replace", "char_length", "encode", "sha256", "convert_to", "decode"} {
		c.known[f] = true // what the masks call
	}
	c.addView(&View{OID: 16600, Schema: "public", Name: "order_contacts", Kind: 'v', Def: "SELECT o.id, leak(o.id) AS contact FROM orders o"})
	c.refuseRel("public", "tickets", "", Insert, "a trigger of public.tickets calls leak, which reads masked values")
	c.refuseRel("public", "audited", "", Truncate, "a trigger of public.audited calls leak, which reads masked values")
	why := "a row security policy of public.guarded calls leak, which reads masked values"
	c.refuseRel("public", "guarded", why, anyWrite, why)
	for _, schema := range []string{"public", "crm"} {
		tb := &Table{Schema: schema, Name: "leads", Columns: []Column{{Name: "email", Mask: Email}}}
		if schema == "crm" {
			tb.Columns = append(tb.Columns, Column{Name: "phone", Mask: Full})
		}
		rel := &Relation{OID: 16700, Schema: schema, Name: "leads", Kind: 'r', Config: tb}
		for i, name := range []string{"id", "email", "phone"} {
			rc := RelColumn{Name: name, Num: int16(i + 1), Type: Type{SQL: "text", Text: true}}
			if m, ok := tb.Column(name); ok {
				rc.Mask = &m
			}
			rel.Columns = append(rel.Columns, rc)
		}
		c.rels[[2]string{schema, "leads"}] = rel
		c.byName["leads"] = append(c.byName["leads"], rel)
	}
	return c
}

func refused(t *testing.T, c *Catalog, sql, want string) {
	t.Helper()
	res := rewrite(t, c, sql)
	if res.Err == nil {
		t.Errorf("%s: not refused; runs as %s", sql, res.SQL)
		return
	}
	if res.Err.Code != "42501" || !strings.Contains(res.Err.Message, want) {
		t.Errorf("%s: refused with %s %q, want a message containing %q", sql, res.Err.Code, res.Err.Message, want)
	}
}

// refusedAll is refused for each text and the fragment its refusal must hold.
func refusedAll(t *testing.T, c *Catalog, cases map[string]string) {
	t.Helper()
	for sql, want := range cases {
		refused(t, c, sql, want)
	}
}

func allowed(t *testing.T, c *Catalog, sql string) Result {
	t.Helper()
	res := rewrite(t, c, sql)
	if res.Err != nil {
		t.Errorf("%s: refused: %s", sql, res.Err.Message)
	}
	return res
}

// BUGS.md 20: a CTE named like a masked table hid the table a data-modifying
// statement writes (its target is never a CTE).
func TestDMLTargetIsNotHiddenByACTE(t *testing.T) {
	c := moreCatalog(t, false)
	refused(t, c, "WITH customers AS (SELECT 1) UPDATE customers SET name = email RETURNING name", "copy its value")
	res := allowed(t, c, "WITH customers AS (SELECT 1 AS x) DELETE FROM customers WHERE id = 7 RETURNING email, ssn")
	if !res.Changed || !res.Touched || !strings.Contains(res.SQL, "'***MASKED***'") || !strings.Contains(res.SQL, "'***@'") {
		t.Errorf("RETURNING not masked: %s", res.SQL)
	}
	res = allowed(t, c, "WITH customers AS (SELECT 1 AS x) UPDATE customers SET score = 1 WHERE email = 'a@b.c'")
	if !strings.Contains(res.SQL, "strpos") {
		t.Errorf("WHERE not masked: %s", res.SQL)
	}
}

// BUGS.md 21: functions run without a call the proxy sees (triggers,
// defaults, operators, policies), so a function is checked when it is
// created.
func TestCreateFunctionChecksTheBody(t *testing.T) {
	c := moreCatalog(t, false)
	refusedAll(t, c, map[string]string{
		"CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS 'SELECT email FROM customers'":                        "reads customers",
		`CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ SELECT email FROM U&"\0063ustomers" $$`:            "U& escapes",
		"CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $$ SELECT email FROM public . /* x */ customers $$":   "reads customers",
		"CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT leak(1)); END $$":               "reads leak",
		"CREATE FUNCTION f() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END $$": "SQL given as text",
		"CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT email FROM customers; END":                 "reads a masked table",
		"CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT leak(1); END":                              "calling leak",
		"CREATE FUNCTION f() RETURNS trigger LANGUAGE plperl AS 'return;'":                                            "in plperl",
		"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'SELECT name FROM customer_emails'":                          "reads customer_emails",
		"CREATE FUNCTION f(a text DEFAULT leak(1)) RETURNS text LANGUAGE sql AS 'SELECT a'":                           "calling leak",
		"CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS 'SELECT query_to_xml(''x'', true, true, '''')'":       "SQL given as text",
	})
	// A function the catalog does not know yet may be called: its own body
	// is checked when it is created.
	allowed(t, c, "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql AS 'SELECT not_created_yet(1)'")
	allowed(t, c, "CREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$")
	res := allowed(t, c, "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM orders; END")
	if !res.DDL {
		t.Error("CREATE FUNCTION does not read the catalog again")
	}
}

// BUGS.md 21: what names or calls an unsafe function outside a function
// call: defaults, triggers and their WHEN clause, policies, operators,
// aggregates; and what the catalog found calling one (views, triggers,
// defaults, policies of existing tables). BUGS.md 23: ON CONFLICT without a
// target on a table whose unique index covers a masked column.
func TestImplicitCallsOfUnsafeFunctions(t *testing.T) {
	c := moreCatalog(t, false)
	refusedAll(t, c, map[string]string{
		"CREATE TABLE t (id int, v text DEFAULT leak(1))":                                                        "calling leak",
		"CREATE TABLE t (id int CHECK (leak(id) IS NOT NULL))":                                                   "calling leak",
		"CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION leak()":                          "trigger calling leak",
		"CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW WHEN (leak(1) = 'x') EXECUTE FUNCTION harmless()": "calling leak",
		"CREATE POLICY p ON orders USING (leak(1) = 'a@b.c')":                                                    "calling leak",
		"CREATE POLICY p ON orders USING (EXISTS (SELECT 1 FROM customers WHERE email = 'a@b.c'))":               "policy that reads a masked table",
		"ALTER POLICY p ON orders WITH CHECK (leak(1) IS NULL)":                                                  "calling leak",
		"CREATE OPERATOR ##> (RIGHTARG = integer, FUNCTION = leak)":                                              "naming the function leak",
		"CREATE AGGREGATE a(integer) (SFUNC = leak, STYPE = text)":                                               "naming the function leak",
		"SELECT * FROM order_contacts":                                                                           "calling leak",
		"INSERT INTO tickets VALUES (1)":                                                                         "writing tickets",
		"COPY tickets FROM STDIN":                                                                                "writing tickets",
		"TRUNCATE audited":                                                                                       "writing audited",
		"SELECT * FROM guarded":                                                                                  "reading guarded",
		"DELETE FROM guarded":                                                                                    "writing guarded",
		"MERGE INTO tickets t USING orders o ON t.id = o.id WHEN NOT MATCHED THEN INSERT VALUES (o.id)":          "writing tickets",
		"INSERT INTO audited SELECT * FROM guarded":                                                              "reading guarded",
		"WITH x AS (INSERT INTO tickets VALUES (1) RETURNING 1) SELECT * FROM x":                                 "writing tickets",
		"CREATE VIEW v AS SELECT leak(1)":                                                                        "calling leak",
		"CREATE RULE r AS ON INSERT TO orders DO ALSO SELECT leak(1)":                                            "calling leak",
		"CREATE TABLE t AS SELECT leak(1)":                                                                       "calling leak",
		"ALTER TABLE orders ALTER COLUMN status SET DEFAULT leak(1)":                                             "calling leak",
		"CREATE DOMAIN d AS text CHECK (leak(1) = VALUE)":                                                        "calling leak",
		"CREATE CAST (integer AS d) WITH FUNCTION leak(integer)":                                                 "naming the function leak",
		"CREATE TABLE t (id int, v text GENERATED ALWAYS AS (leak(id)) STORED)":                                  "calling leak",
		"INSERT INTO customers (id, name) VALUES (1, 'x') ON CONFLICT DO NOTHING":                                "without a conflict target",
		"WITH i AS (INSERT INTO customers (id) VALUES (9) ON CONFLICT DO NOTHING RETURNING 1) SELECT 1 WHERE NOT EXISTS (TABLE i)": "without a conflict target",
	})
	// An insert trigger does not stop an update or a delete; a table whose
	// triggers fire on truncate only takes inserts.
	allowed(t, c, "UPDATE tickets SET id = id")
	allowed(t, c, "DELETE FROM tickets WHERE id = 1")
	allowed(t, c, "INSERT INTO audited VALUES (1)")
	allowed(t, c, "INSERT INTO customers (id, name) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING")
	allowed(t, c, "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION harmless()")
}

// BUGS.md 22: with an hmac mask, what shows the rewritten text (which
// carries the padded key) is refused: the statement log and parse trees
// sent to the client, EXPLAIN of a prepared statement, the stored
// definitions of a materialized view.
func TestHMACKeyStaysInTheProxy(t *testing.T) {
	c := moreCatalog(t, true)
	refusedAll(t, c, map[string]string{
		"SET client_min_messages = log":                                 "client_min_messages",
		"SET client_min_messages TO 'DEBUG1'":                           "client_min_messages",
		"SET LOCAL debug_print_parse = on":                              "debug_print_parse",
		"SET debug_print_rewritten TO 1":                                "debug_print_rewritten",
		"SELECT set_config('client_min_messages', 'log', false)":        "client_min_messages",
		"SELECT set_config('debug_print_plan', (SELECT 'on'), false)":   "debug_print_plan",
		"SELECT set_config(lower('CLIENT_MIN_MESSAGES'), 'log', false)": "not a constant",
		"ALTER ROLE analyst SET client_min_messages = log":              "client_min_messages",
		"ALTER DATABASE testdb SET debug_print_parse = on":              "debug_print_parse",
		"EXPLAIN (VERBOSE) EXECUTE p":                                   "prepared statement",
		"EXPLAIN ANALYZE CREATE TABLE t AS EXECUTE p":                   "prepared statement",
		"CREATE MATERIALIZED VIEW mv AS SELECT token FROM customers":    "materialized view",
		"CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('client_min_messages', 'log', false); END $$": "statements",
	})
	for _, sql := range []string{
		"SET client_min_messages = warning", "SET debug_print_parse = off", "RESET client_min_messages",
		"SET client_min_messages TO DEFAULT", "SELECT set_config('search_path', 'public', false)",
		"SELECT set_config('application_name', 'x', false)",
	} {
		if res := allowed(t, c, sql); !res.Touched {
			t.Errorf("%s: not marked touched: its decision could be shared with a text of the same shape", sql)
		}
	}
	// Without an hmac mask none of these hide anything.
	plain := moreCatalog(t, false)
	for _, sql := range []string{"SET client_min_messages = log", "SET debug_print_parse = on", "EXPLAIN EXECUTE p",
		"SELECT set_config('client_min_messages', 'log', false)", "CREATE MATERIALIZED VIEW mv AS SELECT name FROM customers"} {
		allowed(t, plain, sql)
	}
}

// BUGS.md 23: a text the proxy reads as one string literal is code to a
// server with standard_conforming_strings off; and ts_rewrite(query, text)
// runs the SELECT it is given.
func TestSettingsAndBuiltInsThatChangeWhatRuns(t *testing.T) {
	for _, hmac := range []bool{false, true} {
		c := moreCatalog(t, hmac)
		refused(t, c, "SET standard_conforming_strings = off", "standard_conforming_strings")
		refused(t, c, "SET standard_conforming_strings TO false", "standard_conforming_strings")
		refused(t, c, "SELECT set_config('standard_conforming_strings', 'off', false)", "standard_conforming_strings")
		refused(t, c, "ALTER ROLE analyst SET standard_conforming_strings = off", "standard_conforming_strings")
		refused(t, c, "SELECT set_config(current_setting('x.y'), 'off', false)", "not a constant")
		refused(t, c, "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, plainto_tsquery(email) FROM customers')", "ts_rewrite")
		allowed(t, c, "SET standard_conforming_strings = on")
		allowed(t, c, "RESET standard_conforming_strings")
		allowed(t, c, "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)")
	}
}

// BUGS.md 23: the file names tables by schema: an unqualified name masked
// differently in two schemas, or renaming a schema that holds masked
// tables, would let the session read a table under masks not its own.
func TestSchemasOfMaskedTables(t *testing.T) {
	c := moreCatalog(t, false)
	refused(t, c, "SELECT phone FROM leads", "masked differently in several schemas")
	refused(t, c, "UPDATE leads SET id = id RETURNING phone", "masked differently in several schemas")
	refused(t, c, "COPY leads TO STDOUT", "masked differently in several schemas")
	refused(t, c, "ALTER SCHEMA crm RENAME TO crm2", "renaming the schema crm")
	refused(t, c, "ALTER SCHEMA public RENAME TO p2", "renaming the schema public")
	allowed(t, c, "ALTER SCHEMA reports RENAME TO reports2")
	res := allowed(t, c, "SELECT phone FROM crm.leads")
	if !strings.Contains(res.SQL, "'***MASKED***'") {
		t.Errorf("crm.leads.phone not masked: %s", res.SQL)
	}
	res = allowed(t, c, "SELECT phone FROM public.leads")
	if !strings.Contains(res.SQL, "pgproxy_masked.phone FROM public.leads") {
		t.Errorf("public.leads.phone masked: %s", res.SQL)
	}
	// One name in several schemas with the same columns and masks (a schema
	// per tenant) is not ambiguous.
	c.rels[[2]string{"crm", "leads"}].Columns[2].Mask = nil
	allowed(t, c, "SELECT phone FROM leads")
}

func TestStatementShowingSettings(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		shows       bool
	}{
		{"client_min_messages", "log", true}, {"client_min_messages", "DEBUG3", true}, {"client_min_messages", "notice", false},
		{"client_min_messages", "warning", false}, {"debug_print_plan", "on", true}, {"debug_print_plan", "true", true},
		{"debug_print_plan", "off", false}, {"Debug_Print_Parse", "OFF", false}, {"debug_print_parse", "1", true},
	} {
		if !showsStatements(tc.name) {
			t.Errorf("%s is not a setting that shows statements", tc.name)
		}
		if got := statementShowing(tc.name, tc.value); got != tc.shows {
			t.Errorf("%s = %s: %v, want %v", tc.name, tc.value, got, tc.shows)
		}
	}
	if showsStatements("search_path") || showsStatements("debug_pretty_print") {
		t.Error("search_path or debug_pretty_print taken for a setting that shows statements")
	}
}

// A schema-qualified column reference (public.customers.id) names the
// subquery that replaces public.customers by its relation name.
func TestSchemaQualifiedColumnReferences(t *testing.T) {
	c := moreCatalog(t, false)
	for _, sql := range []string{
		"SELECT public.customers.id, customers.name FROM public.customers WHERE public.customers.id = 1",
		"SELECT testdb.public.customers.email FROM testdb.public.customers",
		"SELECT public.customers.* FROM public.customers JOIN orders o ON o.customer_id = public.customers.id",
		"SELECT (SELECT count(*) FROM orders o WHERE o.customer_id = public.customers.id) FROM public.customers",
		"DELETE FROM orders USING public.customers WHERE orders.customer_id = public.customers.id RETURNING public.customers.email",
	} {
		res := allowed(t, c, sql)
		tree, err := pg_query.Parse(res.SQL)
		if err != nil {
			t.Fatalf("%s: the rewritten text does not parse: %v", sql, err)
		}
		for _, st := range tree.Stmts {
			eachNode(st.Stmt, func(x *pg_query.Node) bool {
				if cr := x.GetColumnRef(); cr != nil && len(cr.Fields) > 2 {
					t.Errorf("%s: the reference %s is left in %s", sql, cr, res.SQL)
				}
				return true
			})
		}
	}
	// An alias of the client's own is what the references use: untouched.
	res := allowed(t, c, "SELECT c.id FROM public.customers c")
	if !strings.Contains(res.SQL, ") c") {
		t.Errorf("alias lost: %s", res.SQL)
	}
}

// BUGS.md 42: what a review found getting past masking: PL/pgSQL bodies
// naming the statistics views, ts_rewrite or set_config (the proxy does not
// parse PL/pgSQL); operators and aggregates over built-in functions that
// run SQL given as text or change settings; ALTER FUNCTION ... SET of
// standard_conforming_strings; and a change of client_encoding, which a
// statement pipelined after it is checked before the server reports.
func TestIndirectCallsAndSettingChanges(t *testing.T) {
	for _, hmac := range []bool{false, true} {
		c := moreCatalog(t, hmac)
		refusedAll(t, c, map[string]string{
			"CREATE FUNCTION fs5() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT attname||'='||coalesce(histogram_bounds::text,'-') FROM pg_stats WHERE tablename='cust'||'omers'; END $$": "names pg_stats",
			"CREATE FUNCTION ft() RETURNS tsquery LANGUAGE plpgsql AS $$ BEGIN RETURN ts_rewrite('zzz'::tsquery, 'select ''zzz''::tsquery, (quote_literal(ssn))::tsquery from cust'||'omers'); END $$":           "names ts_rewrite",
			`CREATE FUNCTION f2() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT * FROM pg_catalog."PG_STATS_EXT"; END $$`:                                                                  "names pg_stats_ext",
			"CREATE FUNCTION f3() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM dblink_connect('x'); END $$":                                                                                                 "dblink_connect",
			"CREATE OPERATOR public.### (function = pg_catalog.ts_rewrite, leftarg = tsquery, rightarg = text)":                                                                                                  "naming the function ts_rewrite",
			"CREATE AGGREGATE rwagg(text) (sfunc = pg_catalog.ts_rewrite, stype = tsquery, initcond = 'zzz')":                                                                                                    "naming the function ts_rewrite",
			"CREATE OPERATOR public.#~# (function = pg_catalog.ts_stat, leftarg = text, rightarg = text)":                                                                                                        "naming the function ts_stat",
			"CREATE AGGREGATE qx(text) (sfunc = query_to_xml, stype = text)":                                                                                                                                     "naming the function query_to_xml",
			"CREATE AGGREGATE scsagg(text, boolean) (sfunc = pg_catalog.set_config, stype = text, initcond = 'standard_conforming_strings')":                                                                     "naming the function set_config",
			"ALTER FUNCTION scs() SET standard_conforming_strings = off":                                                                                                                                         "standard_conforming_strings",
			"ALTER PROCEDURE p() SET standard_conforming_strings TO false":                                                                                                                                       "standard_conforming_strings",
			"SET client_encoding = 'SJIS'":                                                            "client_encoding",
			"SET LOCAL client_encoding TO 'BIG5'":                                                     "client_encoding",
			"SET NAMES 'GBK'":                                                                         "client_encoding",
			"SELECT set_config('client_encoding', 'SJIS', false)":                                     "client_encoding",
			"SELECT set_config('client_encoding', (SELECT 'UTF8'), false)":                            "client_encoding",
			"CREATE FUNCTION f() RETURNS int LANGUAGE sql SET client_encoding = 'SJIS' AS 'SELECT 1'": "client_encoding",
			"ALTER FUNCTION f() SET client_encoding = 'BIG5'":                                         "client_encoding",
		})
		for _, sql := range []string{
			"SET client_encoding = 'UTF8'", "SET NAMES 'utf-8'", "SET client_encoding TO 'Unicode'", "RESET client_encoding",
			"SET client_encoding TO DEFAULT", "SELECT set_config('client_encoding', 'UTF8', false)",
			"CREATE OPERATOR public.#+# (function = pg_catalog.textcat, leftarg = text, rightarg = text)",
			"ALTER FUNCTION f() SET search_path = public", "ALTER FUNCTION f() SET standard_conforming_strings = on",
		} {
			allowed(t, c, sql)
		}
	}
	c := moreCatalog(t, false)
	refusedAll(t, c, map[string]string{
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SET standard_conforming_strings = off'":                                                                                 "standard_conforming_strings",
		"CREATE PROCEDURE p() LANGUAGE sql AS 'SET LOCAL standard_conforming_strings = off'":                                                                                       "standard_conforming_strings",
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SET client_encoding = ''SJIS'''":                                                                                        "client_encoding",
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DO $d$ BEGIN NULL; END $d$'":                                                                                            "DO blocks",
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ CREATE FUNCTION g() RETURNS SETOF text LANGUAGE plpgsql AS 'BEGIN RETURN QUERY SELECT attname FROM pg_stats; END' $$": "names pg_stats",
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'CREATE EXTENSION pageinspect'":                                                                                          "CREATE EXTENSION",
	})
	allowed(t, c, "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SET search_path = public'")
	refused(t, c, "CREATE FUNCTION scsl() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', true); END $$", "names set_config")
	refused(t, c, "CREATE FUNCTION enc() RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET client_encoding = 'SJIS'; END $$", "names client_encoding")
	// A second review: SET NAMES is client_encoding under another name.
	// PL/pgSQL bodies are now split by PostgreSQL's PL/pgSQL parser, and
	// each statement and expression checked as a statement.
	refusedAll(t, c, map[string]string{
		"CREATE FUNCTION sn2() RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET NAMES 'SJIS'; END $$":                                                                      "client_encoding",
		"CREATE FUNCTION sn3() RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET /* a /* b */ c */ NAMES 'SJIS'; END $$":                                                    "client_encoding",
		"CREATE FUNCTION sn4() RETURNS void LANGUAGE plpgsql AS $$ DECLARE x text; BEGIN x := (SELECT leak(1)); END $$":                                                 "leak",
		"CREATE FUNCTION sn5() RETURNS void LANGUAGE plpgsql AS $$ BEGIN IF (SELECT count(*) FROM customers) > 0 THEN RETURN; END IF; END $$":                           "customers",
		"CREATE FUNCTION sn6() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE FUNCTION inner1() RETURNS int LANGUAGE sql AS 'SELECT 1'; DO 'BEGIN NULL; END'; END $$": "DO blocks",
	})
	allowed(t, c, "CREATE FUNCTION ok1(a int) RETURNS int LANGUAGE plpgsql AS $$ DECLARE x int := a + 1; BEGIN FOR i IN 1..3 LOOP x := x * 2; END LOOP; RETURN x; END $$")
	allowed(t, c, "CREATE FUNCTION ok2() RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT id FROM orders; END $$")
}

// BUGS.md 42: a function the catalog lists (made outside the proxy, or
// before masking) is unsafe to call when its body changes how the server
// reads statement text, or names a refused built-in.
func TestUnsafeBodiesOfListedFunctions(t *testing.T) {
	for _, tc := range []struct {
		lang, src, want string
	}{
		{"plpgsql", "BEGIN SET NAMES 'SJIS'; END", "SET NAMES"},
		{"plpgsql", "BEGIN SET /* x */ names 'SJIS'; END", "SET NAMES"},
		{"sql", "SET client_encoding = 'SJIS'", "client_encoding"},
		{"sql", "SELECT set_config('standard_conforming_strings', 'off', false)", "set_config"},
		{"plpgsql", "BEGIN RETURN QUERY SELECT attname::text FROM pg_stats; END", "pg_stats"},
		{"plpgsql", "BEGIN RETURN ts_rewrite('a'::tsquery, 'SELECT 1'); END", "ts_rewrite"},
		{"plperl", "return 1;", "plperl"},
		{"sql", "SELECT names FROM directory", ""},
		{"plpgsql", "BEGIN RETURN upper(v); END", ""},
	} {
		got := unsafeBody(function{name: "f", lang: tc.lang, src: tc.src})
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s %q: %q, want a reason containing %q", tc.lang, tc.src, got, tc.want)
		}
	}
}

// BUGS.md 43, from a review: expressions in the subscripts of an UPDATE's or
// INSERT's target columns, the WHERE of COPY FROM and the expressions of an
// index were not checked.
func TestSubscriptsOfTargetsAndCopyWhere(t *testing.T) {
	for _, hmac := range []bool{false, true} {
		c := moreCatalog(t, hmac)
		refusedAll(t, c, map[string]string{
			"UPDATE customers SET id[(ssn)::int] = 1 WHERE id = 1":                                                    "copy its value",
			"UPDATE customers SET id[(SELECT ssn::int)] = 1 WHERE id = 2":                                             "copy its value",
			"UPDATE customers SET id[1:length(email)] = '{}' WHERE id = 2":                                            "copy its value",
			"INSERT INTO sink (j[query_to_xml('select ssn from customers', true, true, '')::text]) VALUES ('1')":      "query_to_xml",
			"WITH w AS (INSERT INTO sink (j[leak()]) VALUES ('1') RETURNING j) SELECT * FROM w":                       "calling leak",
			"COPY sink FROM STDIN WHERE (query_to_xml('select email from customers', true, true, '')::text)::int = 1": "query_to_xml",
			"COPY sink (x) FROM STDIN WITH (FORMAT csv) WHERE leak() = 1":                                             "calling leak",
			"CREATE INDEX ON sink ((query_to_xml('select email from customers', true, true, '')::text))":              "query_to_xml",
			"CREATE INDEX ON sink (x) WHERE leak() > 0":                                                               "calling leak",
			// Assigning a part of a masked column reads it (its keys, its
			// array bounds show in the server's errors).
			"UPDATE customers SET name['secret']['x'] = '1' WHERE id = 1":                           "a part of the masked column name",
			"UPDATE customers SET (id, ssn[1]) = (1, 'x') WHERE id = 1":                             "a part of the masked column ssn",
			"INSERT INTO customers (id) VALUES (2) ON CONFLICT (id) DO UPDATE SET email['k'] = '1'": "a part of the masked column email",
			"CREATE STATISTICS s ON (leak()), x FROM sink":                                          "calling leak",
		})
		res := allowed(t, c, "INSERT INTO sink (j[(SELECT lower(ssn) FROM customers LIMIT 1)]) VALUES ('1')")
		if !res.Changed || !strings.Contains(res.SQL, "pgproxy_masked") {
			t.Errorf("the subquery of an INSERT column's subscript is not masked: %s", res.SQL)
		}
		allowed(t, c, "UPDATE orders SET items[2] = 'x' WHERE id = 1")
		allowed(t, c, "COPY sink FROM STDIN WHERE x > 1")
	}
}

// ON CONFLICT ON CONSTRAINT may name a unique constraint the catalog knows
// covers no masked column; one that covers a masked column, or one the
// catalog does not know, is refused (a conflict tells whether a value
// exists).
func TestOnConflictOnConstraint(t *testing.T) {
	c := moreCatalog(t, false)
	c.rels[[2]string{"public", "customers"}].safeConstraints = map[string]bool{"customers_pkey": true}
	allowed(t, c, "INSERT INTO customers (id) VALUES (1) ON CONFLICT ON CONSTRAINT customers_pkey DO NOTHING")
	allowed(t, c, "INSERT INTO customers (id) VALUES (1) ON CONFLICT ON CONSTRAINT customers_pkey DO UPDATE SET id = excluded.id")
	refusedAll(t, c, map[string]string{
		"INSERT INTO customers (id, ssn) VALUES (1, 'x') ON CONFLICT ON CONSTRAINT customers_ssn_key DO NOTHING": "ON CONFLICT on a masked column",
		"INSERT INTO customers (id) VALUES (1) ON CONFLICT ON CONSTRAINT made_just_now DO NOTHING":               "ON CONFLICT on a masked column",
	})
}
