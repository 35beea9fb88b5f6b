package sqlparse

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

func TestShapeKey(t *testing.T) {
	same := [][2]string{
		{"SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 2147483647"},
		{"SELECT * FROM t WHERE id = 2147483648", "SELECT * FROM t WHERE id = 1.5"},
		{"SELECT 'a'", "SELECT 'it''s; -- not a comment /*'"},
		{"SELECT 1.5e3, .5, 7.", "SELECT 2.0, 3e1, 44444444444"},
		{"SELECT 'x' -- it's a comment\n", "SELECT 'y' -- it's a comment\n"},
		{"SELECT /* 'q' /* nested */ */ 5", "SELECT /* 'q' /* nested */ */ 6"},
		{`SELECT "col'1" FROM t1 WHERE a = 2`, `SELECT "col'1" FROM t1 WHERE a = 3`},
		{"SELECT $1 + 2", "SELECT $1 + 3"},
		{"SELECT a+1 FROM t", "SELECT a+22 FROM t"},
	}
	for _, p := range same {
		k1, ok1 := shapeKey(p[0])
		k2, ok2 := shapeKey(p[1])
		if !ok1 || !ok2 || k1 != k2 {
			t.Errorf("%q and %q: keys %q (%v), %q (%v); want one key", p[0], p[1], k1, ok1, k2, ok2)
		}
	}
	different := [][2]string{
		{"SELECT 'a'\n'b'", "SELECT 'a' 'b'"}, // a continued string, a syntax error
		{"SELECT * FROM t1 WHERE a = 1", "SELECT * FROM t2 WHERE a = 1"},
		{"SELECT a FROM t WHERE x IN (1, 2)", "SELECT a FROM t WHERE x IN (1, 2, 3)"},
		{"SELECT $1, 1", "SELECT $2, 1"},
		{"SELECT 1", "select 1"},
		{"SELECT 1", "SELECT 1.0"},                 // an integer and another number
		{"SELECT 2147483647", "SELECT 2147483648"}, // past 32 bits: not an integer constant
		{"FETCH 10 FROM c", "FETCH 10.5 FROM c"},
	}
	for _, p := range different {
		k1, _ := shapeKey(p[0])
		k2, _ := shapeKey(p[1])
		if k1 == k2 {
			t.Errorf("%q and %q share the key %q", p[0], p[1], k1)
		}
	}
	none := []string{
		"SELECT a FROM t",       // no literal: its own shape
		"SELECT E'a\\'b'",       // escape string
		"SELECT e'a'",           // escape string, lower case
		"SELECT B'0101'",        // bit string
		"SELECT X'ff'",          // hex string
		"SELECT N'abc'",         // national character
		"SELECT U&'d\\0061t'",   // Unicode escapes
		"SELECT $$a'b$$, 1",     // dollar quote
		"SELECT $q$x$q$, 1",     // tagged dollar quote
		"SELECT 1e",             // exponent without digits
		"SELECT 0x1F",           // a number glued to a name
		"SELECT 123abc",         // idem
		"SELECT 1.2.3",          // idem
		"SELECT 'a",             // unterminated
		"SELECT /* 1",           // unterminated comment
		"SELECT \"a, 1",         // unterminated identifier
		"SELECT 1 /* a */ /* b", // unterminated after a literal
		"SELECT 'a'b",           // string glued to a name
		"SELECT 1\x00",          // NUL
	}
	for _, s := range none {
		if k, ok := shapeKey(s); ok {
			t.Errorf("%q got the key %q; want none", s, k)
		}
	}
}

