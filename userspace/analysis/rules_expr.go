package analysis

import (
	"math"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// This file answers small questions about expressions of the raw parse
// tree: constants, operator names, patterns, functions wrapped around a
// column. Every answer that is not certain is "no", so that the rules
// built on them stay quiet.

// conjuncts flattens the top-level ANDs of a condition.
func conjuncts(n *pg_query.Node, out []*pg_query.Node) []*pg_query.Node {
	if n == nil || n.Node == nil {
		return out
	}
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		for _, a := range b.Args {
			out = conjuncts(a, out)
		}
		return out
	}
	return append(out, n)
}

// lastName returns the last element of a qualified name (function, operator
// or type name), "" when it is not a string.
func lastName(names []*pg_query.Node) string {
	if len(names) == 0 {
		return ""
	}
	if s := names[len(names)-1].GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// isBuiltinName reports whether a function name is name, unqualified or in
// pg_catalog.
func isBuiltinName(names []*pg_query.Node, name string) bool {
	switch len(names) {
	case 1:
	case 2:
		if s := names[0].GetString_(); s == nil || s.Sval != "pg_catalog" {
			return false
		}
	default:
		return false
	}
	return lastName(names) == name
}

// constString returns the value of a string constant, through casts.
func constString(n *pg_query.Node) (string, bool) {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().Sval, true
	}
	return "", false
}

// constNumber returns the value of a numeric constant, through casts.
func constNumber(n *pg_query.Node) (float64, bool) {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return 0, false
	}
	switch {
	case c.GetIval() != nil:
		return float64(c.GetIval().Ival), true
	case c.GetFval() != nil:
		f, err := strconv.ParseFloat(c.GetFval().Fval, 64)
		return f, err == nil && !math.IsNaN(f)
	}
	return 0, false
}

// alwaysTrue recognises conditions that are certainly true: TRUE, 't',
// and a constant compared equal to the same constant (1 = 1).
func alwaysTrue(n *pg_query.Node) bool {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	if c := n.GetAConst(); c != nil {
		if b := c.GetBoolval(); b != nil {
			return b.Boolval
		}
		if s := c.GetSval(); s != nil {
			return s.Sval == "t" || s.Sval == "true"
		}
		return false
	}
	e := n.GetAExpr()
	if e == nil || e.Kind != pg_query.A_Expr_Kind_AEXPR_OP || lastName(e.Name) != "=" {
		return false
	}
	l, r := e.Lexpr.GetAConst(), e.Rexpr.GetAConst()
	if l == nil || r == nil || l.Isnull || r.Isnull {
		return false
	}
	lv, lok := constNumber(e.Lexpr)
	rv, rok := constNumber(e.Rexpr)
	if lok && rok {
		return lv == rv
	}
	ls, lok := constString(e.Lexpr)
	rs, rok := constString(e.Rexpr)
	return lok && rok && ls == rs
}

// isNullConst reports a NULL constant (LIMIT ALL parses as LIMIT NULL).
func isNullConst(n *pg_query.Node) bool {
	c := n.GetAConst()
	return c != nil && c.Isnull
}

// leadingConstString returns the constant string an expression starts
// with: the constant itself, or the leftmost operand of a || chain or of
// concat(): '%' || $1 starts with "%".
func leadingConstString(n *pg_query.Node) (string, bool) {
	for depth := 0; depth < 64; depth++ {
		if s, ok := constString(n); ok {
			return s, true
		}
		if e := n.GetAExpr(); e != nil && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && lastName(e.Name) == "||" && e.Lexpr != nil {
			n = e.Lexpr
			continue
		}
		if f := n.GetFuncCall(); f != nil && isBuiltinName(f.Funcname, "concat") && len(f.Args) > 0 {
			n = f.Args[0]
			continue
		}
		return "", false
	}
	return "", false
}

// patternKind is the matching operator of a pattern condition.
type patternKind uint8

const (
	notPattern patternKind = iota
	likePattern
	similarPattern
	regexPattern
)

// patternMatch recognises col LIKE/ILIKE/~~/~~*/SIMILAR TO/~/~* pattern
// (positive forms only) and returns the matched expression, the pattern
// expression and the operator as written.
func patternMatch(e *pg_query.A_Expr) (lhs, pattern *pg_query.Node, kind patternKind, op string) {
	if e == nil || e.Lexpr == nil || e.Rexpr == nil {
		return nil, nil, notPattern, ""
	}
	op = lastName(e.Name)
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE:
		if op == "~~" || op == "~~*" {
			return e.Lexpr, e.Rexpr, likePattern, op
		}
	case pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		if op != "~" {
			return nil, nil, notPattern, ""
		}
		// The grammar wraps the pattern: similar_to_escape(pattern [, escape]).
		if f := e.Rexpr.GetFuncCall(); f != nil && isBuiltinName(f.Funcname, "similar_to_escape") && len(f.Args) > 0 {
			return e.Lexpr, f.Args[0], similarPattern, "SIMILAR TO"
		}
	case pg_query.A_Expr_Kind_AEXPR_OP:
		switch op {
		case "~~", "~~*":
			return e.Lexpr, e.Rexpr, likePattern, op
		case "~", "~*":
			return e.Lexpr, e.Rexpr, regexPattern, op
		}
	}
	return nil, nil, notPattern, ""
}

