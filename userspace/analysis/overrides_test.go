package analysis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

func TestOverridesLookupReloadAndErrors(t *testing.T) {
	p := sqlparse.NewParser(16)
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	fp := p.Parse("SELECT * FROM orders WHERE note = 'x'").Fingerprint()
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`overrides:
  - sql: SELECT * FROM orders WHERE note = 'y'
    action: allow
    reason: nightly report
  - fingerprint: ` + strings.ToUpper(fp) + `
    action: block
    database: shop
`)
	o, err := LoadOverrides(path, p)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := o.Lookup("other", fp); !ok || d.Verdict != Efficient || d.Source != SourceOverride || !strings.Contains(d.Reason, "nightly report") {
		t.Fatalf("any-database override: %+v %v", d, ok)
	}
	if d, ok := o.Lookup("shop", fp); !ok || d.Verdict != Inefficient {
		t.Fatalf("the database's own override must win: %+v %v", d, ok)
	}
	if _, ok := o.Lookup("shop", "nope"); ok {
		t.Fatal("unknown fingerprint matched")
	}
	if o.Changed() {
		t.Fatal("unchanged file reported as changed")
	}

	// A broken file keeps the overrides in force and names the line.
	write("overrides:\n  - fingerprint: abc\n    action: allow\n  - fingerprint: def\n    action: maybe\n")
	if _, err := o.Reload(); err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "allow or block") {
		t.Fatalf("error %v: want the line and the reason", err)
	}
	if o.Len() != 2 {
		t.Fatalf("%d overrides in force after a broken file, want the old 2", o.Len())
	}
	for _, bad := range []string{
		"overrides:\n  - fingerprint: abc\n    action: allow\n    colour: red\n",
		"overrides:\n  - action: allow\n",
		"overrides:\n  - sql: SELEC 1\n    action: block\n",
		"overrides: [\n",
	} {
		write(bad)
		if _, err := o.Reload(); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	write("overrides: []\n")
	if changed, err := o.Reload(); err != nil || !changed || o.Len() != 0 {
		t.Fatalf("reload to empty: %v %v %d", changed, err, o.Len())
	}
}
