package session

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Errors inside the session are Go errors; clientError is the one place
// that turns them into the ErrorResponse a client sees (SQLSTATE, severity,
// message). Errors already in PostgreSQL's terms are *wire.Error values,
// built with the constructors and SQLSTATE names of package wire.

// errBackendUnavailable: the backend could not be reached (dial, TLS).
type errBackendUnavailable struct{ err error }

func (e errBackendUnavailable) Error() string { return "backend unavailable: " + e.err.Error() }
func (e errBackendUnavailable) Unwrap() error { return e.err }

// errBackendLost: the backend connection ended without a FATAL of its own,
// during authentication (auth true) or later.
type errBackendLost struct {
	err  error
	auth bool
}

func (e errBackendLost) Error() string { return "backend connection lost: " + errText(e.err) }
func (e errBackendLost) Unwrap() error { return e.err }

// errLoginFailed: the proxy's own login to the backend (token sessions) failed.
type errLoginFailed struct{ err error }

func (e errLoginFailed) Error() string { return "backend login failed: " + e.err.Error() }
func (e errLoginFailed) Unwrap() error { return e.err }

// errSilentClose ends a connection without an ErrorResponse.
var errSilentClose = errors.New("closed without a message")

// errSessionOver: the client was already told why (the backend's own error).
var errSessionOver = errors.New("session over")

// clientError translates err into what the client is told.
func clientError(err error) *wire.Error {
	var (
		we   *wire.Error
		ae   *AuthError
		bu   errBackendUnavailable
		bl   errBackendLost
		lf   errLoginFailed
		nerr net.Error
	)
	switch {
	case errors.As(err, &we):
		return we
	case errors.As(err, &ae):
		return wire.Fatal(wire.CodeInvalidAuthorization, ae.Message).WithHint(ae.Hint)
	case errors.Is(err, wire.ErrMessageTooLarge):
		return wire.Fatal(wire.CodeProgramLimitExceeded, "message too large").WithDetail(err.Error()).
			WithHint("raise MAX_MESSAGE_SIZE_MB on the proxy if this is legitimate")
	case errors.Is(err, wire.ErrProtocol):
		return wire.Fatal(wire.CodeProtocolViolation, err.Error())
	case errors.Is(err, errQueueStalled):
		return wire.Fatal(wire.CodeProgramLimitExceeded, "too many messages sent ahead of the answers").
			WithDetail("the database server answered none of 16384 outstanding messages for 60 seconds")
	case errors.As(err, &bu):
		return wire.Fatal(wire.CodeConnectionFailure, "pgproxy could not connect to the database server").WithDetail(bu.err.Error())
	case errors.As(err, &lf):
		return wire.Fatal(wire.CodeConnectionRejected, "pgproxy could not log in to the database server").WithDetail(lf.err.Error())
	case errors.As(err, &bl):
		if bl.auth {
			return wire.Fatal(wire.CodeConnectionFailure, "lost the connection to the database server during authentication").WithDetail(errText(bl.err))
		}
		return wire.Fatal(wire.CodeConnectionFailure, "the connection to the database server was lost").WithDetail(errText(bl.err))
	case errors.As(err, &nerr) && nerr.Timeout():
		return wire.Fatal(wire.CodeProtocolViolation, "startup and authentication did not finish in time")
	}
	return wire.Fatal(wire.CodeInternalError, "pgproxy internal error").WithDetail(err.Error())
}

// quietEnd reports errors after which the client is not sent anything:
// it left, or was already told.
func quietEnd(err error) bool {
	return errors.Is(err, errSessionOver) || errors.Is(err, errSilentClose) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// clientEncoding returns the session's client_encoding ("" until the server
// reported it).
func (s *Session) clientEncoding() string {
	if p := s.encoding.Load(); p != nil {
		return *p
	}
	return ""
}

// setClientEncoding notes the client_encoding the server reported.
func (s *Session) setClientEncoding(v string) {
	v = strings.ToUpper(strings.ReplaceAll(v, "-", ""))
	s.encoding.Store(&v)
	if v != "UTF8" && v != "SQL_ASCII" {
		s.otherEncoding.CompareAndSwap(nil, &v)
	}
}
