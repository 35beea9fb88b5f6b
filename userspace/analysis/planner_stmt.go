package analysis

import (
	"errors"
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// readStatement is a statement the planner agreed to explain.
type readStatement struct {
	sql string
	// params is the highest $n the text uses (0: none).
	params int
}

// checkRead parses sql and accepts it only when it is exactly one SELECT,
// VALUES or TABLE statement that cannot write: no SELECT INTO, no
// INSERT/UPDATE/DELETE/MERGE in a WITH clause. The caller has already
// decided the statement is a read; this is defence in depth, because the
// text is the client's and it is sent to the server on the proxy's account.
func checkRead(parser *sqlparse.Parser, sql string) (readStatement, error) {
	var tree *pg_query.ParseResult
	var err error
	if parser != nil {
		parsed := parser.Parse(sql)
		tree, err = parsed.Tree(), parsed.Err
	} else {
		tree, err = pg_query.Parse(sql)
	}
	if err != nil {
		return readStatement{}, &PlanError{Kind: ErrSyntax, Err: err}
	}
	if len(tree.Stmts) != 1 {
		return readStatement{}, &PlanError{Kind: ErrNotRead,
			Err: fmt.Errorf("%d statements, want one", len(tree.Stmts))}
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return readStatement{}, &PlanError{Kind: ErrNotRead, Err: errors.New("not a SELECT, VALUES or TABLE statement")}
	}
	st := readStatement{sql: sql}
	var bad string
	sqlparse.Walk(tree.Stmts[0], func(m proto.Message) bool {
		switch n := m.(type) {
		case *pg_query.IntoClause:
			bad = "SELECT INTO creates a table"
		case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
			bad = "a data-modifying statement in WITH"
		case *pg_query.ParamRef:
			st.params = max(st.params, int(n.Number))
		}
		return bad == ""
	})
	if bad != "" {
		return readStatement{}, &PlanError{Kind: ErrNotRead, Err: errors.New(bad)}
	}
	return st, nil
}
