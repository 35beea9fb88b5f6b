package analysis

import (
	"fmt"
	"sort"
	"strings"
)

// Check names of the planner (Decision.Check, with Source "planner").
const (
	// PlanCheckSeqScan: a sequential scan reads MaxRows rows or more (the
	// table's own row estimate times the times it is scanned).
	PlanCheckSeqScan = "seq_scan"
	// PlanCheckIndexScan: an index or bitmap scan returns MaxRows rows or
	// more (an index that does not narrow the read).
	PlanCheckIndexScan = "big_index_scan"
	// PlanCheckNestedLoop: a nested loop pairs MaxRows or more outer × inner
	// rows.
	PlanCheckNestedLoop = "nested_loop"
	// PlanCheckHash: a hash table (Hash, HashAggregate, hashed SetOp) is
	// built from MaxRows rows or more.
	PlanCheckHash = "hash"
	// PlanCheckSort: a Sort or Incremental Sort of MaxRows rows or more.
	PlanCheckSort = "sort"
	// PlanCheckMaterialize: a Materialize node stores MaxRows rows or more.
	PlanCheckMaterialize = "materialize"
	// PlanCheckCost: the plan's estimated total cost is MaxCost or more.
	PlanCheckCost = "total_cost"
)

// checkRank orders findings: the first one decides and is explained.
var checkRank = map[string]int{
	PlanCheckSeqScan:     0,
	PlanCheckIndexScan:   1,
	PlanCheckNestedLoop:  2,
	PlanCheckHash:        3,
	PlanCheckSort:        4,
	PlanCheckMaterialize: 5,
	PlanCheckCost:        6,
}

// tableFacts is what pg_class says about one relation.
type tableFacts struct {
	// rows is pg_class.reltuples; negative when the table was never
	// vacuumed or analyzed.
	rows float64
	// leading are the first keys of the table's valid, non-partial indexes
	// as pg_get_indexdef shows them (a quoted name when it needs quotes, or
	// an expression).
	leading []string
}

// relKey identifies a relation of the plan by schema and name.
type relKey struct{ schema, name string }

// finding is one check that fired on one plan node.
type finding struct {
	check    string
	rows     float64 // the quantity compared with the threshold
	order    int     // walk order, for a stable choice among equals
	node     *planNode
	reason   string
	evidence string

	// For sequential scans: the filter as shown to people, and the columns
	// an index could serve (equality columns first, then one range column).
	filter    string
	indexCols []string
	// parts is the number of scans an Append finding sums (0: one scan).
	parts int
}

// judgement is the outcome of walking one plan.
type judgement struct {
	root     *planNode
	findings []finding // sorted: the deciding finding first
	// largest is the scan that reads the most rows, for the reason of an
	// efficient plan ("" when the plan reads no relation).
	largest     string
	largestRows float64
}

// execCtx is how often a node runs and how much of its output is used.
type execCtx struct {
	loops float64 // executions per worker
	frac  float64 // fraction of each execution's rows that is consumed (LIMIT)
	par   float64 // parallel workers' worth of rows a partial node stands for
}

// walker walks a plan and collects findings.
type walker struct {
	th    Thresholds
	facts map[relKey]tableFacts
	out   *judgement
	n     int
}

// judgePlan walks every node of the plan, subplans and CTEs included.
func judgePlan(root *planNode, facts map[relKey]tableFacts, th Thresholds) *judgement {
	w := &walker{th: th, facts: facts, out: &judgement{root: root}}
	w.visit(root, execCtx{loops: 1, frac: 1, par: 1})
	if th.MaxCost > 0 && root.TotalCost >= th.MaxCost {
		w.add(finding{check: PlanCheckCost, rows: root.TotalCost, node: root,
			reason: fmt.Sprintf("estimated total cost %s is at or above the limit of %s",
				about(root.TotalCost), about(th.MaxCost)),
			evidence: fmt.Sprintf("%s: total cost %.2f, plan rows %.0f", root.NodeType, root.TotalCost, root.PlanRows)})
	}
	sort.SliceStable(w.out.findings, func(i, j int) bool {
		a, b := w.out.findings[i], w.out.findings[j]
		if checkRank[a.check] != checkRank[b.check] {
			return checkRank[a.check] < checkRank[b.check]
		}
		if a.rows != b.rows {
			return a.rows > b.rows
		}
		return a.order < b.order
	})
	return w.out
}

func (w *walker) add(f finding) {
	f.order = w.n
	w.n++
	w.out.findings = append(w.out.findings, f)
}

// scale is the multiplier from a node's per-worker rows to all workers.
func (c execCtx) scale(n *planNode) float64 {
	if n.partial {
		return c.par
	}
	return 1
}

