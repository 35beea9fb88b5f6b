package session

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

func saslMessage(mechs ...string) []byte {
	b := []byte{'R', 0, 0, 0, 0, 0, 0, 0, pgproto3.AuthTypeSASL}
	for _, m := range mechs {
		b = append(b, m...)
		b = append(b, 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

func TestFilterSASLRemovesPlus(t *testing.T) {
	out, err := filterSASL(saslMessage("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"))
	if err != nil {
		t.Fatal(err)
	}
	if want := saslMessage("SCRAM-SHA-256"); string(out) != string(want) {
		t.Fatalf("filtered = %q, want %q", out, want)
	}
	_, err = filterSASL(saslMessage("SCRAM-SHA-256-PLUS"))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != "28000" {
		t.Fatalf("only PLUS offered: want 28000, got %v", err)
	}
}

func saslInitial(gs2 string) []byte {
	b := []byte{'p', 0, 0, 0, 0}
	b = append(b, "SCRAM-SHA-256\x00"...)
	data := gs2 + "n=,r=abc"
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

func TestCheckSASLInitial(t *testing.T) {
	s := &Session{}
	s.Metrics = testMetrics
	cases := []struct {
		gs2        string
		backendTLS bool
		refused    bool
	}{
		{"n,,", false, false},
		{"n,,", true, false},
		{"y,,", false, false},
		{"y,,", true, true},
		{"p=tls-server-end-point,,", false, true},
	}
	for _, c := range cases {
		s.backendTLS = c.backendTLS
		err := s.checkSASLInitial(saslInitial(c.gs2))
		if (err != nil) != c.refused {
			t.Errorf("gs2 %q backendTLS=%v: err=%v, want refused=%v", c.gs2, c.backendTLS, err, c.refused)
		}
		if err != nil && c.gs2 == "y,," && !strings.Contains(err.(*wire.Error).Hint, "channel_binding=disable") {
			t.Errorf("refusal must tell the user what to change: %v", err)
		}
	}
}
