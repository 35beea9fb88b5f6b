package sqlparse

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// ChangesSetting reports whether the statements could change the named
// run-time setting: SET / SET LOCAL / RESET of it, set_config() with that
// name or with a name that is not a constant, or an UPDATE of pg_settings.
// RESET ALL is not counted: it returns settings to their session defaults.
func ChangesSetting(tree *pg_query.ParseResult, name string) bool {
	if tree == nil {
		return false
	}
	found := false
	for _, raw := range tree.Stmts {
		Walk(raw, func(m proto.Message) bool {
			switch n := m.(type) {
			case *pg_query.VariableSetStmt:
				found = strings.EqualFold(n.Name, name)
			case *pg_query.FuncCall:
				found = isSetConfig(n, name)
			case *pg_query.UpdateStmt:
				found = n.Relation != nil && strings.EqualFold(n.Relation.Relname, "pg_settings")
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

func isSetConfig(fc *pg_query.FuncCall, name string) bool {
	parts := fc.Funcname
	if len(parts) == 0 {
		return false
	}
	last := parts[len(parts)-1].GetString_()
	if last == nil || !strings.EqualFold(last.Sval, "set_config") {
		return false
	}
	if len(fc.Args) == 0 {
		return false
	}
	// The name argument must be a constant we can read; anything else could
	// evaluate to the protected name, so it counts as a change.
	arg := fc.Args[0]
	if tc := arg.GetTypeCast(); tc != nil {
		arg = tc.Arg
	}
	c := arg.GetAConst()
	if c == nil || c.GetSval() == nil {
		return true
	}
	return strings.EqualFold(strings.TrimSpace(c.GetSval().Sval), name)
}
