package analysis

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// analyzeFilter reads the "Filter" text of a scan node of the relation
// aliased alias. It returns the filter as shown to people — qualifiers of the
// scanned relation dropped, constants replaced by $n (a decision is shared
// by every statement of the same shape, and constants may be personal data)
// — and the columns an index could serve: columns compared for equality
// (=, = ANY, IN) first, in order, then the first column compared by range
// (<, <=, >, >=, BETWEEN), each against an expression that does not read the
// relation. A filter pg_query cannot parse gives "" and no columns.
func analyzeFilter(filter, alias string) (display string, indexCols []string) {
	const prefix = "SELECT WHERE "
	var subplans []string
	text := prefix + subplanRef.ReplaceAllStringFunc(filter, func(m string) string {
		subplans = append(subplans, m)
		return subplanIdent + strconv.Itoa(len(subplans)-1)
	})
	norm, err := pg_query.Normalize(text)
	if err != nil || !strings.HasPrefix(norm, prefix) {
		return "", nil
	}
	display = stripQualifier(strings.TrimPrefix(norm, prefix), alias)
	display = subplanIdentRef.ReplaceAllStringFunc(display, func(m string) string {
		if i, err := strconv.Atoi(strings.TrimPrefix(m, subplanIdent)); err == nil && i < len(subplans) {
			return subplans[i]
		}
		return m
	})
	display = likeOperators.Replace(display)
	if tree, err := pg_query.Parse(text); err == nil && len(tree.Stmts) == 1 {
		if sel := tree.Stmts[0].GetStmt().GetSelectStmt(); sel != nil && sel.WhereClause != nil {
			indexCols = indexColumns(sel.WhereClause, alias)
		}
	}
	return display, indexCols
}

// EXPLAIN names subplans in expressions ("(hashed SubPlan 1)",
// "(alternatives: SubPlan 1 or hashed SubPlan 2)"), which is not SQL; they
// stand in as an identifier while the text is parsed.
var (
	subplanRef      = regexp.MustCompile(`\(alternatives: (?:hashed )?SubPlan \d+ or (?:hashed )?SubPlan \d+\)|(?:hashed )?SubPlan \d+`)
	subplanIdentRef = regexp.MustCompile(subplanIdent + `\d+`)
	likeOperators   = strings.NewReplacer(" !~~* ", " NOT ILIKE ", " ~~* ", " ILIKE ", " !~~ ", " NOT LIKE ", " ~~ ", " LIKE ")
)

const subplanIdent = "pgproxy_subplan_"

// stripQualifier removes "alias." (or its quoted form) before column names
// in deparsed SQL text without literals.
func stripQualifier(s, alias string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && (s[j] != '"' || j+1 < len(s) && s[j+1] == '"') {
				if s[j] == '"' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			name := strings.ReplaceAll(s[i+1:max(j-1, i+1)], `""`, `"`)
			if name == alias && j < len(s) && s[j] == '.' {
				i = j + 1
				continue
			}
			b.WriteString(s[i:j])
			i = j
		case isIdentStart(c) && (i == 0 || !isIdentChar(s[i-1]) && s[i-1] != '.' && s[i-1] != '$'):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			if s[i:j] == alias && j < len(s) && s[j] == '.' {
				i = j + 1
				continue
			}
			b.WriteString(s[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// indexColumns finds the columns of the relation aliased alias that the
// conjuncts of where compare with something not of that relation.
func indexColumns(where *pg_query.Node, alias string) []string {
	conjuncts := []*pg_query.Node{where}
	if b := where.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		conjuncts = b.Args
	}
	var eq, rng []string
	for _, c := range conjuncts {
		e := c.GetAExpr()
		if e == nil || len(e.Name) == 0 {
			continue
		}
		op := fieldName(e.Name[len(e.Name)-1])
		col := columnOf(e.Lexpr, alias)
		if col != "" && readsRelation(e.Rexpr, alias) {
			col = ""
		}
		if col == "" && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP { // 'x' = t.col
			if col = columnOf(e.Rexpr, alias); col != "" && readsRelation(e.Lexpr, alias) {
				col = ""
			}
			op = mirror(op)
		}
		if col == "" {
			continue
		}
		switch {
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && op == "=",
			e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY && op == "=",
			e.Kind == pg_query.A_Expr_Kind_AEXPR_IN:
			eq = appendNew(eq, col)
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && (op == "<" || op == "<=" || op == ">" || op == ">="),
			e.Kind == pg_query.A_Expr_Kind_AEXPR_BETWEEN:
			rng = appendNew(rng, col)
		}
	}
	cols := eq
	for _, r := range rng {
		if !contains(cols, r) {
			cols = append(cols, r)
			break
		}
	}
	if len(cols) > 4 {
		cols = cols[:4]
	}
	return cols
}

// columnOf returns the column name when n is a column of the relation
// aliased alias (unqualified or qualified by alias, possibly cast).
func columnOf(n *pg_query.Node, alias string) string {
	for n != nil && n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	cr := n.GetColumnRef()
	if cr == nil {
		return ""
	}
	switch {
	case len(cr.Fields) == 1:
		return fieldName(cr.Fields[0])
	case len(cr.Fields) == 2 && fieldName(cr.Fields[0]) == alias:
		return fieldName(cr.Fields[1])
	}
	return ""
}

// readsRelation reports whether n refers to a column of the relation
// aliased alias (or to an unqualified column, which is one of it).
func readsRelation(n *pg_query.Node, alias string) bool {
	found := false
	sqlparse.Walk(n, func(m proto.Message) bool {
		if cr, ok := m.(*pg_query.ColumnRef); ok {
			found = len(cr.Fields) == 1 || fieldName(cr.Fields[0]) == alias
		}
		return !found
	})
	return found
}

func fieldName(n *pg_query.Node) string {
	if s := n.GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// mirror is the operator with its operands swapped (a < b is b > a).
func mirror(op string) string {
	switch op {
	case "<":
		return ">"
	case ">":
		return "<"
	case "<=":
		return ">="
	case ">=":
		return "<="
	}
	return op
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteIdent quotes an identifier for SQL, always.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteIdentIfNeeded leaves a plain lower-case identifier bare (for text
// shown to people) and quotes anything else.
func quoteIdentIfNeeded(s string) string {
	if s == "" {
		return s
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			return quoteIdent(s)
		}
	}
	return s
}

// about formats an estimate for people: two significant digits from 100
// up, thousands separated by commas ("about 2,000,000").
func about(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "∞"
	}
	x = math.Round(x)
	if x >= 100 {
		p := math.Pow(10, math.Floor(math.Log10(x))-1)
		x = math.Round(x/p) * p
	}
	if x >= 1e18 {
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
	digits := strconv.FormatInt(int64(x), 10)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// rowsWord is "1 row" or "N rows", N formatted by about.
func rowsWord(x float64) string {
	s := about(x)
	if s == "1" {
		return "1 row"
	}
	return s + " rows"
}

// joinIdents lists identifiers for people: "note, grp".
func joinIdents(names []string) string {
	shown := make([]string, len(names))
	for i, n := range names {
		shown[i] = quoteIdentIfNeeded(n)
	}
	return strings.Join(shown, ", ")
}
