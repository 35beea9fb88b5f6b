package session

import (
	"fmt"
	"time"

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
		if s.skipToSync && typ != 'S' {
			if err := s.cr.Discard(); err != nil {
				return err
			}
			continue
		}
		if s.tr != nil {
			switch typ {
			case 'Q', 'P', 'B', 'E', 'D', 'C':
				if err := s.trackedMessage(typ); err != nil {
					return err
				}
				continue
			}
		}
		var arrived time.Time
		switch typ {
		case 'Q':
			s.pushOp(s.newOp(opQuery, time.Now()))
		case 'S':
			s.skipToSync = false
			s.pushOp(s.newOp(opSync, time.Now()))
		case 'F':
			s.pushOp(s.newOp(opFunc, time.Now()))
		case 'P':
			s.pushOp(s.newOp(opParse, arrived))
		case 'B':
			s.pushOp(s.newOp(opBind, arrived))
		case 'E':
			s.pushOp(s.newOp(opExecute, arrived))
		case 'D':
			s.pushOp(s.newOp(opDescribe, arrived))
		case 'C':
			s.pushOp(s.newOp(opClose, arrived))
		case 'c', 'f':
			// CopyDone / CopyFail: Syncs the client sent during COPY FROM
			// STDIN were ignored by the server.
			if s.copyIn.Load() {
				s.ops.dropSyncsAfterCopy()
			}
		case 'X':
			_, msg, err := s.cr.Next()
			if err != nil {
				return err
			}
			s.bw.Write(msg)
			return nil
		}
		if err := s.cr.Stream(s.bw); err != nil {
			return err
		}
	}
}

// trackedMessage handles a Query, Parse, Bind, Execute, Describe or Close of
// a session with policies: decoded, decided, recorded.
func (s *Session) trackedMessage(typ byte) error {
	_, msg, err := s.cr.Next()
	if err != nil {
		return err
	}
	arrived := time.Now()
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
		var b pgproto3.Bind
		if err := wire.Decode(msg, &b); err != nil {
			return fmt.Errorf("%w: malformed Bind", wire.ErrProtocol)
		}
		return s.clientBind(msg, &b, arrived)
	case 'E':
		var e pgproto3.Execute
		if err := wire.Decode(msg, &e); err != nil {
			return fmt.Errorf("%w: malformed Execute", wire.ErrProtocol)
		}
		return s.clientExecute(msg, e.Portal, arrived)
	case 'D':
		var d pgproto3.Describe
		if err := wire.Decode(msg, &d); err != nil {
			return fmt.Errorf("%w: malformed Describe", wire.ErrProtocol)
		}
		o := s.newOp(opDescribe, arrived)
		o.target, o.name = d.ObjectType, d.Name
		return s.send(o, msg)
	default: // 'C'
		var c pgproto3.Close
		if err := wire.Decode(msg, &c); err != nil {
			return fmt.Errorf("%w: malformed Close", wire.ErrProtocol)
		}
		o := s.newOp(opClose, arrived)
		o.target, o.name = c.ObjectType, c.Name
		return s.send(o, msg)
	}
}

// send queues o and writes msg to the backend.
func (s *Session) send(o *op, msg []byte) error {
	s.pushOp(o)
	_, err := s.bw.Write(msg)
	return err
}

// decide runs the policy chain on one statement.
func (s *Session) decide(proto stmt.Protocol, name, portal, sql string, paramOIDs []uint32) stmt.Outcome {
	if len(s.Policies) == 0 {
		return stmt.Outcome{Action: stmt.Allow, SQL: sql}
	}
	s.facts.TxStatus = s.tr.txStatus()
	s.st.Reset(proto, name, portal, sql, paramOIDs, &s.facts, s.Parser)
	return s.Policies.Decide(s.ctx, &s.st)
}

// fingerprint returns the fingerprint of the client's text when records are
// kept.
func (s *Session) fingerprint(sql string) string {
	if s.Records == nil || s.Parser == nil {
		return ""
	}
	return s.Parser.Parse(sql).Fingerprint()
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
	r.Action, r.Source, r.Verdict, r.Decide = out.Action, out.Source, out.Verdict, out.Elapsed
	if out.Leg != "" {
		r.Leg = out.Leg
	}
}

// clientQuery decides about a simple Query and forwards it (rewritten when a
// policy rewrote it) or its refusal.
func (s *Session) clientQuery(msg []byte, sql string, arrived time.Time) error {
	out := s.decide(stmt.Simple, "", "", sql, nil)
	rec := s.newRecord(stmt.Simple, "", "", out.SQL, s.fingerprint(sql), arrived)
	fillDecision(rec, &out)
	if out.Action != stmt.Refuse {
		if err := s.checkLeg(&out); err != nil {
			out.Action, out.Err = stmt.Refuse, err
		}
	}
	if out.Rewritten && out.Action != stmt.Refuse {
		var err error
		if msg, err = wire.Encode(s.scratch[:0], &pgproto3.Query{String: out.SQL}); err != nil {
			out.Action, out.Err = stmt.Refuse, rewriteFailed(err)
		} else {
			s.scratch = msg
		}
	}
	if out.Action == stmt.Refuse {
		return s.refuseSimple(&out, rec, arrived)
	}
	o := s.newOp(opQuery, arrived)
	o.hooks, o.rec = out.Hooks, rec
	o.stmts = s.parsedStatements(out.SQL)
	return s.send(o, msg)
}