// shapeCorpus are statements with literals, of every kind the proxy sees.
var shapeCorpus = []string{
	"SELECT abalance FROM pgbench_accounts WHERE aid = 1",
	"SELECT abalance FROM pgbench_accounts WHERE aid = 1;",
	"  SELECT a, 'x' AS b FROM t WHERE c > 2.5 AND d <> 'y' ;  -- trailing",
	"/* lead */ SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 100",
	"SELECT * FROM t WHERE id IN (1, 2, 3) ORDER BY id",
	"SELECT * FROM t WHERE created_at > now() - interval '7 days'",
	"SELECT * FROM t WHERE note = 'a;b' AND x = '--' AND y = '/*'",
	"WITH r AS (SELECT id FROM t WHERE v = 5) SELECT * FROM r WHERE id > 3",
	"SELECT id FROM t WHERE x = 1 UNION ALL SELECT id FROM u WHERE y = 2",
	"SELECT * FROM t WHERE id = 5 FOR UPDATE",
	"SELECT * FROM t LIMIT 10",
	"SELECT * FROM t OFFSET 100000",
	"SELECT * FROM t WHERE name LIKE '%x'",
	"SELECT * FROM t WHERE name ~ 'x'",
	"SELECT * FROM t WHERE 1 = 1",
	"SELECT set_config('search_path', 'x', false)",
	"SELECT set_config('application_name', 'a', true), 1",
	"SELECT 1; SELECT 2",
	"SET statement_timeout = 5",
	"SET search_path = 'a', 'b'",
	"PREPARE p AS SELECT * FROM t WHERE id = 1",
	"EXECUTE p(1)",
	"DECLARE c CURSOR FOR SELECT * FROM t WHERE x = 1",
	"FETCH 10 FROM c",
	"INSERT INTO t (a, b) VALUES (1, 'x')",
	"INSERT INTO t (a, b) VALUES (1, 'x') RETURNING a",
	"UPDATE t SET a = 1 WHERE b = 'x'",
	"UPDATE pg_settings SET setting = 'x' WHERE name = 'role'",
	"DELETE FROM t WHERE a = 1",
	"INSERT INTO t SELECT * FROM u WHERE v = 3 ON CONFLICT (a) DO UPDATE SET b = 2",
	"SELECT 1::int, '2'::text, 3.5::numeric(10,2)",
	"SELECT CASE WHEN a = 1 THEN 'one' ELSE 'other' END FROM t",
	"SELECT * FROM t WHERE a = -1 AND b = +2",
	"SELECT * FROM t WHERE a BETWEEN 1 AND 10",
	"COPY (SELECT * FROM t WHERE a = 1) TO STDOUT",
	"SELECT pg_sleep(1)",
	"SELECT * FROM generate_series(1, 10) g",
	"SELECT \"Weird;Name\" FROM \"T\" WHERE \"a\"\"b\" = 1",
}

// vary returns sql with every literal replaced by another value of a random
// form (longer or shorter, quotes, semicolons, comment markers, non-ASCII,
// numbers past int32).
func vary(t *testing.T, sql string, r *rand.Rand) string {
	t.Helper()
	key, ok := shapeKey(sql)
	if !ok {
		return sql
	}
	strs := []string{"''", "'x'", "'it''s'", "'; SELECT 1; --'", "'/* */'", "'é☃'", "'" + strings.Repeat("z", 300) + "'"}
	ints := []string{"0", "7", "2147483647", "00012"}
	nums := []string{"2147483648", "123456789012345", "1.25", ".5", "6e3", "2E-4", "3."}
	var b strings.Builder
	for {
		i := strings.IndexByte(key, 0)
		if i < 0 {
			b.WriteString(key)
			break
		}
		b.WriteString(key[:i])
		switch key[i+1] {
		case 'i':
			b.WriteString(ints[r.IntN(len(ints))])
		case 'n':
			b.WriteString(nums[r.IntN(len(nums))])
		default:
			b.WriteString(strs[r.IntN(len(strs))])
		}
		key = key[i+2:]
	}
	return b.String()
}

// TestShapedFactsMatchParse: a text answered from its shape tells the
// proxy exactly what a full parse of it would.
func TestShapedFactsMatchParse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shaped := 0
	for _, sql := range shapeCorpus {
		for i := 0; i < 20; i++ {
			p := NewParser(100)
			tpl := p.Parse(sql)
			if tpl.Err != nil {
				t.Fatalf("%q: %v", sql, tpl.Err)
			}
			v := vary(t, sql, r)
			got := p.Parse(v)
			want := NewParser(0).Parse(v)
			if want.Err != nil {
				t.Fatalf("variant %q of %q does not parse: %v", v, sql, want.Err)
			}
			if got.Shaped() {
				shaped++
			}
			compareParsed(t, v, got, want)
		}
	}
	if shaped == 0 {
		t.Fatal("no variant was answered from its shape")
	}
	// The shapes the proxy must never answer from a template.
	for _, sql := range []string{
		"SELECT set_config('search_path', 'x', false)", "SELECT 1; SELECT 2", "SET statement_timeout = 5",
		"PREPARE p AS SELECT * FROM t WHERE id = 1", "EXECUTE p(1)", "FETCH 10 FROM c",
		"DECLARE c CURSOR FOR SELECT * FROM t WHERE x = 1", "SELECT 1;;",
	} {
		p := NewParser(10)
		p.Parse(sql)
		if v := vary(t, sql, r); p.Parse(v).Shaped() {
			t.Errorf("%q was answered from the shape of %q", v, sql)
		}
	}
	// The shapes that are.
	for _, sql := range []string{shapeCorpus[0], shapeCorpus[2], shapeCorpus[4], shapeCorpus[24], "SELECT * FROM t LIMIT 10"} {
		p := NewParser(10)
		p.Parse(sql)
		if v := vary(t, sql, r); !p.Parse(v).Shaped() {
			t.Errorf("%q: its variant %q was parsed again", sql, v)
		}
	}
}

