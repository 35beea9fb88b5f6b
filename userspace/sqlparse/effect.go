package sqlparse

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// EffectKind is what a statement does to session state that a second
// backend connection would need replayed.
type EffectKind uint8

const (
	// NoEffect: nothing to replay.
	NoEffect EffectKind = iota
	// SetSetting: a session-level SET, SET ... TO DEFAULT, RESET, or a
	// top-level SELECT set_config(name, value, false); Key names the setting
	// ("" when the name is not a constant).
	SetSetting
	// ResetSetting: RESET name / SET name TO DEFAULT.
	ResetSetting
	// ResetAll: RESET ALL.
	ResetAll
	// DiscardAll: DISCARD ALL (settings, prepared statements, temp tables ...).
	DiscardAll
	// Prepare: SQL-level PREPARE Key AS Query.
	Prepare
	// Deallocate: DEALLOCATE Key (All for DEALLOCATE ALL).
	Deallocate
	// Savepoint, Release and RollbackTo: savepoint Key.
	Savepoint
	Release
	RollbackTo
	// Declare: DECLARE Key CURSOR (Hold for WITH HOLD).
	Declare
	// ClosePortal: CLOSE Key (All for CLOSE ALL).
	ClosePortal
)

// Effect is a statement's effect on replayable session state.
type Effect struct {
	Kind EffectKind
	// Key is the setting, prepared statement or savepoint name (settings in
	// lower case).
	Key string
	// All is DEALLOCATE ALL or CLOSE ALL.
	All bool
	// Hold is DECLARE ... WITH HOLD: the cursor outlives its transaction.
	Hold bool
	// Query is the text of a PREPAREd statement's body (deparsed).
	Query string
	// Uncertain is set when replaying the statement's text may not
	// reproduce the change (a set_config whose name or value is a
	// parameter or an expression).
	Uncertain bool
}

// Inert reports whether completing st changes nothing the session tracker
// follows: it has no session effect and is not a transaction statement
// (COMMIT and ROLLBACK settle the settings a transaction changed, and only
// they answer with those command tags).
func Inert(st Stmt) bool {
	return st.Node == nil || (st.Node.GetTransactionStmt() == nil && SessionEffect(st).Kind == NoEffect)
}

// SessionEffect reports what one statement does to session state. SET
// LOCAL and set_config(..., true) are transaction-scoped and have no effect
// here.
// The effect is computed once per statement of a cached text (or shape).
func SessionEffect(st Stmt) Effect {
	if st.effect == nil {
		return sessionEffect(st)
	}
	st.effect.once.Do(func() { st.effect.e = sessionEffect(st) })
	return st.effect.e
}

func sessionEffect(st Stmt) Effect {
	n := st.Node
	if n == nil {
		return Effect{}
	}
	switch {
	case n.GetVariableSetStmt() != nil:
		v := n.GetVariableSetStmt()
		if v.IsLocal {
			return Effect{}
		}
		key := strings.ToLower(v.Name)
		switch v.Kind {
		case pg_query.VariableSetKind_VAR_SET_VALUE, pg_query.VariableSetKind_VAR_SET_CURRENT:
			return Effect{Kind: SetSetting, Key: key}
		case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
			return Effect{Kind: ResetSetting, Key: key}
		case pg_query.VariableSetKind_VAR_RESET_ALL:
			return Effect{Kind: ResetAll}
		case pg_query.VariableSetKind_VAR_SET_MULTI:
			if strings.HasPrefix(key, "transaction") { // SET TRANSACTION [SNAPSHOT]: this transaction only
				return Effect{}
			}
			return Effect{Kind: SetSetting, Key: key}
		}
	case n.GetDiscardStmt() != nil:
		if n.GetDiscardStmt().Target == pg_query.DiscardMode_DISCARD_ALL {
			return Effect{Kind: DiscardAll}
		}
	case n.GetPrepareStmt() != nil:
		p := n.GetPrepareStmt()
		body, err := pg_query.Deparse(&pg_query.ParseResult{Version: st.version, Stmts: []*pg_query.RawStmt{{Stmt: p.Query}}})
		if err != nil {
			body = ""
		}
		return Effect{Kind: Prepare, Key: p.Name, Query: body}
	case n.GetDeclareCursorStmt() != nil:
		const cursorOptHold = 0x0020 // CURSOR_OPT_HOLD in PostgreSQL's parsenodes.h
		d := n.GetDeclareCursorStmt()
		return Effect{Kind: Declare, Key: d.Portalname, Hold: d.Options&cursorOptHold != 0}
	case n.GetClosePortalStmt() != nil:
		c := n.GetClosePortalStmt()
		return Effect{Kind: ClosePortal, Key: c.Portalname, All: c.Portalname == ""}
	case n.GetDeallocateStmt() != nil:
		d := n.GetDeallocateStmt()
		return Effect{Kind: Deallocate, Key: d.Name, All: d.Isall || d.Name == ""}
	case n.GetTransactionStmt() != nil:
		t := n.GetTransactionStmt()
		switch t.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
			return Effect{Kind: Savepoint, Key: t.SavepointName}
		case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
			return Effect{Kind: Release, Key: t.SavepointName}
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
			return Effect{Kind: RollbackTo, Key: t.SavepointName}
		}
	}
	return setConfigEffect(n)
}