// tableRows is the relation's own row estimate, or ok false when unknown.
func (w *walker) tableRows(n *planNode) (float64, bool) {
	f, ok := w.facts[relKey{n.Schema, n.RelationName}]
	if !ok || f.rows < 0 {
		return 0, false
	}
	return f.rows, true
}

func (w *walker) visit(n *planNode, c execCtx) {
	limit := w.th.MaxRows
	switch {
	case n.isSeqScan():
		w.seqScan(n, c)
	case n.isIndexScan():
		rows := n.PlanRows * c.loops * c.frac * c.par
		w.noteRead(n, rows)
		if rows >= limit {
			w.add(finding{check: PlanCheckIndexScan, rows: rows, node: n,
				reason:   fmt.Sprintf("%s returns about %s rows", describeScan(n), about(rows)),
				evidence: nodeEvidence(n, c)})
		}
	case n.NodeType == "Append" || n.NodeType == "Merge Append":
		w.partitionScans(n, c)
	case n.NodeType == "Nested Loop":
		outer, inner := n.child("Outer"), n.child("Inner")
		if outer != nil && inner != nil {
			outerRows := outer.PlanRows * c.loops * c.frac * c.scale(outer)
			pairs := outerRows * inner.PlanRows
			if pairs >= limit {
				w.add(finding{check: PlanCheckNestedLoop, rows: pairs, node: n,
					reason: fmt.Sprintf("nested loop joins about %s%s with about %s%s each: about %s row pairs",
						rowsWord(outerRows), from(outer), rowsWord(inner.PlanRows), from(inner), about(pairs)),
					evidence: fmt.Sprintf("%s; outer %s plan rows %.0f; inner %s plan rows %.0f per loop",
						nodeEvidence(n, c), outer.NodeType, outer.PlanRows, inner.NodeType, inner.PlanRows)})
			}
		}
	case n.NodeType == "Hash":
		rows := n.PlanRows * c.loops * c.scale(n)
		if rows >= limit {
			w.add(finding{check: PlanCheckHash, rows: rows, node: n,
				reason:   fmt.Sprintf("hash table of about %s rows%s", about(rows), from(n)),
				evidence: nodeEvidence(n, c)})
		}
	case (n.NodeType == "Aggregate" || n.NodeType == "SetOp") && (n.Strategy == "Hashed" || n.Strategy == "Mixed"):
		if in := n.child("Outer"); in != nil {
			rows := in.PlanRows * c.loops * c.scale(in)
			if rows >= limit {
				what := "hash aggregate"
				if n.NodeType == "SetOp" {
					what = "hashed set operation"
				}
				w.add(finding{check: PlanCheckHash, rows: rows, node: n,
					reason:   fmt.Sprintf("%s over about %s rows%s", what, about(rows), from(in)),
					evidence: fmt.Sprintf("%s; input %s plan rows %.0f", nodeEvidence(n, c), in.NodeType, in.PlanRows)})
			}
		}
	case n.NodeType == "Sort" || n.NodeType == "Incremental Sort":
		rows := n.PlanRows * c.loops * c.scale(n)
		if n.NodeType == "Incremental Sort" {
			rows *= c.frac
		}
		if rows >= limit {
			w.add(finding{check: PlanCheckSort, rows: rows, node: n,
				reason:   fmt.Sprintf("%s of about %s rows%s", strings.ToLower(n.NodeType), about(rows), from(n)),
				evidence: nodeEvidence(n, c)})
		}
	case n.NodeType == "Materialize":
		rows := n.PlanRows * c.scale(n)
		if rows >= limit {
			w.add(finding{check: PlanCheckMaterialize, rows: rows, node: n,
				reason:   fmt.Sprintf("materializes about %s rows%s", about(rows), from(n)),
				evidence: nodeEvidence(n, c)})
		}
	}
	for _, ch := range n.Plans {
		w.visit(ch, w.childCtx(n, ch, c))
	}
}

