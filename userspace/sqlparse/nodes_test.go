package sqlparse

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// nodeStatements cover the node types NodeChildren lists by hand and some
// it reads by reflection.
var nodeStatements = []string{
	"SELECT a, b.c, t.* FROM t AS x(a, b) WHERE a = 1 AND NOT b OR c IS NULL AND d IS TRUE",
	"SELECT f(a ORDER BY b) FILTER (WHERE c) OVER (PARTITION BY d ORDER BY e ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING) FROM t",
	"SELECT a::numeric(10, 2)[], CAST(b AS text), c COLLATE \"C\", (d).e, f[1:2], g[3] FROM t",
	"SELECT CASE a WHEN 1 THEN 'x' ELSE 'y' END, CASE WHEN b THEN 1 END, coalesce(a, b), greatest(a, b), ROW(a, b), ARRAY[1, 2] FROM t",
	"SELECT * FROM a JOIN b USING (id) AS u LEFT JOIN (c JOIN d ON c.x = d.x) AS j ON true, LATERAL f(a.x) WITH ORDINALITY AS g(v, n)",
	"SELECT * FROM (SELECT 1) s, ROWS FROM (f(1), g(2)) AS r, generate_series(1, 2) AS q(n int)",
	"WITH RECURSIVE w(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM w) SEARCH DEPTH FIRST BY n SET o SELECT * FROM w",
	"SELECT a FROM t WHERE a IN (SELECT b FROM u) AND EXISTS (SELECT FROM v) AND a > ALL (SELECT c FROM w)",
	"(SELECT 1 ORDER BY 1 LIMIT 1) UNION (SELECT 2) EXCEPT SELECT 3 ORDER BY 1 OFFSET 1",
	"SELECT DISTINCT ON (a) a, sum(b) FROM t GROUP BY GROUPING SETS ((a), CUBE (b), ()) HAVING sum(b) > 1 WINDOW w AS (ORDER BY a)",
	"SELECT * INTO TEMP n FROM t FOR UPDATE OF t NOWAIT",
	"SELECT f(a => 1), current_date, current_user, DEFAULT IS NULL FROM t",
	"VALUES (1, 'a'), (2, (SELECT 'b'))",
	"SELECT * FROM JSON_TABLE(j, '$[*]' COLUMNS (a int PATH '$.a')) jt, XMLTABLE('/r' PASSING x COLUMNS b int) xt",
	"SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (1)",
	"INSERT INTO t (a) SELECT a FROM u ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING *",
	"UPDATE t SET a = b FROM u WHERE t.id = u.id",
	"SELECT $1::int, B'101', 1.5, true, NULL",
}

func TestInspectNodeMatchesInspect(t *testing.T) {
	for _, sql := range nodeStatements {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		for _, raw := range tree.Stmts {
			want := map[*pg_query.Node]int{}
			Inspect(raw.Stmt, func(m proto.Message) bool {
				if n, ok := m.(*pg_query.Node); ok && n.Node != nil {
					want[n]++
				}
				return true
			})
			got := map[*pg_query.Node]int{}
			InspectNode(raw.Stmt, func(n *pg_query.Node) bool {
				got[n]++
				return true
			})
			for n, c := range want {
				if got[n] != c {
					t.Errorf("%s: node %T visited %d times, want %d", sql, n.Node, got[n], c)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d nodes visited, want %d", sql, len(got), len(want))
			}
		}
	}
}

func TestInspectNodeSkips(t *testing.T) {
	tree := NewParser(0).Parse("SELECT a FROM t WHERE a IN (SELECT b FROM u) AND c = 1").Tree()
	var cols []string
	InspectNode(tree.Stmts[0].Stmt, func(n *pg_query.Node) bool {
		if n.GetSubLink() != nil {
			return false
		}
		if cr := n.GetColumnRef(); cr != nil {
			cols = append(cols, cr.Fields[0].GetString_().Sval)
		}
		return true
	})
	if len(cols) != 2 || cols[0] != "a" || cols[1] != "c" {
		t.Errorf("columns %v, want [a c] (the IN and its subquery are skipped)", cols)
	}
	InspectNode(nil, func(*pg_query.Node) bool { t.Fatal("visited nil"); return true })
}

func BenchmarkInspectNode(b *testing.B) {
	tree := NewParser(0).Parse(nodeStatements[1] + " WHERE " + "x = 1 AND y LIKE 'a%' AND z IN (1, 2, 3)").Tree()
	b.Run("typed", func(b *testing.B) {
		for b.Loop() {
			InspectNode(tree.Stmts[0].Stmt, func(*pg_query.Node) bool { return true })
		}
	})
	b.Run("reflect", func(b *testing.B) {
		for b.Loop() {
			Inspect(tree.Stmts[0].Stmt, func(proto.Message) bool { return true })
		}
	})
}

func TestOptionOff(t *testing.T) {
	for sql, off := range map[string]bool{
		"EXPLAIN (ANALYZE) SELECT 1": false, "EXPLAIN (ANALYZE true) SELECT 1": false, "EXPLAIN (ANALYZE on) SELECT 1": false,
		"EXPLAIN (ANALYZE 1) SELECT 1": false, "EXPLAIN (ANALYZE false) SELECT 1": true, "EXPLAIN (ANALYZE off) SELECT 1": true,
		"EXPLAIN (ANALYZE 0) SELECT 1": true, "EXPLAIN (ANALYZE no) SELECT 1": true,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		arg := tree.Stmts[0].Stmt.GetExplainStmt().Options[0].GetDefElem().Arg
		if got := OptionOff(arg); got != off {
			t.Errorf("%s: OptionOff = %v, want %v", sql, got, off)
		}
	}
}
