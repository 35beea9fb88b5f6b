package reporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestNewOptions(t *testing.T) {
	ctx := context.Background()
	for name, opts := range map[string]Options{
		"malformed URL":    {URL: "postgres://u:p@[::1:5432/db"},
		"bad sslmode":      {URL: "postgres://u@127.0.0.1/db?sslmode=sometimes"},
		"no URL":           {},
		"URL and Config":   {URL: "postgres://127.0.0.1/db", Config: mustParse(t, "postgres://127.0.0.1/db")},
		"negative queue":   {URL: "postgres://127.0.0.1/db", QueueSize: -1},
		"backoff inverted": {URL: "postgres://127.0.0.1/db", Backoff: Backoff{Min: time.Second, Max: time.Millisecond}},
	} {
		if r, err := New(ctx, opts); err == nil {
			_ = r.Close(ctx)
			t.Errorf("%s: New succeeded", name)
		}
	}
	// A password in a malformed URL is not repeated in the error.
	_, err := New(ctx, Options{URL: "postgres://u:s3cret@[::1:5432/db"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("malformed URL error = %v", err)
	}
}

func mustParse(t *testing.T, url string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Metric(Metric{})
	r.Issue(Issue{})
	if s := r.Stats(); s != (Stats{}) {
		t.Errorf("Stats = %+v", s)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// TestNewDatabaseDown: New does not wait for or fail on a database that is
// down; records queue meanwhile.
func TestNewDatabaseDown(t *testing.T) {
	for name, url := range map[string]string{"refused": refusedURL(t), "black hole": blackHole(t)} {
		t0 := time.Now()
		r, err := New(context.Background(), fastOptions(url, nil))
		if err != nil {
			t.Fatalf("%s: New: %v", name, err)
		}
		if d := time.Since(t0); d > 100*time.Millisecond {
			t.Errorf("%s: New took %s", name, d)
		}
		r.Metric(Metric{Fingerprint: "x"})
		if q := r.Stats().Metrics.Queued; q != 1 {
			t.Errorf("%s: queued %d", name, q)
		}
		if d, err := closeWithin(r, 200*time.Millisecond); err == nil || d > time.Second {
			t.Errorf("%s: Close = %v after %s", name, err, d)
		}
	}
}

// TestWritesEveryColumn writes one record of each kind with every field set,
// and one with the zero values, and reads every column back.
func TestWritesEveryColumn(t *testing.T) {
	pg, db, url := newDatabase(t)
	rec := &recorder{}
	r := start(t, fastOptions(url, rec))

	at := time.Date(2025, 1, 31, 10, 0, 0, 123456000, time.UTC)
	r.Metric(Metric{
		RecordedAt: at, Fingerprint: "a1b2c3d4", QueryText: "SELECT * FROM orders WHERE note = 'secret' /* user 7 */",
		Identity: "alice@example.com", User: "svc_app", Database: "shop", Mode: "block", Action: "refuse",
		Verdict: "inefficient", DecisionSource: "planner", Analysis: 1500 * time.Microsecond,
		Backend: 0, Total: 2250 * time.Microsecond, Rows: 0, SQLState: "42501", Node: "", ConnID: 1,
	})
	before := time.Now()
	r.Metric(Metric{User: "bob", Database: "shop", Backend: 3 * time.Millisecond, Total: 4 * time.Millisecond, Rows: 17, Node: "primary", ConnID: 2})
	r.Metric(Metric{QueryText: "SELEC broken 'secret'", ConnID: 3})
	r.Issue(Issue{
		DetectedAt: at, Fingerprint: "a1b2c3d4", QueryText: "SELECT * FROM orders WHERE note = 'secret'",
		Identity: "alice@example.com", User: "svc_app", Database: "shop", Verdict: "inefficient",
		Reason:     "sequential scan of public.orders, about 2,000,000 rows, filter on note",
		Suggestion: "an index on orders(note) would serve this filter", Check: "seq_scan",
		Evidence: "Seq Scan on orders (rows=2000000)", Source: "memory", Origin: "planner", Action: "block", ConnID: 1,
	})
	r.Issue(Issue{Fingerprint: "e5", User: "bob", ConnID: 2})
	if _, err := closeWithin(r, 10*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after := time.Now()
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("write errors: %v", errs)
	}

	conn := superConn(t, pg, db)
	got := rowsOf(t, conn, metricsTable, "conn_id")
	want := [][]any{
		{at, "a1b2c3d4", "SELECT * FROM orders WHERE note = $1", "alice@example.com", "svc_app", "shop", "block", "refuse",
			"inefficient", "planner", 1.5, 0.0, 2.25, int64(0), "42501", "", int64(1), "test-proxy"},
		{nil, "", nil, "bob", "bob", "shop", "", "", "", "", 0.0, 3.0, 4.0, int64(17), "", "primary", int64(2), "test-proxy"}, // passthrough: identity is the user
		{nil, "", nil, "", "", "", "", "", "", "", 0.0, 0.0, 0.0, int64(0), "", "", int64(3), "test-proxy"},
	}
	compareRows(t, "query_metrics", got, want, before, after)

	got = rowsOf(t, conn, issuesTable, "conn_id")
	want = [][]any{
		{at, "a1b2c3d4", "SELECT * FROM orders WHERE note = $1", "alice@example.com", "svc_app", "shop", "inefficient",
			"sequential scan of public.orders, about 2,000,000 rows, filter on note",
			"an index on orders(note) would serve this filter", "seq_scan", "Seq Scan on orders (rows=2000000)",
			"memory", "planner", "block", int64(1), "test-proxy"},
		{nil, "e5", nil, "bob", "bob", "", "", "", "", "", "", "", "", "", int64(2), "test-proxy"},
	}
	compareRows(t, "query_issues", got, want, before, after)
	if s := r.Stats(); s.Metrics.Written != 3 || s.Issues.Written != 2 || s.Metrics.Dropped()+s.Issues.Dropped() != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestKeepQueryConstants writes the text as given, and leaves out a text
// longer than MaxQueryText.
func TestKeepQueryConstants(t *testing.T) {
	pg, db, url := newDatabase(t)
	opts := fastOptions(url, nil)
	opts.KeepQueryConstants = true
	opts.MaxQueryText = 100
	r := start(t, opts)
	r.Metric(Metric{QueryText: "SELECT 'kept' /* c */", ConnID: 1})
	r.Metric(Metric{QueryText: "SELECT '" + strings.Repeat("x", 100) + "'", ConnID: 2})
	if _, err := closeWithin(r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var texts []*string
	rows, _ := superConn(t, pg, db).Query(context.Background(), "SELECT query_text FROM pgproxy.query_metrics ORDER BY conn_id")
	texts, err := pgx.CollectRows(rows, pgx.RowTo[*string])
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 2 || texts[0] == nil || *texts[0] != "SELECT 'kept' /* c */" || texts[1] != nil {
		t.Errorf("query_text = %v", texts)
	}
}

func rowsOf(t *testing.T, conn *pgx.Conn, tbl table, order string) [][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT %s FROM %s ORDER BY %s",
		strings.Join(tbl.columnNames(), ", "), tbl.qualified(), order))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]any, error) { return row.Values() })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// compareRows compares rows column by column; a nil time in want means
// "filled in by Metric or Issue", between before and after.
func compareRows(t *testing.T, table string, got, want [][]any, before, after time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %v", table, len(got), len(want), got)
	}
	for i := range want {
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if j == 0 {
				gt, _ := g.(time.Time)
				if wt, ok := w.(time.Time); ok {
					if !gt.Equal(wt) {
						t.Errorf("%s row %d: time %v, want %v", table, i, gt, wt)
					}
				} else if gt.Before(before.Truncate(time.Microsecond)) || gt.After(after) {
					t.Errorf("%s row %d: time %v not between %v and %v", table, i, gt, before, after)
				}
				continue
			}
			if g != w {
				t.Errorf("%s row %d column %d: %#v, want %#v", table, i, j, g, w)
			}
		}
	}
}