// childCtx derives how often child runs and how much of it is consumed.
func (w *walker) childCtx(n, child *planNode, c execCtx) execCtx {
	switch child.ParentRelationship {
	case "InitPlan": // run once (CTEs are InitPlans too)
		frac := 1.0
		if child.existsSubplan() {
			// EXISTS stops at its subquery's first row: the planner's
			// estimate of how much that reads is what a LIMIT 1 gets.
			frac = 1 / max(child.PlanRows, 1)
		}
		return execCtx{loops: 1, frac: frac, par: 1}
	case "SubPlan": // run per row the parent evaluates it for, unless hashed
		if n.mentionsHashed(child.SubplanName) {
			return execCtx{loops: c.loops, frac: 1, par: c.par}
		}
		rows := n.PlanRows
		if t, ok := w.tableRows(n); ok && n.isSeqScan() && containsName(n.Filter, child.SubplanName) {
			rows = t // a subplan in a scan's filter runs for every row read
		}
		return execCtx{loops: c.loops * max(rows*c.frac, 1), frac: 1, par: c.par}
	}
	cc := c
	switch n.NodeType {
	case "Gather", "Gather Merge":
		cc.par = parallelDivisor(n.WorkersPlanned)
	case "Nested Loop":
		if outer := n.child("Outer"); outer != nil && child.ParentRelationship == "Inner" {
			cc = execCtx{loops: c.loops * max(outer.PlanRows*c.frac, 1), frac: 1, par: c.par}
		}
	case "Hash Join":
		if child.ParentRelationship == "Inner" { // the Hash is built in full
			cc.frac = 1
		}
	case "Sort", "Hash", "Materialize", "BitmapAnd", "BitmapOr", "Bitmap Heap Scan", "SetOp", "Recursive Union":
		cc.frac = 1 // they read all their input before returning a row
		if n.NodeType == "Materialize" {
			cc.loops = 1 // rescans read the store, not the input
		}
	case "Aggregate", "WindowAgg":
		if n.NodeType == "Aggregate" && n.Strategy != "Sorted" {
			cc.frac = 1
		}
	}
	cc.frac *= costFraction(n, child)
	return cc
}

// costFraction is the share of one execution of child that its parent
// reads, from the planner's own additive costing: a parent that stops early
// (Limit, with its OFFSET; a Merge Join whose other side ends first; a semi
// join's inner side) costs only the part of the child it reads, so its
// total cost below the child's tells how much of the child runs.
func costFraction(n, child *planNode) float64 {
	span := child.TotalCost - child.StartupCost
	if span <= 0 || n.TotalCost >= child.TotalCost {
		if n.NodeType == "Limit" && child.PlanRows > 0 && span <= 0 {
			return min(max(n.PlanRows/child.PlanRows, 0), 1)
		}
		return 1
	}
	return min(max((n.TotalCost-child.StartupCost)/span, 0), 1)
}

