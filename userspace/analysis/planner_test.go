package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func judge(t *testing.T, p *Planner, sql string, oids ...uint32) Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := p.Judge(ctx, sql, oids)
	if err != nil {
		t.Fatalf("Judge(%q): %v", sql, err)
	}
	if d.Source != SourcePlanner || d.Origin != SourcePlanner || d.Decided.IsZero() {
		t.Errorf("Judge(%q): source %q origin %q decided %v", sql, d.Source, d.Origin, d.Decided)
	}
	t.Logf("%s\n  verdict %s check %q\n  reason: %s\n  suggestion: %s\n  evidence: %s",
		sql, d.Verdict, d.Check, d.Reason, d.Suggestion, d.Evidence)
	return d
}

func wantInefficient(t *testing.T, d Decision, check string, reasonParts ...string) {
	t.Helper()
	if d.Verdict != Inefficient || d.Check != check {
		t.Fatalf("verdict %s check %q, want inefficient %q (reason: %s)", d.Verdict, d.Check, check, d.Reason)
	}
	for _, part := range reasonParts {
		if !strings.Contains(d.Reason, part) {
			t.Errorf("reason %q does not contain %q", d.Reason, part)
		}
	}
}

func wantEfficient(t *testing.T, d Decision, reasonParts ...string) {
	t.Helper()
	if d.Verdict != Efficient || d.Check != "" {
		t.Fatalf("verdict %s check %q, want efficient (reason: %s)", d.Verdict, d.Check, d.Reason)
	}
	for _, part := range reasonParts {
		if !strings.Contains(d.Reason, part) {
			t.Errorf("reason %q does not contain %q", d.Reason, part)
		}
	}
}

func TestPlannerSeqScanOfBigTable(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	d := judge(t, p, "SELECT * FROM pl_big WHERE note = 'n1'")
	wantInefficient(t, d, PlanCheckSeqScan,
		"sequential scan of public.pl_big, about 2,000,000 rows", "filter on (note = $1::text)")
	if strings.Contains(d.Reason+d.Evidence, "'n1'") {
		t.Errorf("the statement's constant is in the decision: %+v", d)
	}
	if !strings.Contains(d.Evidence, "Seq Scan on public.pl_big") || !strings.Contains(d.Evidence, "table rows 2000000") {
		t.Errorf("evidence %q lacks the node and the table's rows", d.Evidence)
	}
	if want := "an index on public.pl_big (note) would serve this filter (not checked: hypopg is not installed)"; d.Suggestion != want {
		t.Errorf("suggestion %q, want %q", d.Suggestion, want)
	}

	d = judge(t, p, "SELECT payload FROM pl_big")
	wantInefficient(t, d, PlanCheckSeqScan, "sequential scan of public.pl_big, about 2,000,000 rows, no filter")

	// An existing index the planner does not use is not suggested again.
	d = judge(t, p, "SELECT * FROM pl_big WHERE grp > 10")
	wantInefficient(t, d, PlanCheckSeqScan, "filter on (grp > $1)")
	if !strings.Contains(d.Suggestion, "starting with grp exists") {
		t.Errorf("suggestion %q", d.Suggestion)
	}
}

func TestPlannerPartitions(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	d := judge(t, p, "SELECT * FROM pl_parted WHERE note = 'n1'")
	wantInefficient(t, d, PlanCheckSeqScan, "sequential scans of 4 relations (public.pl_parted_1, public.pl_parted_2, public.pl_parted_3, …), "+
		"about 1,600,000 rows in all, filter on (note = $1::text)")
	if !strings.HasPrefix(d.Suggestion, "an index on (note) in each of these relations would serve this filter") {
		t.Errorf("suggestion %q", d.Suggestion)
	}
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_parted WHERE id = 5"))
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_parted WHERE id < 25000 AND note = 'n1'"), "sequential scan of public.pl_parted_1, about 400,000 rows")
}