// TestBatching: records are written in few COPYs, counted by the reporter and
// in the server's statement log; a lone record waits at most FlushInterval.
func TestBatching(t *testing.T) {
	pg, db, url := newDatabase(t)
	if err := pg.SuperuserExec("ALTER DATABASE " + db + " SET log_statement = 'all'"); err != nil {
		t.Fatal(err)
	}
	logStart := len(pg.Logs())
	opts := fastOptions(url, nil)
	opts.BatchSize = 1000
	opts.QueueSize = 5000
	opts.FlushInterval = time.Hour
	r := start(t, opts)
	for i := range 2500 {
		r.Metric(Metric{Fingerprint: "f", ConnID: uint64(i)})
	}
	for i := range 10 {
		r.Issue(Issue{Fingerprint: "f", ConnID: uint64(i)})
	}
	if _, err := closeWithin(r, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if s.Metrics.Written != 2500 || s.Issues.Written != 10 {
		t.Fatalf("written %d metrics, %d issues", s.Metrics.Written, s.Issues.Written)
	}
	// 1000 + 1000 full batches, then 500 with the 10 issues at Close.
	if s.Metrics.Batches != 3 || s.Issues.Batches != 1 {
		t.Errorf("batches: %d metrics, %d issues; want 3 and 1", s.Metrics.Batches, s.Issues.Batches)
	}
	copies := map[Table]int{}
	for line := range strings.SplitSeq(pg.Logs()[logStart:], "\n") {
		if !strings.Contains(line, "@"+db+" ") || !strings.Contains(line, "statement: copy ") {
			continue
		}
		for _, tbl := range tables {
			if strings.Contains(line, `copy "pgproxy".`+`"`+string(tbl.name)+`"`) {
				copies[tbl.name]++
			}
		}
	}
	if copies[TableMetrics] != 3 || copies[TableIssues] != 1 {
		t.Errorf("server log shows COPYs %v; want 3 and 1", copies)
	}
	conn := superConn(t, pg, db)
	if n := count(t, conn, TableMetrics); n != 2500 {
		t.Errorf("query_metrics has %d rows", n)
	}

	// FlushInterval: a lone record is written after it, not before.
	opts.FlushInterval = 300 * time.Millisecond
	r2 := start(t, opts)
	harness.Eventually(t, 10*time.Second, "connection", func() bool { return r2.Stats().Connected })
	t0 := time.Now()
	r2.Metric(Metric{Fingerprint: "lone"})
	harness.Eventually(t, 5*time.Second, "the lone record", func() bool { return r2.Stats().Metrics.Written == 1 })
	if d := time.Since(t0); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("lone record written after %s; FlushInterval is 300ms", d)
	}
}

