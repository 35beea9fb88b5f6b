package sqlparse

import (
	"reflect"
	"slices"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

func TestTables(t *testing.T) {
	p := NewParser(0)
	cases := []struct {
		sql  string
		want []TableRef
	}{
		{"SELECT 1", nil},
		{"SELECT * FROM orders", []TableRef{{"", "orders"}}},
		{`SELECT * FROM Sales.Orders o JOIN "Sales"."Line Items" li ON li.order_id = o.id`,
			[]TableRef{{"sales", "orders"}, {"Sales", "Line Items"}}},
		{"SELECT * FROM a, b, a AS again", []TableRef{{"", "a"}, {"", "b"}}},
		{"SELECT * FROM a WHERE x IN (SELECT y FROM b WHERE EXISTS (SELECT 1 FROM c))",
			[]TableRef{{"", "a"}, {"", "b"}, {"", "c"}}},
		{"SELECT (SELECT max(z) FROM c) FROM (SELECT * FROM d) s, LATERAL (SELECT * FROM e) l",
			[]TableRef{{"", "c"}, {"", "d"}, {"", "e"}}},
		{"WITH x AS (SELECT * FROM orders) SELECT * FROM x JOIN public.x px ON true",
			[]TableRef{{"", "orders"}, {"public", "x"}}},
		// A non-recursive CTE does not see itself: its x is the table x.
		{"WITH x AS (SELECT * FROM x) SELECT * FROM x", []TableRef{{"", "x"}}},
		{"WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", nil},
		// Later CTEs see earlier ones; a CTE name is a name only where it is visible.
		{"WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", nil},
		{"SELECT * FROM a, (WITH a AS (SELECT 1) SELECT * FROM a) s", []TableRef{{"", "a"}}},
		{"SELECT * FROM (WITH a AS (SELECT 1) SELECT * FROM a) s, a", []TableRef{{"", "a"}}},
		{"TABLE t", []TableRef{{"", "t"}}},
		{"VALUES (1), ((SELECT 2 FROM v))", []TableRef{{"", "v"}}},
		{"SELECT * FROM a UNION SELECT * FROM b EXCEPT TABLE c", []TableRef{{"", "a"}, {"", "b"}, {"", "c"}}},
		{"SELECT * INTO newt FROM t FOR UPDATE OF t", []TableRef{{"", "t"}}},
		{"SELECT * FROM t TABLESAMPLE SYSTEM (1), generate_series(1, 3) g", []TableRef{{"", "t"}}},
		{"UPDATE accounts SET v = 1 FROM other WHERE other.id = accounts.id", []TableRef{{"", "accounts"}, {"", "other"}}},
		{"WITH gone AS (DELETE FROM q RETURNING *) INSERT INTO archive SELECT * FROM gone",
			[]TableRef{{"", "q"}, {"", "archive"}}}, // CTE bodies first
		{"SELECT * FROM db.sch.t", []TableRef{{"sch", "t"}}},
		{"CREATE INDEX ON sch.t (a)", []TableRef{{"sch", "t"}}},
		{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x JOIN u ON true", []TableRef{{"", "t"}, {"", "u"}}},
		{"SELECT * FROM t WHERE a = (WITH t AS (SELECT 1) SELECT * FROM t)", []TableRef{{"", "t"}}},
		{"WITH c AS (SELECT * FROM a) SELECT * FROM (WITH c AS (SELECT * FROM b) SELECT * FROM c) s, c", []TableRef{{"", "a"}, {"", "b"}}},
	}
	for _, c := range cases {
		parsed := p.Parse(c.sql)
		if parsed.Err != nil {
			t.Fatalf("%s: %v", c.sql, parsed.Err)
		}
		if got := Tables(parsed.Tree()); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.sql, got, c.want)
		}
	}
	if Tables(nil) != nil {
		t.Error("Tables(nil) is not nil")
	}
}

