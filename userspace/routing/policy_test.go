package routing

import (
	"context"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

// memCache is a decision cache preloaded with verdicts by fingerprint.
type memCache map[string]analysis.Decision

func (m memCache) Get(_ context.Context, _, key string) (analysis.Decision, analysis.Source, bool) {
	d, ok := m[key]
	return d, analysis.SourceMemory, ok
}
func (m memCache) Set(context.Context, string, string, analysis.Decision) {}

func newPolicy(t *testing.T, mode string, inefficient ...string) (*Policy, *[]Issue, *sqlparse.Parser) {
	t.Helper()
	parser := sqlparse.NewParser(64)
	cache := memCache{}
	for _, sql := range inefficient {
		cache[parser.Parse(sql).Fingerprint()] = analysis.Decision{Verdict: analysis.Inefficient, Reason: "too slow", Evidence: "plan", Suggestion: "an index", Source: analysis.SourcePlanner}
	}
	for _, sql := range []string{"SELECT 1", "SELECT * FROM t WHERE id = 1"} {
		cache[parser.Parse(sql).Fingerprint()] = analysis.Decision{Verdict: analysis.Efficient, Source: analysis.SourcePlanner}
	}
	a := &analysis.Analyzer{Cache: cache}
	a.Init()
	var issues []Issue
	p := &Policy{Mode: mode, Analyzer: a, Parser: parser, ExemptRoles: map[string]bool{"batch": true},
		Issues: func(i Issue) { issues = append(issues, i) }}
	return p, &issues, parser
}

func decide(p *Policy, parser *sqlparse.Parser, proto stmt.Protocol, sql string, facts *stmt.Facts) stmt.Decision {
	var st stmt.Statement
	st.Reset(proto, "", "", sql, nil, facts, parser)
	return p.Decide(context.Background(), &st)
}

func TestModes(t *testing.T) {
	slow := "SELECT * FROM big WHERE note = 'x'"
	facts := &stmt.Facts{User: "alice", Database: "app"}
	for _, c := range []struct {
		mode   string
		action stmt.Action
		issue  string
	}{{Blocking, stmt.Refuse, ActionBlocked}, {NonBlocking, stmt.Allow, ActionLogged}, {Shunt, stmt.Route, ActionShunted}} {
		p, issues, parser := newPolicy(t, c.mode, slow)
		d := decide(p, parser, stmt.Simple, "SELECT * FROM big WHERE note = 'other'", facts)
		if d.Action != c.action || d.Verdict != "inefficient" || d.Source != "memory" {
			t.Fatalf("%s: %+v", c.mode, d)
		}
		if c.mode == Blocking && (d.Err.Code != "54000" || d.Err.Message != "pgproxy blocked this query: too slow" || d.Err.Detail != "plan" || d.Err.Hint != "an index") {
			t.Fatalf("blocking error %+v", d.Err)
		}
		if c.mode == Shunt && d.Leg != "shunt" {
			t.Fatalf("shunt leg %q", d.Leg)
		}
		if len(*issues) != 1 || (*issues)[0].Action != c.issue || (*issues)[0].User != "alice" || (*issues)[0].Identity != "" {
			t.Fatalf("%s: issues %+v", c.mode, *issues)
		}
		// A Parse is decided too, but recorded only when it runs (Bind).
		decide(p, parser, stmt.Parse, slow, facts)
		if c.mode != Blocking && len(*issues) != 1 {
			t.Fatalf("%s: a Parse was recorded as run", c.mode)
		}
		if d := decide(p, parser, stmt.Simple, "SELECT 2", facts); d.Action != stmt.Allow || d.Verdict != "efficient" {
			t.Fatalf("%s: efficient statement %+v", c.mode, d)
		}
	}
}

func TestExemptRolesAndUsers(t *testing.T) {
	slow := "SELECT * FROM big WHERE note = 'x'"
	p, issues, parser := newPolicy(t, Blocking, slow)
	if d := decide(p, parser, stmt.Simple, slow, &stmt.Facts{Identity: "ann@example.com", Roles: []string{"reader", "batch"}}); d.Action != stmt.Allow || d.Source != SourceExempt {
		t.Fatalf("token role exempt: %+v", d)
	}
	if d := decide(p, parser, stmt.Simple, slow, &stmt.Facts{User: "batch"}); d.Action != stmt.Allow {
		t.Fatalf("passthrough user exempt: %+v", d)
	}
	if d := decide(p, parser, stmt.Simple, slow, &stmt.Facts{Identity: "bob@example.com", User: "batch"}); d.Action != stmt.Refuse {
		t.Fatalf("a token session is exempt by its roles, not by the service account's name: %+v", d)
	}
	if len(*issues) != 1 {
		t.Fatalf("issues %+v", *issues)
	}
}

func TestShuntModeRefusesWritesAndBlocks(t *testing.T) {
	p, _, parser := newPolicy(t, Shunt)
	facts := &stmt.Facts{User: "alice"}
	refused := []string{
		"BEGIN", "START TRANSACTION", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
		"CREATE TABLE x (a int)", "DROP TABLE t", "TRUNCATE t", "SELECT * FROM t FOR UPDATE", "SELECT * INTO x FROM t",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "COPY t FROM STDIN", "EXPLAIN ANALYZE DELETE FROM t",
		"PREPARE p AS INSERT INTO t VALUES (1)", "DO $$BEGIN END$$", "CALL p()", "VACUUM t", "LOCK t",
		"SELECT 1; INSERT INTO t VALUES (1)",
	}
	for _, sql := range refused {
		if d := decide(p, parser, stmt.Simple, sql, facts); d.Action != stmt.Refuse || d.Err.Code != "25006" {
			t.Errorf("%s: %+v", sql, d)
		}
	}
	allowed := []string{
		"SELECT 1", "SET search_path = app", "SHOW work_mem", "RESET ALL", "COMMIT", "PREPARE q AS SELECT 1",
		"EXECUTE q", "DEALLOCATE q", "EXPLAIN SELECT 1", "COPY (SELECT 1) TO STDOUT", "COPY t TO STDOUT",
		"LISTEN ch", "DECLARE c CURSOR FOR SELECT 1", "FETCH ALL c", "CLOSE c",
	}
	for _, sql := range allowed {
		if d := decide(p, parser, stmt.Simple, sql, facts); d.Action == stmt.Refuse {
			t.Errorf("%s refused: %+v", sql, d.Err)
		}
	}
}

func TestSeveralStatementsAreEachJudged(t *testing.T) {
	slow := "SELECT * FROM big WHERE note = 'x'"
	p, _, parser := newPolicy(t, Blocking, slow)
	d := decide(p, parser, stmt.Simple, "SELECT 1; SELECT * FROM big WHERE note = 'y'", &stmt.Facts{})
	if d.Action != stmt.Refuse {
		t.Fatalf("an inefficient statement inside a Query of several: %+v", d)
	}
	ps, _, parser := newPolicy(t, Shunt, slow)
	if d := decide(ps, parser, stmt.Simple, "SET a.b = 1; SELECT * FROM big WHERE note = 'y'", &stmt.Facts{}); d.Action != stmt.Refuse || d.Err.Code != "54000" {
		t.Fatalf("shunt mode cannot split a Query: %+v", d)
	}
	if d := decide(ps, parser, stmt.Simple, "SELECT 1; SELECT * FROM big WHERE note = 'y'", &stmt.Facts{}); d.Action != stmt.Route {
		t.Fatalf("a Query that only reads goes to the shunt whole: %+v", d)
	}
}

// What the session may give again without asking: not an inefficient
// statement's decision (each execution is an issue), and for a Query only a
// decision that holds for every text of the shape.
func TestReusable(t *testing.T) {
	slow := "SELECT * FROM big WHERE note = 'x'"
	p, issues, parser := newPolicy(t, NonBlocking, slow)
	facts := &stmt.Facts{User: "alice", Database: "app"}
	for _, c := range []struct {
		proto stmt.Protocol
		sql   string
		want  bool
	}{
		{stmt.Simple, "SELECT * FROM t WHERE id = 1", true},
		{stmt.Bind, "SELECT * FROM t WHERE id = 1", true},
		{stmt.Simple, "SELECT * FROM big WHERE note = 'y'", false},    // inefficient: logged at every execution
		{stmt.Bind, "SELECT * FROM big WHERE note = 'y'", false},      // the same for a Bind
		{stmt.Simple, "SELECT * FROM t WHERE id = 1 OFFSET 5", false}, // the decision reads the constant
		{stmt.Simple, "SELECT 1; SELECT * FROM t WHERE id = 1", false},
	} {
		var st stmt.Statement
		st.Reset(c.proto, "", "", c.sql, nil, facts, parser)
		d := p.Decide(context.Background(), &st)
		if got := p.Reusable(&st, d); got != c.want {
			t.Errorf("%v %q (%+v): Reusable %v, want %v", c.proto, c.sql, d, got, c.want)
		}
	}
	before := len(*issues)
	var reused []string
	p.OnReuse = func(verdict, source string) { reused = append(reused, verdict+"/"+source) }
	var st stmt.Statement
	st.Reset(stmt.Bind, "", "", "SELECT * FROM t WHERE id = 1", nil, facts, parser)
	if d := p.Reused(&st, stmt.Decision{Source: "planner", Verdict: "efficient"}); d.Source != "memory" || len(reused) != 1 || reused[0] != "efficient/memory" {
		t.Errorf("Reused: %+v, counted %v", d, reused)
	}
	if len(*issues) != before {
		t.Errorf("Reused recorded an issue")
	}
}
