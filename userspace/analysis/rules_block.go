package analysis

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// The rules look at one query block at a time: the FROM items of one
// SELECT (tables, CTE references, subqueries, functions, joined in any
// shape) and the conditions that restrict or link them. This file builds
// blocks while walking every SELECT of a statement: set operations, CTE
// bodies, subqueries in FROM and in expressions.

// maxDepth bounds the nesting of SELECTs the walk follows.
const maxDepth = 200

// cte is a common table expression visible in a scope. Its body is
// analyzed where it is first referenced (PostgreSQL does not run a
// SELECT CTE nobody reads), in the context of that reference.
type cte struct {
	name  string
	body  *pg_query.SelectStmt // nil for INSERT/UPDATE/DELETE/MERGE ... RETURNING
	scope *cteScope            // what the body sees
	state cteState
	// reach is the biggest table its body reads (nil until analyzed).
	reach *metadata.Table
}

type cteState uint8

const (
	ctePending cteState = iota
	cteRunning          // being analyzed: a reference now is its own recursion
	cteDone
)

// cteScope is a chain of CTE names visible at a point of the tree.
type cteScope struct {
	ctes   []*cte
	parent *cteScope
}

func (s *cteScope) find(name string) *cte {
	for ; s != nil; s = s.parent {
		for _, c := range s.ctes {
			if c.name == name {
				return c
			}
		}
	}
	return nil
}

// blockCtx is what a block inherits from where it sits in the statement.
type blockCtx struct {
	scope *cteScope
	// bounded: an enclosing LIMIT or EXISTS reads this block's rows only in
	// part, so a full read of its tables is not certain.
	bounded bool
	// result: this block's rows are the statement's result, read in full
	// (the top SELECT, the arms of a top set operation, the only FROM item
	// of such a block when it has no WHERE and no LIMIT).
	result bool
	// notIn: the block is the subquery of NOT IN (...) or <> ALL (...).
	notIn bool
	// nested: inside a subquery or LATERAL, where an unqualified column may
	// belong to an enclosing query.
	nested bool
	// filtered: conditions outside the block may restrict its rows: the
	// planner pushes conditions on a FROM subquery (or a CTE read once)
	// down into it, and may drive an IN (subquery) semi-join from the
	// outer side through an index.
	filtered bool
}

type itemKind uint8

const (
	itemTable   itemKind = iota // a relation; table holds its facts (nil: none)
	itemCTE                     // a reference to a CTE
	itemDerived                 // a subquery in FROM
	itemOther                   // a function, TABLESAMPLE, XMLTABLE, JSON_TABLE
)

// item is one leaf of a block's FROM.
type item struct {
	kind  itemKind
	ref   string          // the name columns are qualified with (alias or relation name)
	table *metadata.Table // itemTable: the facts, nil when not known
	reach *metadata.Table // itemCTE, itemDerived: the biggest table it reads
	sub   *pg_query.SelectStmt
	cte   *cte
	// only: ONLY name, which reads the relation without its children,
	// while the facts count them: its size is not known.
	only bool
	// lateral: a LATERAL subquery, whose columns may be those of the items
	// before it.
	lateral bool
}

// columns returns the item's column names when they are known.
func (it *item) columns() []metadata.Column {
	if it.kind == itemTable && it.table != nil {
		return it.table.Columns
	}
	return nil
}

// pred is one condition of a block: a conjunct of WHERE or of a join's ON,
// a USING/NATURAL join, or the link of a LATERAL item to the items before it.
type pred struct {
	expr  *pg_query.Node // nil for USING, NATURAL and LATERAL links
	where bool
	refs  []int // the items it may reference
}

// block is one SELECT with its FROM items and conditions.
type block struct {
	stmt    *pg_query.SelectStmt
	ctx     blockCtx
	bounded bool // its own LIMIT or an inherited bound
	items   []*item
	groups  map[string][]int // alias of a parenthesized join: its items
	preds   []pred
	// opaque: a condition references no column ($1, a function of
	// constants, an uncorrelated EXISTS) and may make the whole result
	// empty. Conditions that are certainly true (TRUE, 1 = 1) are dropped.
	opaque bool
}

// mayBeRestricted reports whether something outside the conditions the
// block lists may restrict all of its rows.
func (b *block) mayBeRestricted() bool { return b.opaque || b.ctx.filtered }

