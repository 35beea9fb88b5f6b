package analysis

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Redshift has no JSON plans: its EXPLAIN prints text, one line per node
// ("XN Hash Join DS_BCAST_INNER  (cost=… rows=… width=…)"), indented, with
// "->" before every node but the first, and property lines ("Hash Cond:
// …", "Filter: …", "Sort Key: …", "Send to leader") under their node.
// parseTextPlan reads that format, and PostgreSQL's own text format (the
// same grammar without "XN " and the distribution tags), into the plan
// model the JSON plans use.

// maxTextPlanLines bounds what parseTextPlan reads.
const maxTextPlanLines = 5000

var (
	nodeLineRE = regexp.MustCompile(`^(.*?)\s+\(cost=([0-9.]+)\.\.([0-9.]+) rows=([0-9]+) width=([0-9]+)\)$`)
	distRE     = regexp.MustCompile(`^DS_[A-Z_]+$`)
)

// parseTextPlan parses the lines of an EXPLAIN text plan.
func parseTextPlan(lines []string) (*planNode, error) {
	if len(lines) > maxTextPlanLines {
		return nil, fmt.Errorf("the plan has more than %d lines", maxTextPlanLines)
	}
	type open struct {
		indent int
		node   *planNode
	}
	var root *planNode
	var stack []open
	for _, raw := range lines {
		line := strings.TrimRight(raw, " \t\r")
		text := strings.TrimLeft(line, " ")
		if text == "" || strings.HasPrefix(text, "----") || text == "QUERY PLAN" {
			continue
		}
		indent := len(line) - len(text)
		arrow := strings.HasPrefix(text, "->")
		if arrow {
			text = strings.TrimLeft(text[2:], " ")
		}
		m := nodeLineRE.FindStringSubmatch(text)
		if m == nil {
			// A property of the innermost open node.
			if len(stack) == 0 {
				return nil, fmt.Errorf("plan line %q before any node", truncate(text, 60))
			}
			addProperty(stack[len(stack)-1].node, text)
			continue
		}
		n := nodeFromLabel(m[1])
		n.StartupCost, _ = strconv.ParseFloat(m[2], 64)
		n.TotalCost, _ = strconv.ParseFloat(m[3], 64)
		n.PlanRows, _ = strconv.ParseFloat(m[4], 64)
		if root == nil {
			if arrow {
				return nil, errors.New("the plan starts with a child node")
			}
			root = n
			stack = append(stack, open{indent: -1, node: n})
			continue
		}
		if !arrow {
			return nil, fmt.Errorf("plan node %q without ->", truncate(text, 60))
		}
		for len(stack) > 1 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1].node
		parent.Plans = append(parent.Plans, n)
		stack = append(stack, open{indent: indent, node: n})
	}
	if root == nil {
		return nil, errors.New("no plan node")
	}
	return root, nil
}

// nodeFromLabel reads "XN Seq Scan on sales s", "Hash Left Join",
// "XN Hash Join DS_BCAST_INNER", "Index Scan using t_pkey on t".
func nodeFromLabel(label string) *planNode {
	n := &planNode{}
	label = strings.TrimPrefix(label, "XN ")
	words := strings.Fields(label)
	if k := len(words); k > 0 && distRE.MatchString(words[k-1]) {
		n.Dist = words[k-1]
		words = words[:k-1]
	}
	if i := slices.Index(words, "on"); i >= 0 && i+1 < len(words) {
		rel := words[i+1]
		if s, t, ok := strings.Cut(rel, "."); ok {
			n.Schema, n.RelationName = unquote(s), unquote(t)
		} else {
			n.RelationName = unquote(rel)
		}
		if i+2 < len(words) {
			n.Alias = unquote(words[i+2])
		}
		words = words[:i]
	}
	if i := slices.Index(words, "using"); i >= 0 && i+1 < len(words) {
		n.IndexName = unquote(words[i+1])
		words = words[:i]
	}
	kind := strings.Join(words, " ")
	for _, jt := range []string{"Left", "Right", "Full", "Anti", "Semi"} {
		if strings.Contains(kind, " "+jt+" Join") {
			n.JoinType = jt
			kind = strings.Replace(kind, " "+jt+" Join", " Join", 1)
		}
	}
	n.NodeType = kind
	return n
}

// addProperty files a property line under its node.
func addProperty(n *planNode, text string) {
	key, value, ok := strings.Cut(text, ": ")
	if !ok {
		n.notes = append(n.notes, text)
		return
	}
	switch key {
	case "Filter":
		n.Filter = value
	case "Join Filter":
		n.JoinFilter = value
	case "Hash Cond":
		n.HashCond = value
	case "Merge Cond":
		n.MergeCond = value
	case "Index Cond":
		n.IndexCond = value
	case "Recheck Cond":
		n.RecheckCond = value
	case "One-Time Filter":
		n.OneTimeFilter = value
	default:
		n.notes = append(n.notes, text)
	}
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}
