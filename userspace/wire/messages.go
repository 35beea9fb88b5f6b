package wire

import (
	"bytes"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Error is a PostgreSQL error the proxy reports to a client.
type Error struct {
	Severity string // ERROR or FATAL
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Hint     string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Encoder is a pgproto3 message.
type Encoder interface {
	Encode(dst []byte) ([]byte, error)
}

// Append encodes messages the proxy built itself after dst. pgproto3's
// encoders fail only for bodies beyond 1 GiB or a NUL inside a startup
// parameter, which the proxy never builds; such a message is left out.
func Append(dst []byte, msgs ...Encoder) []byte {
	for _, m := range msgs {
		if out, err := m.Encode(dst); err == nil {
			dst = out
		}
	}
	return dst
}

// Encode appends one message and returns pgproto3's error instead of
// dropping the message: use it for messages built from client input (a
// rewritten Query or Parse), where an error must fail the statement rather
// than desynchronise the connection.
func Encode(dst []byte, m Encoder) ([]byte, error) {
	return m.Encode(dst)
}

// AppendError encodes e as an ErrorResponse.
func AppendError(dst []byte, e *Error) []byte {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	return Append(dst, &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: e.Code,
		Message: e.Message, Detail: e.Detail, Hint: e.Hint})
}

// Decode decodes the body of a whole message (header included) into m.
func Decode(msg []byte, m interface{ Decode([]byte) error }) error {
	if len(msg) < HeaderLen {
		return ErrProtocol
	}
	return m.Decode(msg[HeaderLen:])
}

// ErrorField returns one field (for example 'C' for the SQLSTATE, 'V' for
// the unlocalized severity) of an ErrorResponse or NoticeResponse (header
// included), without decoding the rest or allocating.
func ErrorField(msg []byte, field byte) []byte {
	if len(msg) < HeaderLen {
		return nil
	}
	b := msg[HeaderLen:]
	for len(b) > 0 && b[0] != 0 {
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return nil
		}
		if b[0] == field {
			return b[1 : 1+end]
		}
		b = b[end+2:]
	}
	return nil
}

// ErrorCode returns the SQLSTATE of an ErrorResponse or NoticeResponse.
func ErrorCode(msg []byte) []byte { return ErrorField(msg, 'C') }

// IsFatal reports whether an ErrorResponse has severity FATAL or PANIC.
func IsFatal(msg []byte) bool {
	sev := ErrorField(msg, 'V') // unlocalized, sent since PostgreSQL 9.6
	if sev == nil {
		sev = ErrorField(msg, 'S')
	}
	return string(sev) == "FATAL" || string(sev) == "PANIC"
}

// cutName splits b after its first NUL: the name before it (pointing into
// b) and the rest.
func cutName(b []byte) (name, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// BindNames reads the destination portal and the prepared statement of a
// Bind (header included) without decoding its parameters: the proxy
// routes and decides a Bind by its names, and the server checks the rest.
// The slices point into msg.
func BindNames(msg []byte) (portal, statement []byte, err error) {
	if len(msg) < HeaderLen {
		return nil, nil, ErrProtocol
	}
	portal, rest, ok := cutName(msg[HeaderLen:])
	if ok {
		statement, _, ok = cutName(rest)
	}
	if !ok {
		return nil, nil, ErrProtocol
	}
	return portal, statement, nil
}

// ExecuteName reads the portal an Execute (header included) runs.
func ExecuteName(msg []byte) (portal []byte, err error) {
	if len(msg) < HeaderLen {
		return nil, ErrProtocol
	}
	portal, rest, ok := cutName(msg[HeaderLen:])
	if !ok || len(rest) != 4 { // the name, then the row limit
		return nil, ErrProtocol
	}
	return portal, nil
}

// ObjectName reads what a Describe or Close (header included) is about:
// 'S' (a prepared statement) or 'P' (a portal), and its name.
func ObjectName(msg []byte) (kind byte, name []byte, err error) {
	if len(msg) < HeaderLen+2 {
		return 0, nil, ErrProtocol
	}
	body := msg[HeaderLen:]
	name, rest, ok := cutName(body[1:])
	if !ok || len(rest) != 0 {
		return 0, nil, ErrProtocol
	}
	return body[0], name, nil
}