// TestQueueFullNeverBlocks: with the database down the queue fills; further
// records are dropped and counted, and Metric returns at once.
func TestQueueFullNeverBlocks(t *testing.T) {
	rec := &recorder{}
	opts := fastOptions(refusedURL(t), rec)
	opts.QueueSize = 100
	opts.BatchSize = 10
	r := start(t, opts)
	const sent = 100_000
	var slowest time.Duration
	t0 := time.Now()
	for i := range sent {
		c0 := time.Now()
		r.Metric(Metric{Fingerprint: "f", ConnID: uint64(i)})
		slowest = max(slowest, time.Since(c0))
	}
	total := time.Since(t0)
	r.Issue(Issue{Fingerprint: "f"})
	t.Logf("%d Metric calls on a full queue: %s in total, %s per call, slowest %s", sent, total, total/sent, slowest)
	if total > 2*time.Second {
		t.Errorf("%d calls took %s", sent, total)
	}
	s := r.Stats()
	// The writer is still trying to connect: it took nothing from the queue.
	if s.Metrics.Queued != 100 || s.Metrics.QueueFull != sent-100 || rec.droppedFor(DropQueueFull) != sent-100 {
		t.Errorf("queued %d, dropped %d (hook %d); want 100 and %d", s.Metrics.Queued, s.Metrics.QueueFull,
			rec.droppedFor(DropQueueFull), sent-100)
	}
	if s.WriteErrors == 0 || len(rec.errors()) == 0 || s.Connected {
		t.Errorf("write errors %d, connected %v", s.WriteErrors, s.Connected)
	}
	d, err := closeWithin(r, 300*time.Millisecond)
	var lost *LostError
	if !errors.As(err, &lost) || lost.Metrics != 100 || lost.Issues != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v", err)
	}
	if d > time.Second {
		t.Errorf("Close took %s", d)
	}
	r.Metric(Metric{})
	if s := r.Stats(); s.Metrics.Closed != 101 || s.Issues.Closed != 1 || s.Metrics.Queued != 0 {
		t.Errorf("after Close: %+v", s)
	}
}