func compareParsed(t *testing.T, v string, got, want *Parsed) {
	t.Helper()
	if got.Err != nil {
		t.Fatalf("%q: %v", v, got.Err)
	}
	if got.SQL() != v {
		t.Fatalf("%q: SQL() %q", v, got.SQL())
	}
	if g, w := got.Fingerprint(), want.Fingerprint(); g != w {
		t.Errorf("%q: fingerprint %s, want %s", v, g, w)
	}
	gs, ws := got.Statements(), want.Statements()
	if len(gs) != len(ws) {
		t.Fatalf("%q: %d statements, want %d", v, len(gs), len(ws))
	}
	for i := range gs {
		if gs[i].Text != ws[i].Text {
			t.Errorf("%q: statement %d text %q, want %q", v, i, gs[i].Text, ws[i].Text)
		}
		if fmt.Sprintf("%T", gs[i].Node.Node) != fmt.Sprintf("%T", ws[i].Node.Node) {
			t.Errorf("%q: statement %d is a %T, want %T", v, i, gs[i].Node.Node, ws[i].Node.Node)
		}
		if g, w := SessionEffect(gs[i]), SessionEffect(ws[i]); g != w {
			t.Errorf("%q: statement %d effect %+v, want %+v", v, i, g, w)
		}
		if g, w := IsRead(gs[i].Node), IsRead(ws[i].Node); g != w {
			t.Errorf("%q: statement %d IsRead %v, want %v", v, i, g, w)
		}
	}
	for _, name := range []string{"role", "search_path", "application_name"} {
		if g, w := ChangesSetting(got.ShapeTree(), name), ChangesSetting(want.Tree(), name); g != w {
			t.Errorf("%q: ChangesSetting(%s) %v, want %v", v, name, g, w)
		}
	}
	if !proto.Equal(got.Tree(), want.Tree()) {
		t.Errorf("%q: the lazily parsed tree differs from a parse", v)
	}
	if g, w := fmt.Sprint(Tables(got.ShapeTree())), fmt.Sprint(Tables(want.Tree())); g != w {
		t.Errorf("%q: tables %s, want %s", v, g, w)
	}
}

// FuzzShapeKey: any text with a key, its literals replaced by others, keeps
// its key, parses if and only if the original does, and has its statement
// count; when it is a template, the variant answered from it tells what a
// parse of the variant does.
func FuzzShapeKey(f *testing.F) {
	for _, s := range shapeCorpus {
		f.Add(s)
	}
	f.Add("SELECT 'a'\n'b'")
	f.Add("SELECT 1 -- x\n; SELECT 'y'")
	f.Add("SELECT (1)::int[3]")
	f.Fuzz(func(t *testing.T, sql string) {
		key, ok := shapeKey(sql)
		if !ok || len(sql) > 2000 {
			return
		}
		r := rand.New(rand.NewPCG(uint64(len(sql)), 7))
		v := vary(t, sql, r)
		if k2, ok2 := shapeKey(v); !ok2 || k2 != key {
			t.Fatalf("variant %q of %q: key %q (%v), want %q", v, sql, k2, ok2, key)
		}
		a, errA := pg_query.Parse(sql)
		b, errB := pg_query.Parse(v)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%q parses: %v; its variant %q: %v", sql, errA, v, errB)
		}
		if errA != nil {
			return
		}
		if len(a.Stmts) != len(b.Stmts) {
			t.Fatalf("%q: %d statements, variant %q: %d", sql, len(a.Stmts), v, len(b.Stmts))
		}
		p := NewParser(10)
		if tpl := p.Parse(sql); shapeEligible(tpl) {
			compareParsed(t, v, p.Parse(v), NewParser(0).Parse(v))
		}
	})
}

func BenchmarkParseShaped(b *testing.B) {
	p := NewParser(100)
	p.Parse("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	i := 0
	for b.Loop() {
		i++
		p.Parse(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i))
	}
}

func BenchmarkParseUncached(b *testing.B) {
	p := NewParser(0)
	i := 0
	for b.Loop() {
		i++
		p.Parse(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i))
	}
}