func TestClassifyRead(t *testing.T) {
	p := NewParser(0)
	cases := map[string]ReadKind{
		"SELECT 1":                                              PlainRead,
		"SELECT * FROM t WHERE id = $1":                         PlainRead,
		"WITH x AS (SELECT 1) SELECT * FROM x":                  PlainRead,
		"TABLE t":                                               PlainRead,
		"VALUES (1), (2)":                                       PlainRead,
		"SELECT 1 UNION ALL SELECT 2":                           PlainRead,
		"(SELECT 1) ORDER BY 1 LIMIT 1":                         PlainRead,
		"SELECT nextval('s')":                                   PlainRead, // syntactic: see ClassifyRead
		"SELECT * FROM t FOR UPDATE":                            LockingRead,
		"SELECT * FROM t FOR KEY SHARE SKIP LOCKED":             LockingRead,
		"SELECT * FROM (SELECT * FROM t FOR SHARE) s":           LockingRead,
		"SELECT * INTO new_t FROM t":                            SelectInto,
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d": ModifyingWith,
		"WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i":      ModifyingWith,
		"WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u FOR UPDATE": ModifyingWith,
		"INSERT INTO t SELECT * FROM s":                                         NotRead,
		"UPDATE t SET a = 1":                                                    NotRead,
		"EXPLAIN SELECT 1":                                                      NotRead,
		"CREATE TABLE x AS SELECT 1":                                            NotRead,
		"DECLARE c CURSOR FOR SELECT 1":                                         NotRead,
		"COPY (SELECT 1) TO STDOUT":                                             NotRead,
		"SET search_path = x":                                                   NotRead,
	}
	for sql, want := range cases {
		stmts := p.Parse(sql).Statements()
		if len(stmts) != 1 {
			t.Fatalf("%s: %d statements", sql, len(stmts))
		}
		if got := ClassifyRead(stmts[0].Node); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
		if IsRead(stmts[0].Node) != (want == PlainRead) {
			t.Errorf("%s: IsRead disagrees", sql)
		}
	}
	if ClassifyRead(nil) != NotRead {
		t.Error("nil statement")
	}
}

func TestInspectSkipsChildren(t *testing.T) {
	tree := NewParser(0).Parse("SELECT * FROM a WHERE x IN (SELECT y FROM b) AND z = (SELECT 1 FROM c)").Tree()
	var names []string
	Inspect(tree, func(m proto.Message) bool {
		switch n := m.(type) {
		case *pg_query.RangeVar:
			names = append(names, n.Relname)
		case *pg_query.SubLink:
			return n.SubLinkType != pg_query.SubLinkType_ANY_SUBLINK
		}
		return true
	})
	// protobuf-go's Range order of a message's fields is its own (it can
	// change with the binary): compare the names as a set.
	slices.Sort(names)
	if !reflect.DeepEqual(names, []string{"a", "c"}) {
		t.Errorf("names %v, want [a c]: the IN subquery's children skipped, the walk going on", names)
	}
}

const benchStatement = `WITH recent AS (SELECT customer_id, max(created_at) AS last FROM orders
	WHERE created_at > now() - interval '7 days' GROUP BY customer_id)
	SELECT c.id, c.email, r.last, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)
	FROM customers c JOIN recent r ON r.customer_id = c.id
	WHERE c.country = $1 AND c.id NOT IN (SELECT customer_id FROM orders WHERE status = 'void')
	ORDER BY r.last DESC LIMIT 50`

func BenchmarkTables(b *testing.B) {
	tree := NewParser(0).Parse(benchStatement).Tree()
	b.ReportAllocs()
	for b.Loop() {
		Tables(tree)
	}
}

func BenchmarkClassifyRead(b *testing.B) {
	tree := NewParser(0).Parse(benchStatement).Tree()
	b.ReportAllocs()
	for b.Loop() {
		ClassifyRead(tree.Stmts[0].Stmt)
	}
}