// TestOutage: the server stops (or crashes); records wait in the queue and
// are written when it is back.
func TestOutage(t *testing.T) {
	for _, mode := range []string{"stop", "kill"} {
		t.Run(mode, func(t *testing.T) {
			pg := harness.StartPostgres(t, harness.PGOptions{})
			rec := &recorder{}
			r := start(t, fastOptions(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB), rec))
			r.Metric(Metric{ConnID: 0})
			harness.Eventually(t, 10*time.Second, "the first record", func() bool { return r.Stats().Metrics.Written == 1 })

			var err error
			if mode == "stop" {
				err = pg.Stop()
			} else {
				err = pg.Kill()
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 20; i++ {
				r.Metric(Metric{ConnID: uint64(i)})
			}
			for i := 1; i <= 5; i++ {
				r.Issue(Issue{ConnID: uint64(i)})
			}
			errs := len(rec.errors())
			harness.Eventually(t, 10*time.Second, "failed writes", func() bool {
				return len(rec.errors()) >= errs+3 && !r.Stats().Connected
			})
			s := r.Stats()
			if s.Metrics.Written != 1 || s.Metrics.Queued != 20 || s.Issues.Queued != 5 || s.Metrics.Dropped() != 0 {
				t.Fatalf("during the outage: %+v", s)
			}
			// The writer reports the depth after each failed retry.
			harness.Eventually(t, 5*time.Second, "queue depth hooks", func() bool {
				return rec.depthOf(TableMetrics) == 20 && rec.depthOf(TableIssues) == 5
			})

			if err := pg.Start(); err != nil {
				t.Fatal(err)
			}
			harness.Eventually(t, 20*time.Second, "the queued records", func() bool {
				s := r.Stats()
				return s.Metrics.Written == 21 && s.Issues.Written == 5
			})
			harness.Eventually(t, 5*time.Second, "hooks: written, queue depth 0", func() bool {
				return rec.writtenTo(TableMetrics) == 21 && rec.writtenTo(TableIssues) == 5 &&
					rec.depthOf(TableMetrics) == 0 && rec.depthOf(TableIssues) == 0
			})
			conn, err := pgx.Connect(context.Background(), pg.SuperuserDSN(harness.TestDB))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			// The records queued during the outage are all there. (After a
			// crash the first one may be gone: the harness runs with
			// synchronous_commit = off, so a commit can be lost.)
			var m, i int
			if err := conn.QueryRow(context.Background(), `SELECT
  (SELECT count(DISTINCT conn_id) FROM pgproxy.query_metrics WHERE conn_id BETWEEN 1 AND 20),
  (SELECT count(DISTINCT conn_id) FROM pgproxy.query_issues WHERE conn_id BETWEEN 1 AND 5)`).Scan(&m, &i); err != nil {
				t.Fatal(err)
			}
			if m != 20 || i != 5 {
				t.Errorf("rows written after the outage: %d metrics, %d issues", m, i)
			}
			if _, err := closeWithin(r, 5*time.Second); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestCloseFlushes: Close writes everything queued, within its deadline.
func TestCloseFlushes(t *testing.T) {
	pg, db, url := newDatabase(t)
	opts := fastOptions(url, nil)
	opts.FlushInterval = time.Hour
	opts.BatchSize = 500
	r := start(t, opts)
	harness.Eventually(t, 10*time.Second, "connection", func() bool { return r.Stats().Connected })
	for i := range 5000 {
		r.Metric(Metric{ConnID: uint64(i)})
	}
	for i := range 100 {
		r.Issue(Issue{ConnID: uint64(i)})
	}
	d, err := closeWithin(r, 10*time.Second)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close wrote 5000 metrics and 100 issues in %s", d)
	conn := superConn(t, pg, db)
	if m, i := count(t, conn, TableMetrics), count(t, conn, TableIssues); m != 5000 || i != 100 {
		t.Errorf("rows: %d metrics, %d issues", m, i)
	}
	if s := r.Stats(); s.Metrics.Dropped()+s.Issues.Dropped() != 0 || s.Connected {
		t.Errorf("stats after Close: %+v", s)
	}
}

// TestCloseCutsBackoff: Close retries at once instead of waiting out a long
// backoff, so a server that came back in the meantime gets the records.
func TestCloseCutsBackoff(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PGOptions{})
	rec := &recorder{}
	opts := fastOptions(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB), rec)
	opts.Backoff = Backoff{Min: time.Minute, Max: time.Minute}
	r := start(t, opts)
	harness.Eventually(t, 10*time.Second, "connection", func() bool { return r.Stats().Connected })
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r.Metric(Metric{ConnID: uint64(i)})
	}
	harness.Eventually(t, 10*time.Second, "a failed write", func() bool { return len(rec.errors()) > 0 })
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	d, err := closeWithin(r, 20*time.Second)
	if err != nil || r.Stats().Metrics.Written != 10 {
		t.Fatalf("Close = %v after %s, written %d", err, d, r.Stats().Metrics.Written)
	}
	if d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
}

// TestCloseDatabaseDown: Close returns by its deadline when the records
// cannot be written, and counts them: connection refused, a server that never
// answers, and a connection that stalls in the middle of a COPY.
func TestCloseDatabaseDown(t *testing.T) {
	check := func(t *testing.T, r *Reporter, rec *recorder, metrics, issues int) {
		t.Helper()
		d, err := closeWithin(r, 400*time.Millisecond)
		var lost *LostError
		if !errors.As(err, &lost) || lost.Metrics != metrics || lost.Issues != issues || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v; want %d metrics and %d issues lost", err, metrics, issues)
		}
		if d < 350*time.Millisecond || d > 900*time.Millisecond {
			t.Errorf("Close returned after %s; the deadline was 400ms", d)
		}
		s := r.Stats()
		if int(s.Metrics.Closed) != metrics || int(s.Issues.Closed) != issues || rec.droppedFor(DropClosed) != metrics+issues {
			t.Errorf("stats %+v, hook %d", s, rec.droppedFor(DropClosed))
		}
	}
	fill := func(r *Reporter) {
		for i := range 50 {
			r.Metric(Metric{ConnID: uint64(i)})
		}
		for i := range 3 {
			r.Issue(Issue{ConnID: uint64(i)})
		}
	}
	t.Run("refused", func(t *testing.T) {
		rec := &recorder{}
		r := start(t, fastOptions(refusedURL(t), rec))
		fill(r)
		check(t, r, rec, 50, 3)
	})
	t.Run("black hole", func(t *testing.T) {
		rec := &recorder{}
		r := start(t, fastOptions(blackHole(t), rec))
		fill(r)
		check(t, r, rec, 50, 3)
	})
	t.Run("stall in COPY", func(t *testing.T) {
		pg := harness.SharedPostgres(t)
		_, _, url := newDatabase(t)
		cfg := mustParse(t, url)
		relay := newStallRelay(t, pg.Addr())
		host, port, _ := strings.Cut(relay.Addr(), ":")
		cfg.Host = host
		fmt.Sscan(port, &cfg.Port)
		rec := &recorder{}
		opts := fastOptions("", rec)
		opts.Config = cfg
		opts.FlushInterval = time.Hour
		r := start(t, opts)
		harness.Eventually(t, 10*time.Second, "connection", func() bool { return r.Stats().Connected })
		relay.Freeze()
		fill(r)
		check(t, r, rec, 50, 3)
	})
}

