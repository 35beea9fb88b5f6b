package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func startupBytes(version uint32, kv ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, version)
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestReadStartup(t *testing.T) {
	s, err := ReadStartup(bytes.NewReader(startupBytes(3<<16|2, "user", "alice", "database", "shop", "_pq_.x", "1")), true)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Get("user"); u != "alice" || s.ProtocolVersion&0xffff != 2 || len(s.Params) != 3 {
		t.Fatalf("decoded %+v", s)
	}
	// Round trip through the encoder the backend side uses.
	again, err := ReadStartup(bytes.NewReader(AppendStartupMessage(nil, s.Params)), false)
	if err != nil || len(again.Params) != 3 || again.ProtocolVersion != 3<<16 {
		t.Fatalf("re-encoded startup: %+v %v", again, err)
	}
}

func TestReadStartupRequests(t *testing.T) {
	ssl := AppendSSLRequest(nil)
	if s, err := ReadStartup(bytes.NewReader(ssl), false); err != nil || s.Kind != KindSSLRequest {
		t.Fatalf("SSLRequest: %+v %v", s, err)
	}
	c := AppendCancelRequest(nil, 42, []byte{1, 2, 3, 4})
	if s, err := ReadStartup(bytes.NewReader(c), false); err != nil || s.Kind != KindCancel || s.CancelPID != 42 || !bytes.Equal(s.CancelSecret, []byte{1, 2, 3, 4}) {
		t.Fatalf("CancelRequest: %+v %v", s, err)
	}
	if _, err := ReadStartup(bytes.NewReader([]byte{0x16, 3, 1}), true); !errors.Is(err, ErrDirectTLS) {
		t.Fatalf("TLS record: %v", err)
	}
}

func TestReadStartupRejects(t *testing.T) {
	cases := map[string][]byte{
		"too long":      binary.BigEndian.AppendUint32(nil, MaxStartupPacket+1),
		"too short":     binary.BigEndian.AppendUint32(nil, 4),
		"protocol 2":    startupBytes(2<<16, "user", "x"),
		"no user":       startupBytes(3<<16, "database", "x"),
		"unterminated":  startupBytes(3<<16, "user", "x")[:12],
		"missing value": append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 14), 3<<16), "user\x00\x00"...),
		// PostgreSQL logs in with the last of repeated parameters.
		"database twice": startupBytes(3<<16, "user", "app", "database", "postgres", "database", "shop"),
		"user twice":     startupBytes(3<<16, "user", "dba", "user", "app"),
		"options twice":  startupBytes(3<<16, "user", "app", "options", "-c a=b", "options", "-c c=d"),
	}
	for name, b := range cases {
		if _, err := ReadStartup(bytes.NewReader(b), false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestErrorCode(t *testing.T) {
	m := AppendError(nil, &Error{Severity: "FATAL", Code: "53300", Message: "too many"})
	if got := string(ErrorCode(m)); got != "53300" {
		t.Fatalf("ErrorCode = %q", got)
	}
}

func TestErrorFields(t *testing.T) {
	fatal := AppendError(nil, &Error{Severity: "FATAL", Code: "57P01", Message: "bye"})
	plain := AppendError(nil, &Error{Severity: "ERROR", Code: "42601", Message: "syntax"})
	if !IsFatal(fatal) || IsFatal(plain) {
		t.Fatal("IsFatal misjudges severities")
	}
	if string(ErrorField(plain, 'M')) != "syntax" || ErrorField(plain, 'H') != nil {
		t.Fatal("ErrorField finds the wrong field")
	}
}
