package session

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// LegShunt is the name policies route inefficient statements with.
const LegShunt = "shunt"

// Routing (client pump side). Every client message goes to one leg:
// Parse, Describe of a statement, Close of a statement, FunctionCall and
// COPY to the fast node (it holds the session's statements and state); a
// Query, or a Bind with the Describe, Execute and Close of its portal, to
// the leg its decision names; Sync and Flush to the leg of the extended
// messages before them. When the next message goes to another leg than the
// extended messages sent since the last Sync, that leg first gets a Sync of
// the proxy's own, whose ReadyForQuery stays with the proxy: each leg's
// implicit transaction ends where the client's statements move away. The
// shunt takes no writes and no transaction blocks (the routing policy
// refuses them), so splitting a pipeline there changes nothing the client
// can see.

// legFor returns the leg a decision routes to, opening the shunt node's
// connection on first use. A leg that cannot be used comes back as a
// refusal for the statement (the session goes on on the fast node).
func (s *Session) legFor(name string) (*leg, *wire.Error) {
	switch name {
	case "", stmt.LegFast:
		return s.fast, nil
	case LegShunt:
	default:
		s.Log.Warn("a policy routed a statement to a backend this session does not have", "leg", name)
		return nil, wire.Refusal(wire.CodeConnectionFailure, fmt.Sprintf("pgproxy has no backend %q for this statement", name))
	}
	if l := s.shunt.Load(); l != nil {
		return l, nil
	}
	if s.ShuntDial == nil {
		return nil, wire.Refusal(wire.CodeConnectionFailure, "pgproxy has no shunt node for this statement")
	}
	if until := s.shuntRetry; time.Now().Before(until) {
		return nil, shuntUnavailable(fmt.Errorf("the last attempt failed %s ago", time.Since(until.Add(-shuntRetryPause)).Round(time.Millisecond)))
	}
	l, err := s.openShunt()
	if err != nil {
		s.shuntRetry = time.Now().Add(shuntRetryPause)
		s.Log.Warn("cannot open the shunt node connection", "err", err)
		return nil, shuntUnavailable(err)
	}
	return l, nil
}

// shuntRetryPause is how long a session waits before it tries again to
// reach a shunt node that failed.
const shuntRetryPause = 5 * time.Second

func shuntUnavailable(err error) *wire.Error {
	return wire.Refusal(wire.CodeConnectionFailure, "the shunt node is not available for this statement").
		WithDetail(err.Error()).WithHint("the statement was judged inefficient and is not run on the primary; retry later")
}

// errUnreplayable refuses shunting when the session's state cannot be
// brought over exactly.
var errUnreplayable = wire.Refusal(wire.CodeFeatureNotSupported,
	"pgproxy cannot run this statement on the shunt node: this session changed a setting in a way that cannot be replayed there").
	WithHint("a set_config() whose name or value is a parameter or an expression; set it with a constant, or run the statement in another session")

// openShunt logs in to the shunt node as the session logged in to the
// fast one (the client's own credentials, or the service account), brings
// the session's settings over, and starts the leg's pump.
func (s *Session) openShunt() (*leg, error) {
	st := s.State()
	if st.Uncertain {
		return nil, errUnreplayable
	}
	req := LoginRequest{Database: s.database(), Replay: st.Settings}
	if s.login != nil {
		req.Credentials = s.login.Credentials
		req.Params = s.backendParams(s.login)
		if s.login.Database != "" {
			req.Database = s.login.Database
		}
	} else {
		req.Params = s.backendParams(&Login{})
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*s.Config.StartupTimeout)
	defer cancel()
	start := time.Now()
	est, err := s.ShuntDial(ctx, req)
	if err != nil {
		return nil, err
	}
	s.Metrics.BackendConnect.Observe(time.Since(start).Seconds())
	l := &leg{name: LegShunt, conn: est.Conn, br: wire.NewReader(est.Conn, bufSize, 1<<30),
		bw: bufio.NewWriterSize(est.Conn, bufSize), prepared: map[string]bool{}, done: make(chan struct{}),
		cancel: CancelTarget{Addr: est.Conn.RemoteAddr().String(), PID: est.PID, Secret: est.Secret}}
	s.shunt.Store(l)
	s.Log.Info("shunt node connection opened", "pid", est.PID, "replayed_settings", len(st.Settings))
	go s.pumpShunt(l)
	return l, nil
}

// switchTo is called before a message is written to leg l: when extended
// messages since the last Sync went to another leg, that leg gets the
// proxy's own Sync first.
func (s *Session) switchTo(l *leg, arrived time.Time) error {
	prev := s.openLeg
	if prev == nil || prev == l {
		return nil
	}
	s.openLeg = nil
	if arrived.IsZero() {
		arrived = time.Now()
	}
	o := s.newOp(opSync, arrived)
	o.leg, o.injected = prev, true
	buf, err := wire.Encode(s.scratch[:0], &pgproto3.Sync{})
	if err != nil {
		return err
	}
	s.scratch = buf
	return s.send(o, buf)
}