// leadingWildcard reports whether a constant pattern cannot be anchored to
// a prefix: LIKE and SIMILAR TO patterns starting with % or _, regular
// expressions without a leading ^ (or with ^ followed by "."). Embedded
// regex options ("(?i)...") and empty patterns are left alone.
func leadingWildcard(kind patternKind, p string) bool {
	if p == "" {
		return false
	}
	switch kind {
	case likePattern, similarPattern:
		return p[0] == '%' || p[0] == '_'
	case regexPattern:
		if strings.HasPrefix(p, "(?") || strings.HasPrefix(p, "***") {
			return false
		}
		return p[0] != '^' || strings.HasPrefix(p, "^.")
	}
	return false
}

// isArithmetic reports an operator that computes a new value from its
// operands (so an index on an operand cannot serve a condition on it).
func isArithmetic(e *pg_query.A_Expr) bool {
	if e.Kind != pg_query.A_Expr_Kind_AEXPR_OP {
		return false
	}
	switch lastName(e.Name) {
	case "+", "-", "*", "/", "%", "^", "||":
		return true
	}
	return false
}

// comparison returns the two sides of a condition an index could serve
// when one side were a bare column: =, <, <=, >, >=, IN (list), = ANY,
// BETWEEN. For IN and BETWEEN the right side is the list.
func comparison(e *pg_query.A_Expr) (l, r *pg_query.Node, ok bool) {
	if e == nil || e.Lexpr == nil || e.Rexpr == nil {
		return nil, nil, false
	}
	op := lastName(e.Name)
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		switch op {
		case "=", "<", "<=", ">", ">=":
			return e.Lexpr, e.Rexpr, true
		}
	case pg_query.A_Expr_Kind_AEXPR_IN, pg_query.A_Expr_Kind_AEXPR_OP_ANY:
		if op == "=" {
			return e.Lexpr, e.Rexpr, true
		}
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM:
		return e.Lexpr, e.Rexpr, true
	}
	return nil, nil, false
}

// constantish reports an expression without column references or
// subqueries: constants, parameters, and functions of them.
func constantish(n *pg_query.Node) bool {
	if n == nil || n.Node == nil {
		return false
	}
	ok := true
	sqlparse.InspectNode(n, func(x *pg_query.Node) bool {
		switch x.Node.(type) {
		case *pg_query.Node_ColumnRef, *pg_query.Node_SubLink, *pg_query.Node_SelectStmt:
			ok = false
		}
		return ok
	})
	return ok
}

// wrapped is a column inside an expression that computes from it.
type wrapped struct {
	col *pg_query.ColumnRef
	// castTo is set when the expression is just a cast of the column
	// (col::type): whether it hides the column from an index depends on
	// the column's type.
	castTo *pg_query.TypeName
	// text describes the expression without its constants: "lower(email)",
	// "created_at::date", "price * …".
	text string
}

// wrappedColumn recognises a function call, cast, COALESCE, GREATEST/LEAST
// or arithmetic over exactly one column reference and nothing else but
// constants; aggregates, window calls and subqueries are not.
func wrappedColumn(n *pg_query.Node) (wrapped, bool) {
	switch {
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall()
		if f.Over != nil || f.AggStar || f.AggDistinct || f.AggFilter != nil || len(f.AggOrder) > 0 || f.AggWithinGroup {
			return wrapped{}, false
		}
	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		if tc.Arg.GetTypeCast() != nil {
			return wrapped{}, false // a chain of casts: whether it relabels or computes is not worth guessing
		}
		if cr := tc.Arg.GetColumnRef(); cr != nil {
			name := columnName(cr)
			if name == "" || tc.TypeName == nil {
				return wrapped{}, false
			}
			return wrapped{col: cr, castTo: tc.TypeName, text: name + "::" + typeText(tc.TypeName)}, true
		}
	case n.GetCoalesceExpr() != nil, n.GetMinMaxExpr() != nil:
	case n.GetAExpr() != nil && isArithmetic(n.GetAExpr()):
	default:
		return wrapped{}, false
	}
	var col *pg_query.ColumnRef
	count, bad := 0, false
	sqlparse.InspectNode(n, func(x *pg_query.Node) bool {
		switch v := x.Node.(type) {
		case *pg_query.Node_ColumnRef:
			col = v.ColumnRef
			count++
			return false
		case *pg_query.Node_SubLink, *pg_query.Node_SelectStmt:
			bad = true
		case *pg_query.Node_FuncCall:
			if f := v.FuncCall; f.Over != nil || f.AggStar || f.AggFilter != nil {
				bad = true
			}
		}
		return !bad
	})
	if bad || count != 1 || columnName(col) == "" {
		return wrapped{}, false
	}
	return wrapped{col: col, text: wrapperText(n, columnName(col))}, true
}

