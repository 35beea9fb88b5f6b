package sqlparse

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// InspectNode calls visit for n and, while visit returns true, for the
// nodes below it, depth first; when visit returns false the nodes below
// that one are skipped. It is the fast, typed counterpart of Inspect for
// code that looks at expressions: common node types have their children
// listed in code, the others are read by reflection.
//
// It visits *pg_query.Node values only. A message held directly by a
// field rather than in a Node (the RangeVar of an INSERT, the TypeName of
// a cast, the Larg and Rarg of a set operation, a WITH clause) is looked
// through: the Nodes inside it are visited as children of its holder, the
// message itself is not. Code that must see those uses Inspect.
func InspectNode(n *pg_query.Node, visit func(*pg_query.Node) bool) {
	w := &inspector{visit: visit}
	w.child(n)
}

// NodeChildren calls fn for each Node directly below n, in field order
// (see InspectNode for messages that are not Nodes).
func NodeChildren(n *pg_query.Node, fn func(*pg_query.Node)) {
	children(n, funcVisitor(fn))
}

// children calls fn for each Node below n.
func children(n *pg_query.Node, fn visitor) {
	if n != nil && !typedChildren(n, fn) {
		reflectChildren(n.ProtoReflect(), fn)
	}
}

// visitor receives the children of a node. An interface rather than a
// func, so that a walk costs one allocation, not one closure per node.
type visitor interface{ child(*pg_query.Node) }

type funcVisitor func(*pg_query.Node)

func (f funcVisitor) child(n *pg_query.Node) { f(n) }

type inspector struct{ visit func(*pg_query.Node) bool }

func (w *inspector) child(n *pg_query.Node) {
	if n == nil || n.Node == nil || !w.visit(n) {
		return
	}
	children(n, w)
}

// typedChildren calls fn for each Node below n when n is of a type listed
// here, and reports whether it was.
func typedChildren(n *pg_query.Node, fn visitor) bool {
	switch x := n.Node.(type) {
	case nil, *pg_query.Node_AConst, *pg_query.Node_ParamRef, *pg_query.Node_String_, *pg_query.Node_Integer,
		*pg_query.Node_Float, *pg_query.Node_Boolean, *pg_query.Node_BitString, *pg_query.Node_AStar,
		*pg_query.Node_SqlvalueFunction, *pg_query.Node_SetToDefault:
	case *pg_query.Node_ColumnRef:
		each(x.ColumnRef.Fields, fn)
	case *pg_query.Node_AExpr:
		e := x.AExpr
		each(e.Name, fn)
		one(e.Lexpr, fn)
		one(e.Rexpr, fn)
	case *pg_query.Node_BoolExpr:
		each(x.BoolExpr.Args, fn)
	case *pg_query.Node_FuncCall:
		f := x.FuncCall
		each(f.Funcname, fn)
		each(f.Args, fn)
		each(f.AggOrder, fn)
		one(f.AggFilter, fn)
		windowDef(f.Over, fn)
	case *pg_query.Node_TypeCast:
		one(x.TypeCast.Arg, fn)
		typeName(x.TypeCast.TypeName, fn)
	case *pg_query.Node_SubLink:
		s := x.SubLink
		one(s.Testexpr, fn)
		each(s.OperName, fn)
		one(s.Subselect, fn)
	case *pg_query.Node_NullTest:
		one(x.NullTest.Arg, fn)
	case *pg_query.Node_BooleanTest:
		one(x.BooleanTest.Arg, fn)
	case *pg_query.Node_CoalesceExpr:
		each(x.CoalesceExpr.Args, fn)
	case *pg_query.Node_MinMaxExpr:
		each(x.MinMaxExpr.Args, fn)
	case *pg_query.Node_CaseExpr:
		c := x.CaseExpr
		one(c.Arg, fn)
		each(c.Args, fn)
		one(c.Defresult, fn)
	case *pg_query.Node_CaseWhen:
		one(x.CaseWhen.Expr, fn)
		one(x.CaseWhen.Result, fn)
	case *pg_query.Node_List:
		each(x.List.Items, fn)
	case *pg_query.Node_RowExpr:
		each(x.RowExpr.Args, fn)
		each(x.RowExpr.Colnames, fn)
	case *pg_query.Node_AArrayExpr:
		each(x.AArrayExpr.Elements, fn)
	case *pg_query.Node_ResTarget:
		each(x.ResTarget.Indirection, fn)
		one(x.ResTarget.Val, fn)
	case *pg_query.Node_SortBy:
		one(x.SortBy.Node, fn)
		each(x.SortBy.UseOp, fn)
	case *pg_query.Node_AIndirection:
		one(x.AIndirection.Arg, fn)
		each(x.AIndirection.Indirection, fn)
	case *pg_query.Node_AIndices:
		one(x.AIndices.Lidx, fn)
		one(x.AIndices.Uidx, fn)
	case *pg_query.Node_NamedArgExpr:
		one(x.NamedArgExpr.Arg, fn)
	case *pg_query.Node_CollateClause:
		one(x.CollateClause.Arg, fn)
		each(x.CollateClause.Collname, fn)
	case *pg_query.Node_GroupingSet:
		each(x.GroupingSet.Content, fn)
	case *pg_query.Node_WindowDef:
		windowDef(x.WindowDef, fn)
	case *pg_query.Node_RangeVar:
		alias(x.RangeVar.Alias, fn)
	case *pg_query.Node_JoinExpr:
		j := x.JoinExpr
		one(j.Larg, fn)
		one(j.Rarg, fn)
		each(j.UsingClause, fn)
		alias(j.JoinUsingAlias, fn)
		one(j.Quals, fn)
		alias(j.Alias, fn)
	case *pg_query.Node_RangeSubselect:
		one(x.RangeSubselect.Subquery, fn)
		alias(x.RangeSubselect.Alias, fn)
	case *pg_query.Node_RangeFunction:
		r := x.RangeFunction
		each(r.Functions, fn)
		alias(r.Alias, fn)
		each(r.Coldeflist, fn)
	case *pg_query.Node_SelectStmt:
		selectChildren(x.SelectStmt, fn)
	default:
		return false
	}
	return true
}