func TestPlannerEfficientStatements(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big WHERE id = 42"), "index scan of public.pl_big using pl_big_pkey, about 1 row")
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_small WHERE name = 's1'"), "sequential scan of public.pl_small, about 500 rows")
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_small s JOIN pl_big b ON b.id = s.id WHERE s.id < 20"))
	// A LIMIT stops the scan early: the planner's fractional cost says so.
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big LIMIT 10"))
	wantEfficient(t, judge(t, p, "VALUES (1), (2)"), "it reads no table")
	wantEfficient(t, judge(t, p, "TABLE pl_small"))
	wantEfficient(t, judge(t, p, "(SELECT id FROM pl_small) UNION (SELECT id FROM pl_big WHERE id = 1)"))
	// Row locks are taken when a statement runs, not when it is planned.
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big WHERE id = 7 FOR UPDATE"))
}

func TestPlannerLimitWithBigOffset(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	d := judge(t, p, "SELECT * FROM pl_big OFFSET 1500000 LIMIT 10")
	wantInefficient(t, d, PlanCheckSeqScan, "about 1,500,000 of them read before the LIMIT is reached")
}

func TestPlannerNestedLoop(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	d := judge(t, p, "SELECT count(*) FROM pl_pair a JOIN pl_pair b ON a.x < b.x")
	wantInefficient(t, d, PlanCheckNestedLoop, "nested loop joins about 2,000 rows from public.pl_pair",
		"about 4,000,000 row pairs")
}

func TestPlannerHashAndSort(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	d := judge(t, p, "SELECT g % 10, count(*) FROM generate_series(1, 5000000) g GROUP BY 1")
	wantInefficient(t, d, PlanCheckHash, "hash aggregate over about 5,000,000 rows from function generate_series()")
	d = judge(t, p, "SELECT * FROM generate_series(1, 5000000) g ORDER BY g DESC")
	wantInefficient(t, d, PlanCheckSort, "sort of about 5,000,000 rows from function generate_series()")
	// An IN (subquery) of 2,000,000 rows is hashed (its Hash is small: the
	// aggregate ahead of it has only 200 groups).
	d = judge(t, p, "SELECT count(*) FROM generate_series(1, 5000000) a WHERE a IN (SELECT g FROM generate_series(1, 2000000) g)")
	wantInefficient(t, d, PlanCheckHash, "hash aggregate over about 2,000,000 rows from function generate_series()")
}

func TestPlannerCostThreshold(t *testing.T) {
	sql := "SELECT * FROM pl_big WHERE note = 'n1'"
	p, _ := newTestPlanner(t, PlannerOptions{Thresholds: Thresholds{MaxRows: 1e12, MaxCost: 1000}})
	wantInefficient(t, judge(t, p, sql), PlanCheckCost, "is at or above the limit of 1,000")
	p, _ = newTestPlanner(t, PlannerOptions{Thresholds: Thresholds{MaxRows: 1e12}})
	wantEfficient(t, judge(t, p, sql))
}

func TestPlannerParameters(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big WHERE id = $1"), "pl_big_pkey")
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big WHERE id = $1", 23), "pl_big_pkey")
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_big WHERE id = $1 AND note = $2", 0, 25))
	d := judge(t, p, "SELECT * FROM pl_big WHERE note = $1", 0)
	wantInefficient(t, d, PlanCheckSeqScan, "sequential scan of public.pl_big", "filter on (note = $1)")
	if !strings.Contains(d.Suggestion, "an index on public.pl_big (note)") {
		t.Errorf("suggestion %q", d.Suggestion)
	}
	// A generic plan: the parameter's value cannot make it look selective.
	wantInefficient(t, judge(t, p, "SELECT * FROM pl_big WHERE note <> $1 ORDER BY payload LIMIT $2"), PlanCheckSeqScan)
}