// selectStmt analyzes s and every SELECT inside it, reports what the rules
// find, and returns the biggest table s reads (nil when none is known).
func (k *checker) selectStmt(s *pg_query.SelectStmt, c blockCtx) *metadata.Table {
	if s == nil || k.depth >= maxDepth {
		return nil
	}
	k.depth++
	defer func() { k.depth-- }()
	bounded := k.boundedBy(s, c.bounded)
	if s.WithClause != nil {
		c.scope = k.with(s.WithClause, c.scope)
	}
	if s.Op != pg_query.SetOperation_SETOP_NONE {
		arm := c
		arm.bounded = bounded
		reach := bigger(k.selectStmt(s.Larg, arm), k.selectStmt(s.Rarg, arm))
		k.scanSelect(s, c)
		k.largeOffset(s, reach)
		return reach
	}
	b := k.build(s, c, bounded)
	k.scanSelect(s, c)
	k.rules(b)
	return b.reach()
}

// boundedBy reports whether s is read only in part: its own LIMIT (not
// LIMIT ALL, not a constant of MaxRows or more) or an inherited bound. A
// LIMIT does not bound an aggregate without GROUP BY: it reads all its
// rows to produce one.
func (k *checker) boundedBy(s *pg_query.SelectStmt, inherited bool) bool {
	if s.Op == pg_query.SetOperation_SETOP_NONE && plainAggregate(s) {
		return false
	}
	if inherited {
		return true
	}
	if s.LimitCount == nil || isNullConst(s.LimitCount) {
		return false
	}
	if v, ok := constNumber(s.LimitCount); ok && v >= k.th.MaxRows {
		return false
	}
	return true
}

// plainAggregate reports a SELECT that aggregates without GROUP BY.
func plainAggregate(s *pg_query.SelectStmt) bool {
	if len(s.GroupClause) > 0 {
		return false
	}
	if s.HavingClause != nil {
		return true
	}
	return aggregatesIn(s.TargetList).any
}

// with makes the scope of a WITH clause. A CTE sees the CTEs before it
// (all of its clause under RECURSIVE).
func (k *checker) with(wc *pg_query.WithClause, outer *cteScope) *cteScope {
	sc := &cteScope{parent: outer}
	for _, n := range wc.Ctes {
		if e := n.GetCommonTableExpr(); e != nil {
			sc.ctes = append(sc.ctes, &cte{name: e.Ctename, body: e.Ctequery.GetSelectStmt()})
		}
	}
	for i, e := range sc.ctes {
		e.scope = sc
		if !wc.Recursive {
			e.scope = &cteScope{ctes: sc.ctes[:i], parent: outer}
		}
	}
	return sc
}

// build collects the FROM items and conditions of a leaf SELECT, then
// analyzes the subqueries and CTEs its FROM reads, knowing which of them
// its conditions touch.
func (k *checker) build(s *pg_query.SelectStmt, c blockCtx, bounded bool) *block {
	b := &block{stmt: s, ctx: c, bounded: bounded}
	for _, f := range s.FromClause {
		k.fromItem(b, f, c.scope)
	}
	for _, conj := range conjuncts(s.WhereClause, nil) {
		b.condition(conj, true)
	}
	// The only source of a result block without WHERE is read in full too.
	passResult := c.result && !bounded && len(s.FromClause) == 1 && len(b.items) == 1 && s.WhereClause == nil
	touched := b.touched()
	for i, it := range b.items {
		sc := blockCtx{scope: c.scope, bounded: bounded, result: passResult, nested: c.nested || it.lateral,
			filtered: c.filtered || touched[i]}
		switch {
		case it.kind == itemDerived:
			it.reach = k.selectStmt(it.sub, sc)
		case it.kind == itemCTE && it.cte.state == ctePending && it.cte.body != nil:
			it.cte.state = cteRunning
			sc.scope = it.cte.scope
			it.cte.reach = k.selectStmt(it.cte.body, sc)
			it.cte.state = cteDone
			it.reach = it.cte.reach
		case it.kind == itemCTE:
			it.reach = it.cte.reach
		}
	}
	return b
}

// condition adds one conjunct of WHERE or ON.
func (b *block) condition(conj *pg_query.Node, where bool) {
	refs := b.refsOf(conj, len(b.items))
	if len(refs) == 0 {
		if !alwaysTrue(conj) {
			b.opaque = true
		}
		return
	}
	b.preds = append(b.preds, pred{expr: conj, where: where, refs: refs})
}

