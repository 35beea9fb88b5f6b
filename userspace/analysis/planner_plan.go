package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// planNode is one node of EXPLAIN (FORMAT JSON, VERBOSE) output: the fields
// the checks read.
type planNode struct {
	NodeType           string      `json:"Node Type"`
	Strategy           string      `json:"Strategy"`
	ParentRelationship string      `json:"Parent Relationship"`
	SubplanName        string      `json:"Subplan Name"`
	ParallelAware      bool        `json:"Parallel Aware"`
	JoinType           string      `json:"Join Type"`
	RelationName       string      `json:"Relation Name"`
	Schema             string      `json:"Schema"`
	Alias              string      `json:"Alias"`
	IndexName          string      `json:"Index Name"`
	CTEName            string      `json:"CTE Name"`
	FunctionName       string      `json:"Function Name"`
	StartupCost        float64     `json:"Startup Cost"`
	TotalCost          float64     `json:"Total Cost"`
	PlanRows           float64     `json:"Plan Rows"`
	WorkersPlanned     int         `json:"Workers Planned"`
	Filter             string      `json:"Filter"`
	JoinFilter         string      `json:"Join Filter"`
	IndexCond          string      `json:"Index Cond"`
	RecheckCond        string      `json:"Recheck Cond"`
	HashCond           string      `json:"Hash Cond"`
	MergeCond          string      `json:"Merge Cond"`
	OneTimeFilter      string      `json:"One-Time Filter"`
	SamplingMethod     string      `json:"Sampling Method"`
	SamplingParameters []string    `json:"Sampling Parameters"`
	Output             []string    `json:"Output"`
	Plans              []*planNode `json:"Plans"`

	// partial: the node's rows are per parallel worker (a parallel-aware
	// node, or one fed by such a node on its outer side).
	partial bool
	// Dist is a Redshift join's distribution (DS_BCAST_INNER, DS_DIST_BOTH,
	// DS_DIST_NONE, ...; text plans only), notes the property lines of a
	// text plan that have no field ("Send to leader", "Sort Key: …").
	Dist  string `json:"-"`
	notes []string
}

// decodePlan decodes the single JSON document EXPLAIN (FORMAT JSON) returns.
func decodePlan(doc []byte) (*planNode, error) {
	var out []struct {
		Plan *planNode `json:"Plan"`
	}
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, fmt.Errorf("decode EXPLAIN output: %w", err)
	}
	if len(out) != 1 || out[0].Plan == nil {
		return nil, errors.New("decode EXPLAIN output: no plan")
	}
	markPartial(out[0].Plan)
	return out[0].Plan, nil
}

// markPartial sets partial bottom-up: below a Gather, row estimates of
// partial paths are per worker.
func markPartial(n *planNode) bool {
	anyPartial, outerPartial := false, false
	for _, c := range n.Plans {
		p := markPartial(c)
		if c.ParentRelationship == "InitPlan" || c.ParentRelationship == "SubPlan" {
			continue
		}
		anyPartial = anyPartial || p
		if c.ParentRelationship == "Outer" {
			outerPartial = outerPartial || p
		}
	}
	switch n.NodeType {
	case "Gather", "Gather Merge":
		n.partial = false
	case "Append", "Merge Append":
		n.partial = n.ParallelAware || anyPartial
	default:
		n.partial = n.ParallelAware || outerPartial
	}
	return n.partial
}

// relation names the relation a scan node reads, schema-qualified when
// EXPLAIN gave the schema.
func (n *planNode) relation() string {
	switch {
	case n.RelationName != "" && n.Schema != "":
		return quoteIdentIfNeeded(n.Schema) + "." + quoteIdentIfNeeded(n.RelationName)
	case n.RelationName != "":
		return quoteIdentIfNeeded(n.RelationName)
	case n.CTEName != "":
		return "CTE " + quoteIdentIfNeeded(n.CTEName)
	case n.FunctionName != "":
		return "function " + n.FunctionName + "()"
	}
	return ""
}

// firstRelation is the first relation read in the subtree, for reasons
// about joins ("" when there is none).
func (n *planNode) firstRelation() string {
	if r := n.relation(); r != "" {
		return r
	}
	for _, c := range n.Plans {
		if c.ParentRelationship == "InitPlan" || c.ParentRelationship == "SubPlan" {
			continue
		}
		if r := c.firstRelation(); r != "" {
			return r
		}
	}
	return ""
}

