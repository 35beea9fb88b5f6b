package masking

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// testCatalog is a catalog of customers(id int, name text, email text,
// ssn varchar(11), score int) masking name (partial 2), email (email), ssn
// (full), score (full), with a view over it and an unsafe function.
func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(`
version: "1.0"
tables:
  - table: customers
    columns:
      - {name: name, mask_type: partial, params: {visible_chars: 2}}
      - {name: email, mask_type: email}
      - {name: ssn, mask_type: full}
      - {name: score, mask_type: full}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalog{cfg: cfg, rels: map[[2]string]*Relation{}, byName: map[string][]*Relation{}, byOID: map[uint32]*Relation{},
		views: map[[2]string]*View{}, vName: map[string][]*View{}, funcs: map[string]string{"leak": "its body reads customers, which is masked"}}
	tb := cfg.Table("public", "customers")
	rel := &Relation{OID: 16400, Schema: "public", Name: "customers", Kind: 'r', Config: tb}
	for i, col := range []struct {
		name, typ string
		text      bool
	}{{"id", "integer", false}, {"name", "text", true},
		{"email", "text", true}, {"ssn", "character varying(11)", true}, {"score", "integer", false}} {
		rc := RelColumn{Name: col.name, Num: int16(i + 1), Type: Type{SQL: col.typ, Text: col.text}}
		if m, ok := tb.Column(col.name); ok {
			rc.Mask = &m
		}
		rel.Columns = append(rel.Columns, rc)
	}
	c.rels[[2]string{"public", "customers"}] = rel
	c.byName["customers"] = []*Relation{rel}
	c.byOID[rel.OID] = rel
	c.addView(&View{OID: 16500, Schema: "public", Name: "customer_emails", Kind: 'v', Def: "SELECT id, email FROM customers"})
	return c
}

func rewrite(t *testing.T, c *Catalog, sql string) Result {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	return c.Rewrite(sql, tree)
}

func TestRewriteShapes(t *testing.T) {
	c := testCatalog(t)
	for _, sql := range []string{
		"SELECT * FROM customers",
		"SELECT c.email FROM customers c WHERE c.ssn = '1'",
		"SELECT email FROM ONLY public.customers",
		"COPY customers TO STDOUT",
		"COPY customers (id, email) TO STDOUT",
		"UPDATE customers SET id = id WHERE email LIKE 'a%' RETURNING *",
		"DELETE FROM customers WHERE ssn = '1' RETURNING email",
		"SELECT * FROM customer_emails",
		"WITH customers AS (SELECT 1 AS email) SELECT email FROM customers",
		"SELECT id FROM customers TABLESAMPLE bernoulli (50)",
		"SELECT 1",
	} {
		res := rewrite(t, c, sql)
		t.Logf("%s\n  -> changed=%v touched=%v err=%v\n  %s", sql, res.Changed, res.Touched, res.Err, res.SQL)
	}
}

func TestRewriteRefusals(t *testing.T) {
	c := testCatalog(t)
	for _, sql := range []string{
		"DO $$ BEGIN PERFORM 1; END $$",
		"SELECT query_to_xml('select email from customers', true, true, '')",
		"SELECT leak()",
		"UPDATE customers SET name = email",
		"EXPLAIN ANALYZE SELECT * FROM customers",
		"COPY (SELECT 1) TO PROGRAM 'cat'",
		"SELECT * FROM pg_stats",
		"ALTER TABLE customers RENAME COLUMN email TO e",
		"INSERT INTO customers (id, email) VALUES (1, 'x') ON CONFLICT (email) DO NOTHING",
	} {
		res := rewrite(t, c, sql)
		if res.Err == nil {
			t.Errorf("%s: not refused (%s)", sql, res.SQL)
			continue
		}
		if res.Err.Code != "42501" || !strings.Contains(res.Err.Message, "pgproxy masking") {
			t.Errorf("%s: %+v", sql, res.Err)
		}
	}
}