// seqScan judges a sequential scan by the rows it reads: the table's own
// estimate (the plan's rows are after the filter), times the executions.
func (w *walker) seqScan(n *planNode, c execCtx) {
	table, known := w.tableRows(n)
	perScan, execs, rows := w.seqScanRows(n, c)
	w.noteRead(n, rows)
	if rows < w.th.MaxRows {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s, about %s rows", scanKind(n), n.relation(), about(perScan))
	switch {
	case execs >= 1.5:
		fmt.Fprintf(&b, ", repeated about %s times: about %s rows read", about(execs), about(rows))
	case c.frac < 0.999:
		fmt.Fprintf(&b, ", about %s of them read before the LIMIT is reached", about(rows))
	}
	f := finding{check: PlanCheckSeqScan, rows: rows, node: n}
	if n.Filter != "" {
		f.filter, f.indexCols = analyzeFilter(n.Filter, n.Alias)
		if f.filter != "" {
			fmt.Fprintf(&b, ", filter on %s", f.filter)
		} else {
			b.WriteString(", with a filter")
		}
	} else {
		b.WriteString(", no filter")
	}
	f.reason = b.String()
	tableText := "unknown (never analyzed)"
	if known {
		tableText = fmt.Sprintf("%.0f (pg_class.reltuples)", table)
	}
	f.evidence = fmt.Sprintf("%s; table rows %s", nodeEvidence(n, c), tableText)
	w.add(f)
}

// seqScanRows is what a sequential scan reads: the table's rows per scan,
// the scans, and the rows read in all.
func (w *walker) seqScanRows(n *planNode, c execCtx) (perScan, execs, rows float64) {
	perScan, known := w.tableRows(n)
	perScan *= n.sampleFraction()
	if !known || perScan < n.PlanRows*c.scale(n) {
		perScan = n.PlanRows * c.scale(n) // at least what it returns
	}
	execs = c.loops
	if !n.partial {
		execs *= c.par // every worker scans the whole table
	}
	return perScan, execs, perScan * execs * c.frac
}

// partitionScans judges an Append's sequential scans together: scans of
// the partitions of one table read the table, whatever each part reads.
func (w *walker) partitionScans(n *planNode, c execCtx) {
	var scans []*planNode
	var sum, largest float64
	var top *planNode
	for _, ch := range n.Plans {
		if !ch.isSeqScan() || ch.ParentRelationship != "Member" {
			continue
		}
		_, _, rows := w.seqScanRows(ch, w.childCtx(n, ch, c))
		scans = append(scans, ch)
		sum += rows
		if top == nil || rows > largest {
			top, largest = ch, rows
		}
	}
	if len(scans) < 2 || sum < w.th.MaxRows || largest >= w.th.MaxRows {
		return // nothing to add to the scans' own findings
	}
	names := make([]string, 0, 4)
	for _, sc := range scans[:min(len(scans), 3)] {
		names = append(names, sc.relation())
	}
	if len(scans) > 3 {
		names = append(names, "…")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sequential scans of %d relations (%s), about %s rows in all",
		len(scans), strings.Join(names, ", "), about(sum))
	f := finding{check: PlanCheckSeqScan, rows: sum, node: top, parts: len(scans)}
	if top.Filter != "" {
		f.filter, f.indexCols = analyzeFilter(top.Filter, top.Alias)
		if f.filter != "" {
			fmt.Fprintf(&b, ", filter on %s", f.filter)
		}
	}
	f.reason = b.String()
	f.evidence = fmt.Sprintf("%s over %d sequential scans; largest %s", n.displayType(), len(scans), nodeEvidence(top, w.childCtx(n, top, c)))
	w.add(f)
}

// noteRead remembers the scan that reads the most rows.
func (w *walker) noteRead(n *planNode, rows float64) {
	if w.out.largest == "" || rows > w.out.largestRows {
		w.out.largest, w.out.largestRows = describeScan(n), rows
	}
}

// describeScan is "sequential scan of public.t" or "index scan of public.t
// using t_pkey".
func describeScan(n *planNode) string {
	kind := strings.ToLower(n.NodeType)
	if n.isSeqScan() {
		kind = scanKind(n)
	}
	s := kind + " of " + n.relation()
	if n.IndexName != "" {
		s += " using " + quoteIdentIfNeeded(n.IndexName)
	}
	return s
}

// scanKind names a scan that reads its relation: "sequential scan", or
// "sample scan (BERNOULLI)".
func scanKind(n *planNode) string {
	if n.NodeType == "Sample Scan" {
		return "sample scan (" + strings.ToUpper(n.SamplingMethod) + ")"
	}
	return "sequential scan"
}

// from is " from public.t" for the first relation below n, or "".
func from(n *planNode) string {
	if r := n.firstRelation(); r != "" {
		return " from " + r
	}
	return ""
}

// nodeEvidence lists a node's estimates: "Seq Scan on public.t (alias t):
// plan rows 1993, total cost 16987.18, loops 1".
func nodeEvidence(n *planNode, c execCtx) string {
	var b strings.Builder
	b.WriteString(n.displayType())
	if n.Dist != "" {
		b.WriteString(" " + n.Dist)
	}
	if r := n.relation(); r != "" && (n.RelationName != "" || n.CTEName != "" || n.FunctionName != "") {
		b.WriteString(" on " + r)
		if n.Alias != "" && n.Alias != n.RelationName {
			b.WriteString(" " + quoteIdentIfNeeded(n.Alias))
		}
	}
	if n.IndexName != "" {
		b.WriteString(" using " + quoteIdentIfNeeded(n.IndexName))
	}
	fmt.Fprintf(&b, ": plan rows %.0f, total cost %.2f", n.PlanRows, n.TotalCost)
	if c.loops >= 1.5 {
		fmt.Fprintf(&b, ", loops about %.0f", c.loops)
	}
	if c.frac < 0.999 {
		fmt.Fprintf(&b, ", fraction read %.4g (LIMIT)", c.frac)
	}
	if n.partial && c.par > 1 {
		fmt.Fprintf(&b, ", per worker (%.1f workers' worth)", c.par)
	}
	return b.String()
}

// suggestionFor is the advice for a finding that needs no index check.
func suggestionFor(f finding) string {
	switch f.check {
	case PlanCheckSeqScan:
		if f.parts > 0 && len(f.indexCols) > 0 {
			return fmt.Sprintf("an index on (%s) in each of these relations would serve this filter; for partitions, "+
				"an index on the partitioned table creates them (not checked with a hypothetical index)", joinIdents(f.indexCols))
		}
		if f.node.Filter == "" {
			return "the statement reads the whole table: add a selective condition on an indexed column"
		}
		return "no plain column index can serve this filter: rewrite the condition on an indexed column, or consider an expression index"
	case PlanCheckIndexScan:
		return "the index does not narrow the read: add a more selective condition or a LIMIT"
	case PlanCheckNestedLoop:
		return "make the join condition an equality on indexed columns, or narrow the outer side with a selective filter"
	case PlanCheckHash:
		return "narrow the rows before they are joined or grouped, with a selective condition on an indexed column"
	case PlanCheckSort:
		return "an index on the ORDER BY (or GROUP BY) columns can return rows already sorted; otherwise narrow the rows first"
	case PlanCheckMaterialize:
		return "narrow the inner side of the join, or join on indexed columns"
	case PlanCheckCost:
		return "narrow the statement with selective conditions on indexed columns"
	}
	return ""
}