// fromItem adds the leaves of one FROM entry to b and returns their indexes.
func (k *checker) fromItem(b *block, n *pg_query.Node, scope *cteScope) []int {
	switch {
	case n.GetRangeVar() != nil:
		return []int{b.add(k.relation(n.GetRangeVar(), scope))}
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		i := b.add(&item{kind: itemDerived, ref: rs.GetAlias().GetAliasname(), sub: rs.Subquery.GetSelectStmt(),
			lateral: rs.Lateral})
		if rs.Lateral {
			b.lateral(i, n)
		}
		return []int{i}
	case n.GetRangeFunction() != nil:
		rf := n.GetRangeFunction()
		i := b.add(&item{kind: itemOther, ref: rf.GetAlias().GetAliasname()})
		if i > 0 {
			b.lateral(i, n) // functions in FROM see the items before them
		}
		return []int{i}
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		l := k.fromItem(b, j.Larg, scope)
		r := k.fromItem(b, j.Rarg, scope)
		both := append(append([]int(nil), l...), r...)
		for _, conj := range conjuncts(j.Quals, nil) {
			b.condition(conj, false)
		}
		if j.IsNatural || len(j.UsingClause) > 0 {
			b.preds = append(b.preds, pred{refs: both})
		}
		if alias := j.GetAlias().GetAliasname(); alias != "" {
			if b.groups == nil {
				b.groups = map[string][]int{}
			}
			b.groups[alias] = both
		}
		return both
	case n.GetRangeTableSample() != nil:
		ref := ""
		if rv := n.GetRangeTableSample().Relation.GetRangeVar(); rv != nil {
			ref = refName(rv)
		}
		return []int{b.add(&item{kind: itemOther, ref: ref})}
	case n.GetRangeTableFunc() != nil:
		return []int{b.add(&item{kind: itemOther, ref: n.GetRangeTableFunc().GetAlias().GetAliasname()})}
	case n.GetJsonTable() != nil:
		return []int{b.add(&item{kind: itemOther, ref: n.GetJsonTable().GetAlias().GetAliasname()})}
	}
	return []int{b.add(&item{kind: itemOther})}
}

// relation makes the item of a relation name: a CTE in scope, or a table
// with the facts the caller has for it.
func (k *checker) relation(rv *pg_query.RangeVar, scope *cteScope) *item {
	ref := refName(rv)
	if rv.Schemaname == "" {
		if e := scope.find(rv.Relname); e != nil {
			return &item{kind: itemCTE, ref: ref, cte: e}
		}
	}
	var t *metadata.Table
	if k.facts != nil {
		t = k.facts(rv.Schemaname, rv.Relname)
	}
	return &item{kind: itemTable, ref: ref, table: t, only: !rv.Inh}
}

func refName(rv *pg_query.RangeVar) string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	return rv.Relname
}

func (b *block) add(it *item) int {
	b.items = append(b.items, it)
	return len(b.items) - 1
}

// lateral links item i to the items before it that the columns inside its
// FROM entry n may reference.
func (b *block) lateral(i int, n *pg_query.Node) {
	refs := b.refsOf(n, i)
	if len(refs) == 0 {
		return
	}
	b.preds = append(b.preds, pred{refs: append(refs, i)})
}

// refsOf returns the items among the first n that the column references in
// m may name, subqueries included (an over-estimate: links and restrictions
// found where there are none only keep rules quiet).
func (b *block) refsOf(m *pg_query.Node, n int) []int {
	var refs []int
	sqlparse.InspectNode(m, func(x *pg_query.Node) bool {
		cr := x.GetColumnRef()
		if cr == nil {
			return true
		}
		owners, _ := b.owners(cr, n)
		for _, o := range owners {
			if !containsInt(refs, o) {
				refs = append(refs, o)
			}
		}
		return false
	})
	return refs
}

// owners returns the items among the first n that a column reference may
// belong to, and whether it certainly belongs to the one returned.
func (b *block) owners(cr *pg_query.ColumnRef, n int) ([]int, bool) {
	name, q := columnName(cr), columnQualifier(cr)
	n = min(n, len(b.items))
	var out []int
	if q != "" {
		out = append(out, b.groups[q]...)
		for i := range n {
			if b.items[i].ref == q && !containsInt(out, i) {
				out = append(out, i)
			}
		}
		if len(out) > 0 && len(cr.Fields) > 3 {
			return out, false // database.schema.table.column: take no chances
		}
		return out, len(out) == 1
	}
	if name == "" {
		return nil, false
	}
	known := false
	for i := range n {
		cols := b.items[i].columns()
		if cols == nil {
			out = append(out, i)
			continue
		}
		for _, c := range cols {
			if c.Name == name {
				out = append(out, i)
				known = true
				break
			}
		}
	}
	return out, len(out) == 1 && (known || !b.ctx.nested)
}

