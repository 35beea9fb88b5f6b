// Package routing is the guardrails' statement policy: it asks the analysis
// about every read statement and acts on the verdict as PROXY_MODE says —
// blocking (the statement is refused with 54000), non-blocking (it runs and
// is recorded), shunt (it runs on the shunt node; statements that write or
// open a transaction block are refused there with 25006).
package routing

import (
	"context"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Modes (PROXY_MODE).
const (
	Blocking    = "blocking"
	NonBlocking = "non-blocking"
	Shunt       = "shunt"
)

// Actions recorded in query_issues.
const (
	ActionBlocked = "blocked"
	ActionLogged  = "logged"
	ActionShunted = "shunted"
)

// Issue is one inefficient statement the policy acted on.
type Issue struct {
	At          time.Time
	ConnID      uint64
	Identity    string // token identity ("" in passthrough)
	User        string
	Database    string
	Fingerprint string
	SQL         string // the statement text as the client sent it (callers decide whether to keep it)
	Decision    analysis.Decision
	Action      string
}

// Policy applies the guardrails to statements. The zero value is not
// usable: set Mode, Analyzer and Parser.
type Policy struct {
	Mode     string
	Analyzer *analysis.Analyzer
	// ExemptRoles: statements of sessions holding one of these token roles
	// (or, in passthrough, logged in as one of these users) are not
	// analysed.
	ExemptRoles map[string]bool
	// Issues, when set, receives every inefficient statement acted on. It
	// runs on the session's goroutine and must not block.
	Issues func(Issue)
	// Routed, when set, counts statements run on each node ("fast",
	// "shunt"), at the step that runs them (Query, Bind).
	Routed func(node string)
	// OnReuse, when set, counts a decision of the analysis the session gave
	// again to a Bind of a prepared statement (stmt.Reuser), by verdict and
	// source as reported.
	OnReuse func(verdict, source string)
	// Parser parses the statements of a Query of several (the sessions'
	// shared cache).
	Parser *sqlparse.Parser
}

// Source labels of the policy's own decisions.
const (
	SourceExempt    = "exempt"
	SourceShuntRO   = "shunt-read-only"
	SourceNotJudged = "not-analysed"
)

// Epoch implements stmt.Reuser: the analysis' epoch (overrides, decision
// cache); the mode, exempt roles and session facts do not change.
func (p *Policy) Epoch() uint64 { return p.Analyzer.Epoch() }

// Reusable implements stmt.Reuser: not the decision about an inefficient
// statement (every execution of one is recorded), and for a Query only one
// that holds for every text of its shape (one statement, whose decision
// does not read its constants).
func (p *Policy) Reusable(st *stmt.Statement, d stmt.Decision) bool {
	if d.Verdict == string(analysis.Inefficient) {
		return false
	}
	if st.Protocol == stmt.Bind {
		return true
	}
	if st.SQL == "" {
		return false
	}
	parsed := st.Parsed()
	tree := parsed.ShapeTree()
	return parsed.Err == nil && tree != nil && len(tree.Stmts) == 1 && !p.Analyzer.ConstantSensitive(parsed)
}

// Reused implements stmt.Reuser: the statement runs on the fast node, and a
// decision of the analysis is counted and reported as one from memory (an
// override's stays the override's).
func (p *Policy) Reused(st *stmt.Statement, d stmt.Decision) stmt.Decision {
	p.routed(st, stmt.LegFast)
	switch d.Source {
	case "", SourceExempt, SourceNotJudged:
		return d
	case string(analysis.SourceOverride):
	default:
		d.Source = string(analysis.SourceMemory)
	}
	if p.OnReuse != nil {
		p.OnReuse(d.Verdict, d.Source)
	}
	return d
}

// Decide implements stmt.Policy.
func (p *Policy) Decide(ctx context.Context, st *stmt.Statement) stmt.Decision {
	if st.Protocol == stmt.FunctionCall || st.Facts == nil {
		return stmt.Decision{}
	}
	if p.exempt(st.Facts) {
		p.routed(st, stmt.LegFast)
		return stmt.Decision{Source: SourceExempt}
	}
	if st.SQL == "" { // a Bind of a statement the proxy never saw prepared
		p.routed(st, stmt.LegFast)
		return stmt.Decision{}
	}
	parsed := st.Parsed()
	// What is asked of the tree here (statement kinds, a write or a read)
	// does not depend on constants: the shape's tree serves.
	tree := parsed.ShapeTree()
	if parsed.Err != nil || tree == nil {
		return stmt.Decision{}
	}
	stmts := tree.Stmts
	c := parsed.ShapeMemo(classMemo{}, func() any { return classify(tree) }).(class)
	if p.Mode == Shunt && c.refuse >= 0 {
		return stmt.Decision{Action: stmt.Refuse, Err: shuntRefusal(stmts[c.refuse].Stmt), Source: SourceShuntRO}
	}
	if !c.oneRead {
		if len(stmts) > 1 {
			return p.decideEach(ctx, st, parsed.Statements())
		}
		if inner := p.wrappedRead(stmts[0].Stmt, tree.Version); inner != nil {
			// The issue names the read's fingerprint: the one an override
			// must name to let it through.
			return p.act(st, p.Analyzer.Decide(ctx, analysis.Request{Backend: st.Facts.Backend, Database: st.Facts.Database, Parsed: inner, ParamOIDs: st.ParamOIDs}), inner.Fingerprint())
		}
		p.routed(st, stmt.LegFast)
		return stmt.Decision{Source: SourceNotJudged}
	}
	d := p.Analyzer.Decide(ctx, analysis.Request{Backend: st.Facts.Backend, Database: st.Facts.Database, Parsed: parsed, ParamOIDs: st.ParamOIDs})
	return p.act(st, d, "")
}

// wrappedRead returns, parsed, the read a statement runs inside another
// (DECLARE, PREPARE, CREATE TABLE AS, SELECT INTO, COPY (query) TO,
// EXPLAIN ANALYZE, SELECT ... FOR UPDATE without its locking clause), or nil:
// that read is what costs, and it is judged as if sent alone. Not in shunt
// mode, where the statement could not be split from its read.
func (p *Policy) wrappedRead(n *pg_query.Node, version int32) *sqlparse.Parsed {
	if p.Mode == Shunt || p.Parser == nil {
		return nil
	}
	q := wrapped(n)
	if q == nil {
		return nil
	}
	q = proto.Clone(q).(*pg_query.Node) // the parse tree is shared
	sqlparse.InspectNode(q, func(x *pg_query.Node) bool {
		stripIntoAndLocking(x.GetSelectStmt())
		return true
	})
	if !sqlparse.IsRead(q) {
		return nil // a data-modifying WITH: not judged
	}
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: q}}})
	if err != nil {
		return nil
	}
	parsed := p.Parser.Parse(text)
	if parsed.Err != nil {
		return nil
	}
	return parsed
}