// TestSchemaConcurrent: reporters that start at once against an empty
// database all create (or find) the schema without an error.
func TestSchemaConcurrent(t *testing.T) {
	pg, db, url := newDatabase(t)
	const n = 8
	recs := make([]*recorder, n)
	reps := make([]*Reporter, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		recs[i] = &recorder{}
		wg.Go(func() {
			<-gate
			reps[i] = start(t, fastOptions(url, recs[i]))
			reps[i].Metric(Metric{ConnID: uint64(i)})
			reps[i].Issue(Issue{ConnID: uint64(i)})
		})
	}
	close(gate)
	wg.Wait()
	for i, r := range reps {
		if _, err := closeWithin(r, 10*time.Second); err != nil {
			t.Errorf("reporter %d: Close: %v", i, err)
		}
		if errs := recs[i].errors(); len(errs) != 0 {
			t.Errorf("reporter %d: errors %v", i, errs)
		}
	}
	conn := superConn(t, pg, db)
	if m, i := count(t, conn, TableMetrics), count(t, conn, TableIssues); m != n || i != n {
		t.Errorf("rows: %d metrics, %d issues", m, i)
	}
	if _, err := conn.Exec(context.Background(), SchemaSQL()); err != nil {
		t.Errorf("SchemaSQL on the created schema: %v", err)
	}
}

// TestSchemaUpgrade: a table from an older version (the first column set)
// gets the missing columns and indexes.
func TestSchemaUpgrade(t *testing.T) {
	pg, db, url := newDatabase(t)
	conn := superConn(t, pg, db)
	_, err := conn.Exec(context.Background(), `
CREATE SCHEMA pgproxy AUTHORIZATION `+harness.ScramUser+`;
CREATE TABLE pgproxy.query_metrics(recorded_at timestamptz, fingerprint text, query_text text NULL, identity text,
  database text, mode text, verdict text, decision_source text, analysis_ms double precision,
  backend_ms double precision, total_ms double precision, node text);
ALTER TABLE pgproxy.query_metrics OWNER TO `+harness.ScramUser+`;
INSERT INTO pgproxy.query_metrics (recorded_at, fingerprint) VALUES (now(), 'old');`)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := start(t, fastOptions(url, rec))
	r.Metric(Metric{Fingerprint: "new", Rows: 5})
	r.Issue(Issue{Fingerprint: "new"})
	if _, err := closeWithin(r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("errors %v", errs)
	}
	var rows int64
	if err := conn.QueryRow(context.Background(), "SELECT rows FROM pgproxy.query_metrics WHERE fingerprint = 'new'").Scan(&rows); err != nil || rows != 5 {
		t.Errorf("new row: rows=%d, %v", rows, err)
	}
	var idx int
	_ = conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_indexes WHERE schemaname = 'pgproxy'").Scan(&idx)
	if idx != 4 || count(t, conn, TableMetrics) != 2 {
		t.Errorf("%d indexes, %d rows", idx, count(t, conn, TableMetrics))
	}
}

