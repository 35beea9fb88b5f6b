package analysis

import (
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/metadata"
)

// Rules is tier 1 of the analysis: rules on PostgreSQL's parse tree with
// the table facts of the metadata cache. A rule fires only on evidence
// that a big table (Thresholds.MaxRows rows or more, by the planner's
// estimate) is read in full, multiplied or sorted whole; whenever a
// condition, a join, a LIMIT or an index might keep the work small it
// stays quiet, and the planner tier decides. Small tables, tables without
// facts and views never fire (a view's cost is that of its definition,
// which only the planner sees).
//
// The rules, in their order of precedence when several fire:
//
//   - cartesian_join: two big tables in parts of FROM that no condition
//     of WHERE or ON links or restricts (FROM a, b; CROSS JOIN; ON true).
//   - not_in_subquery: NOT IN (subquery) or <> ALL (subquery) reading a
//     big table without a condition on it (suggests NOT EXISTS).
//   - order_by_random: ORDER BY random() over a big table without a
//     condition on it, LIMIT or not.
//   - leading_wildcard: LIKE, ILIKE, ~~, ~~*, SIMILAR TO with a constant
//     pattern starting with % or _, or a regular expression (~, ~*) not
//     anchored with ^, on a column of a big table whose other conditions
//     no index could serve; quiet with a GIN/GiST index on the column.
//   - function_on_indexed_column: =, <, <=, >, >=, IN, = ANY or BETWEEN
//     between a constant and a function, cast (one that changes the
//     column's type), COALESCE or arithmetic over the leading column of an
//     index of a big table, with nothing else an index could serve; quiet
//     when the table has any expression index.
//   - large_offset: a constant OFFSET of at least Thresholds.MaxOffset
//     over tables of at least that many rows.
//   - full_aggregate: the statement's result is an aggregate without WHERE
//     or GROUP BY over a big table (SELECT count(*) FROM big), LIMIT or
//     not; min() and max() alone are left to the planner.
//   - unfiltered_read: the statement's result is a big table read without
//     WHERE or LIMIT (with GROUP BY or DISTINCT too).
//
// The rules that presume a full read (all but not_in, order_by_random and
// large_offset) stay quiet in a block that a LIMIT, or an enclosing LIMIT
// or EXISTS, may stop early.
type Rules struct {
	// Thresholds are the limits; a zero field takes DefaultThresholds'.
	Thresholds Thresholds
	// Now stamps Decided; nil means time.Now.
	Now func() time.Time
}

// Check judges the SELECT statements of tree (others are skipped; see
// sqlparse.IsRead for which to send). facts returns what the metadata
// cache knows of a relation, named as the statement names it (schema ""
// when unqualified; see sqlparse.Tables), or nil. Check returns an
// Inefficient decision with Source and Origin "rules" when a rule fires,
// and false when none does (the planner tier then decides). It is
// deterministic, does not retain tree, and is safe for concurrent use.
//
// A panic inside the rules (a bug) is recovered and reported as "no rule
// fired", so that a statement is never failed by tier 1.
func (r Rules) Check(tree *pg_query.ParseResult, facts func(schema, name string) *metadata.Table) (d Decision, fired bool) {
	defer func() {
		if recover() != nil {
			d, fired = Decision{}, false
		}
	}()
	f, ok := r.check(tree, facts)
	if !ok {
		return Decision{}, false
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return Decision{
		Verdict:    Inefficient,
		Reason:     f.reason,
		Suggestion: f.suggestion,
		Evidence:   f.evidence(),
		Check:      f.check,
		Source:     SourceRules,
		Origin:     SourceRules,
		Decided:    now(),
	}, true
}

// check runs the rules without Check's recover (the fuzz test calls it).
func (r Rules) check(tree *pg_query.ParseResult, facts func(schema, name string) *metadata.Table) (ruleFinding, bool) {
	k := checker{th: r.thresholds(), facts: facts}
	for _, raw := range tree.GetStmts() {
		if s := raw.GetStmt().GetSelectStmt(); s != nil {
			k.selectStmt(s, blockCtx{result: true})
		}
	}
	if k.best == nil {
		return ruleFinding{}, false
	}
	return *k.best, true
}

func (r Rules) thresholds() Thresholds {
	th := r.Thresholds
	if th.MaxRows <= 0 {
		th.MaxRows = DefaultThresholds.MaxRows
	}
	if th.MaxOffset <= 0 {
		th.MaxOffset = DefaultThresholds.MaxOffset
	}
	return th
}

// checker is the state of one Check.
type checker struct {
	th    Thresholds
	facts func(schema, name string) *metadata.Table
	best  *ruleFinding
	depth int
}

// ruleFinding is what a rule found.
type ruleFinding struct {
	check      string
	reason     string
	suggestion string
	tables     []*metadata.Table // the facts it rests on
	detail     string
}

// report keeps the ruleFinding of highest precedence; among equals, the first.
func (k *checker) report(f ruleFinding) {
	if k.best == nil || ruleRank[f.check] < ruleRank[k.best.check] {
		k.best = &f
	}
}