// TestParseLocal checks that the session-local path gives the shared
// path's answers: the same template once the shape is known, the same tree,
// and the text cache's *Parsed when fast says no.
func TestParseLocal(t *testing.T) {
	p := NewParser(100)
	local := map[string]*Parsed{}
	var buf []byte
	yes := func(*Parsed) bool { return true }
	first := p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 1", local, &buf, yes, nil)
	second := p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 2", local, &buf, yes, nil)
	if len(local) != 1 || second.Shape() != first.Shape() {
		t.Fatalf("after two texts of one shape: %d local templates, shapes %p %p", len(local), first.Shape(), second.Shape())
	}
	third := p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 3", local, &buf, yes, nil)
	if !third.Shaped() || third.Shape() != first.Shape() || third.SQL() != "SELECT abalance FROM pgbench_accounts WHERE aid = 3" {
		t.Fatalf("local answer: shaped %v, same template %v, sql %q", third.Shaped(), third.Shape() == first.Shape(), third.SQL())
	}
	compareParsed(t, third.SQL(), third, NewParser(0).Parse(third.SQL()))
	// fast says no: the shared caches answer, a repeated text with its *Parsed.
	no := func(*Parsed) bool { return false }
	again := p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 1", local, &buf, no, nil)
	if again != p.Parse("SELECT abalance FROM pgbench_accounts WHERE aid = 1") {
		t.Error("with fast false a repeated text did not get the text cache's Parsed")
	}
	// A text without a shape (not eligible) is Parse's.
	if got := p.ParseLocal("SET search_path = public", local, &buf, yes, nil); got.Err != nil || got.Shaped() {
		t.Errorf("SET: err %v shaped %v", got.Err, got.Shaped())
	}
}

// TestParseLocalScratch checks the answer in the caller's scratch space:
// nothing allocated, the answer of the new text each time (statements,
// tree), and Own keeping a text after scratch moved on.
func TestParseLocalScratch(t *testing.T) {
	p := NewParser(100)
	local := map[string]*Parsed{}
	var buf []byte
	var scratch Parsed
	yes := func(*Parsed) bool { return true }
	// The first text makes the shape's template, the second finds it in
	// the shared caches and puts it in local.
	first := p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 1", local, &buf, yes, &scratch)
	if p.ParseLocal("SELECT abalance FROM pgbench_accounts WHERE aid = 0", local, &buf, yes, &scratch) == &scratch || first == &scratch {
		t.Fatal("a text of a shape not in local was answered in scratch")
	}
	const two, three = "SELECT abalance FROM pgbench_accounts WHERE aid = 2", "SELECT abalance FROM pgbench_accounts WHERE aid = 3"
	second := p.ParseLocal(two, local, &buf, yes, &scratch)
	if second != &scratch || second.Shape() != first.Shape() {
		t.Fatalf("a text of a known shape: in scratch %v, same template %v", second == &scratch, second.Shape() == first.Shape())
	}
	if got := second.Statements(); len(got) != 1 || got[0].Text != two {
		t.Fatalf("statements of the text in scratch: %+v", got)
	}
	owned := second.Own(&scratch)
	if owned == &scratch || owned.SQL() != two || owned.Shape() != first.Shape() {
		t.Fatalf("Own: a new Parsed %v, sql %q, same template %v", owned != &scratch, owned.SQL(), owned.Shape() == first.Shape())
	}
	if first.Own(&scratch) != first {
		t.Error("Own of a Parsed not in scratch is not itself")
	}
	third := p.ParseLocal(three, local, &buf, yes, &scratch)
	compareParsed(t, three, third, NewParser(0).Parse(three))
	compareParsed(t, two, owned, NewParser(0).Parse(two))
	if got := third.Statements()[0].Text; got != three {
		t.Errorf("scratch reused: statement text %q", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { p.ParseLocal(two, local, &buf, yes, &scratch) }); allocs != 0 {
		t.Errorf("a text answered in scratch allocates %v times", allocs)
	}
}

// BenchmarkParseLocal measures the session-local shape path a simple Query
// of a known shape takes (pgbench -S through the guardrails): no parse, no
// lock, and no allocation (the answer is in the session's scratch space).
func BenchmarkParseLocal(b *testing.B) {
	p := NewParser(100)
	local := map[string]*Parsed{}
	var buf []byte
	yes := func(*Parsed) bool { return true }
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d;", i+1)
	}
	p.ParseLocal(texts[0], local, &buf, yes, nil)
	var scratch Parsed
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if got := p.ParseLocal(texts[i%len(texts)], local, &buf, yes, &scratch); !got.Shaped() || len(got.Statements()) != 1 {
			b.Fatal("not answered from the shape")
		}
	}
}