// stripIntoAndLocking removes the INTO and locking clauses of a SELECT and
// of the arms of its set operations (INTO sits on the leftmost one; the
// walk visits arms as part of their SELECT, not as nodes).
func stripIntoAndLocking(s *pg_query.SelectStmt) {
	for ; s != nil; s = s.Rarg {
		s.IntoClause, s.LockingClause = nil, nil
		stripIntoAndLocking(s.Larg)
	}
}

// wrapped is the query a statement runs inside it, or nil.
func wrapped(n *pg_query.Node) *pg_query.Node {
	switch {
	case n.GetDeclareCursorStmt() != nil:
		return n.GetDeclareCursorStmt().Query
	case n.GetPrepareStmt() != nil:
		return n.GetPrepareStmt().Query
	case n.GetCreateTableAsStmt() != nil:
		return n.GetCreateTableAsStmt().Query
	case n.GetCopyStmt() != nil && !n.GetCopyStmt().IsFrom:
		return n.GetCopyStmt().Query
	case n.GetExplainStmt() != nil:
		for _, o := range n.GetExplainStmt().Options {
			if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") && !sqlparse.OptionOff(d.Arg) {
				q := n.GetExplainStmt().Query
				if w := wrapped(q); w != nil {
					return w
				}
				return q
			}
		}
		return nil
	case n.GetSelectStmt() != nil:
		if k := sqlparse.ClassifyRead(n); k == sqlparse.SelectInto || k == sqlparse.LockingRead {
			return n
		}
	}
	return nil
}

