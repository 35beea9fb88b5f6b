package masking

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

func decideOne(t *testing.T, p *Policy, facts *stmt.Facts, sql string) stmt.Decision {
	t.Helper()
	var st stmt.Statement
	st.Reset(stmt.Simple, "", "", sql, nil, facts, sqlparse.NewParser(64))
	return p.Decide(context.Background(), &st)
}

func TestPolicyDecisions(t *testing.T) {
	c := testCatalog(t)
	c.cfg.UnmaskedRoles = map[string]bool{"dba": true}
	p := policyWith(c)
	app := &stmt.Facts{User: "app", Database: "bench"}
	if d := decideOne(t, p, app, "SELECT email FROM customers"); d.Action != stmt.Rewrite || d.Results == nil {
		t.Fatalf("a read of a masked column: %+v", d)
	}
	if d := decideOne(t, p, app, "SELECT 1 FROM orders"); d.Action != stmt.Allow || d.Results != nil || d.SQL != "" {
		t.Fatalf("a statement touching no masked table must be untouched: %+v", d)
	}
	if d := decideOne(t, p, app, "COPY customers TO STDOUT"); d.Action != stmt.Rewrite || d.Results != nil {
		t.Fatalf("COPY is rewritten and gets no row hook (its rows are CopyData): %+v", d)
	}
	if d := decideOne(t, p, app, "DO $$ BEGIN END $$"); d.Action != stmt.Refuse || d.Err.Code != "42501" {
		t.Fatalf("DO: %+v", d)
	}
	if d := decideOne(t, p, &stmt.Facts{User: "dba", Database: "bench"}, "SELECT email FROM customers"); d.Action != stmt.Allow || d.Source != SourceUnmasked {
		t.Fatalf("an unmasked database user in passthrough: %+v", d)
	}
	tok := &stmt.Facts{Identity: "bob@x", Roles: []string{"analyst"}, User: "dba", Database: "bench"}
	if d := decideOne(t, p, tok, "SELECT email FROM customers"); d.Action != stmt.Rewrite {
		t.Fatalf("a token session is matched by its roles, not the service account: %+v", d)
	}
	var st stmt.Statement
	st.Reset(stmt.FunctionCall, "", "", "", nil, app, nil)
	if d := p.Decide(context.Background(), &st); d.Action != stmt.Refuse {
		t.Fatalf("fast-path function call: %+v", d)
	}
}

func TestPolicyInvalidatesAfterDDL(t *testing.T) {
	c := testCatalog(t)
	p := policyWith(c)
	decideOne(t, p, &stmt.Facts{User: "app", Database: "bench"}, "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
	if !p.catalogs[catalogKey{"", "bench"}].stale.Load() {
		t.Fatal("DDL must make the catalog be read again")
	}
}

func TestSecondWallMasksDescribedColumns(t *testing.T) {
	c := testCatalog(t)
	w := &wall{cat: c}
	fields := []pgproto3.FieldDescription{
		{Name: []byte("id"), TableOID: 16400, TableAttributeNumber: 1},
		{Name: []byte("e"), TableOID: 16400, TableAttributeNumber: 3},            // email
		{Name: []byte("s"), TableOID: 16400, TableAttributeNumber: 5},            // score: not text
		{Name: []byte("x"), TableOID: 99999, TableAttributeNumber: 3},            // another table
		{Name: []byte("n"), TableOID: 16400, TableAttributeNumber: 2, Format: 1}, // name, binary
	}
	fn := w.Columns(fields)
	if fn == nil {
		t.Fatal("no row function for masked columns")
	}
	row, err := fn([][]byte{[]byte("7"), []byte("ann@example.com"), []byte("700"), []byte("ann@example.com"), []byte("Annabel")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"7", "a***@example.com", "", "ann@example.com", "An***"}
	for i, v := range row {
		if string(v) != want[i] || (i == 2 && v != nil) {
			t.Errorf("column %d: %q, want %q", i, v, want[i])
		}
	}
	if w.Columns(fields[:1]) != nil {
		t.Error("a result without masked columns must keep the raw relay")
	}
	if _, err := fn([][]byte{nil}); err == nil {
		t.Error("a row of the wrong width must fail closed")
	}
	e := pgproto3.ErrorResponse{Code: "23514", Message: "check", Detail: "Failing row contains (1, ann@example.com)."}
	w.Error(&e)
	if e.Detail != detailRemoved {
		t.Errorf("detail kept: %q", e.Detail)
	}
}

// What an unmasked role runs marks the catalog stale when it may change it
// (EXPLAIN ANALYZE runs what it explains); reads and writes do not.
func TestMayChangeCatalog(t *testing.T) {
	parser := sqlparse.NewParser(16)
	for sql, want := range map[string]bool{
		"SELECT email FROM customers WHERE id = 1":     false,
		"UPDATE customers SET note = 'x' WHERE id = 1": false,
		"BEGIN":                 false,
		"SET work_mem = '64MB'": false,
		"EXPLAIN SELECT 1":      false,
		"CREATE VIEW v AS SELECT email FROM customers":                          true,
		"EXPLAIN ANALYZE CREATE MATERIALIZED VIEW mv AS SELECT ssn FROM people": true,
		"EXPLAIN (ANALYZE) CREATE TABLE t2 AS SELECT 1":                         true,
		"ALTER TABLE customers RENAME TO c2":                                    true,
		"SELECT 1; DROP VIEW v":                                                 true,
	} {
		if got := mayChangeCatalog(parser.Parse(sql)); got != want {
			t.Errorf("%s: %v, want %v", sql, got, want)
		}
	}
}