// child returns the child with the given Parent Relationship, or nil.
func (n *planNode) child(rel string) *planNode {
	for _, c := range n.Plans {
		if c.ParentRelationship == rel {
			return c
		}
	}
	return nil
}

// existsSubplan reports an uncorrelated EXISTS (subquery) run as an
// InitPlan: PostgreSQL drops the target list of an EXISTS subquery, so the
// top node of its plan outputs nothing (EXPLAIN VERBOSE shows no Output),
// while every other sublink (a scalar, ARRAY, IN or ALL subquery) and every
// CTE returns at least one column. Such a subplan runs only up to its first
// row.
func (n *planNode) existsSubplan() bool {
	return n.ParentRelationship == "InitPlan" && strings.HasPrefix(n.SubplanName, "InitPlan ") && len(n.Output) == 0
}

// mentionsHashed reports whether one of the node's expressions evaluates
// the named subplan as a hashed subplan (executed once, not per row).
func (n *planNode) mentionsHashed(subplan string) bool {
	if subplan == "" {
		return false
	}
	exprs := append([]string{n.Filter, n.JoinFilter, n.IndexCond, n.RecheckCond, n.HashCond, n.MergeCond, n.OneTimeFilter}, n.Output...)
	for _, s := range exprs {
		if containsName(s, "hashed "+subplan) {
			return true
		}
	}
	return false
}

// containsName reports whether s contains name not followed by a digit
// (so "SubPlan 1" is not found in "SubPlan 12").
func containsName(s, name string) bool {
	for i := strings.Index(s, name); i >= 0; {
		end := i + len(name)
		if end == len(s) || s[end] < '0' || s[end] > '9' {
			return true
		}
		j := strings.Index(s[end:], name)
		if j < 0 {
			return false
		}
		i = end + j
	}
	return false
}

// displayType is the node's name as EXPLAIN's text format shows it
// (HashAggregate rather than Aggregate with Strategy Hashed).
func (n *planNode) displayType() string {
	switch {
	case n.NodeType == "Aggregate" && n.Strategy == "Hashed":
		return "HashAggregate"
	case n.NodeType == "Aggregate" && n.Strategy == "Sorted":
		return "GroupAggregate"
	case n.NodeType == "Aggregate" && n.Strategy == "Mixed":
		return "MixedAggregate"
	case n.NodeType == "SetOp" && n.Strategy == "Hashed":
		return "HashSetOp"
	case n.ParallelAware:
		return "Parallel " + n.NodeType
	}
	return n.NodeType
}

// isSeqScan: the node reads its whole relation (a plain or parallel
// sequential scan), or the part of it a TABLESAMPLE reads (sampleFraction).
func (n *planNode) isSeqScan() bool { return n.NodeType == "Seq Scan" || n.NodeType == "Sample Scan" }

// sampleFraction is the part of its relation a scan reads: 1 for a
// sequential scan and for BERNOULLI, which visits every row; the percentage
// of pages for SYSTEM; 1 for a method or an argument the proxy cannot read
// (a parameter, an expression, an extension's method).
func (n *planNode) sampleFraction() float64 {
	if n.NodeType != "Sample Scan" || !strings.EqualFold(n.SamplingMethod, "system") || len(n.SamplingParameters) != 1 {
		return 1
	}
	// EXPLAIN VERBOSE prints the argument as a constant: '10'::real.
	v := strings.TrimSuffix(strings.TrimSuffix(n.SamplingParameters[0], "::real"), "::double precision")
	v = strings.Trim(v, "'")
	pct, err := strconv.ParseFloat(v, 64)
	if err != nil || pct < 0 || pct > 100 {
		return 1
	}
	return pct / 100
}

// isIndexScan: the node reads its relation through an index.
func (n *planNode) isIndexScan() bool {
	switch n.NodeType {
	case "Index Scan", "Index Only Scan", "Bitmap Heap Scan":
		return true
	}
	return false
}

// usesIndex reports whether some node of the tree scans with the named index.
func (n *planNode) usesIndex(name string) bool {
	if n.IndexName == name {
		return true
	}
	for _, c := range n.Plans {
		if c.usesIndex(name) {
			return true
		}
	}
	return false
}

// parallelDivisor is PostgreSQL's get_parallel_divisor with
// parallel_leader_participation on: how many workers' worth of rows a
// partial path's per-worker estimate stands for.
func parallelDivisor(workers int) float64 {
	d := float64(workers)
	if lead := 1 - 0.3*float64(workers); lead > 0 {
		d += lead
	}
	return max(d, 1)
}
