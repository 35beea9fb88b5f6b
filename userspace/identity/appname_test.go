package identity

import (
	"net/url"
	"strings"
	"testing"
)

func TestApplicationName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice@example.com", "jwt:alice@example.com"},
		{"zoë.müller@example.com", "jwt:zo%C3%AB.m%C3%BCller@example.com"},
		{"zoé.müller@example.com", "jwt:zo%C3%A9.m%C3%BCller@example.com"},
		{"100%real", "jwt:100%25real"},
		{"a\x00b\nc", "jwt:a%00b%0Ac"},
		{strings.Repeat("x", 100), "jwt:" + strings.Repeat("x", 59)},
		// 57 ASCII bytes + "é" (6 escaped bytes) would be 67: the escape is dropped whole.
		{strings.Repeat("x", 57) + "é", "jwt:" + strings.Repeat("x", 57)},
	}
	for _, tc := range cases {
		if got := ApplicationName(tc.in); got != tc.want {
			t.Errorf("ApplicationName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzApplicationName: always printable ASCII, at most 63 bytes, prefixed,
// and (when not cut) decodes back to the identity.
func FuzzApplicationName(f *testing.F) {
	f.Add("alice@example.com")
	f.Add("zoë")
	f.Fuzz(func(t *testing.T, s string) {
		got := ApplicationName(s)
		if len(got) > MaxApplicationNameLen || !strings.HasPrefix(got, "jwt:") {
			t.Fatalf("ApplicationName(%q) = %q", s, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] >= 0x7f {
				t.Fatalf("ApplicationName(%q) = %q has a byte PostgreSQL would rewrite", s, got)
			}
		}
		if len(got) < MaxApplicationNameLen-3 {
			back, err := url.PathUnescape(got[4:])
			if err != nil || back != s {
				t.Fatalf("ApplicationName(%q) = %q does not decode back (%q, %v)", s, got, back, err)
			}
		}
	})
}
