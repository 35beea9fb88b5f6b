package analysis

import (
	"fmt"
	"sort"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// The rules, one function each, run on every block. Each fires only on
// evidence: a big table (Thresholds.MaxRows rows or more by the planner's
// estimate) that the block certainly reads in full or multiplies. Where a
// condition, a join, a LIMIT or an index might keep the read small, the
// rule stays quiet and leaves the statement to the planner tier.

// Check names, in the order of precedence when several fire.
const (
	CheckCartesianJoin    = "cartesian_join"
	CheckNotInSubquery    = "not_in_subquery"
	CheckOrderByRandom    = "order_by_random"
	CheckLeadingWildcard  = "leading_wildcard"
	CheckFunctionOnColumn = "function_on_indexed_column"
	CheckLargeOffset      = "large_offset"
	CheckFullAggregate    = "full_aggregate"
	CheckUnfilteredRead   = "unfiltered_read"
)

var ruleRank = map[string]int{
	CheckCartesianJoin: 1, CheckNotInSubquery: 2, CheckOrderByRandom: 3, CheckLeadingWildcard: 4,
	CheckFunctionOnColumn: 5, CheckLargeOffset: 6, CheckFullAggregate: 7, CheckUnfilteredRead: 8,
}

func (k *checker) rules(b *block) {
	k.cartesian(b)
	k.notIn(b)
	k.orderByRandom(b)
	k.defeatedIndexes(b)
	k.largeOffset(b.stmt, b.reach())
	k.unfiltered(b)
}

// big reports a judged table with at least MaxRows rows.
func (k *checker) big(t *metadata.Table) bool { return judged(t) && t.Big(k.th.MaxRows) }

// bigTable reports an item that is a big table read whole (not ONLY).
func (k *checker) bigTable(it *item) bool { return it.kind == itemTable && !it.only && k.big(it.table) }

// touched reports which items some condition of the block references.
func (b *block) touched() []bool {
	t := make([]bool, len(b.items))
	for _, p := range b.preds {
		for _, r := range p.refs {
			t[r] = true
		}
	}
	return t
}

// biggestUntouched returns the biggest table of the block that no condition
// references, or nil.
func (k *checker) biggestUntouched(b *block) *metadata.Table {
	if b.mayBeRestricted() {
		return nil
	}
	touched := b.touched()
	var best *metadata.Table
	for i, it := range b.items {
		if !touched[i] && k.bigTable(it) {
			best = bigger(best, it.table)
		}
	}
	return best
}

// cartesian: two parts of the FROM that no condition links (FROM a, b;
// CROSS JOIN; JOIN ... ON true), each made of big tables only (joined
// among themselves or alone) and restricted by no condition on a single
// table, in a block read in full. A part with any other item (a small or
// unknown table, a subquery, a function) may be small, so it does not
// count.
func (k *checker) cartesian(b *block) {
	if b.bounded || b.mayBeRestricted() || len(b.items) < 2 {
		return
	}
	parent := make([]int, len(b.items))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, p := range b.preds {
		for _, r := range p.refs[min(1, len(p.refs)):] {
			parent[find(r)] = find(p.refs[0])
		}
	}
	restricted := map[int]bool{}
	for _, p := range b.preds {
		if len(p.refs) == 1 {
			restricted[find(p.refs[0])] = true
		}
	}
	for i, it := range b.items {
		if !k.bigTable(it) {
			restricted[find(i)] = true
		}
	}
	biggest := map[int]*metadata.Table{}
	var roots []int
	for i, it := range b.items {
		root := find(i)
		if restricted[root] {
			continue
		}
		if biggest[root] == nil {
			roots = append(roots, root)
		}
		biggest[root] = bigger(biggest[root], it.table)
	}
	if len(roots) < 2 {
		return
	}
	sort.SliceStable(roots, func(i, j int) bool { return biggest[roots[i]].Rows > biggest[roots[j]].Rows })
	a, c := biggest[roots[0]], biggest[roots[1]]
	k.report(ruleFinding{
		check: CheckCartesianJoin,
		reason: fmt.Sprintf("query joins %s and %s with no condition linking them: a cartesian product of about %s rows",
			sized(a), sized(c), approx(a.Rows*c.Rows)),
		suggestion: fmt.Sprintf("add the join condition (JOIN %s ON %s.<key> = %s.<key>); CROSS JOIN only with a small table",
			tableName(c), ruleQuoteIdent(c.Name), ruleQuoteIdent(a.Name)),
		tables: []*metadata.Table{a, c},
		detail: "no condition of WHERE or ON links them, and no condition restricts either",
	})
}

// notIn: NOT IN (subquery) or <> ALL (subquery) whose subquery reads a big
// table without restricting it. PostgreSQL cannot turn NOT IN into an
// anti-join (NULL semantics); a subquery result too big for work_mem is
// scanned again for every outer row.
func (k *checker) notIn(b *block) {
	if !b.ctx.notIn || b.bounded {
		return
	}
	t := k.biggestUntouched(b)
	if t == nil {
		return
	}
	k.report(ruleFinding{
		check: CheckNotInSubquery,
		reason: fmt.Sprintf("NOT IN (subquery) over %s: PostgreSQL cannot plan NOT IN as an anti-join, and when the "+
			"subquery's rows do not fit in work_mem it reads them again for every outer row", sized(t)),
		suggestion: fmt.Sprintf("rewrite as NOT EXISTS (SELECT 1 FROM %s WHERE %s.<column> = <outer>.<column>); "+
			"it is planned as an anti-join and is not surprised by NULLs", tableName(t), ruleQuoteIdent(t.Name)),
		tables: []*metadata.Table{t},
		detail: "NOT IN subquery without a condition on the table",
	})
}

// orderByRandom: ORDER BY random() over a big table that no condition
// restricts; a LIMIT does not help, every row is read and sorted.
func (k *checker) orderByRandom(b *block) {
	random := false
	for _, n := range b.stmt.SortClause {
		if f := n.GetSortBy().GetNode().GetFuncCall(); f != nil && isBuiltinName(f.Funcname, "random") && len(f.Args) == 0 {
			random = true
		}
	}
	if !random {
		return
	}
	t := k.biggestUntouched(b)
	if t == nil {
		return
	}
	k.report(ruleFinding{
		check:  CheckOrderByRandom,
		reason: fmt.Sprintf("ORDER BY random() reads and sorts every row of %s to return a few", sized(t)),
		suggestion: fmt.Sprintf("sample instead: FROM %s TABLESAMPLE SYSTEM (<percent>) or BERNOULLI, or draw random "+
			"key values and fetch those rows by their index", tableName(t)),
		tables: []*metadata.Table{t},
		detail: "ORDER BY random(), no condition on the table",
	})
}

// defeatedIndexes: a big table whose only conditions are ones no index can
// serve: a pattern with a leading wildcard, or a function, cast or
// arithmetic over an indexed column. Quiet when another condition, a join
// or a LIMIT might keep the read small, and when an index might serve the
// condition after all (a GIN/GiST index on the column for patterns, any
// expression index for computed values).
func (k *checker) defeatedIndexes(b *block) {
	if b.bounded || b.mayBeRestricted() {
		return
	}
	for i, it := range b.items {
		if !k.bigTable(it) {
			continue
		}
		var mine []*pg_query.Node
		alone := true
		for _, p := range b.preds {
			if !containsInt(p.refs, i) {
				continue
			}
			if !p.where || len(p.refs) > 1 {
				alone = false // a join condition: the table may be read by index lookups from the other side
				break
			}
			mine = append(mine, p.expr)
		}
		if !alone || len(mine) == 0 {
			continue
		}
		indexable := false
		for _, e := range mine {
			if k.mayUseIndex(b, i, e) {
				indexable = true
				break
			}
		}
		if indexable {
			continue
		}
		for _, e := range mine {
			if f, ok := k.defeat(b, i, e); ok {
				k.report(f)
				break
			}
		}
	}
}

// mayUseIndex reports whether condition n might let an index of item i
// restrict the read: it references an indexed column of the table other
// than through a pattern with a leading wildcard or a computation that
// hides it.
func (k *checker) mayUseIndex(b *block, i int, n *pg_query.Node) bool {
	t := b.items[i].table
	found := false
	var visit func(m *pg_query.Node) bool
	visit = func(m *pg_query.Node) bool {
		if found {
			return false
		}
		switch v := m.Node.(type) {
		case *pg_query.Node_ColumnRef:
			owners, _ := b.owners(v.ColumnRef, len(b.items))
			if containsInt(owners, i) && t.Indexed(columnName(v.ColumnRef)) {
				found = true
			}
			return false
		case *pg_query.Node_AExpr:
			x := v.AExpr
			if lhs, pat, kind, _ := patternMatch(x); kind != notPattern {
				if p, ok := leadingConstString(pat); ok && leadingWildcard(kind, p) && !patternServed(t, lhs) {
					sqlparse.InspectNode(pat, visit)
					return false
				}
			}
			if l, r, ok := comparison(x); ok {
				if !k.hides(b, i, l) {
					sqlparse.InspectNode(l, visit)
				}
				if !k.hides(b, i, r) {
					sqlparse.InspectNode(r, visit)
				}
				return false
			}
		}
		return true
	}
	sqlparse.InspectNode(n, visit)
	return found
}

// hides reports whether expression n computes a new value from a column of
// item i that no index of the table can serve.
func (k *checker) hides(b *block, i int, n *pg_query.Node) bool {
	w, ok := wrappedColumn(n)
	if !ok || b.owner(w.col) != i {
		return false
	}
	t := b.items[i].table
	if t.HasExpressionIndex() {
		return false
	}
	if w.castTo != nil {
		c, ok := t.Column(columnName(w.col))
		return ok && castHidesColumn(c.Type, w.castTo)
	}
	return true
}

// patternServed reports whether an index might serve a pattern on lhs
// despite the wildcard: a GIN or GiST index on the column (pg_trgm), or,
// for an expression, any expression index.
func patternServed(t *metadata.Table, lhs *pg_query.Node) bool {
	cr := lhs.GetColumnRef()
	if cr == nil {
		if _, ok := wrappedColumn(lhs); !ok {
			return true // not a column we can name
		}
		return t.HasExpressionIndex()
	}
	col := columnName(cr)
	for _, ix := range t.Indexes {
		if ix.Method != "gin" && ix.Method != "gist" {
			continue
		}
		for _, c := range ix.Columns {
			if c == col {
				return true
			}
		}
	}
	return false
}

// defeat finds, through AND and OR, a condition on item i that no index
// can serve and says why.
func (k *checker) defeat(b *block, i int, n *pg_query.Node) (ruleFinding, bool) {
	t := b.items[i].table
	if be := n.GetBoolExpr(); be != nil {
		if be.Boolop == pg_query.BoolExprType_NOT_EXPR {
			return ruleFinding{}, false
		}
		for _, a := range be.Args {
			if f, ok := k.defeat(b, i, a); ok {
				return f, true
			}
		}
		return ruleFinding{}, false
	}
	e := n.GetAExpr()
	if e == nil {
		return ruleFinding{}, false
	}
	if lhs, pat, kind, op := patternMatch(e); kind != notPattern {
		p, ok := leadingConstString(pat)
		if !ok || !leadingWildcard(kind, p) || patternServed(t, lhs) {
			return ruleFinding{}, false
		}
		cr, text := lhs.GetColumnRef(), ""
		if cr == nil {
			w, _ := wrappedColumn(lhs)
			cr, text = w.col, w.text
		}
		if cr == nil || b.owner(cr) != i {
			return ruleFinding{}, false
		}
		col := columnName(cr)
		if text == "" {
			text = col
		}
		// Only the wildcard itself is quoted: constants stay out of decisions.
		what := "'" + p[:1] + "…', a pattern that starts with a wildcard"
		if kind == regexPattern {
			what = "'…', a regular expression not anchored with ^"
		}
		return ruleFinding{
			check: CheckLeadingWildcard,
			reason: fmt.Sprintf("%s %s %s, cannot use an index: every row of %s is read",
				text, operatorText(op), what, sized(t)),
			suggestion: fmt.Sprintf("a trigram index serves it (CREATE EXTENSION pg_trgm; CREATE INDEX ON %s USING gin (%s gin_trgm_ops)); "+
				"or use full-text search, or anchor the pattern at the start", tableName(t), ruleQuoteIdent(col)),
			tables: []*metadata.Table{t},
			detail: fmt.Sprintf("condition on %s.%s (%s), no other condition on the table an index could serve", tableName(t), ruleQuoteIdent(col), op),
		}, true
	}
	l, r, ok := comparison(e)
	if !ok {
		return ruleFinding{}, false
	}
	for _, sides := range [][2]*pg_query.Node{{l, r}, {r, l}} {
		w, ok := wrappedColumn(sides[0])
		if !ok || b.owner(w.col) != i || !constantish(sides[1]) || !k.hides(b, i, sides[0]) {
			continue
		}
		col := columnName(w.col)
		ix := servingIndex(t, col, lastName(e.Name) == "=")
		if ix == "" {
			continue
		}
		return ruleFinding{
			check: CheckFunctionOnColumn,
			reason: fmt.Sprintf("%s in WHERE hides %s.%s from its index %s: every row of %s is read",
				w.text, tableName(t), ruleQuoteIdent(col), ruleQuoteIdent(ix), sized(t)),
			suggestion: fmt.Sprintf("compare the bare column (%s <op> <value>, with the computation moved to the value side), "+
				"or create an index on the expression: CREATE INDEX ON %s ((%s))", ruleQuoteIdent(col), tableName(t), w.text),
			tables: []*metadata.Table{t},
			detail: fmt.Sprintf("%s leads index %s; no expression index on the table", ruleQuoteIdent(col), ruleQuoteIdent(ix)),
		}, true
	}
	return ruleFinding{}, false
}

// servingIndex names the first index that would serve a comparison of the
// bare column: column leads a B-tree or BRIN index, or for equality a hash
// index.
func servingIndex(t *metadata.Table, column string, equality bool) string {
	for _, ix := range t.Indexes {
		if len(ix.Columns) == 0 || ix.Columns[0] != column {
			continue
		}
		if ix.Method == "btree" || ix.Method == "brin" || (equality && ix.Method == "hash") {
			return ix.Name
		}
	}
	return ""
}

// largeOffset: OFFSET of Thresholds.MaxOffset or more over a block that
// reads a table with at least that many rows. Whenever the page exists the
// server has read and discarded OFFSET rows to reach it.
func (k *checker) largeOffset(s *pg_query.SelectStmt, reach *metadata.Table) {
	if s.LimitOffset == nil || reach == nil {
		return
	}
	v, ok := constNumber(s.LimitOffset)
	limit := float64(k.th.MaxOffset)
	if !ok || v < limit || reach.Rows < limit {
		return
	}
	k.report(ruleFinding{
		check: CheckLargeOffset,
		reason: fmt.Sprintf("OFFSET %s makes PostgreSQL read and discard %s rows before it returns the page; the query reads %s",
			approx(v), approx(v), sized(reach)),
		suggestion: "paginate by key instead: WHERE <sort key> > <last key of the previous page> ORDER BY <sort key> LIMIT <page size>",
		tables:     []*metadata.Table{reach},
		detail:     fmt.Sprintf("OFFSET %s, threshold %s", approx(v), approx(limit)),
	})
}

// unfiltered: the statement's result is a big table read without WHERE:
// without LIMIT (unfiltered_read; also GROUP BY and DISTINCT), or as an
// aggregate without GROUP BY (full_aggregate, LIMIT or not: count(*) of a
// big table). min() and max() alone are left to the planner (an index can
// answer them).
func (k *checker) unfiltered(b *block) {
	s := b.stmt
	if !b.ctx.result || len(s.FromClause) != 1 || s.WhereClause != nil || len(b.items) != 1 {
		return
	}
	it := b.items[0]
	if s.FromClause[0].GetRangeVar() == nil || !k.bigTable(it) {
		return
	}
	t := it.table
	if plainAggregate(s) {
		agg := aggregatesIn(append(append([]*pg_query.Node(nil), s.TargetList...), s.HavingClause))
		if agg.minMaxOnly {
			return
		}
		verb, suggestion := "aggregates", "restrict it with a WHERE on an indexed column, or keep the aggregate up to date in a summary table"
		if agg.count {
			verb = "counts"
			suggestion = fmt.Sprintf("for an estimate read SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass; "+
				"keep a counter for exact counts; or restrict it with a WHERE on an indexed column", tableName(t))
		}
		k.report(ruleFinding{
			check:      CheckFullAggregate,
			reason:     fmt.Sprintf("query %s every row of %s: there is no WHERE", verb, sized(t)),
			suggestion: suggestion,
			tables:     []*metadata.Table{t},
			detail:     "aggregate without WHERE or GROUP BY",
		})
		return
	}
	if b.bounded {
		return
	}
	reason := fmt.Sprintf("query reads %s without a WHERE or LIMIT", sized(t))
	switch {
	case len(s.GroupClause) > 0:
		reason = fmt.Sprintf("query groups every row of %s: there is no WHERE", sized(t))
	case len(s.DistinctClause) > 0:
		reason = fmt.Sprintf("query reads every row of %s for DISTINCT: there is no WHERE", sized(t))
	}
	k.report(ruleFinding{
		check:      CheckUnfilteredRead,
		reason:     reason,
		suggestion: "add a WHERE on an indexed column, or a LIMIT (and page by key for more)",
		tables:     []*metadata.Table{t},
		detail:     "no WHERE, no LIMIT",
	})
}

// operatorText is how an operator reads in a reason.
func operatorText(op string) string {
	switch op {
	case "~~":
		return "LIKE"
	case "~~*":
		return "ILIKE"
	}
	return op
}
