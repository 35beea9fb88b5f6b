package session

import (
	"bufio"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// forwardClient relays client messages until Terminate or an error. Each
// message the backend will answer is queued as an op before it is written.
// Without policies, messages are streamed through undecoded.
func (s *Session) forwardClient() error {
	for {
		typ, _, err := s.cr.Header()
		if err != nil {
			return err
		}
		if s.skipToSync && typ != 'S' && typ != 'X' {
			if err := s.cr.Discard(); err != nil {
				return err
			}
			continue
		}
		if s.tr != nil {
			switch typ {
			case 'Q', 'P', 'B', 'E', 'D', 'C', 'F':
				if err := s.trackedMessage(typ); err != nil {
					return err
				}
				continue
			}
		}
		var o *op
		w := s.bw
		switch typ {
		case 'Q':
			o = s.newOp(opQuery, s.arrived())
		case 'S':
			s.skipToSync = false
			o = s.newOp(opSync, s.arrived())
			o.leg = s.syncLeg(true)
			w = s.legWriter(o)
		case 'H':
			if l := s.syncLeg(false); l != s.fast {
				w = l.bw
			}
		case 'F':
			o = s.newOp(opFunc, s.arrived())
		case 'P':
			o = s.newOp(opParse, time.Time{})
		case 'B':
			o = s.newOp(opBind, time.Time{})
		case 'E':
			o = s.newOp(opExecute, time.Time{})
		case 'D':
			o = s.newOp(opDescribe, time.Time{})
		case 'C':
			o = s.newOp(opClose, time.Time{})
		case 'c', 'f': // CopyDone, CopyFail
			o = s.newOp(opCopyEnd, time.Time{})
		case 'd':
			s.ops.copyDataSent()
		case 'X':
			_, msg, err := s.cr.Next()
			if err != nil {
				return err
			}
			s.bw.Write(msg)
			return nil
		}
		if o != nil {
			if err := s.pushOp(o); err != nil {
				return err
			}
		}
		if err := s.cr.Stream(w); err != nil {
			return err
		}
	}
}

// trackedMessage handles a Query, Parse, Bind, Execute, Describe, Close or
// FunctionCall of a session with policies: decoded, decided, recorded.
func (s *Session) trackedMessage(typ byte) error {
	_, msg, err := s.cr.Next()
	if err != nil {
		return err
	}
	// The arrival time times a sync point (Query, FunctionCall) and starts
	// a statement's record; without records the extended messages need
	// none (a Sync the proxy adds when a statement changes legs reads the
	// clock itself).
	var arrived time.Time
	if typ == 'Q' || typ == 'F' || s.Records != nil {
		arrived = s.arrived()
	}
	switch typ {
	case 'Q':
		var q pgproto3.Query
		if err := wire.Decode(msg, &q); err != nil {
			return fmt.Errorf("%w: malformed Query", wire.ErrProtocol)
		}
		return s.clientQuery(msg, q.String, arrived)
	case 'P':
		var p pgproto3.Parse
		if err := wire.Decode(msg, &p); err != nil {
			return fmt.Errorf("%w: malformed Parse", wire.ErrProtocol)
		}
		return s.clientParse(msg, &p, arrived)
	case 'B':
		portal, name, err := wire.BindNames(msg)
		if err != nil {
			return fmt.Errorf("%w: malformed Bind", wire.ErrProtocol)
		}
		return s.clientBind(msg, s.intern(portal), s.intern(name), arrived)
	case 'E':
		portal, err := wire.ExecuteName(msg)
		if err != nil {
			return fmt.Errorf("%w: malformed Execute", wire.ErrProtocol)
		}
		return s.clientExecute(msg, s.intern(portal), arrived)
	case 'F':
		var f pgproto3.FunctionCall
		if err := wire.Decode(msg, &f); err != nil {
			return fmt.Errorf("%w: malformed FunctionCall", wire.ErrProtocol)
		}
		return s.clientFunctionCall(msg, f.Function, arrived)
	case 'D':
		kind, b, err := wire.ObjectName(msg)
		if err != nil {
			return fmt.Errorf("%w: malformed Describe", wire.ErrProtocol)
		}
		name := s.intern(b)
		l := s.fast
		if kind == 'P' {
			l = s.portalLegOf(name)
		}
		return s.sendExtended(l, opDescribe, kind, name, msg, arrived)
	default: // 'C'
		kind, b, err := wire.ObjectName(msg)
		if err != nil {
			return fmt.Errorf("%w: malformed Close", wire.ErrProtocol)
		}
		name := s.intern(b)
		l := s.fast
		if kind == 'P' {
			l = s.portalLegOf(name)
			s.bindOn(name, s.fast)
		} else if sh := s.shunt.Load(); sh != nil {
			delete(sh.prepared, name) // prepared again there when needed
		}
		return s.sendExtended(l, opClose, kind, name, msg, arrived)
	}
}

// intern returns b as a string, the same string each time for the names a
// session uses again and again (a Bind of a prepared statement per
// execution allocates nothing).
func (s *Session) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := s.names[string(b)]; ok {
		return v
	}
	if s.names == nil || len(s.names) >= 1024 {
		s.names = make(map[string]string)
	}
	v := string(b)
	s.names[v] = v
	return v
}

