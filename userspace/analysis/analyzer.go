package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"golang.org/x/sync/singleflight"

	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// DecisionCache stores decisions by database and shape key: in process,
// then shared (package cache; Valkey). It is the analysis's I/O seam.
type DecisionCache interface {
	Get(ctx context.Context, database, key string) (Decision, Source, bool)
	Set(ctx context.Context, database, key string, d Decision)
}

// Backend is what the analysis reads about one database: table facts and
// plans, on connections of the proxy's own.
type Backend struct {
	// Flavor is FlavorPostgres or FlavorRedshift.
	Flavor  string
	Facts   *metadata.Cache
	Planner *Planner
}

// Request is one statement to judge.
type Request struct {
	// Backend is the database server's address (host:port); Database names
	// the database (decisions are per database).
	Backend  string
	Database string
	// Parsed is the statement's parse tree (one read statement).
	Parsed *sqlparse.Parsed
	// ParamOIDs are the statement's parameter types (extended protocol).
	ParamOIDs []uint32
}

// Analyzer decides about read statements: overrides first, then the
// decision cache, then (once per shape, concurrent misses sharing one
// analysis) the rules on the parse tree with table facts, then the planner.
// When the analysis cannot finish within Timeout (the planner timed out,
// EXPLAIN failed, a catalog read failed), the fail-open or fail-closed
// answer is given; it is not cached with the others (a failure should not
// stick), only remembered for FallbackTTL so a statement the planner cannot
// read (a client's temporary table) is not re-planned at every execution.
type Analyzer struct {
	Rules     Rules
	Overrides *Overrides
	Cache     DecisionCache
	// Backends returns the facts and planner of a database of a server
	// (an error when the proxy cannot reach it: then the fallback answers).
	Backends func(ctx context.Context, addr, database string) (*Backend, error)
	// Timeout bounds the analysis of a new shape (ANALYSIS_TIMEOUT).
	Timeout time.Duration
	// FailClosed makes the fallback inefficient (ANALYSIS_FAIL_MODE=closed).
	FailClosed bool
	// FallbackTTL is how long a fallback answer is remembered (default 30s).
	FallbackTTL time.Duration
	// OnDecision, when set, sees every decision and the time it took (for
	// metrics); cached is set when no analysis ran.
	OnDecision func(d Decision, elapsed time.Duration)
	// Model, when set, is the third tier (ModelTier): on a miss it explains
	// or decides what tiers 1–2 found inefficient or borderline.
	Model *ModelTier

	group     singleflight.Group
	fallbacks *lru.Cache[string, fallbackEntry]
}

type fallbackEntry struct {
	d       Decision
	expires time.Time
}

// Init prepares the analyzer's own state; call once before Decide.
func (a *Analyzer) Init() {
	a.fallbacks, _ = lru.New[string, fallbackEntry](4096)
	if a.FallbackTTL <= 0 {
		a.FallbackTTL = 30 * time.Second
	}
	if a.Timeout <= 0 {
		a.Timeout = 500 * time.Millisecond
	}
}

// Epoch changes whenever a decision Decide gives may have changed without
// the statement changing: overrides put in force, a cache entry written or
// removed (with a cache that counts them; see stmt.Reuser).
func (a *Analyzer) Epoch() uint64 {
	e := a.Overrides.Epoch()
	if c, ok := a.Cache.(interface{ Epoch() uint64 }); ok {
		e += c.Epoch()
	}
	return e
}

// Decide judges one read statement.
func (a *Analyzer) Decide(ctx context.Context, req Request) Decision {
	start := time.Now()
	d := a.decide(ctx, req)
	if a.OnDecision != nil {
		a.OnDecision(d, time.Since(start))
	}
	return d
}

func (a *Analyzer) decide(ctx context.Context, req Request) Decision {
	fp := req.Parsed.Fingerprint()
	if d, ok := a.Overrides.Lookup(req.Database, fp); ok {
		d.Decided = time.Now()
		return d
	}
	key := fp + a.shapeSuffix(req.Parsed)
	if a.Cache != nil {
		if d, src, ok := a.Cache.Get(ctx, req.Database, key); ok {
			if d.Origin == "" {
				d.Origin = d.Source
			}
			d.Source = src
			return d
		}
	}
	fkey := req.Database + "\x00" + key
	if e, ok := a.fallbacks.Get(fkey); ok && time.Now().Before(e.expires) {
		return e.d
	}
	v, _, _ := a.group.Do(fkey, func() (any, error) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.Timeout)
		defer cancel()
		d, be, err := a.analyse(actx, req)
		if err != nil {
			fb := a.fallback(err)
			a.fallbacks.Add(fkey, fallbackEntry{d: fb, expires: time.Now().Add(a.FallbackTTL)})
			return fb, nil
		}
		if a.Cache != nil {
			a.Cache.Set(ctx, req.Database, key, d)
		}
		if a.Model == nil {
			return d, nil
		}
		// Tiers 1–2's decision is cached first: an answer that arrives in
		// the background replaces it, never the other way round.
		after := a.Model.consider(ctx, be, req, d, func(after Decision) { a.store(req.Database, key, after) })
		if after.Model != "" {
			a.store(req.Database, key, after)
		}
		return after, nil
	})
	return v.(Decision)
}

