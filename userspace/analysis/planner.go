package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// HypoPG says whether an index the planner suggests is first tried as a
// hypothetical index (the hypopg extension).
type HypoPG int

const (
	// HypoPGAuto checks suggested indexes when the hypopg extension is
	// installed in the database (looked up on every decision that suggests
	// an index).
	HypoPGAuto HypoPG = iota
	// HypoPGOff never uses hypopg; suggestions say they were not checked.
	HypoPGOff
)

// DefaultStatementTimeout bounds each statement of a planning session
// (statement_timeout and lock_timeout) when PlannerOptions leaves it zero.
const DefaultStatementTimeout = 500 * time.Millisecond

// PlannerOptions configure NewPlanner. The zero value is usable.
type PlannerOptions struct {
	// Thresholds the plan is judged against. The zero value means
	// DefaultThresholds; MaxRows <= 0 means DefaultThresholds.MaxRows;
	// MaxCost 0 turns the cost check off.
	Thresholds Thresholds
	// StatementTimeout is statement_timeout and lock_timeout for every
	// statement the planner sends (default DefaultStatementTimeout).
	StatementTimeout time.Duration
	// HypoPG: check suggested indexes with hypothetical indexes (default
	// HypoPGAuto).
	HypoPG HypoPG
	// Parser, when set, is the proxy's shared parse cache; nil parses
	// without a cache.
	Parser *sqlparse.Parser
	// Flavor is the backend's kind: FlavorPostgres (the default) plans with
	// EXPLAIN (FORMAT JSON) and pg_class; FlavorRedshift with EXPLAIN's text
	// and svv_table_info, judged on Redshift's own signals.
	Flavor string
}

// Planner judges read statements from PostgreSQL's own plan (tier 2). It
// plans on connections of the proxy's own pool for one database, never on
// a client's session, inside a read-only transaction that is always rolled
// back. It is safe for concurrent use; each Judge holds one pooled
// connection while it runs.
type Planner struct {
	pool    *pgxpool.Pool
	th      Thresholds
	timeout time.Duration
	hypopg  HypoPG
	parser  *sqlparse.Parser
	flavor  string
}

// NewPlanner returns a planner that plans on connections of pool.
func NewPlanner(pool *pgxpool.Pool, opts PlannerOptions) *Planner {
	th := opts.Thresholds
	if th == (Thresholds{}) {
		th = DefaultThresholds
	}
	if th.MaxRows <= 0 {
		th.MaxRows = DefaultThresholds.MaxRows
	}
	timeout := opts.StatementTimeout
	if timeout <= 0 {
		timeout = DefaultStatementTimeout
	}
	return &Planner{pool: pool, th: th, timeout: max(timeout, time.Millisecond), hypopg: opts.HypoPG, parser: opts.Parser, flavor: opts.Flavor}
}

// Thresholds returns the limits the planner judges against.
func (p *Planner) Thresholds() Thresholds { return p.th }

// Judge plans sql (one read statement; $n parameters get a generic plan,
// their types from paramOIDs where given, 0 or missing entries inferred by
// PostgreSQL) and judges the plan. A statement that cannot be planned
// returns a *PlanError whose kind (ErrTimeout, ErrRelationMissing,
// ErrPermissionDenied, ErrSyntax, ErrNotRead, ErrExplain) the caller maps to
// its fail-open or fail-closed answer.
//
// The plan is the one the pool's session settings give (search_path,
// work_mem, enable_*), not the client's. The verdict depends only on the
// plan and pg_class: the same statistics give the same decision.
//
// ctx bounds the whole call; when it ends while the server is planning, the
// planner sends a cancel request and still cleans the connection up.
func (p *Planner) Judge(ctx context.Context, sql string, paramOIDs []uint32) (Decision, error) {
	if p.flavor == FlavorRedshift {
		return p.judgeRedshift(ctx, sql)
	}
	var d Decision
	err := p.planOnConn(ctx, sql, paramOIDs, p.hypopg == HypoPGAuto, func(c *planConn, st readStatement, plan *planNode, facts map[relKey]tableFacts, hypoSchema string) {
		j := judgePlan(plan, facts, p.th)
		d = p.decision(j)
		if len(j.findings) > 0 && j.findings[0].check == PlanCheckSeqScan && j.findings[0].parts == 0 && len(j.findings[0].indexCols) > 0 {
			top := j.findings[0]
			d.Suggestion = p.indexSuggestion(ctx, c, st, paramOIDs, top, facts[relKey{top.node.Schema, top.node.RelationName}], hypoSchema)
		}
	})
	if err != nil {
		return Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, planError(err)
	}
	return d, nil
}

