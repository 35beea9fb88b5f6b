package masking

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// FuzzRewrite checks the rewriter on any statement text: it never panics;
// a statement it accepts and changes deparses to SQL that parses; and in
// that SQL every FROM reference to the masked table is the inner reference
// of a masking subquery (or the target of a write, whose masked columns
// are masked where they are read), so no clear value can be selected.
// Seeds are in testdata/fuzz/FuzzRewrite; run with
// go test -fuzz=FuzzRewrite ./userspace/masking/.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM customers",
		"SELECT email FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.ssn LIKE '1%'",
		"WITH x AS (SELECT * FROM customers) SELECT row_to_json(x) FROM x",
		"SELECT (SELECT max(email) FROM customers) UNION ALL SELECT name FROM public.customers",
		"COPY customers TO STDOUT",
		"UPDATE customers SET note = 'x' WHERE email = 'a' RETURNING *",
		"INSERT INTO archive SELECT * FROM customers",
		"SELECT * FROM customer_emails e, LATERAL (SELECT e.email) l",
		"DELETE FROM customers USING customers c2 WHERE customers.id = c2.id RETURNING customers.email",
		"SELECT email FROM customers TABLESAMPLE system (10) ORDER BY 1",
	} {
		f.Add(s)
	}
	c := testCatalog(f)
	f.Fuzz(func(t *testing.T, sql string) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		res := c.Rewrite(sql, tree)
		if res.Err != nil || !res.Changed {
			return
		}
		out, err := pg_query.Parse(res.SQL)
		if err != nil {
			t.Fatalf("rewritten SQL does not parse: %v\n%s\n->\n%s", err, sql, res.SQL)
		}
		for _, raw := range out.Stmts {
			checkMaskedRefs(t, c, raw.Stmt, sql, res.SQL)
		}
	})
}

// checkMaskedRefs fails when a FROM item names the masked table other than
// as a masking subquery's inner reference.
func checkMaskedRefs(t *testing.T, c *Catalog, n *pg_query.Node, in, out string) {
	eachNode(n, func(x *pg_query.Node) bool {
		if rs := x.GetRangeSubselect(); rs != nil {
			if sel := rs.Subquery.GetSelectStmt(); sel != nil && isMaskingSubquery(sel) {
				return false
			}
		}
		for _, item := range fromItems(x) {
			rv := item.GetRangeVar()
			if ts := item.GetRangeTableSample(); ts != nil {
				rv = ts.Relation.GetRangeVar()
			}
			if rv != nil && c.Relation(rv.Schemaname, rv.Relname) != nil && !cteNamed(n, rv.Relname) {
				t.Fatalf("the masked table is read in clear:\n%s\n->\n%s", in, out)
			}
		}
		return true
	})
}

func isMaskingSubquery(s *pg_query.SelectStmt) bool {
	if len(s.FromClause) != 1 {
		return false
	}
	item := s.FromClause[0]
	rv := item.GetRangeVar()
	if ts := item.GetRangeTableSample(); ts != nil {
		rv = ts.Relation.GetRangeVar()
	}
	return rv != nil && rv.Alias != nil && rv.Alias.Aliasname == "pgproxy_masked"
}

// fromItems returns the FROM items a node holds directly.
func fromItems(x *pg_query.Node) []*pg_query.Node {
	switch {
	case x.GetSelectStmt() != nil:
		return x.GetSelectStmt().FromClause
	case x.GetJoinExpr() != nil:
		return []*pg_query.Node{x.GetJoinExpr().Larg, x.GetJoinExpr().Rarg}
	case x.GetUpdateStmt() != nil:
		return x.GetUpdateStmt().FromClause
	case x.GetDeleteStmt() != nil:
		return x.GetDeleteStmt().UsingClause
	}
	return nil
}

// cteNamed reports whether the statement defines a CTE of that name
// anywhere (the reference may be to it).
func cteNamed(n *pg_query.Node, name string) bool {
	found := false
	eachNode(n, func(x *pg_query.Node) bool {
		if cte := x.GetCommonTableExpr(); cte != nil && cte.Ctename == name {
			found = true
		}
		return !found
	})
	return found
}
