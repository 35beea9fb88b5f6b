package analysis

import (
	"testing"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// TestShapeSuffixOfShapedTexts: a text answered from the parse of another
// text of its shape (sqlparse.Parsed.Shaped) gets the suffix of its own
// constants, never the template's.
func TestShapeSuffixOfShapedTexts(t *testing.T) {
	th := Thresholds{MaxRows: 1000, MaxCost: 1e6, MaxOffset: 100}
	a := &Analyzer{Rules: Rules{Thresholds: th}}
	pairs := [][2]string{
		{"SELECT * FROM big OFFSET 5", "SELECT * FROM big OFFSET 500"},
		{"SELECT * FROM big LIMIT 5", "SELECT * FROM big LIMIT 5000"},
		{"SELECT * FROM big WHERE note LIKE 'a%'", "SELECT * FROM big WHERE note LIKE '%a'"},
		{"SELECT * FROM big WHERE note ~ '^a'", "SELECT * FROM big WHERE note ~ 'a'"},
		{"SELECT * FROM big WHERE note SIMILAR TO 'a%'", "SELECT * FROM big WHERE note SIMILAR TO '%a'"},
		{"SELECT * FROM big WHERE 1 = 1", "SELECT * FROM big WHERE 1 = 0"},
		{"SELECT * FROM big a JOIN big b ON 1 = 1 WHERE a.id = 3", "SELECT * FROM big a JOIN big b ON 1 = 2 WHERE a.id = 3"},
		{"SELECT * FROM big WHERE id = 1 AND 'x' = 'x'", "SELECT * FROM big WHERE id = 1 AND 'x' = 'y'"},
	}
	for _, p := range pairs {
		parser := sqlparse.NewParser(10)
		parser.Parse(p[0])
		v := parser.Parse(p[1])
		if !v.Shaped() {
			t.Errorf("%q: not answered from the shape of %q (the test needs it)", p[1], p[0])
		}
		want := ShapeSuffix(sqlparse.NewParser(0).Parse(p[1]).Tree(), th)
		if got := a.shapeSuffix(v); got != want {
			t.Errorf("%q after %q: suffix %q, want %q", p[1], p[0], got, want)
		}
		if want == ShapeSuffix(sqlparse.NewParser(0).Parse(p[0]).Tree(), th) {
			t.Errorf("%q and %q: same suffix %q; the pair tests nothing", p[0], p[1], want)
		}
	}
	// A shape without such constants: "" without parsing the text.
	parser := sqlparse.NewParser(10)
	parser.Parse("SELECT * FROM big WHERE id = 1")
	v := parser.Parse("SELECT * FROM big WHERE id = 2")
	if !v.Shaped() || a.shapeSuffix(v) != "" {
		t.Fatalf("shaped %v, suffix %q", v.Shaped(), a.shapeSuffix(v))
	}
}