// planOnConn checks that sql is one read statement (that error is returned
// as it is), plans it on a connection of the pool (hypopg's schema looked
// up with wantHypo) and hands the plan to use while the connection is
// held; the connection is cleaned up after. A planning failure is a
// *PlanError (the context's error when the server's answers our cancel).
func (p *Planner) planOnConn(ctx context.Context, sql string, paramOIDs []uint32, wantHypo bool,
	use func(c *planConn, st readStatement, plan *planNode, facts map[relKey]tableFacts, hypoSchema string)) error {
	st, err := checkRead(p.parser, sql)
	if err != nil {
		return err
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return planError(err)
	}
	defer conn.Release()
	c := &planConn{pc: conn.Conn().PgConn(), tm: conn.Conn().TypeMap(), timeout: p.timeout}
	defer c.closeIfDirty()
	plan, facts, hypoSchema, err := c.firstPlan(ctx, st, paramOIDs, wantHypo)
	if err != nil {
		if ctx.Err() != nil { // the server error is the answer to our cancel request
			err = ctx.Err()
		}
		return planError(err)
	}
	use(c, st, plan, facts, hypoSchema)
	return nil
}

// decision turns a judgement into a Decision.
func (p *Planner) decision(j *judgement) Decision {
	d := Decision{Source: SourcePlanner, Origin: SourcePlanner, Decided: time.Now()}
	cost := fmt.Sprintf("plan total cost %.2f", j.root.TotalCost)
	if len(j.findings) == 0 {
		d.Verdict = Efficient
		largest := "it reads no table"
		if j.largest != "" {
			largest = fmt.Sprintf("largest read: %s, about %s", j.largest, rowsWord(j.largestRows))
		}
		d.Reason = fmt.Sprintf("no step reads, joins, sorts or hashes %s rows or more (%s); estimated total cost %s",
			about(p.th.MaxRows), largest, about(j.root.TotalCost))
		d.Evidence = nodeEvidence(j.root, execCtx{loops: 1, frac: 1, par: 1})
		d.Score = j.largestRows / p.th.MaxRows
		if p.th.MaxCost > 0 {
			d.Score = max(d.Score, j.root.TotalCost/p.th.MaxCost)
		}
		return d
	}
	top := j.findings[0]
	d.Verdict = Inefficient
	if top.check == PlanCheckCost {
		d.Score = top.rows / p.th.MaxCost
	} else {
		d.Score = top.rows / p.th.MaxRows
	}
	d.Check = top.check
	d.Reason = top.reason
	d.Suggestion = suggestionFor(top)
	var ev strings.Builder
	ev.WriteString(top.evidence)
	if top.check != PlanCheckCost {
		ev.WriteString("; " + cost)
	}
	for i, f := range j.findings[1:] {
		if i == 3 {
			fmt.Fprintf(&ev, "; and %d more", len(j.findings)-4)
			break
		}
		fmt.Fprintf(&ev, "; also %s: %s", f.check, f.reason)
	}
	d.Evidence = ev.String()
	return d
}

// indexSuggestion proposes an index for the filter of a sequential scan,
// checked with a hypothetical index when hypopg is there.
func (p *Planner) indexSuggestion(ctx context.Context, c *planConn, st readStatement, paramOIDs []uint32, f finding, table tableFacts, hypoSchema string) string {
	n := f.node
	if lead := f.indexCols[0]; contains(table.leading, lead) || contains(table.leading, quoteIdent(lead)) {
		return fmt.Sprintf("an index on %s starting with %s exists, but the plan does not use it for this filter: "+
			"the filter keeps too many rows, narrow it", n.relation(), quoteIdentIfNeeded(lead))
	}
	quoted := make([]string, len(f.indexCols))
	for i, col := range f.indexCols {
		quoted[i] = quoteIdent(col)
	}
	target := fmt.Sprintf("%s (%s)", n.relation(), joinIdents(f.indexCols))
	serve := "an index on " + target + " would serve this filter"
	switch {
	case p.hypopg == HypoPGOff:
		return serve + " (not checked: hypothetical index checks are off)"
	case hypoSchema == "":
		return serve + " (not checked: hypopg is not installed)"
	}
	create := fmt.Sprintf("CREATE INDEX ON %s.%s (%s)", quoteIdent(n.Schema), quoteIdent(n.RelationName), strings.Join(quoted, ", "))
	used, err := c.hypotheticalPlan(ctx, st, paramOIDs, hypoSchema, create)
	switch {
	case err != nil:
		return serve + " (not checked: the hypothetical index check failed: " + planError(err).Error() + ")"
	case used:
		return serve + " (checked with a hypothetical index): CREATE INDEX ON " + target
	}
	return "an index on " + target + " would not help: the plan does not use it (checked with a hypothetical index); " +
		"the filter keeps too many rows, narrow it"
}