func TestPlannerSubplansAndCTEs(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	wantInefficient(t, judge(t, p, "WITH x AS MATERIALIZED (SELECT * FROM pl_big WHERE grp > 10) SELECT count(*) FROM x"),
		PlanCheckSeqScan, "public.pl_big")
	wantInefficient(t, judge(t, p, "WITH x AS (SELECT * FROM pl_big) SELECT * FROM pl_small s JOIN x ON x.note = s.name"),
		PlanCheckSeqScan, "public.pl_big")
	wantInefficient(t, judge(t, p, "SELECT * FROM pl_small WHERE name IN (SELECT note FROM pl_big WHERE payload LIKE '%x%')"),
		PlanCheckSeqScan, "public.pl_big")
	wantInefficient(t, judge(t, p, "SELECT * FROM pl_small WHERE EXISTS (SELECT 1 FROM pl_big b WHERE b.payload = pl_small.name)"),
		PlanCheckSeqScan, "public.pl_big")
	// A correlated subquery runs once per outer row: 500 scans of 10,000 rows.
	d := judge(t, p, "SELECT s.id, (SELECT count(*) FROM pl_mid m WHERE m.grp = s.id) FROM pl_small s")
	wantInefficient(t, d, PlanCheckSeqScan, "sequential scan of public.pl_mid, about 10,000 rows, repeated about 500 times")
	// ... which is fine when the subquery reads an index.
	wantEfficient(t, judge(t, p, "SELECT s.id, (SELECT note FROM pl_big b WHERE b.id = s.id) FROM pl_small s"))
	// An uncorrelated EXISTS stops at the first row, as LIMIT 1 does: about
	// 2,000 rows match, so about 1,000 are read before one does ...
	wantEfficient(t, judge(t, p, "SELECT EXISTS (SELECT 1 FROM pl_big WHERE note = 'n1')"))
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_small WHERE id < 5 AND EXISTS (SELECT 1 FROM pl_big WHERE grp > 7)"))
	// ... but when the planner expects no match, the whole table is read.
	wantInefficient(t, judge(t, p, "SELECT EXISTS (SELECT 1 FROM pl_big WHERE payload = 'none')"),
		PlanCheckSeqScan, "sequential scan of public.pl_big, about 2,000,000 rows")
	// A scalar subquery in an InitPlan still reads what it aggregates.
	wantInefficient(t, judge(t, p, "SELECT (SELECT count(*) FROM pl_big WHERE note = 'n1') > 0"),
		PlanCheckSeqScan, "sequential scan of public.pl_big, about 2,000,000 rows")
}

func TestPlannerRefusesWhatIsNotOneRead(t *testing.T) {
	p, _ := newTestPlanner(t, PlannerOptions{})
	for _, sql := range []string{
		"DELETE FROM pl_log",
		"SELECT 1; SELECT 2",
		"SELECT 1; DELETE FROM pl_log",
		"SELECT * INTO pl_copy FROM pl_small",
		"WITH d AS (DELETE FROM pl_log RETURNING *) SELECT * FROM d",
		"EXPLAIN ANALYZE SELECT 1",
		"",
	} {
		_, err := p.Judge(context.Background(), sql, nil)
		if !errors.Is(err, ErrNotRead) {
			t.Errorf("Judge(%q): %v, want ErrNotRead", sql, err)
		}
	}
	if _, err := p.Judge(context.Background(), "SELEC 1", nil); !errors.Is(err, ErrSyntax) {
		t.Errorf("syntax error: %v, want ErrSyntax", err)
	}
}