// extendedOn notes an extended-protocol message sent to l (a Sync then goes
// there).
func (s *Session) extendedOn(l *leg) { s.openLeg = l }

// syncLeg returns the leg the client's Sync (or Flush) goes to, and forgets
// it (after a Sync no leg has extended messages open).
func (s *Session) syncLeg(forget bool) *leg {
	l := s.openLeg
	if forget {
		s.openLeg = nil
	}
	if l == nil {
		return s.fast
	}
	return l
}

// portalLegOf returns the leg a portal lives on.
func (s *Session) portalLegOf(name string) *leg {
	if len(s.portalLeg) == 0 {
		return s.fast // no portal is on another leg: no lookup
	}
	if l, ok := s.portalLeg[name]; ok && l != nil {
		return l
	}
	return s.fast
}

// bindOn notes the leg a portal is bound on; only portals off the fast leg
// are kept (the others need no entry).
func (s *Session) bindOn(portal string, l *leg) {
	if l == s.fast {
		if len(s.portalLeg) > 0 {
			delete(s.portalLeg, portal)
		}
		return
	}
	if len(s.portalLeg) > 10000 {
		clear(s.portalLeg) // stale names of portals long gone
	}
	s.portalLeg[portal] = l
}

// ensurePrepared makes the statement a Bind on the shunt uses exist there:
// the proxy's own Close and Parse of it (answers kept by the proxy). The
// unnamed statement is prepared again for every Bind; a named one once per
// shunt connection (until the client closes it).
func (s *Session) ensurePrepared(l *leg, p *prepared, arrived time.Time) error {
	if p == nil || (p.name != "" && l.prepared[p.name]) {
		return nil
	}
	buf := s.scratch[:0]
	var err error
	for _, m := range []wire.Encoder{
		&pgproto3.Close{ObjectType: 'S', Name: p.name},
		&pgproto3.Parse{Name: p.name, Query: s.commented(p.sql), ParameterOIDs: p.paramOIDs},
	} {
		if buf, err = wire.Encode(buf, m); err != nil {
			return err
		}
	}
	s.scratch = buf
	for _, k := range []opKind{opClose, opParse} {
		o := s.newOp(k, arrived)
		o.leg, o.injected, o.target, o.name = l, true, 'S', "\x00shunt" // not the tracker's
		if err := s.pushOp(o); err != nil {
			return err
		}
	}
	if _, err := l.bw.Write(buf); err != nil {
		return err
	}
	if p.name != "" {
		l.prepared[p.name] = true
	}
	return nil
}

// pumpShunt runs the shunt leg's pump; when the shunt connection ends, the
// statements still routed there are answered by the proxy (an error, then
// ReadyForQuery for the client's Syncs), and the next statement routed to
// the shunt opens a new connection.
func (s *Session) pumpShunt(l *leg) {
	defer close(l.done)
	defer s.recoverPump("shunt")
	err := s.pumpLeg(l)
	l.conn.Close()
	s.shunt.CompareAndSwap(l, nil)
	if s.clientEnded.Load() || s.fatal.Load() != nil {
		return
	}
	s.Log.Warn("shunt node connection lost", "err", err)
	s.answerLostLeg(l)
}

// errShuntLost is what the client sees for a statement whose shunt
// connection went away.
var errShuntLost = wire.Refusal(wire.CodeConnectionFailure, "the connection to the shunt node was lost").
	WithHint("the session goes on; statements routed to the shunt node again reconnect")

// answerLostLeg answers, in their turn, the ops routed to a leg that is
// gone, as the server would after an error: an ErrorResponse for the first
// message the client sees (for a Query, then ReadyForQuery), the rest of
// that pipeline skipped as after any error, ReadyForQuery for the client's
// Sync (status idle: the shunt runs no transaction blocks).
func (s *Session) answerLostLeg(l *leg) {
	s.pumpMu.Lock()
	defer s.pumpMu.Unlock()
	for {
		h := s.head()
		for h == nil || s.legOf(h) != l {
			if s.ops.isClosed() || !s.ops.pending(l) {
				return
			}
			s.pumpCond.Wait()
			h = s.head()
		}
		visible := !h.injected && !h.discard
		switch h.kind {
		case opQuery:
			if visible {
				s.Metrics.Error([]byte(errShuntLost.Code))
				s.cw.Write(wire.AppendError(nil, errShuntLost))
				s.cw.Write(wire.Append(nil, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
			}
			s.popOp()
		case opSync, opFunc:
			if visible {
				s.cw.Write(wire.Append(nil, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
			}
			s.popOp()
		default:
			s.popOp()
			if visible {
				s.Metrics.Error([]byte(errShuntLost.Code))
				s.cw.Write(wire.AppendError(nil, errShuntLost))
				s.ops.extendedError(l)
				s.settleDropped()
			}
		}
		if s.cw.Flush() != nil {
			return
		}
	}
}