// store caches d (without what belongs to one execution) for a model
// answer: with a time limit of its own, as the statement that asked may be
// long gone.
func (a *Analyzer) store(database, key string, d Decision) {
	if a.Cache == nil {
		return
	}
	d.LLM = 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a.Cache.Set(ctx, database, key, d)
}

// analyse runs the tiers: rules with table facts, then the planner. It
// returns the backend it read too (the model tier's tools read it).
func (a *Analyzer) analyse(ctx context.Context, req Request) (Decision, *Backend, error) {
	if a.Backends == nil {
		return Decision{}, nil, errors.New("no backend to analyse on")
	}
	be, err := a.Backends(ctx, req.Backend, req.Database)
	if err != nil {
		return Decision{}, nil, err
	}
	facts := map[sqlparse.TableRef]*metadata.Table{}
	for _, ref := range sqlparse.Tables(req.Parsed.Tree()) {
		if _, done := facts[ref]; done {
			continue
		}
		t, err := be.Facts.Lookup(ctx, ref.Schema, ref.Name)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			facts[ref] = nil // the planner will say what it is (a temporary table, a typo)
		case err != nil:
			facts[ref] = nil // no facts: rules stay quiet, the planner decides
		default:
			facts[ref] = t
		}
	}
	if d, fired := a.Rules.Check(req.Parsed.Tree(), func(schema, name string) *metadata.Table {
		return facts[sqlparse.TableRef{Schema: schema, Name: name}]
	}); fired {
		d.Decided = time.Now()
		return d, be, nil
	}
	d, err := be.Planner.Judge(ctx, req.Parsed.SQL(), req.ParamOIDs)
	if err != nil {
		return Decision{}, nil, err
	}
	d.Decided = time.Now()
	return d, be, nil
}

// fallback is the configured answer when the analysis could not finish.
func (a *Analyzer) fallback(err error) Decision {
	why := errorKind(err)
	d := Decision{Verdict: Efficient, Source: SourceFallback, Origin: SourceFallback, Check: "fallback", Decided: time.Now(),
		Reason: "not judged: " + why + " (ANALYSIS_FAIL_MODE=open lets it run)", Evidence: err.Error()}
	if a.FailClosed {
		d.Verdict = Inefficient
		d.Reason = "not judged: " + why + " (ANALYSIS_FAIL_MODE=closed treats it as inefficient)"
		d.Suggestion = "make sure the proxy's account can plan this statement, or allow its fingerprint in ANALYSIS_OVERRIDES_PATH"
	}
	return d
}

// errorKind says in words why an analysis failed.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "the analysis took longer than ANALYSIS_TIMEOUT"
	case errors.Is(err, ErrRelationMissing):
		return "a relation is not visible to the proxy's connection (a temporary table, or another search_path)"
	case errors.Is(err, ErrPermissionDenied):
		return "the proxy's account may not read a relation of the statement"
	case errors.Is(err, ErrSyntax):
		return "the planner rejected the statement"
	}
	return "the plan could not be read"
}

// ShapeSuffix distinguishes statements with one fingerprint whose verdict
// depends on a constant the fingerprint ignores: an OFFSET at or above the
// threshold ("o"), a LIMIT at or above MaxRows or LIMIT ALL ("l"), a
// pattern that starts with a wildcard or a regular expression not anchored
// at the start ("w"), a condition of WHERE or ON made of constants only that
// is not certainly true ("f": ON false, WHERE 1 = 0). It reads the constants
// as the rules do (through casts, || and concat(), numbers too large for an
// integer), so that two statements the rules judge differently never share
// a cache key. It is appended to the fingerprint in cache keys ("" for most
// statements).
func ShapeSuffix(tree *pg_query.ParseResult, th Thresholds) string {
	var offset, limit, wildcard, notTrue bool
	constantSites(tree, func(kind byte, n *pg_query.Node, op string) bool {
		switch kind {
		case 'o':
			offset = offset || numberAtLeast(n, float64(th.MaxOffset))
		case 'l':
			limit = limit || isNullConst(n) || numberAtLeast(n, th.MaxRows)
		case 'f':
			notTrue = notTrue || !alwaysTrue(n)
		case 'w':
			wildcard = wildcard || unanchoredPattern(op, n)
		}
		return true
	})
	suffix := ""
	if offset {
		suffix += "o"
	}
	if limit {
		suffix += "l"
	}
	if wildcard {
		suffix += "w"
	}
	if notTrue {
		suffix += "f"
	}
	if suffix != "" {
		suffix = ":" + suffix
	}
	return suffix
}