func TestPlannerTypedErrors(t *testing.T) {
	pg := plannerDB(t)
	p, _ := newTestPlanner(t, PlannerOptions{})
	ctx := context.Background()
	cases := []struct {
		sql   string
		oids  []uint32
		kind  error
		state string
	}{
		{"SELECT * FROM pl_nope", nil, ErrRelationMissing, "42P01"},
		{"SELECT * FROM pl_nope WHERE id = $1", nil, ErrRelationMissing, "42P01"},
		{"SELECT * FROM nosuchschema.t", nil, ErrRelationMissing, "42P01"},
		{"SELECT * FROM pl_secret", nil, ErrPermissionDenied, "42501"},
		{"SELECT * FROM pl_secret WHERE id = $1", nil, ErrPermissionDenied, "42501"},
		{"SELECT nope FROM pl_small", nil, ErrExplain, "42703"},
		{"SELECT * FROM pl_small WHERE $1 IS NULL", nil, ErrExplain, "42P18"},
	}
	for _, c := range cases {
		_, err := p.Judge(ctx, c.sql, c.oids)
		var pgErr *pgconn.PgError
		var pe *PlanError
		if !errors.Is(err, c.kind) || !errors.As(err, &pgErr) || pgErr.Code != c.state || !errors.As(err, &pe) || pe.SQLState != c.state {
			t.Errorf("Judge(%q): %v, want kind %v SQLSTATE %s", c.sql, err, c.kind, c.state)
		}
	}

	// A client's temporary table does not exist for the proxy's account.
	client, err := pgx.Connect(ctx, pg.DSN("scram_user", "scram_pass", "testdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	if _, err := client.Exec(ctx, "CREATE TEMP TABLE pl_tmp (id int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Judge(ctx, "SELECT * FROM pl_tmp", nil); !errors.Is(err, ErrRelationMissing) {
		t.Errorf("client's temp table: %v, want ErrRelationMissing", err)
	}
}

// lockTable holds an ACCESS EXCLUSIVE lock on table in another session
// until the test ends: planning a statement on it must wait for the lock.
func lockTable(t *testing.T, table string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, plannerDB(t).SuperuserDSN("testdb"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx); _ = conn.Close(ctx) })
}

func TestPlannerTimeout(t *testing.T) {
	p, pool := newTestPlanner(t, PlannerOptions{StatementTimeout: 200 * time.Millisecond})
	pid := backendPID(t, pool)
	lockTable(t, "pl_locked")
	for _, sql := range []string{"SELECT * FROM pl_locked", "SELECT * FROM pl_locked WHERE id = $1"} {
		start := time.Now()
		_, err := p.Judge(context.Background(), sql, nil)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("Judge(%q) under a lock: %v, want ErrTimeout", sql, err)
		}
		if elapsed > 2*time.Second {
			t.Errorf("Judge(%q) took %v with a 200ms statement timeout", sql, elapsed)
		}
		t.Logf("%s: %v after %v", sql, err, elapsed)
	}
	assertCleanConn(t, pool, pid)
}

func TestPlannerContextDeadline(t *testing.T) {
	p, pool := newTestPlanner(t, PlannerOptions{StatementTimeout: 10 * time.Second})
	pid := backendPID(t, pool)
	lockTable(t, "pl_locked")
	for _, sql := range []string{"SELECT * FROM pl_locked", "SELECT * FROM pl_locked WHERE id = $1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		start := time.Now()
		_, err := p.Judge(ctx, sql, nil)
		cancel()
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Judge(%q) past its deadline: %v, want ErrTimeout and context.DeadlineExceeded", sql, err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("Judge(%q) took %v with a 150ms deadline", sql, elapsed)
		}
	}
	// The cancel request stopped the statement; the connection was cleaned
	// up and kept, and no cancel reaches the next statement on it.
	assertCleanConn(t, pool, pid)
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_small WHERE id = $1"))
}

