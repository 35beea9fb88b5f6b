package session

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// relay runs the query loop: client messages to the backend in one goroutine,
// backend messages to the client in this one. Statement boundaries (Query,
// Sync and FunctionCall from the client, ReadyForQuery from the backend) are
// seen here; that is where statement policies plug in. Other frames are
// streamed through without decoding, and output is flushed only when the
// reader would otherwise block, so a burst of messages leaves in one write.
func (s *Session) relay() {
	done := make(chan struct{})
	go s.pumpClient(done)
	s.pumpBackend()
	s.backend.Close()
	s.client.Close()
	s.pending.close() // a client pump waiting for room in a full queue must not wait forever
	<-done
}

// pumpClient relays client messages to the backend until the client leaves or
// sends something the proxy will not forward.
func (s *Session) pumpClient(done chan<- struct{}) {
	defer close(done)
	var counted uint64
	s.cr.BeforeBlock = func() error {
		s.Metrics.BytesToBackend.Add(float64(s.cr.Bytes - counted))
		counted = s.cr.Bytes
		return s.bw.Flush()
	}
	err := s.forwardClient()
	s.Metrics.BytesToBackend.Add(float64(s.cr.Bytes - counted))
	switch {
	case err == nil:
		// Terminate: pass it on and let the backend close.
		s.bw.Flush()
	case errors.Is(err, wire.ErrMessageTooLarge):
		s.lingerOnClose = true
		s.Metrics.Rejected("message_too_large")
		s.fatal.CompareAndSwap(nil, &wire.Error{Severity: "FATAL", Code: "54000",
			Message: "message too large", Detail: err.Error(), Hint: "raise MAX_MESSAGE_SIZE_MB on the proxy if this is legitimate"})
	case errors.Is(err, wire.ErrProtocol):
		s.fatal.CompareAndSwap(nil, &wire.Error{Severity: "FATAL", Code: "08P01", Message: err.Error()})
	default:
		s.Log.Debug("client side ended", "err", err)
	}
	s.clientEnded.Store(true)
	s.pending.close()
	s.backend.Close()
}

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
		switch typ {
		case 'Q', 'P':
			if s.login != nil && s.login.Check != nil {
				if err := s.checkStatement(typ); err != nil {
					return err
				}
				continue
			}
			if typ == 'Q' {
				s.pending.push(pendingSync{sent: time.Now()})
			}
		case 'S':
			s.skipToSync = false
			s.pending.push(pendingSync{sent: time.Now()})
		case 'F':
			s.pending.push(pendingSync{sent: time.Now()})
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

// checkStatement runs the login's statement check on a Query or Parse. A
// refused statement is not forwarded: in its place the backend gets a simple
// Query that raises the refusal, so the server itself reports the error in
// order after everything sent before it, and an open transaction block is
// aborted as with any error. After a refused Parse the client's messages are
// skipped up to its Sync, as the server does after an error.
func (s *Session) checkStatement(typ byte) error {
	_, msg, err := s.cr.Next()
	if err != nil {
		return err
	}
	sql := statementText(typ, msg)
	refusal := s.login.Check(sql)
	if refusal == nil {
		if typ == 'Q' {
			s.pending.push(pendingSync{sent: time.Now()})
		}
		_, err := s.bw.Write(msg)
		return err
	}
	s.Log.Info("statement refused", "sqlstate", refusal.Code, "reason", refusal.Message)
	raise := &pgproto3.Query{String: raiseStatement(refusal)}
	if typ == 'Q' {
		s.pending.push(pendingSync{sent: time.Now()})
		_, err = s.bw.Write(wire.Append(nil, raise))
		return err
	}
	// A Parse inside a pipeline: a Sync first ends any error state of the
	// pipeline, so the raise always runs; both ReadyForQuery are held back,
	// and the raise's error is dropped if the pipeline had already failed
	// (the client then sees only the first error, as from PostgreSQL).
	s.skipToSync = true
	s.pending.push(pendingSync{sent: time.Now(), dropReady: true, beforeRaise: true})
	s.pending.push(pendingSync{sent: time.Now(), dropReady: true, raise: true})
	_, err = s.bw.Write(wire.Append(nil, &pgproto3.Sync{}, raise))
	return err
}

// raiseStatement is a statement that fails with e's SQLSTATE and message.
func raiseStatement(e *wire.Error) string {
	code := e.Code
	if len(code) != 5 || strings.Trim(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		code = "42501"
	}
	sql := "DO $pgproxy$BEGIN RAISE EXCEPTION USING ERRCODE = '" + code + "', MESSAGE = " + quoteLiteral(e.Message)
	if e.Hint != "" {
		sql += ", HINT = " + quoteLiteral(e.Hint)
	}
	return sql + "; END$pgproxy$"
}

// quoteLiteral quotes s as an SQL string literal that cannot end the
// surrounding dollar quote.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "$", "")
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// statementText returns the SQL of a Query or Parse message.
func statementText(typ byte, msg []byte) string {
	if typ == 'P' {
		var p pgproto3.Parse
		if wire.Decode(msg, &p) != nil {
			return ""
		}
		return p.Query
	}
	var q pgproto3.Query
	if wire.Decode(msg, &q) != nil {
		return ""
	}
	return q.String
}

// pumpBackend relays backend messages to the client. When the backend goes
// away it tells the client why, at a message boundary.
func (s *Session) pumpBackend() {
	var counted uint64
	s.br.BeforeBlock = func() error {
		s.Metrics.BytesToClient.Add(float64(s.br.Bytes - counted))
		counted = s.br.Bytes
		return s.cw.Flush()
	}
	err := s.forwardBackend()
	s.Metrics.BytesToClient.Add(float64(s.br.Bytes - counted))
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
		s.writeFinal(&wire.Error{Severity: "FATAL", Code: "08006",
			Message: "the connection to the database server was lost", Detail: errText(err)})
	}
}