// constantSites calls visit for every place of tree whose constants
// ShapeSuffix reads, with the letter of its check: an OFFSET ('o') or
// LIMIT ('l') expression, a conjunct of a WHERE or join condition made of
// constants alone ('f'), the pattern of a pattern-matching operator ('w',
// with the operator, without its "!"). visit returns false to stop.
func constantSites(tree *pg_query.ParseResult, visit func(kind byte, n *pg_query.Node, op string) bool) {
	if tree == nil {
		return
	}
	more := true
	conditions := func(cond *pg_query.Node) {
		for _, c := range conjuncts(cond, nil) {
			if more && decidedByConstants(c) {
				more = visit('f', c, "")
			}
		}
	}
	for _, raw := range tree.Stmts {
		sqlparse.InspectNode(raw.Stmt, func(n *pg_query.Node) bool {
			if s := n.GetSelectStmt(); s != nil {
				if more && s.LimitOffset != nil {
					more = visit('o', s.LimitOffset, "")
				}
				if more && s.LimitCount != nil {
					more = visit('l', s.LimitCount, "")
				}
				conditions(s.WhereClause)
			}
			if j := n.GetJoinExpr(); j != nil {
				conditions(j.Quals)
			}
			if e := n.GetAExpr(); more && e != nil && e.Rexpr != nil && len(e.Name) > 0 {
				if op := e.Name[len(e.Name)-1].GetString_(); op != nil {
					switch o := strings.TrimPrefix(op.Sval, "!"); o {
					case "~~", "~~*", "~", "~*":
						more = visit('w', e.Rexpr, o)
					}
				}
			}
			return more
		})
		if !more {
			return
		}
	}
}

// suffixMemo keys ShapeSuffix by the rules it was computed with (a
// pointer: an interface holds it without allocating, and the memo keeps
// the rules alive, so the address names them).
type suffixMemo struct{ rules *Rules }

// ConstantSensitive reports whether a decision about the statement may
// depend on its constants (a LIMIT, an OFFSET, a LIKE pattern, ...): then it
// holds for that text only, not for every text of its shape.
func (a *Analyzer) ConstantSensitive(p *sqlparse.Parsed) bool {
	return p.ShapeMemo(sensitiveMemo{}, func() any { return constantSensitive(p.ShapeTree()) }).(bool)
}

type sensitiveMemo struct{}

// shapeSuffix is ShapeSuffix of a statement, computed once per text; for a
// text answered from its shape (sqlparse.Parsed.Shaped) whose shape has no
// constant ShapeSuffix reads, "" without parsing it.
func (a *Analyzer) shapeSuffix(p *sqlparse.Parsed) string {
	th := a.Rules.thresholds()
	if p.Shaped() && !a.ConstantSensitive(p) {
		return ""
	}
	return p.Memo(suffixMemo{&a.Rules}, func() any { return ShapeSuffix(p.Tree(), th) }).(string)
}

// constantSensitive reports whether ShapeSuffix could read the value of a
// constant of tree (it has a constant site). When it cannot, ShapeSuffix is
// "" for every statement of the tree's shape.
func constantSensitive(tree *pg_query.ParseResult) bool {
	if tree == nil {
		return true
	}
	sensitive := false
	constantSites(tree, func(byte, *pg_query.Node, string) bool {
		sensitive = true
		return false
	})
	return sensitive
}

// numberAtLeast reports whether n is a numeric constant (through casts) of
// at least v.
func numberAtLeast(n *pg_query.Node, v float64) bool {
	if n == nil {
		return false
	}
	f, ok := constNumber(n)
	return ok && f >= v
}

func decidedByConstants(n *pg_query.Node) bool {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	if n.GetAConst() != nil {
		return true
	}
	e := n.GetAExpr()
	return e != nil && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && lastName(e.Name) == "=" &&
		e.Lexpr.GetAConst() != nil && e.Rexpr.GetAConst() != nil
}

// unanchoredPattern reports whether a pattern-match operator's pattern
// starts with a constant that starts with a wildcard (LIKE, ILIKE, SIMILAR
// TO) or is not anchored at the start (regular expressions; "^." counts as
// unanchored), read as the rules read it: through casts, || and concat().
func unanchoredPattern(op string, rexpr *pg_query.Node) bool {
	like := op == "~~" || op == "~~*"
	if fc := rexpr.GetFuncCall(); fc != nil && len(fc.Args) > 0 {
		switch {
		case isBuiltinName(fc.Funcname, "similar_to_escape"): // SIMILAR TO pattern [ESCAPE e]
			rexpr, like = fc.Args[0], true
		case like && isBuiltinName(fc.Funcname, "like_escape"): // LIKE pattern ESCAPE e
			rexpr = fc.Args[0]
		}
	}
	v, ok := leadingConstString(rexpr)
	if !ok || v == "" {
		return false
	}
	switch {
	case like:
		return v[0] == '%' || v[0] == '_'
	case op == "~" || op == "~*":
		return v[0] != '^' || strings.HasPrefix(v, "^.")
	}
	return false
}

// Describe returns the decision in words, for logs and pgproxy analyze.
func (d Decision) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s (%s)\nreason: %s\n", d.Verdict, d.Source, d.Reason)
	if d.Suggestion != "" {
		fmt.Fprintf(&b, "suggestion: %s\n", d.Suggestion)
	}
	if d.Evidence != "" {
		fmt.Fprintf(&b, "evidence: %s\n", d.Evidence)
	}
	return b.String()
}
