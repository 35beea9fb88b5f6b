package session

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// relay runs the query loop: client messages to the backend in one goroutine,
// backend messages to the client in this one. Every client message the
// backend answers is queued as an op (ops.go), so each answer is matched to
// the message it answers: that is where statement policies, result hooks
// and per-statement records plug in. Frames that need no inspection are
// streamed through without decoding, and output is flushed only when the
// reader would otherwise block, so a burst of messages leaves in one write.
func (s *Session) relay() {
	s.fast = &leg{name: stmt.LegFast, conn: s.backend, br: s.br, bw: s.bw, prepared: map[string]bool{}, done: make(chan struct{})}
	s.pumpCond = sync.NewCond(&s.pumpMu)
	s.nullw = bufio.NewWriterSize(io.Discard, 512)
	s.portalLeg = map[string]*leg{}
	done := make(chan struct{})
	go s.pumpClient(done)
	s.pumpBackend()
	s.backend.Close()
	if s.lingerOnClose.Load() {
		// The client pump stopped mid-message (it set the flag): read what the
		// client is still sending, or the close resets the connection and the
		// final error written above is lost.
		<-done
		lingerClose(s.client)
	}
	s.client.Close()
	s.ops.close() // a client pump waiting for room in a full queue must not wait forever
	s.wakeAll()
	<-done
	if l := s.shunt.Load(); l != nil {
		l.conn.Close()
		<-l.done
	}
}

// wakeAll wakes every pump waiting for its turn (the session ends).
func (s *Session) wakeAll() {
	s.pumpMu.Lock()
	s.pumpCond.Broadcast()
	s.pumpMu.Unlock()
}

// startSeam prepares the statement seam once the session is ready: the
// facts policies see, and the tracker when policies or records need it.
func (s *Session) startSeam() {
	if len(s.Policies) == 0 && s.Records == nil {
		return
	}
	s.tr = newTracker()
	s.published.Store(s.tr)
	s.facts = stmt.Facts{ConnID: s.ID, User: s.user(), Database: s.database(), Backend: s.BackendAddr}
	if s.login != nil {
		s.facts.Identity, s.facts.Roles, s.facts.Locked = s.login.Identity, s.login.Roles, s.login.Locked
		s.facts.User = s.login.User
		if s.login.Database != "" {
			s.facts.Database = s.login.Database
		}
		if s.QueryComment && s.login.Identity != "" {
			s.comment = auditComment(s.login.Locked["application_name"])
		}
	}
}

// pumpClient relays client messages to the backend until the client leaves or
// sends something the proxy will not forward.
func (s *Session) pumpClient(done chan<- struct{}) {
	defer close(done)
	defer s.recoverPump("client")
	var counted uint64
	s.cr.BeforeBlock = func() error {
		s.Metrics.BytesToBackend.Add(float64(s.cr.Bytes - counted))
		counted = s.cr.Bytes
		return s.flushLegs()
	}
	err := s.forwardClient()
	var we *wire.WriteError
	backendSide := errors.As(err, &we)
	s.Metrics.BytesToBackend.Add(float64(s.cr.Bytes - counted))
	switch {
	case err == nil:
		// Terminate: pass it on and let the backend close. Mark the end
		// first: the backend's EOF that follows is not a lost connection.
		s.clientEnded.Store(true)
		s.bw.Flush()
	case errors.Is(err, wire.ErrMessageTooLarge):
		s.lingerOnClose.Store(true)
		s.Metrics.Rejected("message_too_large")
		s.fatal.CompareAndSwap(nil, clientError(err))
	case errors.Is(err, wire.ErrProtocol), errors.Is(err, errQueueStalled):
		s.fatal.CompareAndSwap(nil, clientError(err))
	case backendSide:
		// Writing to the backend failed: the backend pump reports it.
		s.Log.Debug("backend write failed", "err", err)
	default:
		var pe *wire.Error
		if errors.As(err, &pe) {
			s.fatal.CompareAndSwap(nil, pe)
			break
		}
		s.Log.Debug("client side ended", "err", err)
	}
	if !backendSide {
		s.clientEnded.Store(true)
	}
	s.ops.close()
	s.backend.Close()
}