// TestPlannerReadOnly: planning folds IMMUTABLE functions with constant
// arguments, so a function that lies about its volatility runs at planning
// time. In the planner's READ ONLY transaction its writes are refused.
func TestPlannerReadOnly(t *testing.T) {
	pg := plannerDB(t)
	p, pool := newTestPlanner(t, PlannerOptions{})
	ctx := context.Background()
	seq := func() int64 {
		t.Helper()
		var v int64
		if err := pool.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pl_seq").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	logRows := func() int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pl_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Without READ ONLY, planning alone advances the sequence, and ROLLBACK
	// does not undo it: this is what the planner must prevent.
	conn, err := pgx.Connect(ctx, pg.DSN("scram_user", "scram_pass", "testdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	before := seq()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "EXPLAIN SELECT pl_lying_nextval()"); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if after := seq(); after != before+1 {
		t.Fatalf("control: EXPLAIN in a read-write transaction moved pl_seq %d → %d, want +1", before, after)
	}

	before, beforeLog := seq(), logRows()
	for _, sql := range []string{"SELECT pl_lying_nextval()", "SELECT * FROM pl_small WHERE id = pl_lying_write()"} {
		_, err = p.Judge(ctx, sql, nil)
		var pgErr *pgconn.PgError
		if !errors.Is(err, ErrExplain) || !errors.As(err, &pgErr) || pgErr.Code != "25006" {
			t.Errorf("Judge(%q): %v, want ErrExplain with SQLSTATE 25006 (read_only_sql_transaction)", sql, err)
		}
		t.Logf("%s: %v", sql, err)
	}
	if after := seq(); after != before {
		t.Errorf("the planner advanced pl_seq %d → %d", before, after)
	}
	if n := logRows(); n != beforeLog {
		t.Errorf("the planner wrote to pl_log: %d → %d rows", beforeLog, n)
	}
}

// backendPID is the PID of the pool's (single) connection.
func backendPID(t *testing.T, pool *pgxpool.Pool) uint32 {
	t.Helper()
	c, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	return c.Conn().PgConn().PID()
}

// assertCleanConn checks that the pool's connection is still the one with
// backend pid, idle, and holds no prepared statement.
func assertCleanConn(t *testing.T, pool *pgxpool.Pool, pid uint32) {
	t.Helper()
	ctx := context.Background()
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if got := c.Conn().PgConn().PID(); got != pid {
		t.Errorf("the planner's connection was replaced (backend %d, was %d)", got, pid)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d prepared statements left on the planner's connection", n)
	}
	if s := c.Conn().PgConn().TxStatus(); s != 'I' {
		t.Errorf("transaction status %q, want idle", s)
	}
}

func TestPlannerNoPreparedStatementLeak(t *testing.T) {
	p, pool := newTestPlanner(t, PlannerOptions{StatementTimeout: 200 * time.Millisecond})
	pid := backendPID(t, pool)
	lockTable(t, "pl_locked")
	ctx := context.Background()
	for _, c := range []struct {
		sql  string
		oids []uint32
	}{
		{"SELECT * FROM pl_big WHERE id = $1", nil},                     // success
		{"SELECT * FROM pl_big WHERE note = $1", []uint32{25}},          // success, facts read
		{"SELECT * FROM pl_nope WHERE id = $1", nil},                    // Parse fails
		{"SELECT nope FROM pl_small WHERE id = $1", nil},                // Parse fails
		{"SELECT * FROM pl_small WHERE $1 IS NULL", nil},                // type cannot be inferred
		{"SELECT * FROM pl_secret WHERE id = $1", nil},                  // Parse succeeds, EXPLAIN EXECUTE fails
		{"SELECT * FROM pl_small WHERE id = $1", []uint32{23, 25}},      // more types than uses
		{"SELECT * FROM pl_locked WHERE id = $1", nil},                  // lock_timeout in Parse
		{"SELECT * FROM pl_small WHERE id = $1", []uint32{1184}},        // timestamptz = int: no operator
		{"SELECT * FROM pl_small WHERE id = $1::int", []uint32{999999}}, // unknown type OID
	} {
		_, err := p.Judge(ctx, c.sql, c.oids)
		t.Logf("%s %v: %v", c.sql, c.oids, err)
	}
	assertCleanConn(t, pool, pid)
}

func TestPlannerHypoPG(t *testing.T) {
	pg := plannerDB(t)
	var available bool
	if err := pgxQueryRow(t, pg, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')", &available); err != nil {
		t.Fatal(err)
	}
	if !available {
		harness.Unavailable(t, "the hypopg extension is not installed (Debian package postgresql-15-hypopg)")
	}
	if err := pg.SuperuserExec("CREATE EXTENSION hypopg"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.SuperuserExec("DROP EXTENSION hypopg"); err != nil {
			t.Error(err)
		}
	})
	p, pool := newTestPlanner(t, PlannerOptions{})
	pid := backendPID(t, pool)

	for _, c := range []struct {
		sql  string
		oids []uint32
	}{
		{"SELECT * FROM pl_big WHERE note = 'n1'", nil},
		{"SELECT * FROM pl_big WHERE note = $1", nil},
		{"SELECT * FROM pl_big WHERE note = $1 AND payload > $2", []uint32{25, 25}},
	} {
		d := judge(t, p, c.sql, c.oids...)
		wantInefficient(t, d, PlanCheckSeqScan, "sequential scan of public.pl_big")
		if want := "(checked with a hypothetical index): CREATE INDEX ON public.pl_big (note"; !strings.Contains(d.Suggestion, want) {
			t.Errorf("%s: suggestion %q, want it to contain %q", c.sql, d.Suggestion, want)
		}
	}

	// The planner would not use an index for a filter that keeps every row.
	d := judge(t, p, "SELECT * FROM pl_big WHERE note > 'a'")
	wantInefficient(t, d, PlanCheckSeqScan, "filter on (note > $1::text)")
	if want := "an index on public.pl_big (note) would not help: the plan does not use it (checked with a hypothetical index)"; !strings.HasPrefix(d.Suggestion, want) {
		t.Errorf("suggestion %q, want it to start with %q", d.Suggestion, want)
	}

	// The model tier's tool: an index on note would serve the filter, one
	// on payload would not.
	ctx := context.Background()
	if used, err := p.TryIndex(ctx, "SELECT * FROM pl_big WHERE note = 'n1'", nil, "public", "pl_big", []string{"note"}); err != nil || !used {
		t.Errorf("TryIndex(note): %v %v, want used", used, err)
	}
	if used, err := p.TryIndex(ctx, "SELECT * FROM pl_big WHERE note = 'n1'", nil, "public", "pl_big", []string{"payload"}); err != nil || used {
		t.Errorf("TryIndex(payload): %v %v, want not used", used, err)
	}
	if _, err := p.TryIndex(ctx, "SELECT * FROM pl_big WHERE note = 'n1'", nil, "public", "pl_big", nil); err == nil {
		t.Error("TryIndex without columns")
	}

	// Turned off, it is not consulted.
	off := NewPlanner(pool, PlannerOptions{HypoPG: HypoPGOff})
	d = judge(t, off, "SELECT * FROM pl_big WHERE note = 'n1'")
	if want := "an index on public.pl_big (note) would serve this filter (not checked: hypothetical index checks are off)"; d.Suggestion != want {
		t.Errorf("suggestion %q, want %q", d.Suggestion, want)
	}

	// No hypothetical index outlives a decision, and the connection was kept.
	assertCleanConn(t, pool, pid)
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM hypopg_list_indexes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d hypothetical indexes left on the planner's connection", n)
	}
	if got := backendPID(t, pool); got != pid {
		t.Errorf("connection replaced: %d, was %d", got, pid)
	}
}

