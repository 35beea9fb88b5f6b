package session

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// run feeds the tracker a Query as the server answers it: each statement
// completes (or the first failing one errors), then ReadyForQuery.
func (t *tracker) runForTest(p *sqlparse.Parser, sql string, failAt int, status byte) {
	for i, s := range p.Parse(sql).Statements() {
		if i == failAt {
			t.failed()
			break
		}
		tag := strings.ToUpper(strings.Fields(s.Text)[0])
		if tag == "COMMIT" || tag == "END" {
			tag = "COMMIT"
		}
		t.completed(s, []byte(tag), nil)
	}
	t.ready(status)
}

func TestTrackerSettingsFollowTransactions(t *testing.T) {
	p := sqlparse.NewParser(0)
	tr := newTracker()
	steps := []struct {
		sql    string
		failAt int
		status byte
	}{
		{"SET search_path = app", -1, 'I'},
		{"SET work_mem = '8MB'; SELECT 1/0", 1, 'I'}, // implicit transaction rolled back
		{"BEGIN", -1, 'T'},
		{"SET lock_timeout = '1s'", -1, 'T'},
		{"SAVEPOINT s", -1, 'T'},
		{"SET datestyle = 'ISO'", -1, 'T'},
		{"SELECT broken", 0, 'E'},
		{"ROLLBACK TO SAVEPOINT s", -1, 'T'},
		{"COMMIT", -1, 'I'},
		{"BEGIN; SET timezone = 'UTC'; ROLLBACK", -1, 'I'},
		{"SET search_path = other", -1, 'I'}, // replaces the first
		{"SET statement_timeout = 5000; RESET statement_timeout", -1, 'I'},
	}
	for _, s := range steps {
		tr.runForTest(p, s.sql, s.failAt, s.status)
	}
	got := strings.Join(tr.state().Settings, "|")
	want := "SET lock_timeout = '1s'|SET search_path = other"
	if got != want {
		t.Fatalf("settings\n got %s\nwant %s", got, want)
	}
	tr.runForTest(p, "RESET ALL", -1, 'I')
	if s := tr.state(); len(s.Settings) != 0 || s.Uncertain {
		t.Fatalf("after RESET ALL: %+v", s)
	}
	tr.runForTest(p, "SELECT set_config($1, 'x', false)", -1, 'I')
	if !tr.state().Uncertain {
		t.Fatal("a set_config with a parameter name cannot be replayed and must be flagged")
	}
}

func TestTrackerStatementsAndPortals(t *testing.T) {
	tr := newTracker()
	a := &prepared{name: "a", sql: "SELECT 1"}
	tr.sent(a)
	if c := tr.candidates(nil, "a"); len(c) != 1 || c[0] != a {
		t.Fatal("a Parse in flight is what a Bind of its name uses")
	}
	tr.parseAnswered(a, true, true)
	dup := &prepared{name: "a", sql: "SELECT 2"}
	tr.sent(dup)
	tr.parseAnswered(dup, false, true) // 42P05: the old one stays
	if got := tr.candidates(nil, "a"); len(got) != 1 || got[0] != a {
		t.Fatalf("after a failed duplicate Parse: %+v", got)
	}
	un := &prepared{name: "", sql: "SELECT 3"}
	tr.sent(un)
	tr.parseAnswered(un, true, true)
	bad := &prepared{name: "", sql: "SELEC"}
	tr.sent(bad)
	tr.parseAnswered(bad, false, true)
	if tr.candidates(nil, "") != nil {
		t.Fatal("a failed Parse of the unnamed statement drops the old one, as PostgreSQL does")
	}
	pt := &portal{name: "c", stmtName: "a"}
	tr.bindAnswered(pt)
	if tr.portal("c").prep != a {
		t.Fatal("portal not bound to its statement")
	}
	tr.ready('T')
	tr.ready('E')
	if tr.portal("c") == nil {
		t.Fatal("portals live until the transaction ends (ROLLBACK TO can revive them in a failed block)")
	}
	tr.ready('I')
	if tr.portal("c") != nil {
		t.Fatal("portal outlived its transaction")
	}
	st := tr.state()
	if len(st.Prepared) != 1 || st.Prepared[0].Name != "a" {
		t.Fatalf("prepared %+v (the unnamed statement is not replayed)", st.Prepared)
	}
	tr.closeAnswered('S', "a")
	if len(tr.state().Prepared) != 0 {
		t.Fatal("Close did not forget the statement")
	}
}

// The notes of unanswered DECLAREs and PREPAREs are bounded: a client that
// sends ever new names of cursors or statements that fail does not grow them.
func TestTrackerInFlightNotesAreBounded(t *testing.T) {
	tr := newTracker()
	for i := range 3 * maxInFlight {
		name := fmt.Sprint("c", i)
		tr.declare(name, nil)
		tr.prepare(name)
	}
	if len(tr.declared) > maxInFlight || len(tr.preparing) > maxInFlight {
		t.Fatalf("%d DECLAREs and %d PREPAREs noted, want at most %d each", len(tr.declared), len(tr.preparing), maxInFlight)
	}
	if _, ok := tr.declared[fmt.Sprint("c", 3*maxInFlight-1)]; !ok || !tr.preparing[fmt.Sprint("c", 3*maxInFlight-1)] {
		t.Fatal("the latest names were not kept")
	}
}