type classMemo struct{}

// class is what the policy asks of a text's statements, kept with its shape.
type class struct {
	refuse  int  // the first statement shunt mode refuses (-1: none)
	oneRead bool // one statement, a read
}

func classify(tree *pg_query.ParseResult) class {
	c := class{refuse: -1, oneRead: len(tree.Stmts) == 1 && sqlparse.IsRead(tree.Stmts[0].Stmt)}
	for i, raw := range tree.Stmts {
		if shuntRefusal(raw.Stmt) != nil {
			c.refuse = i
			break
		}
	}
	return c
}

// decideEach judges every read statement of a Query of several (each its
// own text, as PostgreSQL runs it): the first inefficient one decides. In
// shunt mode such a Query is refused unless all of it reads (it cannot be
// split between nodes).
func (p *Policy) decideEach(ctx context.Context, st *stmt.Statement, stmts []sqlparse.Stmt) stmt.Decision {
	allRead := true
	var worst *analysis.Decision
	var worstFP string // the fingerprint an override must name
	for _, one := range stmts {
		if !sqlparse.IsRead(one.Node) {
			allRead = false
			continue
		}
		parsed := p.Parser.Parse(one.Text)
		if parsed.Err != nil {
			continue
		}
		d := p.Analyzer.Decide(ctx, analysis.Request{Backend: st.Facts.Backend, Database: st.Facts.Database, Parsed: parsed})
		if d.Verdict == analysis.Inefficient {
			worst, worstFP = &d, parsed.Fingerprint()
			break
		}
	}
	if worst == nil {
		p.routed(st, stmt.LegFast)
		return stmt.Decision{Source: SourceNotJudged, Verdict: string(analysis.Efficient)}
	}
	if p.Mode == Shunt && !allRead {
		p.issue(st, *worst, ActionBlocked, worstFP)
		return stmt.Decision{Action: stmt.Refuse, Source: string(worst.Source), Verdict: string(worst.Verdict),
			Err: blockedError(*worst).WithHint("send the inefficient statement on its own: it then runs on the shunt node")}
	}
	return p.act(st, *worst, worstFP)
}

// act turns a verdict into what the mode does with it. fp is the fingerprint
// of the read the decision is about, when not the statement's own (the read
// inside a DECLARE, one statement of several): the one an override names.
func (p *Policy) act(st *stmt.Statement, d analysis.Decision, fp string) stmt.Decision {
	out := stmt.Decision{Source: string(d.Source), Verdict: string(d.Verdict), LLM: d.LLM}
	if d.Verdict != analysis.Inefficient {
		p.routed(st, stmt.LegFast)
		return out
	}
	switch p.Mode {
	case NonBlocking:
		if st.Protocol != stmt.Parse {
			p.issue(st, d, ActionLogged, fp)
		}
		p.routed(st, stmt.LegFast)
		return out
	case Shunt:
		if st.Protocol != stmt.Parse {
			p.issue(st, d, ActionShunted, fp)
		}
		p.routed(st, "shunt")
		out.Action, out.Leg = stmt.Route, "shunt"
		return out
	}
	p.issue(st, d, ActionBlocked, fp)
	out.Action, out.Err = stmt.Refuse, blockedError(d)
	return out
}

// blockedError is the ERROR a blocked statement gets: 54000, the reason,
// DETAIL the evidence, HINT the suggestion.
func blockedError(d analysis.Decision) *wire.Error {
	e := wire.Refusal(wire.CodeProgramLimitExceeded, "pgproxy blocked this query: "+d.Reason)
	e.Detail = d.Evidence
	e.Hint = d.Suggestion
	if e.Hint == "" {
		e.Hint = "if this query is expected, an operator can allow its fingerprint in ANALYSIS_OVERRIDES_PATH"
	}
	return e
}