// TestSchemaInsertOnly: with tables an operator created, a role that may
// only insert into them writes (no DDL runs).
func TestSchemaInsertOnly(t *testing.T) {
	pg, db, _ := newDatabase(t)
	conn := superConn(t, pg, db)
	if _, err := conn.Exec(context.Background(), SchemaSQL()+`
GRANT USAGE ON SCHEMA pgproxy TO `+harness.TrustUser+`;
GRANT INSERT ON ALL TABLES IN SCHEMA pgproxy TO `+harness.TrustUser+`;
REVOKE CREATE ON DATABASE `+db+` FROM PUBLIC;`); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := start(t, fastOptions(pg.DSN(harness.TrustUser, "", db), rec))
	r.Metric(Metric{Fingerprint: "m"})
	r.Issue(Issue{Fingerprint: "i"})
	if _, err := closeWithin(r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("errors %v", errs)
	}
	if m, i := count(t, conn, TableMetrics), count(t, conn, TableIssues); m != 1 || i != 1 {
		t.Errorf("rows: %d metrics, %d issues", m, i)
	}
}

// TestBadRecords: records PostgreSQL rejects are found and dropped; the rest
// of their batch is written.
func TestBadRecords(t *testing.T) {
	pg, db, url := newDatabase(t)
	rec := &recorder{}
	opts := fastOptions(url, rec)
	opts.FlushInterval = time.Hour
	r := start(t, opts)
	harness.Eventually(t, 10*time.Second, "connection", func() bool { return r.Stats().Connected })
	conn := superConn(t, pg, db)
	// A constraint an operator added (class 23).
	if _, err := conn.Exec(context.Background(),
		"ALTER TABLE pgproxy.query_metrics ADD CONSTRAINT no_forbidden CHECK (database <> 'forbidden')"); err != nil {
		t.Fatal(err)
	}
	bad := map[uint64]bool{17: true, 60: true, 80: true, 99: true}
	for i := range uint64(100) {
		m := Metric{Database: "shop", ConnID: i}
		switch i {
		case 17:
			m.Identity = "nul\x00byte"
		case 60:
			m.Database = "bad \xff\xfe utf8"
		case 80:
			m.Database = "forbidden"
		case 99:
			m.Node = "\x00"
		}
		r.Metric(m)
	}
	for i := range uint64(10) {
		is := Issue{Reason: "fine", ConnID: i}
		if i == 3 {
			is.Reason = "nul \x00"
		}
		r.Issue(is)
	}
	if _, err := closeWithin(r, 20*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s := r.Stats()
	if s.Metrics.Written != 96 || s.Metrics.Rejected != 4 || s.Issues.Written != 9 || s.Issues.Rejected != 1 {
		t.Errorf("stats %+v", s)
	}
	var rejected []string
	for _, err := range rec.errors() {
		var re *RejectedError
		var pgErr *pgconn.PgError
		if !errors.As(err, &re) || !errors.As(err, &pgErr) {
			t.Errorf("unexpected error %v", err)
			continue
		}
		rejected = append(rejected, string(re.Table)+":"+pgErr.Code)
	}
	if got := strings.Join(rejected, " "); got != "query_metrics:22021 query_metrics:22021 query_metrics:23514 query_metrics:22021 query_issues:22021" {
		t.Errorf("rejected: %s", got)
	}
	ids, err := pgx.CollectRows(must(conn.Query(context.Background(), "SELECT conn_id FROM pgproxy.query_metrics ORDER BY conn_id")), pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 96 {
		t.Fatalf("%d rows", len(ids))
	}
	for _, id := range ids {
		if bad[uint64(id)] {
			t.Errorf("bad record %d was written", id)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
