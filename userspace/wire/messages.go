package wire

import (
	"bytes"
	"encoding/binary"

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

// AppendError encodes e as an ErrorResponse.
func AppendError(dst []byte, e *Error) []byte {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	msg := pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint}
	out, _ := msg.Encode(dst)
	return out
}

// AppendReadyForQuery encodes a ReadyForQuery with the given status (I, T, E).
func AppendReadyForQuery(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}

// AppendBackendKeyData encodes a protocol 3.0 BackendKeyData.
func AppendBackendKeyData(dst []byte, pid, secret uint32) []byte {
	dst = append(dst, 'K', 0, 0, 0, 12)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	return binary.BigEndian.AppendUint32(dst, secret)
}

// ErrorCode returns the SQLSTATE field of an ErrorResponse or NoticeResponse
// message (header included), without allocating.
func ErrorCode(msg []byte) []byte {
	if len(msg) < HeaderLen {
		return nil
	}
	b := msg[HeaderLen:]
	for len(b) > 0 && b[0] != 0 {
		field := b[0]
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return nil
		}
		if field == 'C' {
			return b[1 : 1+end]
		}
		b = b[end+2:]
	}
	return nil
}