func one(n *pg_query.Node, fn visitor) {
	if n != nil {
		fn.child(n)
	}
}

func each(ns []*pg_query.Node, fn visitor) {
	for _, n := range ns {
		if n != nil {
			fn.child(n)
		}
	}
}

func alias(a *pg_query.Alias, fn visitor) {
	if a != nil {
		each(a.Colnames, fn)
	}
}

func typeName(t *pg_query.TypeName, fn visitor) {
	if t != nil {
		each(t.Names, fn)
		each(t.Typmods, fn)
		each(t.ArrayBounds, fn)
	}
}

func windowDef(w *pg_query.WindowDef, fn visitor) {
	if w != nil {
		each(w.PartitionClause, fn)
		each(w.OrderClause, fn)
		one(w.StartOffset, fn)
		one(w.EndOffset, fn)
	}
}

func selectChildren(s *pg_query.SelectStmt, fn visitor) {
	if s == nil {
		return
	}
	each(s.DistinctClause, fn)
	if s.IntoClause != nil {
		reflectChildren(s.IntoClause.ProtoReflect(), fn)
	}
	each(s.TargetList, fn)
	each(s.FromClause, fn)
	one(s.WhereClause, fn)
	each(s.GroupClause, fn)
	one(s.HavingClause, fn)
	each(s.WindowClause, fn)
	each(s.ValuesLists, fn)
	each(s.SortClause, fn)
	one(s.LimitOffset, fn)
	one(s.LimitCount, fn)
	each(s.LockingClause, fn)
	if s.WithClause != nil {
		each(s.WithClause.Ctes, fn)
	}
	selectChildren(s.Larg, fn)
	selectChildren(s.Rarg, fn)
}

// reflectChildren finds the Nodes below m, looking through messages that
// are not Nodes.
func reflectChildren(m protoreflect.Message, fn visitor) {
	if !m.IsValid() {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				reflectChild(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			reflectChild(v.Message(), fn)
		}
		return true
	})
}

func reflectChild(m protoreflect.Message, fn visitor) {
	if n, ok := m.Interface().(*pg_query.Node); ok {
		one(n, fn)
		return
	}
	reflectChildren(m, fn)
}

// OptionOff reports whether the argument of a statement's option turns it
// off (EXPLAIN (ANALYZE false), off, 0, no); no argument turns it on.
func OptionOff(arg *pg_query.Node) bool {
	if arg == nil {
		return false
	}
	if b := arg.GetBoolean(); b != nil {
		return !b.Boolval
	}
	if s := arg.GetString_(); s != nil {
		v := strings.ToLower(s.Sval)
		return v == "false" || v == "off" || v == "0" || v == "no"
	}
	if i := arg.GetInteger(); i != nil {
		return i.Ival == 0
	}
	return false
}