// recoverPump ends only this session when one of its pumps panics (a bug
// in a policy, a hook or the proxy): the client gets XX000, the process and
// its other sessions go on.
func (s *Session) recoverPump(which string) {
	r := recover()
	if r == nil {
		return
	}
	s.Log.Error("session ended by an internal error", "pump", which, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	s.fatal.CompareAndSwap(nil, wire.Fatal(wire.CodeInternalError, "pgproxy internal error; the session was closed"))
	s.ops.close()
	s.backend.Close()
	if which == "backend" {
		s.client.Close()
	}
}

// pumpBackend relays backend messages to the client. When the backend goes
// away it tells the client why, at a message boundary.
func (s *Session) pumpBackend() {
	defer s.recoverPump("backend")
	var counted uint64
	s.br.BeforeBlock = func() error {
		s.Metrics.BytesToClient.Add(float64(s.br.Bytes - counted))
		counted = s.br.Bytes
		return nil
	}
	err := s.pumpLeg(s.fast)
	s.Metrics.BytesToClient.Add(float64(s.br.Bytes - counted))
	s.pumpMu.Lock()
	defer s.pumpMu.Unlock()
	var we *wire.WriteError
	switch {
	case errors.As(err, &we):
		return // the client is gone
	case s.fatal.Load() != nil:
		fe := s.fatal.Load()
		s.writeFinal(fe)
		s.Log.Info("session closed by proxy", "sqlstate", fe.Code, "reason", fe.Message)
	case s.backendFatal || s.clientEnded.Load():
		s.cw.Flush()
	default:
		s.Log.Warn("backend connection lost", "err", err)
		s.writeFinal(clientError(errBackendLost{err: err}))
	}
}

// writeFinal sends a last error to the client unless a message was cut
// half-way (then the client can only be disconnected).
func (s *Session) writeFinal(e *wire.Error) {
	if !s.br.Partial && (s.in == nil || !s.in.Partial) {
		s.Metrics.Error([]byte(e.Code))
		s.cw.Write(wire.AppendError(nil, e))
	}
	s.cw.Flush()
}

func errText(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "the server closed the connection"
	}
	return err.Error()
}

// newOp returns a cleared op of kind k that arrived now.
func (s *Session) newOp(k opKind, arrived time.Time) *op {
	o := s.ops.get()
	o.kind, o.arrived, o.leg = k, arrived, s.fast
	return o
}

// arrived returns when the client message being handled arrived: the time
// of the read that brought its last bytes (client goroutine only).
func (s *Session) arrived() time.Time {
	if b := s.cr.Bytes; b != s.arrivalBytes || s.arrival.IsZero() {
		s.arrival, s.arrivalBytes = time.Now(), b
	}
	return s.arrival
}

// pushOp queues o just before its message is written to the backend.
func (s *Session) pushOp(o *op) error {
	if o.rec != nil { // the record's time on the backend starts here
		o.sent = time.Now()
	}
	return s.ops.push(o, s.flushBeforeWait)
}

// flushBeforeWait runs when the op queue is full, before the client pump
// waits for room: what it buffered goes to the backends, and the arrival
// clock is read again afterwards (the wait may be long: a decision reused
// for a second must not be timed from before it).
func (s *Session) flushBeforeWait() error {
	s.arrival = time.Time{}
	return s.flushLegs()
}

// flushLegs sends what the client pump buffered for the backends.
func (s *Session) flushLegs() error {
	if err := s.bw.Flush(); err != nil {
		return &wire.WriteError{Err: err} // the backend side failed
	}
	if l := s.shunt.Load(); l != nil {
		if err := l.bw.Flush(); err != nil {
			s.shuntWriteFailed(err)
		}
	}
	return nil
}