// Describe is the statement's estimated plan as text, one node per line,
// indented by depth: node type, relation and index, estimated rows and
// cost, conditions (the model tier's plan tool). At most maxDescribeNodes
// nodes are shown.
func (p *Planner) Describe(ctx context.Context, sql string, paramOIDs []uint32) (string, error) {
	if p.flavor == FlavorRedshift {
		// The text has parameters, which Redshift plans only once bound.
		return "", errors.New("no generic plans on Redshift")
	}
	var plan *planNode
	if err := p.planOnConn(ctx, sql, paramOIDs, false, func(_ *planConn, _ readStatement, root *planNode, _ map[relKey]tableFacts, _ string) {
		plan = root
	}); err != nil {
		return "", err
	}
	var b strings.Builder
	n := 0
	var walk func(node *planNode, depth int)
	walk = func(node *planNode, depth int) {
		if n++; n > maxDescribeNodes {
			if n == maxDescribeNodes+1 {
				b.WriteString("(more nodes not shown)\n")
			}
			return
		}
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(node.NodeType)
		if node.JoinType != "" {
			b.WriteString(" " + node.JoinType)
		}
		if node.RelationName != "" {
			b.WriteString(" on " + node.relation())
		}
		if node.IndexName != "" {
			b.WriteString(" using " + node.IndexName)
		}
		fmt.Fprintf(&b, " (rows=%.0f cost=%.2f..%.2f)", node.PlanRows, node.StartupCost, node.TotalCost)
		for _, cond := range []struct{ name, v string }{{"index cond", node.IndexCond}, {"filter", node.Filter},
			{"hash cond", node.HashCond}, {"merge cond", node.MergeCond}, {"join filter", node.JoinFilter}} {
			if cond.v != "" {
				fmt.Fprintf(&b, " %s: %s", cond.name, cond.v)
			}
		}
		b.WriteByte('\n')
		for _, child := range node.Plans {
			walk(child, depth+1)
		}
	}
	walk(plan, 0)
	return b.String(), nil
}

// maxDescribeNodes bounds Describe's output.
const maxDescribeNodes = 60

// maxTryIndexColumns bounds the columns of a hypothetical index TryIndex
// builds.
const maxTryIndexColumns = 4

// TryIndex says whether the plan of sql would use an index on
// schema.table (columns), checked with a hypothetical index (hypopg): the
// model tier's hypothetical_index tool. The caller has checked that the
// table is one the statement reads and that the columns are its own; the
// names are quoted here all the same.
func (p *Planner) TryIndex(ctx context.Context, sql string, paramOIDs []uint32, schema, table string, columns []string) (bool, error) {
	switch {
	case p.flavor == FlavorRedshift:
		return false, errors.New("no indexes on Redshift")
	case p.hypopg == HypoPGOff:
		return false, errors.New("hypothetical index checks are off")
	case len(columns) == 0 || len(columns) > maxTryIndexColumns:
		return false, fmt.Errorf("give 1 to %d columns", maxTryIndexColumns)
	}
	var used bool
	var tryErr error
	err := p.planOnConn(ctx, sql, paramOIDs, true, func(c *planConn, st readStatement, _ *planNode, _ map[relKey]tableFacts, hypoSchema string) {
		if hypoSchema == "" {
			tryErr = errors.New("the hypopg extension is not installed in this database")
			return
		}
		quoted := make([]string, len(columns))
		for i, col := range columns {
			quoted[i] = quoteIdent(col)
		}
		create := fmt.Sprintf("CREATE INDEX ON %s.%s (%s)", quoteIdent(schema), quoteIdent(table), strings.Join(quoted, ", "))
		if used, tryErr = c.hypotheticalPlan(ctx, st, paramOIDs, hypoSchema, create); tryErr != nil {
			tryErr = planError(tryErr)
		}
	})
	if err == nil {
		err = tryErr
	}
	if err != nil {
		return false, err
	}
	return used, nil
}