// clientParse decides about a Parse.
func (s *Session) clientParse(msg []byte, p *pgproto3.Parse, arrived time.Time) error {
	out := s.decide(stmt.Parse, p.Name, "", p.Query, p.ParameterOIDs)
	if out.Action != stmt.Refuse {
		if err := s.checkLeg(&out); err != nil {
			out.Action, out.Err = stmt.Refuse, err
		}
	}
	if out.Rewritten && out.Action != stmt.Refuse {
		var err error
		if msg, err = wire.Encode(s.scratch[:0], &pgproto3.Parse{Name: p.Name, Query: out.SQL, ParameterOIDs: p.ParameterOIDs}); err != nil {
			out.Action, out.Err = stmt.Refuse, rewriteFailed(err)
		} else {
			s.scratch = msg
		}
	}
	if out.Action == stmt.Refuse {
		rec := s.newRecord(stmt.Parse, p.Name, "", p.Query, s.fingerprint(p.Query), arrived)
		fillDecision(rec, &out)
		return s.refuseExtended(&out, rec, arrived)
	}
	prep := &prepared{name: p.Name, sql: out.SQL, paramOIDs: p.ParameterOIDs, hooks: out.Hooks,
		action: out.Action, source: out.Source, verdict: out.Verdict, leg: out.Leg, decide: out.Elapsed,
		fingerprint: s.fingerprint(p.Query)}
	if s.Parser != nil {
		prep.parsed = s.Parser.Parse(out.SQL)
	}
	s.tr.sent(prep)
	o := s.newOp(opParse, arrived)
	o.prep, o.name = prep, p.Name
	return s.send(o, msg)
}

// clientBind decides about a Bind (the statement it binds, about to run).
func (s *Session) clientBind(msg []byte, b *pgproto3.Bind, arrived time.Time) error {
	prep := s.tr.lookup(b.PreparedStatement)
	sql := ""
	if prep != nil {
		sql = prep.sql
	}
	out := s.decide(stmt.Bind, b.PreparedStatement, b.DestinationPortal, sql, nil)
	if out.Action != stmt.Refuse {
		if err := s.checkLeg(&out); err != nil {
			out.Action, out.Err = stmt.Refuse, err
		}
	}
	if out.Action == stmt.Refuse {
		fp := ""
		if prep != nil {
			fp = prep.fingerprint
		}
		rec := s.newRecord(stmt.Bind, b.PreparedStatement, b.DestinationPortal, sql, fp, arrived)
		fillDecision(rec, &out)
		return s.refuseExtended(&out, rec, arrived)
	}
	pt := &portal{name: b.DestinationPortal, stmtName: b.PreparedStatement, hooks: out.Hooks,
		action: out.Action, source: out.Source, verdict: out.Verdict, leg: out.Leg, decide: out.Elapsed}
	o := s.newOp(opBind, arrived)
	o.portal, o.name = pt, b.DestinationPortal
	if err := s.send(o, msg); err != nil {
		return err
	}
	if len(out.Hooks) == 0 && (prep == nil || len(prep.hooks) == 0) {
		return nil
	}
	// The portal's rows go through a result hook: the proxy describes the
	// portal right away (the answer stays with the proxy), so the hook
	// knows its columns and formats whether or not the client describes it.
	d := s.newOp(opDescribe, arrived)
	d.injected, d.target, d.name = true, 'P', b.DestinationPortal
	buf, err := wire.Encode(s.scratch[:0], &pgproto3.Describe{ObjectType: 'P', Name: b.DestinationPortal})
	if err != nil {
		return err
	}
	s.scratch = buf
	return s.send(d, buf)
}

// clientExecute forwards an Execute; its record gets the decision of its
// portal when it completes (from the tracker, as the server ran it).
func (s *Session) clientExecute(msg []byte, portalName string, arrived time.Time) error {
	o := s.newOp(opExecute, arrived)
	o.name = portalName
	o.rec = s.newRecord(stmt.Bind, "", portalName, "", "", arrived)
	return s.send(o, msg)
}

// parsedStatements returns the statements of a Query's text for the
// tracker (which follows SET, PREPARE and friends by statement).
func (s *Session) parsedStatements(sql string) []sqlparse.Stmt {
	if s.Parser == nil {
		return nil
	}
	if len(s.Policies) > 0 && s.st.SQL == sql {
		return s.st.Parsed().Statements()
	}
	return s.Parser.Parse(sql).Statements()
}

// checkLeg accepts the backend a decision routes to. This session has one
// backend, the one it logged in to; routing to another comes with the shunt.
func (s *Session) checkLeg(out *stmt.Outcome) *wire.Error {
	if out.Leg == "" || out.Leg == stmt.LegFast {
		return nil
	}
	s.Log.Warn("a policy routed a statement to a backend this session does not have", "leg", out.Leg)
	return wire.Refusal(wire.CodeConnectionFailure, fmt.Sprintf("pgproxy has no backend %q for this statement", out.Leg))
}

func rewriteFailed(err error) *wire.Error {
	return wire.Refusal(wire.CodeInternalError, "pgproxy could not forward the rewritten statement").WithDetail(err.Error())
}
