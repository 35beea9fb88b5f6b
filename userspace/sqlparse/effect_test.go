package sqlparse

import "testing"

func TestSessionEffect(t *testing.T) {
	p := NewParser(0)
	cases := []struct {
		sql       string
		kind      EffectKind
		key       string
		uncertain bool
	}{
		{"SET search_path = public", SetSetting, "search_path", false},
		{"SET SESSION Work_Mem TO '8MB'", SetSetting, "work_mem", false},
		{"SET LOCAL work_mem = '8MB'", NoEffect, "", false},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", NoEffect, "", false},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", SetSetting, "session characteristics", false},
		{"SET timezone TO DEFAULT", ResetSetting, "timezone", false},
		{"RESET statement_timeout", ResetSetting, "statement_timeout", false},
		{"RESET ALL", ResetAll, "", false},
		{"DISCARD ALL", DiscardAll, "", false},
		{"DISCARD PLANS", NoEffect, "", false},
		{"SELECT set_config('search_path', 'x', false)", SetSetting, "search_path", false},
		{"SELECT set_config('search_path', $1, false)", SetSetting, "search_path", true},
		{"SELECT set_config($1, 'x', false)", SetSetting, "", true},
		{"SELECT set_config('search_path', 'x', true)", NoEffect, "", false},
		{"SELECT set_config('a', 'b', false) FROM pg_class", SetSetting, "", true},
		{"SELECT 1 FROM (SELECT set_config('a', 'b', false)) s", SetSetting, "", true},
		{"SELECT set_config('a', 'b', $1)", SetSetting, "a", true},
		{"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", NoEffect, "", false},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", Declare, "c", false},
		{"CLOSE c", ClosePortal, "c", false},
		{"PREPARE q (int) AS SELECT $1 + 1", Prepare, "q", false},
		{"DEALLOCATE q", Deallocate, "q", false},
		{"DEALLOCATE ALL", Deallocate, "", false},
		{"SAVEPOINT a", Savepoint, "a", false},
		{"RELEASE SAVEPOINT a", Release, "a", false},
		{"ROLLBACK TO SAVEPOINT a", RollbackTo, "a", false},
		{"SELECT 1", NoEffect, "", false},
	}
	for _, c := range cases {
		stmts := p.Parse(c.sql).Statements()
		if len(stmts) != 1 {
			t.Fatalf("%s: %d statements", c.sql, len(stmts))
		}
		e := SessionEffect(stmts[0])
		if e.Kind != c.kind || e.Key != c.key || e.Uncertain != c.uncertain {
			t.Errorf("%s: effect %+v, want kind %d key %q uncertain %v", c.sql, e, c.kind, c.key, c.uncertain)
		}
		if stmts[0].Text != c.sql {
			t.Errorf("%s: statement text %q", c.sql, stmts[0].Text)
		}
	}
	if e := SessionEffect(p.Parse("PREPARE q AS SELECT a FROM t WHERE b = $1").Statements()[0]); e.Query != "SELECT a FROM t WHERE b = $1" {
		t.Errorf("PREPARE body %q", e.Query)
	}
	multi := p.Parse("SET a.b = 1;  SELECT 2 ;SET c.d=3").Statements()
	if len(multi) != 3 || multi[0].Text != "SET a.b = 1" || multi[1].Text != "SELECT 2" || multi[2].Text != "SET c.d=3" {
		t.Errorf("statements of a multi-statement text: %+v", multi)
	}
}

// TestInert: only statements that change nothing the tracker follows (no
// session effect, not a transaction statement) are inert; a text answered
// from its shape is judged as its template.
func TestInert(t *testing.T) {
	p := NewParser(10)
	cases := map[string]bool{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 1":  true,
		"INSERT INTO t VALUES (1)":                             true,
		"SET LOCAL work_mem = '8MB'":                           true,
		"SET work_mem = '8MB'":                                 false,
		"SELECT set_config('a.b', 'x', false)":                 false,
		"SELECT 1 FROM (SELECT set_config('a', 'b', false)) s": false,
		"BEGIN":                         false,
		"COMMIT":                        false,
		"END":                           false,
		"ROLLBACK":                      false,
		"ABORT":                         false,
		"PREPARE TRANSACTION 'x'":       false,
		"SAVEPOINT a":                   false,
		"PREPARE q AS SELECT 1":         false,
		"DEALLOCATE ALL":                false,
		"DECLARE c CURSOR FOR SELECT 1": false,
		"CLOSE ALL":                     false,
		"DISCARD ALL":                   false,
		"RESET ALL":                     false,
	}
	for sql, want := range cases {
		stmts := p.Parse(sql).Statements()
		if len(stmts) != 1 {
			t.Fatalf("%s: %d statements", sql, len(stmts))
		}
		if got := Inert(stmts[0]); got != want {
			t.Errorf("Inert(%s) = %v, want %v", sql, got, want)
		}
	}
	if !Inert(Stmt{}) {
		t.Error("a statement without a tree (a text that did not parse) must be inert")
	}
	local := map[string]*Parsed{}
	var buf []byte
	for i, sql := range []string{"SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 2", "COMMIT"} {
		parsed := p.ParseLocal(sql, local, &buf, func(*Parsed) bool { return true }, nil)
		if i == 1 && !parsed.Shaped() {
			t.Fatalf("%s: not answered from its shape", sql)
		}
		if st := parsed.Statements(); len(st) != 1 || Inert(st[0]) != (i < 2) {
			t.Errorf("%s: statements %+v, inert %v", sql, st, i < 2)
		}
	}
}