// writeFinal sends a last error to the client unless a message was cut
// half-way (then the client can only be disconnected).
func (s *Session) writeFinal(e *wire.Error) {
	if !s.br.Partial {
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

func (s *Session) forwardBackend() error {
	for {
		if err := s.relayBackendMessage(); err != nil {
			return err
		}
	}
}

// relayBackendMessage relays one backend message to the client, timing
// statements at ReadyForQuery and counting ErrorResponses.
func (s *Session) relayBackendMessage() error {
	typ, _, err := s.br.Header()
	if err != nil {
		return err
	}
	switch typ {
	case 'Z':
		p, ok := s.pending.pop()
		errSeen := s.errSinceReady
		s.errSinceReady = false
		if !ok {
			break
		}
		s.Metrics.Statement.Observe(time.Since(p.sent).Seconds())
		if p.beforeRaise {
			s.suppressRaise = errSeen
		}
		if p.raise {
			s.suppressRaise = false
		}
		if p.dropReady {
			return s.br.Discard()
		}
	case 'E':
		_, msg, err := s.br.Next()
		if err != nil {
			return err
		}
		if s.suppressRaise && s.pending.headIsRaise() {
			return nil
		}
		s.errSinceReady = true
		s.Metrics.Error(wire.ErrorCode(msg))
		s.backendFatal = s.backendFatal || wire.IsFatal(msg)
		if _, err := s.cw.Write(msg); err != nil {
			return &wire.WriteError{Err: err}
		}
		return nil
	case 'S':
		if s.login != nil && len(s.login.Locked) > 0 {
			return s.watchParameter()
		}
	}
	return s.br.Stream(s.cw)
}

// errLockedSetting ends a session whose locked setting changed.
var errLockedSetting = errors.New("locked setting changed")

// watchParameter forwards a ParameterStatus unless it shows a locked setting
// with another value: then whatever changed it (a function, a DO block) got
// past the statement check, and the session ends before anything else runs.
func (s *Session) watchParameter() error {
	_, msg, err := s.br.Next()
	if err != nil {
		return err
	}
	var ps pgproto3.ParameterStatus
	if err := wire.Decode(msg, &ps); err != nil {
		return fmt.Errorf("%w: malformed ParameterStatus", wire.ErrProtocol)
	}
	name, value := ps.Name, ps.Value
	if want, locked := s.login.Locked[name]; locked && value != want {
		s.fatal.CompareAndSwap(nil, &wire.Error{Severity: "FATAL", Code: "42501",
			Message: fmt.Sprintf("%s is set by pgproxy for auditing and cannot be changed", name)})
		return errLockedSetting
	}
	if _, err := s.cw.Write(msg); err != nil {
		return &wire.WriteError{Err: err}
	}
	return nil
}