// sendExtended sends an extended-protocol message that needs no decision to
// leg l.
func (s *Session) sendExtended(l *leg, k opKind, target byte, name string, msg []byte, arrived time.Time) error {
	if err := s.switchTo(l, arrived); err != nil {
		return err
	}
	o := s.newOp(k, arrived)
	o.leg, o.target, o.name = l, target, name
	s.extendedOn(l)
	return s.send(o, msg)
}

// send queues o and writes msg to the leg it goes to.
func (s *Session) send(o *op, msg []byte) error {
	w := s.legWriter(o) // o may be settled and reused once pushed
	if err := s.pushOp(o); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// legWriter returns the writer of the leg an op goes to.
func (s *Session) legWriter(o *op) *bufio.Writer {
	if o.leg != nil && o.leg != s.fast {
		return o.leg.bw
	}
	return s.bw
}

// decide runs the policy chain on one statement.
func (s *Session) decide(proto stmt.Protocol, name, portal, sql, clientSQL string, paramOIDs []uint32) stmt.Outcome {
	if len(s.Policies) == 0 {
		return stmt.Outcome{Action: stmt.Allow, SQL: sql}
	}
	return s.Policies.Decide(s.ctx, s.statement(proto, name, portal, sql, clientSQL, paramOIDs))
}

// statement fills the session's Statement for the policies.
func (s *Session) statement(proto stmt.Protocol, name, portal, sql, clientSQL string, paramOIDs []uint32) *stmt.Statement {
	s.facts.TxStatus = s.tr.txStatus()
	s.st.Reset(proto, name, portal, sql, paramOIDs, &s.facts, s.Parser)
	s.st.ClientSQL = clientSQL
	s.st.UseParsed(s.lastParsed)
	return &s.st
}

// decideBind decides about a Bind of the one statement it can bind,
// reusing the policies' last decision about that statement when they allow
// it (stmt.Chain.DecideReusing).
func (s *Session) decideBind(name, portal string, prep *prepared) stmt.Outcome {
	if len(s.Policies) == 0 {
		return stmt.Outcome{Action: stmt.Allow, SQL: prep.sql}
	}
	st := s.statement(stmt.Bind, name, portal, prep.sql, prep.client(), nil)
	return s.Policies.DecideReusing(s.ctx, st, &prep.binds, s.arrived())
}

// maxSessionShapes bounds the shapes a session remembers decisions and
// templates of; past it both start afresh.
const maxSessionShapes = 256

// decideQuery decides about the text of a simple Query, reusing the
// policies' last decision about a text of its shape when they allow it
// (stmt.Chain.DecideReusing).
func (s *Session) decideQuery(sql string) stmt.Outcome {
	p := s.parse(sql)
	key := p.Shape()
	m := s.shapes[key]
	if m == nil {
		if s.shapes == nil || len(s.shapes) >= maxSessionShapes {
			s.shapes = make(map[*sqlparse.Parsed]*stmt.Memo)
		}
		m = &stmt.Memo{}
		s.shapes[key] = m
	}
	st := s.statement(stmt.Simple, "", "", sql, sql, nil) // p is s.lastParsed
	now := s.arrived()
	if out, ok := s.Policies.Reuse(st, m, now); ok {
		return out
	}
	// The policies decide: they may keep the parse.
	if own := p.Own(&s.queryParse); own != p {
		s.lastParsed = own
		st.UseParsed(own)
	}
	return s.Policies.DecideMemo(s.ctx, st, m, now)
}

// decideText decides about a statement text (Simple or Parse). Text the
// proxy cannot read exactly as PostgreSQL will is refused before any policy
// sees it; the result hooks of cursors and prepared statements the text
// runs (FETCH, EXECUTE) join the policies' own.
func (s *Session) decideText(proto stmt.Protocol, name, sql string, paramOIDs []uint32) stmt.Outcome {
	if len(s.Policies) == 0 {
		return stmt.Outcome{Action: stmt.Allow, SQL: sql}
	}
	if e := s.unreadable(sql, proto == stmt.Simple); e != nil {
		return stmt.Outcome{Action: stmt.Refuse, Err: e, SQL: sql, Source: "pgproxy"}
	}
	var out stmt.Outcome
	if proto == stmt.Simple {
		out = s.decideQuery(sql)
	} else {
		out = s.decide(proto, name, "", sql, sql, paramOIDs)
	}
	if out.Action == stmt.Refuse {
		return out
	}
	hooks, e := s.runHooks(s.parsedStatements(out.SQL), out.Hooks)
	if e != nil {
		return stmt.Outcome{Action: stmt.Refuse, Err: e, SQL: out.SQL, Source: "pgproxy", Elapsed: out.Elapsed}
	}
	if len(hooks) > 0 {
		out.Hooks = append(out.Hooks, hooks...)
	}
	if len(out.Hooks) > 0 {
		s.tr.markHooked()
	}
	return out
}

// unreadable refuses text the policies cannot be shown faithfully: not
// valid UTF-8, non-ASCII text under a client_encoding other than UTF8 (the
// server would convert it first, the proxy would read other characters), or
// text PostgreSQL's parser rejects (the server rejects it too, with the
// same message).
func (s *Session) unreadable(sql string, simple bool) *wire.Error {
	if !utf8.ValidString(sql) {
		return wire.Refusal("22021", "pgproxy checks statements as UTF-8 text and this one is not valid UTF-8").
			WithHint("use client_encoding UTF8")
	}
	if enc := s.clientEncoding(); enc != "UTF8" && enc != "SQL_ASCII" && !isASCII(sql) {
		return wire.Refusal("22021", fmt.Sprintf("pgproxy can check statements with non-ASCII text only in client_encoding UTF8 (this session uses %s)", enc)).
			WithHint("SET client_encoding = 'UTF8'")
	}
	if other := s.otherEncoding.Load(); other != nil && !isASCII(sql) {
		// RESET or a rolled-back SET can take the session back to that
		// encoding in a pipeline, before the server reports it (BUGS.md 42).
		return wire.Refusal("22021", fmt.Sprintf("pgproxy can check statements with non-ASCII text only in sessions that keep client_encoding UTF8 (this session has used %s)", *other)).
			WithHint("connect with client_encoding UTF8")
	}
	p := s.parse
	if simple {
		p = s.parseQuery
	}
	if p := p(sql); p.Err != nil {
		return wire.Refusal("42601", p.Err.Error())
	}
	return nil
}

// parseQuery parses the text of a simple Query: from the session's own
// index of shapes while the policies' last decision about the shape can be
// given again (no shared cache, no lock), else as parse does.
func (s *Session) parseQuery(sql string) *sqlparse.Parsed {
	if p := s.lastParsed; p != nil && p.SQL() == sql {
		return p
	}
	if s.localShapes == nil || len(s.localShapes) >= maxSessionShapes {
		s.localShapes = make(map[string]*sqlparse.Parsed)
	}
	p := s.Parser.ParseLocal(sql, s.localShapes, &s.shapeKey, func(tpl *sqlparse.Parsed) bool { return s.shapes[tpl].Reusing() }, &s.queryParse)
	s.lastParsed = p
	return p
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// runHooks returns the result hooks of the cursors and prepared statements
// a text runs (FETCH and MOVE of a cursor or portal, EXECUTE of a prepared
// statement). In a session where some statement asked for its results, a
// cursor or statement the proxy does not know is refused: its rows could
// not be checked.
func (s *Session) runHooks(stmts []sqlparse.Stmt, textHooks []stmt.ResultHook) ([]stmt.ResultHook, *wire.Error) {
	var hooks []stmt.ResultHook
	var declaredHere map[string]bool // made by the first DECLARE
	for _, st := range stmts {
		if st.Node == nil {
			continue
		}
		switch {
		case st.Node.GetDeclareCursorStmt() != nil:
			name := st.Node.GetDeclareCursorStmt().Portalname
			if declaredHere == nil {
				declaredHere = map[string]bool{}
			}
			declaredHere[name] = true
			s.tr.declare(name, textHooks)
		case st.Node.GetFetchStmt() != nil:
			name := st.Node.GetFetchStmt().Portalname
			if declaredHere[name] {
				continue // the text's own hooks apply
			}
			h, known := s.tr.cursorHooks(name)
			if !known && s.tr.isHooked() {
				return nil, wire.Refusal(wire.CodeInsufficientPrivilege,
					fmt.Sprintf("pgproxy cannot check the rows of cursor %q: it was not opened through pgproxy", name))
			}
			hooks = append(hooks, h...)
		case st.Node.GetPrepareStmt() != nil:
			if len(textHooks) > 0 {
				s.tr.prepare(st.Node.GetPrepareStmt().Name)
			}
		case st.Node.GetExecuteStmt() != nil:
			name := st.Node.GetExecuteStmt().Name
			cands := s.tr.candidates(nil, name)
			if len(cands) == 0 && s.tr.isHooked() {
				return nil, wire.Refusal(wire.CodeInsufficientPrivilege,
					fmt.Sprintf("pgproxy cannot check the rows of prepared statement %q: it was not prepared through pgproxy", name))
			}
			for _, p := range cands {
				hooks = append(hooks, p.hooks...)
			}
		}
	}
	return hooks, nil
}

// fingerprint returns the fingerprint of the client's text when records are
// kept.
func (s *Session) fingerprint(sql string) string {
	if s.Records == nil || s.Parser == nil {
		return ""
	}
	return s.parse(sql).Fingerprint()
}

// newRecord starts the record of a statement when records are kept.
func (s *Session) newRecord(proto stmt.Protocol, name, portal, sql, fp string, arrived time.Time) *stmt.Record {
	if s.Records == nil {
		return nil
	}
	r := &stmt.Record{ConnID: s.ID, User: s.facts.User, Database: s.facts.Database, Identity: s.facts.Identity,
		Protocol: proto, Name: name, Portal: portal, SQL: sql, Fingerprint: fp, Start: arrived, Leg: stmt.LegFast}
	return r
}

func fillDecision(r *stmt.Record, out *stmt.Outcome) {
	if r == nil {
		return
	}
	r.Action, r.Source, r.Verdict, r.Decide, r.LLM = out.Action, out.Source, out.Verdict, out.Elapsed, out.LLM
	if out.Leg != "" {
		r.Leg = out.Leg
	}
}

// clientQuery decides about a simple Query and forwards it (rewritten when a
// policy rewrote it) or its refusal.
func (s *Session) clientQuery(msg []byte, sql string, arrived time.Time) error {
	err := s.query(msg, sql, arrived)
	if s.lastParsed == &s.queryParse {
		s.lastParsed = nil // valid for this Query only
	}
	return err
}

func (s *Session) query(msg []byte, sql string, arrived time.Time) error {
	out := s.decideText(stmt.Simple, "", sql, nil)
	rec := s.newRecord(stmt.Simple, "", "", sql, s.fingerprint(sql), arrived)
	fillDecision(rec, &out)
	l := s.fast
	if out.Action != stmt.Refuse {
		var e *wire.Error
		if l, e = s.legFor(out.Leg); e != nil {
			out.Action, out.Err = stmt.Refuse, e
		}
	}
	stmts := s.parsedStatements(out.SQL)
	var audit []int32
	if (out.Rewritten || s.comment != "") && out.Action != stmt.Refuse {
		var err error
		var text string
		text, audit = s.audited(out.SQL, stmts)
		if msg, err = wire.Encode(s.scratch[:0], &pgproto3.Query{String: text}); err != nil {
			out.Action, out.Err = stmt.Refuse, rewriteFailed(err)
		} else {
			s.scratch = msg
		}
	}
	if out.Action == stmt.Refuse {
		return s.refuseSimple(sql, &out, rec, arrived)
	}
	if err := s.switchTo(l, arrived); err != nil {
		return err
	}
	o := s.newOp(opQuery, arrived)
	o.leg, o.hooks, o.rec = l, out.Hooks, rec
	o.stmts, o.audit = stmts, audit
	if s.lastParsed == &s.queryParse && len(stmts) == 1 {
		o.one[0] = stmts[0] // the backend pump reads it after this Query
		o.stmts = o.one[:]
	}
	return s.send(o, msg)
}

// refusalPoint finds, in a refused Query of several statements, the first
// statement refused on its own: PostgreSQL runs the statements before it,
// then fails. It returns the text to send before the raise (those
// statements, as the policies let them through) and their result hooks.
// When no statement is refused on its own, the whole text is refused at its
// start.
func (s *Session) refusalPoint(sql string, whole *stmt.Outcome) (before string, hooks []stmt.ResultHook, refusal *stmt.Outcome) {
	stmts := s.parsedStatements(sql)
	if len(stmts) < 2 {
		return "", nil, whole
	}
	texts := make([]string, 0, len(stmts))
	for _, st := range stmts {
		out := s.decideText(stmt.Simple, "", st.Text, nil)
		if out.Action == stmt.Refuse {
			// A statement's text may end in a -- comment: the
			// separator starts a new line.
			return strings.Join(texts, "\n; "), hooks, &out
		}
		if out.Leg != "" && out.Leg != stmt.LegFast {
			return "", nil, whole // routed elsewhere: refuse the whole text
		}
		texts = append(texts, out.SQL)
		hooks = append(hooks, out.Hooks...)
	}
	return "", nil, whole
}

// clientParse decides about a Parse.
func (s *Session) clientParse(msg []byte, p *pgproto3.Parse, arrived time.Time) error {
	out := s.decideText(stmt.Parse, p.Name, p.Query, p.ParameterOIDs)
	if out.Action != stmt.Refuse && p.Name == raiseStatementName {
		out = stmt.Outcome{Action: stmt.Refuse, Source: "pgproxy", Err: reservedName()}
	}
	if (out.Rewritten || s.comment != "") && out.Action != stmt.Refuse {
		var err error
		if msg, err = wire.Encode(s.scratch[:0], &pgproto3.Parse{Name: p.Name, Query: s.commented(out.SQL), ParameterOIDs: p.ParameterOIDs}); err != nil {
			out.Action, out.Err = stmt.Refuse, rewriteFailed(err)
		} else {
			s.scratch = msg
		}
	}
	if out.Action == stmt.Refuse {
		rec := s.newRecord(stmt.Parse, p.Name, "", p.Query, s.fingerprint(p.Query), arrived)
		fillDecision(rec, &out)
		return s.refuseExtended(&out, rec, arrived, p.Name == "")
	}
	prep := &prepared{name: p.Name, sql: out.SQL, clientSQL: p.Query, paramOIDs: p.ParameterOIDs, hooks: out.Hooks,
		action: out.Action, source: out.Source, verdict: out.Verdict, leg: out.Leg, decide: out.Elapsed, llm: out.LLM,
		fingerprint: s.fingerprint(p.Query)}
	if s.Parser != nil {
		prep.parsed = s.parse(out.SQL)
	}
	s.tr.sent(prep)
	// Statements live on the fast node; a Bind routed to the shunt
	// prepares them there on demand.
	if err := s.switchTo(s.fast, arrived); err != nil {
		return err
	}
	o := s.newOp(opParse, arrived)
	o.prep, o.name = prep, p.Name
	s.extendedOn(s.fast)
	return s.send(o, msg)
}

// clientBind decides about a Bind (the statement it binds, about to run).
// When the statement of that name is uncertain (a Parse of the name not yet
// answered, which may fail, and the server's own), the Bind is decided for
// each: refused if either is, with the result hooks of both.
func (s *Session) clientBind(msg []byte, portalName, stmtName string, arrived time.Time) error {
	// pt is dropped (left to the collector) when the Bind is refused.
	candidates, pt, preparing := s.tr.bindCandidates(s.candidates[:0], stmtName)
	var out stmt.Outcome
	if stmtName == raiseStatementName {
		out = stmt.Outcome{Action: stmt.Refuse, Source: "pgproxy", Err: reservedName()}
	} else if len(candidates) == 0 {
		out = s.decide(stmt.Bind, stmtName, portalName, "", "", nil)
	} else if len(candidates) == 1 {
		out = s.decideBind(stmtName, portalName, candidates[0])
	} else {
		for i, prep := range candidates {
			o := s.decide(stmt.Bind, stmtName, portalName, prep.sql, prep.client(), nil)
			if i == 0 || o.Action == stmt.Refuse {
				hooks := out.Hooks
				out = o
				out.Hooks = append(hooks, o.Hooks...)
			} else {
				out.Hooks = append(out.Hooks, o.Hooks...)
			}
			if out.Action == stmt.Refuse {
				break
			}
		}
	}
	legName := out.Leg
	if legName == "" && len(candidates) > 0 {
		legName = candidates[0].leg
	}
	l := s.fast
	if out.Action != stmt.Refuse {
		var e *wire.Error
		if l, e = s.legFor(legName); e != nil {
			out.Action, out.Err = stmt.Refuse, e
		}
	}
	if out.Action == stmt.Refuse {
		sql, fp := "", ""
		if len(candidates) > 0 {
			sql, fp = candidates[0].client(), candidates[0].fingerprint
		}
		rec := s.newRecord(stmt.Bind, stmtName, portalName, sql, fp, arrived)
		fillDecision(rec, &out)
		return s.refuseExtended(&out, rec, arrived, false)
	}
	if len(out.Hooks) > 0 {
		s.tr.markHooked()
	}
	*pt = portal{name: portalName, stmtName: stmtName, hooks: out.Hooks,
		action: out.Action, source: out.Source, verdict: out.Verdict, leg: legName, decide: out.Elapsed, llm: out.LLM}
	if err := s.switchTo(l, arrived); err != nil {
		return err
	}
	if l != s.fast && len(candidates) > 0 {
		if err := s.ensurePrepared(l, candidates[0], arrived); err != nil {
			return err
		}
	}
	s.bindOn(portalName, l)
	o := s.newOp(opBind, arrived)
	o.leg, o.portal, o.name = l, pt, portalName
	s.extendedOn(l)
	if err := s.send(o, msg); err != nil {
		return err
	}
	hooked := len(out.Hooks) > 0 || preparing
	for _, p := range candidates {
		hooked = hooked || len(p.hooks) > 0
	}
	if !hooked {
		return nil
	}
	// The portal's rows go through a result hook: the proxy describes the
	// portal right away (the answer stays with the proxy), so the hook
	// knows its columns and formats whether or not the client describes it.
	return s.injectDescribe(l, portalName, arrived)
}

// injectDescribe sends the proxy's own Describe of a portal to its leg.
func (s *Session) injectDescribe(l *leg, portalName string, arrived time.Time) error {
	d := s.newOp(opDescribe, arrived)
	d.leg, d.injected, d.target, d.name = l, true, 'P', portalName
	buf, err := wire.Encode(s.scratch[:0], &pgproto3.Describe{ObjectType: 'P', Name: portalName})
	if err != nil {
		return err
	}
	s.scratch = buf
	return s.send(d, buf)
}

// clientExecute forwards an Execute; its record gets the decision of its
// portal when it completes (from the tracker, as the server ran it). A
// cursor the server holds with hooks but no known columns (declared in
// SQL) is described first.
func (s *Session) clientExecute(msg []byte, portalName string, arrived time.Time) error {
	l := s.portalLegOf(portalName)
	if err := s.switchTo(l, arrived); err != nil {
		return err
	}
	s.extendedOn(l)
	if s.tr.needsDescribe(portalName) {
		if err := s.injectDescribe(l, portalName, arrived); err != nil {
			return err
		}
	}
	o := s.newOp(opExecute, arrived)
	o.leg, o.name = l, portalName
	o.rec = s.newRecord(stmt.Bind, "", portalName, "", "", arrived)
	return s.send(o, msg)
}

// clientFunctionCall decides about a fast-path function call (no SQL text:
// the policies see the function's OID).
func (s *Session) clientFunctionCall(msg []byte, function uint32, arrived time.Time) error {
	out := stmt.Outcome{Action: stmt.Allow}
	if len(s.Policies) > 0 {
		st := s.statement(stmt.FunctionCall, "", "", "", "", nil)
		st.Function = function
		out = s.Policies.Decide(s.ctx, st)
	}
	if out.Action != stmt.Refuse && s.tr.isHooked() {
		// A function's result (query_to_xml and the like run any SQL) is
		// not a row a hook can see: where results are checked, refuse it.
		out = stmt.Outcome{Action: stmt.Refuse, Source: "pgproxy", Err: wire.Refusal(wire.CodeInsufficientPrivilege,
			"pgproxy cannot check the result of a fast-path function call in a session whose results are checked")}
	}
	rec := s.newRecord(stmt.FunctionCall, "", "", "", "", arrived)
	fillDecision(rec, &out)
	if out.Action == stmt.Refuse {
		return s.refuseSimple("", &out, rec, arrived)
	}
	if err := s.switchTo(s.fast, arrived); err != nil {
		return err
	}
	o := s.newOp(opFunc, arrived)
	o.rec = rec
	return s.send(o, msg)
}

// parsedStatements returns the statements of a text for the tracker (which
// follows SET, PREPARE, DECLARE and friends by statement).
func (s *Session) parsedStatements(sql string) []sqlparse.Stmt {
	if s.Parser == nil {
		return nil
	}
	return s.parse(sql).Statements()
}

// parse parses a text through the shared cache, remembering the last one
// (client goroutine only).
func (s *Session) parse(sql string) *sqlparse.Parsed {
	if p := s.lastParsed; p != nil && p.SQL() == sql {
		return p
	}
	p := s.Parser.Parse(sql)
	s.lastParsed = p
	return p
}

func rewriteFailed(err error) *wire.Error {
	return wire.Refusal(wire.CodeInternalError, "pgproxy could not forward the rewritten statement").WithDetail(err.Error())
}

func reservedName() *wire.Error {
	return wire.Refusal(wire.CodeInsufficientPrivilege, "the prepared statement name "+raiseStatementName+" is reserved by pgproxy")
}
