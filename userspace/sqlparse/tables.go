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
	w := &tableWalker{seen: map[TableRef]bool{}}
	switch x := m.(type) {
	case *pg_query.ParseResult:
		for _, raw := range x.Stmts {
			w.node(raw.GetStmt())
		}
	case *pg_query.RawStmt:
		w.node(x.Stmt)
	case *pg_query.Node:
		w.node(x)
	default:
		w.walk(m.ProtoReflect())
	}
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

// tableWalker walks SELECT trees through their Nodes (fast), and other
// statements, whose relations sit in fields that are not Nodes (INSERT's
// target, CREATE INDEX's table), by reflection.
type tableWalker struct {
	refs  []TableRef
	seen  map[TableRef]bool
	scope *cteScope // CTE names visible where the walk is
}

// child lets the walker take a node's children from typedChildren.
func (w *tableWalker) child(n *pg_query.Node) { w.node(n) }

func (w *tableWalker) add(rv *pg_query.RangeVar) {
	if rv.Schemaname == "" && w.scope.has(rv.Relname) {
		return
	}
	ref := TableRef{Schema: rv.Schemaname, Name: rv.Relname}
	if ref.Name != "" && !w.seen[ref] {
		w.seen[ref] = true
		w.refs = append(w.refs, ref)
	}
}

func (w *tableWalker) node(n *pg_query.Node) {
	switch x := n.GetNode().(type) {
	case nil, *pg_query.Node_IntoClause, *pg_query.Node_LockingClause:
	case *pg_query.Node_RangeVar:
		w.add(x.RangeVar)
	case *pg_query.Node_SelectStmt:
		w.selectStmt(x.SelectStmt)
	default:
		// Expression and FROM nodes through their listed children; any
		// other statement or node by reflection, which also sees the
		// relations held outside Nodes (INSERT INTO t, CREATE INDEX ON t).
		if !typedChildren(n, w) {
			w.walk(n.ProtoReflect())
		}
	}
}

func (w *tableWalker) selectStmt(s *pg_query.SelectStmt) {
	if s == nil {
		return
	}
	saved := w.scope
	if s.WithClause != nil {
		w.with(s.WithClause)
	}
	for _, list := range [][]*pg_query.Node{s.DistinctClause, s.TargetList, s.FromClause, s.GroupClause,
		s.WindowClause, s.ValuesLists, s.SortClause} {
		for _, n := range list {
			w.node(n)
		}
	}
	for _, n := range []*pg_query.Node{s.WhereClause, s.HavingClause, s.LimitOffset, s.LimitCount} {
		w.node(n)
	}
	w.selectStmt(s.Larg)
	w.selectStmt(s.Rarg)
	w.scope = saved
}

// walk is the reflective walk, for statements other than SELECT.
func (w *tableWalker) walk(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	switch n := m.Interface().(type) {
	case *pg_query.RangeVar:
		w.add(n)
		return
	case *pg_query.IntoClause, *pg_query.LockingClause:
		return
	case *pg_query.SelectStmt:
		w.selectStmt(n)
		return
	}
	wc := WithClauseOf(m.Interface())
	saved := w.scope
	if wc != nil {
		w.with(wc)
	}
	eachChild(m, func(c protoreflect.Message) {
		if wc == nil || c.Interface() != proto.Message(wc) {
			w.walk(c)
		}
	})
	w.scope = saved
}

// with walks the CTE bodies of wc and leaves w.scope at the scope its
// statement sees. A CTE of WITH RECURSIVE sees every CTE of its clause;
// otherwise only the ones before it.
func (w *tableWalker) with(wc *pg_query.WithClause) {
	outer := w.scope
	inner := &cteScope{parent: outer}
	for _, c := range wc.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			inner.names = append(inner.names, cte.Ctename)
		}
	}
	i := 0
	for _, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		w.scope = inner
		if !wc.Recursive {
			w.scope = &cteScope{names: inner.names[:i], parent: outer}
		}
		i++
		w.node(cte.Ctequery)
	}
	w.scope = inner
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