// wrapperText describes the outermost computation over column.
func wrapperText(n *pg_query.Node, column string) string {
	switch {
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall()
		args := "…, " + column
		switch {
		case len(f.Args) == 1 && f.Args[0].GetColumnRef() != nil:
			args = column
		case len(f.Args) == 1:
			args = "…" + column + "…"
		}
		return lastName(f.Funcname) + "(" + args + ")"
	case n.GetTypeCast() != nil:
		return "(…" + column + "…)::" + typeText(n.GetTypeCast().TypeName)
	case n.GetCoalesceExpr() != nil:
		return "coalesce(" + column + ", …)"
	case n.GetMinMaxExpr() != nil:
		if n.GetMinMaxExpr().Op == pg_query.MinMaxOp_IS_LEAST {
			return "least(" + column + ", …)"
		}
		return "greatest(" + column + ", …)"
	case n.GetAExpr() != nil:
		return column + " " + lastName(n.GetAExpr().Name) + " …"
	}
	return column
}

// typeText is a type name as a person writes it ("date", "int4").
func typeText(t *pg_query.TypeName) string {
	s := lastName(t.GetNames())
	if len(t.GetArrayBounds()) > 0 {
		s += "[]"
	}
	return s
}

// castHidesColumn reports whether casting a column of type colType to t
// computes a new value (an index on the column does not serve it). It is
// "no" when the column's type is not known or the cast only relabels
// (varchar to text, text to varchar, cidr to inet, to the same type).
func castHidesColumn(colType string, t *pg_query.TypeName) bool {
	if colType == "" || t == nil || len(t.ArrayBounds) > 0 {
		return false
	}
	to := lastName(t.Names)
	if to == "" || to == colType {
		return false
	}
	switch colType + ">" + to {
	case "varchar>text", "text>varchar", "cidr>inet", "bpchar>bpchar":
		return false
	}
	return true
}

// columnName returns the column a reference names ("" for t.* and *).
func columnName(cr *pg_query.ColumnRef) string {
	if cr == nil || len(cr.Fields) == 0 {
		return ""
	}
	if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// columnQualifier returns the table name or alias a reference is qualified
// with ("" when unqualified).
func columnQualifier(cr *pg_query.ColumnRef) string {
	if cr == nil || len(cr.Fields) < 2 {
		return ""
	}
	if s := cr.Fields[len(cr.Fields)-2].GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// knownAggregates are the built-in aggregate functions; a call with
// aggregate syntax (count(*), DISTINCT, FILTER, ORDER BY, WITHIN GROUP)
// counts as well.
var knownAggregates = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true,
	"array_agg": true, "string_agg": true, "bool_and": true, "bool_or": true, "every": true,
	"bit_and": true, "bit_or": true, "bit_xor": true, "json_agg": true, "jsonb_agg": true,
	"json_object_agg": true, "jsonb_object_agg": true, "xmlagg": true, "any_value": true,
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true,
	"var_pop": true, "var_samp": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"regr_avgx": true, "regr_avgy": true, "regr_count": true, "regr_intercept": true,
	"regr_r2": true, "regr_slope": true, "regr_sxx": true, "regr_sxy": true, "regr_syy": true,
	"percentile_cont": true, "percentile_disc": true, "mode": true,
	"range_agg": true, "range_intersect_agg": true,
}

// aggregateUse says which aggregates a list of expressions calls, outside
// subqueries and window calls.
type aggregateUse struct {
	any        bool // some aggregate
	minMaxOnly bool // only min() and max()
	count      bool // count()
}

func aggregatesIn(nodes []*pg_query.Node) aggregateUse {
	u := aggregateUse{minMaxOnly: true}
	for _, n := range nodes {
		sqlparse.InspectNode(n, func(m *pg_query.Node) bool {
			switch m.Node.(type) {
			case *pg_query.Node_SubLink, *pg_query.Node_SelectStmt:
				return false
			case *pg_query.Node_FuncCall:
				x := m.GetFuncCall()
				if x.Over != nil {
					return false
				}
				name := lastName(x.Funcname)
				if x.AggStar || x.AggDistinct || x.AggFilter != nil || len(x.AggOrder) > 0 || x.AggWithinGroup ||
					(knownAggregates[name] && len(x.Funcname) <= 2) {
					u.any = true
					if name != "min" && name != "max" {
						u.minMaxOnly = false
					}
					if name == "count" {
						u.count = true
					}
				}
			}
			return true
		})
	}
	u.minMaxOnly = u.any && u.minMaxOnly
	return u
}
