package analysis

import (
	"strings"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

func btree(name string, cols ...string) metadata.Index {
	return metadata.Index{Name: name, Columns: cols, Method: "btree"}
}

func columns(spec ...string) []metadata.Column {
	var out []metadata.Column
	for _, s := range spec {
		name, typ, _ := strings.Cut(s, " ")
		out = append(out, metadata.Column{Name: name, Type: typ})
	}
	return out
}

// fixture is a small catalog: big tables (orders 2M, customers 1.5M,
// events 5M partitioned, docs 3M with a trigram index, users_lower 2M with
// an expression index, sales."Big Orders" 2M), a small one (countries), a
// view, a table never analyzed and one without column facts.
func fixture() map[sqlparse.TableRef]*metadata.Table {
	tables := []*metadata.Table{
		{Schema: "public", Name: "orders", Kind: 'r', Rows: 2e6, Pages: 20000, Bytes: 163840000,
			Indexes: []metadata.Index{
				{Name: "orders_pkey", Columns: []string{"id"}, Method: "btree", Unique: true, Primary: true},
				btree("orders_customer_idx", "customer_id"),
				btree("orders_created_idx", "created_at", "status"),
			},
			Columns: columns("id int8", "customer_id int4", "status text", "note text", "created_at timestamptz",
				"total numeric", "email varchar")},
		{Schema: "public", Name: "customers", Kind: 'r', Rows: 1.5e6, Pages: 15000,
			Indexes: []metadata.Index{btree("customers_pkey", "id"), btree("customers_email_idx", "email")},
			Columns: columns("id int8", "email text", "name text", "created_at timestamptz", "country text")},
		{Schema: "public", Name: "countries", Kind: 'r', Rows: 200, Pages: 2,
			Indexes: []metadata.Index{btree("countries_pkey", "code")},
			Columns: columns("code text", "name text")},
		{Schema: "public", Name: "events", Kind: 'p', Rows: 5e6, Pages: 50000,
			Indexes: []metadata.Index{btree("events_at_idx", "at")},
			Columns: columns("id int8", "at date", "kind text", "payload jsonb")},
		{Schema: "public", Name: "docs", Kind: 'r', Rows: 3e6,
			Indexes: []metadata.Index{btree("docs_pkey", "id"), {Name: "docs_body_trgm", Columns: []string{"body"}, Method: "gin"},
				{Name: "docs_title_hash", Columns: []string{"title"}, Method: "hash"}},
			Columns: columns("id int8", "title text", "body text")},
		{Schema: "public", Name: "users_lower", Kind: 'r', Rows: 2e6,
			Indexes: []metadata.Index{btree("users_lower_pkey", "id"), btree("users_lower_email", "")},
			Columns: columns("id int8", "email text")},
		{Schema: "public", Name: "order_view", Kind: 'v', Rows: -1, Columns: columns("id int8", "status text")},
		{Schema: "public", Name: "nostats", Kind: 'r', Rows: -1, Columns: columns("id int8")},
		{Schema: "public", Name: "bare", Kind: 'r', Rows: 4e6, Indexes: []metadata.Index{btree("bare_pkey", "id")}},
		{Schema: "sales", Name: "Big Orders", Kind: 'r', Rows: 2e6,
			Indexes: []metadata.Index{btree("big_orders_pkey", "id")}, Columns: columns("id int8", "amount numeric")},
	}
	m := map[sqlparse.TableRef]*metadata.Table{}
	for _, t := range tables {
		m[sqlparse.TableRef{Schema: t.Schema, Name: t.Name}] = t
		if t.Schema == "public" {
			m[sqlparse.TableRef{Name: t.Name}] = t // search_path = public
		}
	}
	return m
}

func factsOf(m map[sqlparse.TableRef]*metadata.Table) func(schema, name string) *metadata.Table {
	return func(schema, name string) *metadata.Table { return m[sqlparse.TableRef{Schema: schema, Name: name}] }
}

func parse(t testing.TB, sql string) *pg_query.ParseResult {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tree
}

type ruleCase struct {
	sql   string
	check string // "" when no rule may fire
}

// ruleCases are the statements each rule must flag and the near misses it
// must not.
var ruleCases = []ruleCase{
	// unfiltered_read
	{"SELECT * FROM orders", CheckUnfilteredRead},
	{"TABLE orders", CheckUnfilteredRead},
	{"SELECT o.id FROM public.orders o", CheckUnfilteredRead},
	{`SELECT * FROM sales."Big Orders"`, CheckUnfilteredRead},
	{`SELECT * FROM "orders"`, CheckUnfilteredRead},
	{"SELECT status, count(*) FROM orders GROUP BY status", CheckUnfilteredRead},
	{"SELECT DISTINCT status FROM orders", CheckUnfilteredRead},
	{"SELECT * FROM orders LIMIT ALL", CheckUnfilteredRead},
	{"SELECT * FROM orders LIMIT 5000000", CheckUnfilteredRead},
	{"SELECT * FROM orders ORDER BY created_at", CheckUnfilteredRead},
	{"SELECT * FROM events", CheckUnfilteredRead},
	{"SELECT * FROM bare", CheckUnfilteredRead},
	{"SELECT * FROM (SELECT id, status FROM orders) s", CheckUnfilteredRead},
	{"WITH x AS (SELECT * FROM orders) SELECT * FROM x", CheckUnfilteredRead},
	{"WITH x AS MATERIALIZED (SELECT * FROM customers) SELECT * FROM x ORDER BY 1", CheckUnfilteredRead},
	{"SELECT id FROM countries UNION ALL SELECT id FROM orders", CheckUnfilteredRead},
	{"SELECT count(*) FROM (SELECT * FROM orders) s", CheckUnfilteredRead},
	{"SELECT * FROM orders; SELECT 1", CheckUnfilteredRead},
	{"SELECT * FROM orders LIMIT 10", ""},
	{"SELECT * FROM ONLY orders", ""},
	{"WITH unused AS (SELECT * FROM orders) SELECT 1", ""},
	{"WITH x AS (SELECT * FROM orders) SELECT * FROM x WHERE id = 1", ""},
	{"WITH RECURSIVE r AS (SELECT id FROM orders UNION ALL SELECT r.id FROM r) SELECT * FROM r", CheckUnfilteredRead},
	{"WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", ""},
	{"SELECT * FROM orders FETCH FIRST 10 ROWS ONLY", ""},
	{"SELECT * FROM orders LIMIT $1", ""},
	{"SELECT * FROM orders WHERE id = $1", ""},
	{"SELECT * FROM orders WHERE customer_id = $1 LIMIT 10", ""},
	{"SELECT * FROM countries", ""},
	{"SELECT * FROM order_view", ""},
	{"SELECT * FROM nostats", ""},
	{"SELECT * FROM not_in_catalog", ""},
	{"SELECT * FROM sales.orders", ""},
	{"WITH orders AS (SELECT 1 AS id) SELECT * FROM orders", ""},
	{"SELECT * FROM (SELECT * FROM orders) s LIMIT 5", ""},
	{"SELECT * FROM (SELECT * FROM orders) s WHERE s.id = 1", ""},
	{"WITH x AS (SELECT * FROM orders) SELECT * FROM x LIMIT 5", ""},
	{"(SELECT id FROM orders) UNION ALL (SELECT id FROM customers) LIMIT 10", ""},
	{"SELECT EXISTS (SELECT 1 FROM orders)", ""},
	{"SELECT (SELECT id FROM orders LIMIT 1)", ""},
	{"SELECT * FROM orders TABLESAMPLE SYSTEM (1)", ""},
	{"SELECT * FROM countries WHERE code IN (SELECT status FROM orders)", ""},
	{"SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", ""},
	{"INSERT INTO archive SELECT * FROM orders", ""},
	{"UPDATE orders SET note = ''", ""},
	{"VALUES (1), (2)", ""},
	{"SELECT 1", ""},

	// full_aggregate
	{"SELECT count(*) FROM orders", CheckFullAggregate},
	{"SELECT count(1) FROM public.customers", CheckFullAggregate},
	{"SELECT sum(total) FROM orders LIMIT 1", CheckFullAggregate},
	{"SELECT 1 FROM orders HAVING count(*) > 5", CheckFullAggregate},
	{"SELECT count(*) FROM orders WHERE customer_id = $1", ""},
	{"SELECT min(id), max(id) FROM orders", ""},
	{"SELECT count(*) FROM countries", ""},
	{"SELECT count(*) OVER () FROM orders LIMIT 10", ""},

	// cartesian_join
	{"SELECT * FROM orders, customers", CheckCartesianJoin},
	{"SELECT * FROM orders CROSS JOIN customers", CheckCartesianJoin},
	{"SELECT * FROM orders o JOIN customers c ON true", CheckCartesianJoin},
	{"SELECT * FROM orders o LEFT JOIN customers c ON 1 = 1", CheckCartesianJoin},
	{"SELECT count(*) FROM orders o, customers c", CheckCartesianJoin},
	{"SELECT * FROM orders o, customers c ORDER BY random() LIMIT 1", CheckOrderByRandom},
	{"SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id, events e", CheckCartesianJoin},
	{"SELECT * FROM public.orders o, sales.\"Big Orders\" b", CheckCartesianJoin},
	{"SELECT ARRAY(SELECT c.country FROM customers c, events e)", CheckCartesianJoin},
	{"SELECT * FROM countries WHERE code IN (SELECT c.country FROM customers c, events e)", ""}, // a semi-join may be driven from countries
	{"WITH p AS (SELECT * FROM orders CROSS JOIN events) SELECT count(*) FROM p", CheckCartesianJoin},
	{"SELECT * FROM orders o, customers c WHERE o.customer_id = c.id", ""},
	{"SELECT * FROM orders, customers WHERE customer_id = country", ""},
	{"SELECT * FROM orders JOIN customers USING (id)", ""},
	{"SELECT * FROM orders NATURAL JOIN customers", ""},
	{"SELECT * FROM orders o, customers c WHERE o.id = 1 AND c.id = 2", ""},
	{"SELECT * FROM orders o, customers c WHERE o.status = 'open'", ""},
	{"SELECT * FROM orders, customers WHERE status = 'open' AND country = 'NO'", ""},
	{"SELECT * FROM orders o, customers c LIMIT 10", ""},
	{"SELECT * FROM orders o, countries k", ""},
	{"SELECT * FROM orders o, customers c JOIN vip v ON v.id = c.id", ""},
	{"SELECT * FROM orders o, customers c WHERE o.note = c.name OR o.id = 1", ""},
	{"SELECT * FROM orders o, customers c WHERE $1", ""},
	{"SELECT * FROM orders o CROSS JOIN LATERAL (SELECT * FROM customers c WHERE c.id = o.customer_id) s", ""},
	{"SELECT * FROM orders o, LATERAL generate_series(1, o.id) g", ""},
	// bare has no column facts: inside LATERAL, id may be a column of k (a
	// correlation), so it is not certainly bare's (at the top it is).
	{"SELECT * FROM countries k, LATERAL (SELECT * FROM bare WHERE lower(id::text) = '1') s", ""},
	{"SELECT * FROM countries k, LATERAL (SELECT * FROM bare b WHERE lower(b.id::text) = '1') s", CheckFunctionOnColumn},
	{"SELECT * FROM countries WHERE EXISTS (SELECT 1 FROM orders, customers)", ""},
	{"SELECT * FROM (SELECT * FROM orders, customers) s LIMIT 10", ""},
	{"SELECT * FROM (SELECT o.id AS oid, c.id AS cid FROM orders o, customers c) s WHERE s.oid = s.cid", ""},
	{"SELECT * FROM order_view v, customers c", ""},

	// not_in_subquery
	{"SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)", CheckNotInSubquery},
	{"SELECT * FROM customers c WHERE c.id <> ALL (SELECT o.customer_id FROM orders o)", CheckNotInSubquery},
	{"SELECT * FROM customers WHERE NOT (id IN (SELECT customer_id FROM public.orders))", CheckNotInSubquery},
	{"SELECT * FROM countries WHERE code NOT IN (SELECT status FROM orders UNION SELECT country FROM customers)", CheckNotInSubquery},
	{"SELECT (SELECT count(*) FROM countries k WHERE k.code NOT IN (SELECT status FROM orders))", CheckNotInSubquery},
	{"SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders WHERE created_at > now() - interval '1 day')", ""},
	{"SELECT * FROM customers WHERE id NOT IN (SELECT code FROM countries)", ""},
	{"SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders LIMIT 10)", ""},
	{"SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders)", ""},
	{"SELECT * FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)", ""},
	{"SELECT * FROM customers WHERE id NOT IN (1, 2, 3)", ""},
	{"SELECT * FROM customers c WHERE c.id NOT IN (SELECT o.customer_id FROM orders o WHERE o.note = c.name)", ""},

	// order_by_random
	{"SELECT * FROM orders ORDER BY random() LIMIT 1", CheckOrderByRandom},
	{"SELECT id FROM customers c ORDER BY pg_catalog.random() LIMIT 5", CheckOrderByRandom},
	{"SELECT * FROM orders WHERE customer_id = $1 ORDER BY random() LIMIT 1", ""},
	{"SELECT * FROM countries ORDER BY random() LIMIT 1", ""},
	{"SELECT * FROM orders ORDER BY created_at DESC LIMIT 10", ""},
	{"SELECT * FROM orders TABLESAMPLE BERNOULLI (1) ORDER BY random() LIMIT 1", ""},
	{"SELECT random() FROM orders LIMIT 1", ""},
	{"SELECT * FROM orders ORDER BY myschema.random() LIMIT 1", ""},

	// leading_wildcard
	{"SELECT * FROM customers WHERE name LIKE '%smith'", CheckLeadingWildcard},
	{"SELECT * FROM customers c WHERE c.name ILIKE '%smith%'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name ~~ '_mith'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name ~~* '%mith'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name LIKE '%' || $1 || '%'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name LIKE concat('%', $1::text)", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name SIMILAR TO '%(a|b)'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name ~ 'smith'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name ~* '^.*smith'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE lower(name) LIKE '%smith%'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name LIKE '%a' OR country LIKE '%b'", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name LIKE '%a' AND country = 'NO'", CheckLeadingWildcard},
	{`SELECT * FROM "customers" "C" WHERE "C"."name" LIKE '%a'`, CheckLeadingWildcard},
	{"SELECT * FROM public.customers WHERE public.customers.name LIKE '%a'", CheckLeadingWildcard},
	{"SELECT (SELECT count(*) FROM customers WHERE name LIKE '%x')", CheckLeadingWildcard},
	{"SELECT * FROM countries WHERE code = ANY (SELECT country FROM customers WHERE name LIKE '%x')", ""},
	{"WITH m AS (SELECT id FROM customers WHERE name LIKE '%x%') SELECT * FROM m", CheckLeadingWildcard},
	{"SELECT * FROM (SELECT * FROM events WHERE kind LIKE '%x') e", CheckLeadingWildcard},
	{"SELECT * FROM customers WHERE name LIKE 'smith%'", ""},
	{"SELECT * FROM (SELECT * FROM customers WHERE name LIKE '%x') s WHERE s.id = 1", ""}, // s.id = 1 is pushed down
	{"SELECT * FROM (SELECT * FROM (SELECT * FROM customers WHERE name LIKE '%x') a) b WHERE b.id = 1", ""},
	{"WITH m AS (SELECT * FROM customers WHERE name LIKE '%x%') SELECT * FROM m WHERE id = $1", ""},
	{"SELECT * FROM (SELECT * FROM customers WHERE name LIKE '%x') c JOIN orders o ON o.customer_id = c.id WHERE o.id = 5", ""},
	{"WITH unused AS (SELECT * FROM customers WHERE name LIKE '%x') SELECT 1", ""},
	{"SELECT * FROM ONLY customers WHERE name LIKE '%x'", ""},
	{"SELECT * FROM customers WHERE name NOT LIKE '%smith'", ""},
	{"SELECT * FROM customers WHERE name !~ 'smith'", ""},
	{"SELECT * FROM customers WHERE name LIKE $1", ""},
	{"SELECT * FROM customers WHERE name LIKE '%x' AND id = $1", ""},
	{"SELECT * FROM customers WHERE name LIKE '%x' OR email = $1", ""},
	{"SELECT * FROM docs WHERE body LIKE '%needle%'", ""},
	{"SELECT * FROM countries WHERE name LIKE '%x'", ""},
	{"SELECT * FROM customers WHERE name LIKE '%x' LIMIT 10", ""},
	{"SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.name LIKE '%x'", ""},
	{"SELECT * FROM customers WHERE name ~ '^smith'", ""},
	{"SELECT * FROM customers WHERE name ~ '(?i)smith'", ""},
	{"SELECT * FROM users_lower WHERE lower(email) LIKE '%x'", ""},
	{"SELECT * FROM customers WHERE name LIKE '%x' AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id)", ""},
	{"SELECT * FROM order_view WHERE status LIKE '%x'", ""},
	{"SELECT * FROM customers, countries WHERE name LIKE '%x'", ""}, // name is in both: ambiguous, left alone

	// function_on_indexed_column
	{"SELECT * FROM customers WHERE lower(email) = $1", CheckFunctionOnColumn},
	{"SELECT * FROM customers WHERE lower(email) = lower('A@B.C')", CheckFunctionOnColumn},
	{"SELECT * FROM customers WHERE $1 = upper(email)", CheckFunctionOnColumn},
	{"SELECT * FROM customers WHERE lower(email) IN ('a', 'b')", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE created_at::date = '2024-01-01'", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE created_at::date BETWEEN $1 AND $2", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE date_trunc('day', created_at) = $1", CheckFunctionOnColumn},
	{"SELECT * FROM orders o WHERE extract(year FROM o.created_at) = 2024", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE id + 1 = 5", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE coalesce(customer_id, 0) = 5", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE id::text = '5'", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE id::text = '5' AND note = 'x'", CheckFunctionOnColumn},
	{"SELECT * FROM orders WHERE lower(status) = 'x'", ""},
	{"SELECT * FROM docs WHERE lower(title) = $1", CheckFunctionOnColumn}, // hash index, equality
	{"SELECT * FROM docs WHERE lower(title) > $1", ""},                    // a hash index never served >
	{"SELECT * FROM docs WHERE length(body) = 5", ""},                     // GIN on body: = was never served
	{"SELECT * FROM orders WHERE customer_id::int4 = 5", ""},
	{"SELECT * FROM orders WHERE customer_id::integer = 5", ""},
	{"SELECT * FROM customers WHERE email::varchar = 'x'", ""},
	{"SELECT * FROM bare WHERE id::text = '5'", ""}, // column type not known
	{"SELECT * FROM bare WHERE lower(id::text) = '5'", CheckFunctionOnColumn},
	{"SELECT * FROM users_lower WHERE lower(email) = $1", ""},
	{"SELECT * FROM customers WHERE lower(email) = $1 AND id = $2", ""},
	{"SELECT * FROM customers WHERE lower(email) = $1 LIMIT 1", ""},
	{"SELECT * FROM customers WHERE lower(email) = name", ""},
	{"SELECT * FROM customers WHERE lower(email) = (SELECT 'x')", ""},
	{"SELECT * FROM countries WHERE lower(code) = 'x'", ""},
	{"SELECT * FROM customers WHERE lower(email) <> $1", ""},
	{"SELECT * FROM customers WHERE email = lower($1)", ""},
	{"SELECT * FROM customers WHERE ST_DWithin(email, $1, 10) AND name LIKE '%x'", ""},

	// large_offset
	{"SELECT * FROM orders ORDER BY id LIMIT 20 OFFSET 2000000", CheckLargeOffset},
	{"SELECT * FROM orders WHERE status = 'open' ORDER BY id LIMIT 20 OFFSET 1000000", CheckLargeOffset},
	{"SELECT * FROM (SELECT * FROM orders WHERE customer_id = 1) s LIMIT 1 OFFSET 1500000", CheckLargeOffset},
	{"(SELECT id FROM orders) UNION ALL (SELECT id FROM customers) LIMIT 10 OFFSET 5000000", CheckLargeOffset},
	{"SELECT * FROM orders ORDER BY id OFFSET 1e7 LIMIT 1", CheckLargeOffset},
	{"SELECT * FROM orders ORDER BY id LIMIT 20 OFFSET 999999", ""},
	{"SELECT * FROM orders ORDER BY id LIMIT 20 OFFSET $1", ""},
	{"SELECT * FROM countries LIMIT 20 OFFSET 2000000", ""},
	{"SELECT * FROM nostats LIMIT 20 OFFSET 2000000", ""},
	{"SELECT * FROM unknown_t LIMIT 20 OFFSET 2000000", ""},
}

func TestRules(t *testing.T) {
	facts := factsOf(fixture())
	for _, c := range ruleCases {
		d, fired := Rules{Thresholds: DefaultThresholds}.Check(parse(t, c.sql), facts)
		switch {
		case c.check == "" && fired:
			t.Errorf("%s\n  fired %s: %s", c.sql, d.Check, d.Reason)
		case c.check != "" && !fired:
			t.Errorf("%s\n  no rule fired, want %s", c.sql, c.check)
		case c.check != "" && d.Check != c.check:
			t.Errorf("%s\n  fired %s (%s), want %s", c.sql, d.Check, d.Reason, c.check)
		}
		if fired && (d.Verdict != Inefficient || d.Source != SourceRules || d.Origin != SourceRules ||
			d.Reason == "" || d.Suggestion == "" || d.Evidence == "") {
			t.Errorf("%s: incomplete decision %+v", c.sql, d)
		}
	}
}

func TestRulesDecisionText(t *testing.T) {
	when := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Rules{Now: func() time.Time { return when }}
	facts := factsOf(fixture())
	cases := []struct{ sql, reason, evidence string }{
		{"SELECT * FROM orders",
			"query reads public.orders (about 2,000,000 rows) without a WHERE or LIMIT",
			"public.orders: relkind r, reltuples 2000000, relpages 20000, 156 MiB; indexes orders_pkey btree (id), " +
				"orders_customer_idx btree (customer_id), orders_created_idx btree (created_at, status); no WHERE, no LIMIT"},
		{"SELECT count(*) FROM customers", "query counts every row of public.customers (about 1,500,000 rows): there is no WHERE", ""},
		{"SELECT * FROM orders, customers",
			"query joins public.orders (about 2,000,000 rows) and public.customers (about 1,500,000 rows) with no condition " +
				"linking them: a cartesian product of about 3,000,000,000,000 rows", ""},
		{"SELECT * FROM customers WHERE lower(email) = $1",
			"lower(email) in WHERE hides public.customers.email from its index customers_email_idx: every row of " +
				"public.customers (about 1,500,000 rows) is read", ""},
		{"SELECT * FROM orders WHERE created_at::date = 'zq'",
			"created_at::date in WHERE hides public.orders.created_at from its index orders_created_idx: every row of " +
				"public.orders (about 2,000,000 rows) is read", ""},
		{"SELECT * FROM customers WHERE name ILIKE '%zq'",
			"name ILIKE '%…', a pattern that starts with a wildcard, cannot use an index: every row of public.customers " +
				"(about 1,500,000 rows) is read", ""},
		{"SELECT * FROM orders LIMIT 20 OFFSET 2500000",
			"OFFSET 2,500,000 makes PostgreSQL read and discard 2,500,000 rows before it returns the page; the query reads " +
				"public.orders (about 2,000,000 rows)", ""},
		{`SELECT * FROM sales."Big Orders"`, `query reads sales."Big Orders" (about 2,000,000 rows) without a WHERE or LIMIT`, ""},
		{"SELECT * FROM customers WHERE name SIMILAR TO '_zq'",
			"name SIMILAR TO '_…', a pattern that starts with a wildcard, cannot use an index: every row of " +
				"public.customers (about 1,500,000 rows) is read", ""},
		{"SELECT * FROM customers WHERE name ~ 'zq'",
			"name ~ '…', a regular expression not anchored with ^, cannot use an index: every row of " +
				"public.customers (about 1,500,000 rows) is read", ""},
		{"SELECT * FROM bare WHERE lower(id::text) = $1",
			"lower(…id…) in WHERE hides public.bare.id from its index bare_pkey: every row of " +
				"public.bare (about 4,000,000 rows) is read", ""},
	}
	for _, c := range cases {
		d, fired := r.Check(parse(t, c.sql), facts)
		if !fired {
			t.Errorf("%s: no rule fired", c.sql)
			continue
		}
		if d.Reason != c.reason {
			t.Errorf("%s: reason\n got %q\nwant %q", c.sql, d.Reason, c.reason)
		}
		if c.evidence != "" && d.Evidence != c.evidence {
			t.Errorf("%s: evidence\n got %q\nwant %q", c.sql, d.Evidence, c.evidence)
		}
		if !d.Decided.Equal(when) {
			t.Errorf("%s: Decided %v", c.sql, d.Decided)
		}
		if strings.Contains(d.Reason+d.Suggestion+d.Evidence, "zq") {
			t.Errorf("%s: a constant of the statement leaked into the decision: %+v", c.sql, d)
		}
	}
}

func TestRulesThresholds(t *testing.T) {
	facts := factsOf(fixture())
	tree := parse(t, "SELECT * FROM countries")
	if _, fired := (Rules{}).Check(tree, facts); fired {
		t.Error("zero Thresholds: a 200-row table is big")
	}
	d, fired := Rules{Thresholds: Thresholds{MaxRows: 100}}.Check(tree, facts)
	if !fired || d.Check != CheckUnfilteredRead {
		t.Errorf("MaxRows 100: %v %+v", fired, d)
	}
	if _, fired := (Rules{Thresholds: Thresholds{MaxRows: 1e7}}).Check(parse(t, "SELECT * FROM events"), facts); fired {
		t.Error("MaxRows 10M: a 5M-row table is big")
	}
	if _, fired := (Rules{Thresholds: Thresholds{MaxOffset: 1000}}).Check(parse(t, "SELECT * FROM orders ORDER BY id LIMIT 5 OFFSET 5000"), facts); !fired {
		t.Error("MaxOffset 1000: OFFSET 5000 did not fire")
	}
}

func TestRulesWithoutFacts(t *testing.T) {
	for _, c := range ruleCases {
		if _, fired := (Rules{}).Check(parse(t, c.sql), nil); fired {
			t.Errorf("%s: fired without facts", c.sql)
		}
		if _, fired := (Rules{}).Check(parse(t, c.sql), func(string, string) *metadata.Table { return nil }); fired {
			t.Errorf("%s: fired with no table known", c.sql)
		}
	}
	if _, fired := (Rules{}).Check(nil, nil); fired {
		t.Error("nil tree")
	}
	if _, fired := (Rules{}).Check(&pg_query.ParseResult{}, nil); fired {
		t.Error("empty tree")
	}
}

// TestRulesUseTablesRefs checks the contract with sqlparse.Tables: every
// name the rules ask facts for is one Tables reports.
func TestRulesUseTablesRefs(t *testing.T) {
	for _, c := range ruleCases {
		tree := parse(t, c.sql)
		listed := map[sqlparse.TableRef]bool{}
		for _, ref := range sqlparse.Tables(tree) {
			listed[ref] = true
		}
		Rules{}.Check(tree, func(schema, name string) *metadata.Table {
			if !listed[sqlparse.TableRef{Schema: schema, Name: name}] {
				t.Errorf("%s: facts asked for %q.%q, which Tables does not list", c.sql, schema, name)
			}
			return nil
		})
	}
}
