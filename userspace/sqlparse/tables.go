package sqlparse

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TableRef names a relation as a statement spells it: Schema is "" for an
// unqualified name (resolved by the server through search_path); both are
// identifiers as the parser produced them (unquoted names folded to lower
// case, quoted names exact). It is the key metadata.Cache.Lookup takes.
type TableRef struct {
	Schema, Name string
}

// Tables returns the relations a parse tree (a ParseResult, a RawStmt or
// one statement's Node) references, each once, in the order they first
// appear: FROM items, joins and subqueries at any depth, CTE bodies, and
// the target of INSERT/UPDATE/DELETE/MERGE. Left out are names that refer
// to a CTE in scope (WITH x AS (...) SELECT ... FROM x; a name shadowed
// by a CTE only where the CTE is visible), the new table of SELECT ...
// INTO and the aliases of FOR UPDATE OF. The list may name relations that
// do not exist, or that are views.
func Tables(m proto.Message) []TableRef {
	if m == nil {
		return nil
	}
	w := tableWalker{seen: map[TableRef]bool{}}
	w.walk(m.ProtoReflect(), nil)
	return w.refs
}

// cteScope is a chain of CTE names visible at a point of the tree.
type cteScope struct {
	names  []string
	parent *cteScope
}

func (s *cteScope) has(name string) bool {
	for ; s != nil; s = s.parent {
		for _, n := range s.names {
			if n == name {
				return true
			}
		}
	}
	return false
}

type tableWalker struct {
	refs []TableRef
	seen map[TableRef]bool
}

func (w *tableWalker) walk(m protoreflect.Message, scope *cteScope) {
	if !m.IsValid() {
		return
	}
	switch n := m.Interface().(type) {
	case *pg_query.RangeVar:
		if n.Schemaname == "" && scope.has(n.Relname) {
			return
		}
		ref := TableRef{Schema: n.Schemaname, Name: n.Relname}
		if ref.Name != "" && !w.seen[ref] {
			w.seen[ref] = true
			w.refs = append(w.refs, ref)
		}
		return
	case *pg_query.IntoClause, *pg_query.LockingClause:
		return
	}
	wc := WithClauseOf(m.Interface())
	if wc == nil {
		eachChild(m, func(c protoreflect.Message) { w.walk(c, scope) })
		return
	}
	inner := w.with(wc, scope)
	eachChild(m, func(c protoreflect.Message) {
		if c.Interface() != proto.Message(wc) {
			w.walk(c, inner)
		}
	})
}

// with walks the CTE bodies of wc and returns the scope its statement sees.
// A CTE of WITH RECURSIVE sees every CTE of its clause; otherwise only the
// ones before it.
func (w *tableWalker) with(wc *pg_query.WithClause, scope *cteScope) *cteScope {
	inner := &cteScope{parent: scope}
	for _, c := range wc.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			inner.names = append(inner.names, cte.Ctename)
		}
	}
	for i, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		body := inner
		if !wc.Recursive {
			body = &cteScope{names: inner.names[:i], parent: scope}
		}
		if cte.Ctequery != nil {
			w.walk(cte.Ctequery.ProtoReflect(), body)
		}
	}
	return inner
}

// WithClauseOf returns the WITH clause of a SELECT, INSERT, UPDATE, DELETE
// or MERGE statement, or nil.
func WithClauseOf(m proto.Message) *pg_query.WithClause {
	switch n := m.(type) {
	case *pg_query.SelectStmt:
		return n.WithClause
	case *pg_query.InsertStmt:
		return n.WithClause
	case *pg_query.UpdateStmt:
		return n.WithClause
	case *pg_query.DeleteStmt:
		return n.WithClause
	case *pg_query.MergeStmt:
		return n.WithClause
	}
	return nil
}