// exempt reports whether the session's statements are not analysed.
func (p *Policy) exempt(f *stmt.Facts) bool {
	if len(p.ExemptRoles) == 0 {
		return false
	}
	for _, r := range f.Roles {
		if p.ExemptRoles[r] {
			return true
		}
	}
	return f.Identity == "" && p.ExemptRoles[f.User]
}

// routed counts a statement run on a node, at the step that runs it.
func (p *Policy) routed(st *stmt.Statement, node string) {
	if p.Routed != nil && st.Protocol != stmt.Parse {
		p.Routed(node)
	}
}

// issue records an issue of the statement, naming the fingerprint fp (the
// statement's own when empty).
func (p *Policy) issue(st *stmt.Statement, d analysis.Decision, action, fp string) {
	if p.Issues == nil {
		return
	}
	if fp == "" {
		fp = st.Fingerprint()
	}
	p.Issues(Issue{At: time.Now(), ConnID: st.Facts.ConnID, Identity: st.Facts.Identity, User: st.Facts.User, Database: st.Facts.Database,
		Fingerprint: fp, SQL: st.ClientSQL, Decision: d, Action: action})
}

// shuntRefusal refuses, in shunt mode, what must not run on the shunt node
// nor leave the fast node's session out of step with it: writes, DDL and
// transaction blocks (the reference behaviour: 25006, as a read-only
// transaction answers a write). Reads, SET/RESET/SHOW, prepared-statement
// and cursor handling, EXPLAIN without ANALYZE of a write, LISTEN and
// NOTIFY go through.
func shuntRefusal(n *pg_query.Node) *wire.Error {
	refuse := func(what string) *wire.Error {
		return wire.Refusal(wire.CodeReadOnlyTransaction, "pgproxy is in shunt mode: "+what+" is not allowed").
			WithHint("shunt mode serves reads only; writes and transaction blocks go to the primary another way")
	}
	switch {
	case n.GetSelectStmt() != nil:
		switch sqlparse.ClassifyRead(n) {
		case sqlparse.PlainRead:
			return nil
		case sqlparse.LockingRead:
			return refuse("SELECT ... FOR UPDATE/SHARE")
		case sqlparse.SelectInto:
			return refuse("SELECT INTO")
		default:
			return refuse("a data-modifying WITH")
		}
	case n.GetTransactionStmt() != nil:
		switch n.GetTransactionStmt().Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
			return refuse("BEGIN")
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE, pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return refuse("a two-phase transaction")
		}
		return nil // COMMIT/ROLLBACK outside a block only warn
	case n.GetVariableSetStmt() != nil, n.GetVariableShowStmt() != nil, n.GetDiscardStmt() != nil,
		n.GetDeallocateStmt() != nil, n.GetListenStmt() != nil, n.GetUnlistenStmt() != nil, n.GetNotifyStmt() != nil,
		n.GetClosePortalStmt() != nil, n.GetFetchStmt() != nil, n.GetExecuteStmt() != nil:
		return nil
	case n.GetPrepareStmt() != nil:
		return shuntRefusal(n.GetPrepareStmt().Query)
	case n.GetDeclareCursorStmt() != nil:
		return shuntRefusal(n.GetDeclareCursorStmt().Query)
	case n.GetExplainStmt() != nil:
		e := n.GetExplainStmt()
		for _, o := range e.Options {
			if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") {
				return shuntRefusal(e.Query)
			}
		}
		return nil
	case n.GetCopyStmt() != nil:
		c := n.GetCopyStmt()
		if !c.IsFrom && c.Query != nil {
			return shuntRefusal(c.Query)
		}
		if !c.IsFrom {
			return nil
		}
		return refuse("COPY FROM")
	case n.GetInsertStmt() != nil:
		return refuse("INSERT")
	case n.GetUpdateStmt() != nil:
		return refuse("UPDATE")
	case n.GetDeleteStmt() != nil:
		return refuse("DELETE")
	case n.GetMergeStmt() != nil:
		return refuse("MERGE")
	}
	return refuse("this statement (DDL or another statement that writes)")
}
