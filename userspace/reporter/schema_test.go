package reporter

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocDDL holds the package documentation to the DDL the reporter runs:
// the lead copies both into the README.
func TestDocDDL(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for line := range strings.SplitSeq(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			block = append(block, rest)
		}
	}
	if got, want := strings.Join(block, "\n"), SchemaSQL(); got != want {
		t.Errorf("doc.go's DDL differs from SchemaSQL():\n--- doc.go\n%s\n--- SchemaSQL\n%s", got, want)
	}
}

// TestDocColumns checks that the package documentation lists every column of
// each table in order, and that every field of Metric and Issue names its
// column.
func TestDocColumns(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range tables {
		_, section, ok := strings.Cut(string(src), "# Columns of "+tbl.qualified())
		if !ok {
			t.Errorf("doc.go has no section for %s", tbl.qualified())
			continue
		}
		section, _, _ = strings.Cut(section, "\n// #")
		var listed []string
		for _, m := range regexp.MustCompile(`(?m)^//   - (\w+):`).FindAllStringSubmatch(section, -1) {
			listed = append(listed, m[1])
		}
		if !slices.Equal(listed, tbl.columnNames()) {
			t.Errorf("doc.go lists for %s\n %v\nthe table has\n %v", tbl.name, listed, tbl.columnNames())
		}
	}

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "record.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	fieldCols := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			m := regexp.MustCompile(`^\w+ \((\w+)\)`).FindStringSubmatch(fld.Doc.Text())
			if m == nil {
				t.Errorf("%s.%s: doc does not start with its column: %q", ts.Name, fld.Names[0], fld.Doc.Text())
				continue
			}
			fieldCols[ts.Name.Name] = append(fieldCols[ts.Name.Name], m[1])
		}
		return false
	})
	// The writer adds proxy_instance itself.
	for typ, tbl := range map[string]*table{"Metric": &metricsTable, "Issue": &issuesTable} {
		want := slices.DeleteFunc(tbl.columnNames(), func(c string) bool { return c == "proxy_instance" })
		if !slices.Equal(fieldCols[typ], want) {
			t.Errorf("%s fields name columns\n %v\nthe table has\n %v", typ, fieldCols[typ], want)
		}
	}
	if n := reflect.TypeFor[Metric]().NumField(); n != len(metricsTable.columns)-1 {
		t.Errorf("Metric has %d fields for %d columns", n, len(metricsTable.columns))
	}
}

// TestMissingDDL checks what the writer runs for a schema that is partly there.
func TestMissingDDL(t *testing.T) {
	all := map[string]bool{"": true}
	for _, tbl := range tables {
		all[string(tbl.name)] = true
		for _, c := range tbl.columns {
			all[string(tbl.name)+"."+c.name] = true
		}
		for _, ix := range tbl.indexes {
			all[ix.name] = true
		}
	}
	if ddl := missingDDL(all); len(ddl) != 0 {
		t.Errorf("complete schema: %q", ddl)
	}
	if got, want := strings.Join(missingDDL(map[string]bool{}), "\n"), SchemaSQL(); got != want {
		t.Errorf("empty schema:\n%s\nwant\n%s", got, want)
	}
	partial := maps.Clone(all)
	delete(partial, "query_metrics.rows")
	delete(partial, "query_issues_fingerprint_idx")
	want := []string{
		"ALTER TABLE pgproxy.query_metrics ADD COLUMN IF NOT EXISTS rows bigint NOT NULL DEFAULT 0;",
		"CREATE INDEX IF NOT EXISTS query_issues_fingerprint_idx ON pgproxy.query_issues (fingerprint, detected_at);",
	}
	if got := missingDDL(partial); !slices.Equal(got, want) {
		t.Errorf("partial schema: %q", got)
	}
}
