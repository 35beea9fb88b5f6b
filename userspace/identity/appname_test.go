package identity

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestApplicationName(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		name, in, want string
	}{
		{"email", "ann@example.com", "jwt:ann@example.com"},
		{"empty", "", "jwt:"},
		{"exactly 63 bytes", strings.Repeat("b", 59), "jwt:" + strings.Repeat("b", 59)},
		{"cut at 63 bytes", long, "jwt:" + long[:59]},
		// 58 ASCII bytes + "é" (2 bytes) = 64 with the prefix: é must go whole.
		{"two-byte rune at the edge", strings.Repeat("c", 58) + "é", "jwt:" + strings.Repeat("c", 58)},
		{"two-byte rune fits", strings.Repeat("c", 57) + "é", "jwt:" + strings.Repeat("c", 57) + "é"},
		{"four-byte rune at the edge", strings.Repeat("d", 57) + "😀", "jwt:" + strings.Repeat("d", 57)},
		{"CJK", strings.Repeat("漢", 30), "jwt:" + strings.Repeat("漢", 19)},
		{"control characters", "ann\x00\n@ex\x7f", "jwt:ann??@ex?"},
		{"invalid UTF-8", "a\xffb", "jwt:a?b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ApplicationName(tc.in)
			if got != tc.want {
				t.Fatalf("ApplicationName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > MaxApplicationNameLen || !utf8.ValidString(got) {
				t.Fatalf("result %q: %d bytes, valid=%v", got, len(got), utf8.ValidString(got))
			}
		})
	}
}

func FuzzApplicationName(f *testing.F) {
	f.Add("ann@example.com")
	f.Add(strings.Repeat("é", 40))
	f.Fuzz(func(t *testing.T, s string) {
		got := ApplicationName(s)
		if len(got) > MaxApplicationNameLen || !utf8.ValidString(got) || !strings.HasPrefix(got, "jwt:") {
			t.Fatalf("ApplicationName(%q) = %q", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", got)
			}
		}
	})
}

func TestErrorSentinelsAndReasons(t *testing.T) {
	err := refuse(ReasonTokenExpired, nil, "token expired at %s", "x")
	if !errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrWrongAudience) {
		t.Fatal("sentinel matching is wrong")
	}
	if ReasonOf(err) != ReasonTokenExpired || ReasonOf(nil) != "" || ReasonOf(errors.New("x")) != ReasonInternal {
		t.Fatal("ReasonOf is wrong")
	}
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] || r == "" || strings.ToLower(string(r)) != string(r) {
			t.Fatalf("bad or repeated reason %q", r)
		}
		seen[r] = true
	}
	if q := quoteClaim(strings.Repeat("é", 100)); len(q) > 70 || !utf8.ValidString(q) {
		t.Fatalf("quoteClaim = %q", q)
	}
}