// setConfigEffect recognises SELECT set_config('name', value, false) in the
// target list of a plain SELECT (no FROM): the common way drivers and ORMs
// change settings through a query. A set_config anywhere else in a
// statement (a subquery, a FROM, a CTE, another statement kind), or with a
// non-constant is_local, is a change the proxy cannot replay exactly:
// Uncertain.
func setConfigEffect(n *pg_query.Node) Effect {
	if sel := n.GetSelectStmt(); sel != nil && len(sel.FromClause) == 0 && sel.Op == pg_query.SetOperation_SETOP_NONE &&
		sel.WithClause == nil && len(sel.TargetList) == 1 {
		if rt := sel.TargetList[0].GetResTarget(); rt != nil && rt.Val != nil {
			if fc := rt.Val.GetFuncCall(); fc != nil && isFunc(fc, "set_config") && len(fc.Args) == 3 && !containsSetConfig(fc.Args) {
				local := constBool(fc.Args[2])
				if local != nil && *local {
					return Effect{} // transaction-scoped
				}
				e := Effect{Kind: SetSetting, Uncertain: local == nil}
				if name, ok := constString(fc.Args[0]); ok {
					e.Key = strings.ToLower(strings.TrimSpace(name))
				} else {
					e.Uncertain = true
				}
				if _, ok := constString(fc.Args[1]); !ok {
					e.Uncertain = true
				}
				return e
			}
		}
	}
	if containsSetConfig([]*pg_query.Node{n}) {
		return Effect{Kind: SetSetting, Uncertain: true}
	}
	return Effect{}
}

// containsSetConfig reports whether a set_config call appears in the nodes.
func containsSetConfig(nodes []*pg_query.Node) bool {
	found := false
	for _, n := range nodes {
		Walk(n, func(m proto.Message) bool {
			if fc, ok := m.(*pg_query.FuncCall); ok && isFunc(fc, "set_config") {
				found = true
			}
			return !found
		})
	}
	return found
}

func isFunc(fc *pg_query.FuncCall, name string) bool {
	if len(fc.Funcname) == 0 {
		return false
	}
	last := fc.Funcname[len(fc.Funcname)-1].GetString_()
	return last != nil && strings.EqualFold(last.Sval, name)
}

func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().Sval, true
	}
	return "", false
}

func constBool(n *pg_query.Node) *bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	if c == nil {
		return nil
	}
	if b := c.GetBoolval(); b != nil {
		v := b.Boolval
		return &v
	}
	if s := c.GetSval(); s != nil {
		switch strings.ToLower(strings.TrimSpace(s.Sval)) {
		case "t", "true", "on", "yes", "1":
			v := true
			return &v
		case "f", "false", "off", "no", "0":
			v := false
			return &v
		}
	}
	return nil
}

// Statements returns the statements of the text, each with the slice of
// the text it spans; computed once per cached text. Treat as read-only.
// A text answered from its shape has the template's statement (its Node,
// with the template's constants, and its effect: see shapeEligible) with
// its own Text.
func (p *Parsed) Statements() []Stmt {
	p.stmtsOnce.Do(func() {
		if p.tpl != nil {
			p.one[0] = p.tpl.Statements()[0]
			p.one[0].Text = p.text
			p.stmts = p.one[:]
			return
		}
		p.stmts = splitStatements(p)
	})
	return p.stmts
}

func splitStatements(p *Parsed) []Stmt {
	if p.Err != nil || p.tree == nil {
		return nil
	}
	out := make([]Stmt, 0, len(p.tree.Stmts))
	for _, raw := range p.tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(p.sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		text := ""
		if start >= 0 && start <= end && end <= len(p.sql) {
			text = strings.TrimSpace(p.sql[start:end])
		}
		out = append(out, Stmt{Node: raw.Stmt, Text: text, Offset: max(start, 0), version: p.tree.Version, effect: &effectMemo{}})
	}
	return out
}

// Stmt is one statement of a query string.
type Stmt struct {
	Node *pg_query.Node
	Text string
	// Offset is where the statement starts in the parsed text (for the
	// statements after the first, just after the previous semicolon).
	Offset  int
	version int32
	effect  *effectMemo // shared by the copies of a cached statement
}

type effectMemo struct {
	once sync.Once
	e    Effect
}