// TestPlannerConnectionLost: a planning connection that dies mid-plan gives
// an error (not a hang), and the pool replaces it.
func TestPlannerConnectionLost(t *testing.T) {
	pg := plannerDB(t)
	p, pool := newTestPlanner(t, PlannerOptions{StatementTimeout: 10 * time.Second})
	pid := backendPID(t, pool)
	lockTable(t, "pl_locked")
	done := make(chan error, 1)
	go func() {
		_, err := p.Judge(context.Background(), "SELECT * FROM pl_locked WHERE id = $1", nil)
		done <- err
	}()
	// Wait until the planner waits for the lock, then end its backend.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var waiting bool
		err := pgxQueryRow(t, pg, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock')", &waiting, pid)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the planner never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := pg.SuperuserExec("SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrExplain) {
			t.Errorf("Judge on a terminated connection: %v, want ErrExplain", err)
		}
		t.Logf("terminated: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Judge did not return after its connection was terminated")
	}
	if got := backendPID(t, pool); got == pid {
		t.Errorf("the terminated connection (backend %d) went back to the pool", pid)
	}
	wantEfficient(t, judge(t, p, "SELECT * FROM pl_small WHERE id = $1"))
}

// pgxQueryRow runs a one-row query as the superuser and scans one value.
func pgxQueryRow(t *testing.T, pg *harness.Cluster, sql string, dst any, args ...any) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN("testdb"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dst)
}