// owner returns the item a column reference certainly belongs to, or -1.
func (b *block) owner(cr *pg_query.ColumnRef) int {
	if out, sure := b.owners(cr, len(b.items)); sure {
		return out[0]
	}
	return -1
}

// reach returns the biggest table the block reads.
func (b *block) reach() *metadata.Table {
	var r *metadata.Table
	for _, it := range b.items {
		switch it.kind {
		case itemTable:
			if judged(it.table) && !it.only {
				r = bigger(r, it.table)
			}
		case itemCTE, itemDerived:
			r = bigger(r, it.reach)
		}
	}
	return r
}

// scanSelect finds the subqueries in the expressions of s (target list,
// FROM functions and ON, WHERE, GROUP BY, HAVING, WINDOW, VALUES, ORDER BY,
// LIMIT) and analyzes them. FROM subqueries, CTEs and set-operation arms
// are analyzed by the walk itself.
func (k *checker) scanSelect(s *pg_query.SelectStmt, c blockCtx) {
	visit := k.scanner(c)
	for _, list := range [][]*pg_query.Node{s.DistinctClause, s.TargetList, s.FromClause, s.GroupClause,
		s.WindowClause, s.ValuesLists, s.SortClause} {
		for _, n := range list {
			sqlparse.InspectNode(n, visit)
		}
	}
	for _, n := range []*pg_query.Node{s.WhereClause, s.HavingClause, s.LimitOffset, s.LimitCount} {
		sqlparse.InspectNode(n, visit)
	}
}

// scanner returns the visitor that analyzes the subqueries of expressions
// (or FROM entries) in context c.
func (k *checker) scanner(c blockCtx) func(*pg_query.Node) bool {
	return func(x *pg_query.Node) bool {
		switch v := x.Node.(type) {
		case *pg_query.Node_SelectStmt, *pg_query.Node_RangeSubselect:
			return false
		case *pg_query.Node_BoolExpr:
			if sl := notInSubLink(v.BoolExpr); sl != nil {
				k.subLink(sl, c, true)
				return false
			}
		case *pg_query.Node_SubLink:
			k.subLink(v.SubLink, c, false)
			return false
		}
		return true
	}
}

// subLink analyzes the subquery of an expression. EXISTS reads its
// subquery only up to the first row.
func (k *checker) subLink(sl *pg_query.SubLink, c blockCtx, notIn bool) {
	sqlparse.InspectNode(sl.Testexpr, k.scanner(c))
	if sl.SubLinkType == pg_query.SubLinkType_ALL_SUBLINK && lastName(sl.OperName) == "<>" {
		notIn = true
	}
	// x IN (subquery) becomes a semi-join the planner may drive from the
	// outer side (index lookups into the subquery's tables); NOT IN and
	// the other forms run their subquery whole.
	in := !notIn && sl.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK &&
		(len(sl.OperName) == 0 || lastName(sl.OperName) == "=")
	k.selectStmt(sl.Subselect.GetSelectStmt(), blockCtx{
		scope:    c.scope,
		bounded:  sl.SubLinkType == pg_query.SubLinkType_EXISTS_SUBLINK,
		notIn:    notIn,
		nested:   true,
		filtered: in,
	})
}

// notInSubLink recognises NOT (x IN (subquery)) and NOT (x = ANY (subquery)).
func notInSubLink(e *pg_query.BoolExpr) *pg_query.SubLink {
	if e.Boolop != pg_query.BoolExprType_NOT_EXPR || len(e.Args) != 1 {
		return nil
	}
	sl := e.Args[0].GetSubLink()
	if sl == nil || sl.SubLinkType != pg_query.SubLinkType_ANY_SUBLINK {
		return nil
	}
	if op := lastName(sl.OperName); len(sl.OperName) > 0 && op != "=" {
		return nil
	}
	return sl
}

// judged reports whether the rules judge reads of a relation: a table,
// partitioned table, materialized view or foreign table with known facts
// (Kind 0, facts made by hand, counts as a table). Views are not judged:
// their cost is that of their definition, which the planner tier sees.
func judged(t *metadata.Table) bool {
	if t == nil {
		return false
	}
	switch t.Kind {
	case 0, 'r', 'p', 'm', 'f':
		return true
	}
	return false
}

// bigger returns the table with more rows (a when equal).
func bigger(a, b *metadata.Table) *metadata.Table {
	if a == nil || (b != nil && b.Rows > a.Rows) {
		return b
	}
	return a
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
