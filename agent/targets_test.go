package agent

import (
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets(" 10.0.0.5:5432, 10.1.0.0/16:5432,[fd00::1]:5432,[fd00::/64]:6432")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.5:5432", "10.1.0.0/16:5432", "[fd00::1]:5432", "[fd00::/64]:6432"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
}

func TestParseTargetsErrorsNameEntry(t *testing.T) {
	cases := map[string]string{
		"10.0.0.5":               `"10.0.0.5"`,
		"10.0.0.5:0":             "bad port",
		"10.0.0.5:70000":         "bad port",
		"10.0.0.5:5432,nope:1":   `entry 2 "nope:1"`,
		"fd00::1:5432":           "brackets",
		"[fd00::1:5432":          "unclosed [",
		"10.1.0.1/16:5432":       "host bits",
		"10.1.0.0/33:5432":       "bad CIDR",
		"[::ffff:10.0.0.1]:5432": "IPv4-mapped",
		"":                       "no targets",
	}
	for in, frag := range cases {
		_, err := ParseTargets(in)
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("ParseTargets(%q) = %v, want error containing %q", in, err, frag)
		}
	}
}
