package wire

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func encode(t *testing.T, m Encoder) []byte {
	t.Helper()
	b, err := Encode(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The name readers agree with pgproto3's decoders on every message pgproto3
// encodes, and refuse what pgproto3 refuses.
func TestNameReaders(t *testing.T) {
	names := []string{"", "p", "stmtcache_0123456789abcdef", "naïve \u00e9"}
	for _, portal := range names {
		for _, st := range names {
			msg := encode(t, &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: st,
				ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("x\x00y"), nil}, ResultFormatCodes: []int16{0, 1}})
			p, s, err := BindNames(msg)
			if err != nil || string(p) != portal || string(s) != st {
				t.Errorf("BindNames(%q, %q) = %q, %q, %v", portal, st, p, s, err)
			}
		}
		msg := encode(t, &pgproto3.Execute{Portal: portal, MaxRows: 7})
		if p, err := ExecuteName(msg); err != nil || string(p) != portal {
			t.Errorf("ExecuteName(%q) = %q, %v", portal, p, err)
		}
		for _, kind := range []byte{'S', 'P'} {
			for _, m := range []Encoder{&pgproto3.Describe{ObjectType: kind, Name: portal}, &pgproto3.Close{ObjectType: kind, Name: portal}} {
				k, n, err := ObjectName(encode(t, m))
				if err != nil || k != kind || string(n) != portal {
					t.Errorf("ObjectName(%c %q) = %c %q, %v", kind, portal, k, n, err)
				}
			}
		}
	}
	bad := map[string][]byte{
		"bind without statement name": []byte("B\x00\x00\x00\x06p\x00"),
		"bind without portal end":     []byte("B\x00\x00\x00\x05p"),
		"execute without row limit":   []byte("E\x00\x00\x00\x06p\x00"),
		"execute with trailing bytes": []byte("E\x00\x00\x00\x0bp\x00\x00\x00\x00\x00\x00"),
		"describe without name end":   []byte("D\x00\x00\x00\x06Sx"),
		"describe with two names":     []byte("D\x00\x00\x00\x08Sx\x00y\x00"),
		"short":                       []byte("D\x00\x00"),
	}
	for what, msg := range bad {
		var err error
		switch msg[0] {
		case 'B':
			_, _, err = BindNames(msg)
		case 'E':
			_, err = ExecuteName(msg)
		default:
			_, _, err = ObjectName(msg)
		}
		if err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func BenchmarkBindNames(b *testing.B) {
	msg, _ := Encode(nil, &pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte("42")}, ResultFormatCodes: []int16{0}})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := BindNames(msg); err != nil {
			b.Fatal(err)
		}
	}
}
