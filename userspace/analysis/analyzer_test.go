package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/cache"
	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// The analyzer tests run on the planner tests' cluster (analysis.PlannerDB):
// pl_big claims 2,000,000 rows in pg_class, so the rules read it as a big
// table through the real catalog path (metadata.Cache), and the planner
// plans it as one.
const (
	// rulesSQL is decided by a rule (unfiltered_read of pl_big).
	rulesSQL = "SELECT payload FROM pl_big"
	// plannerSQL passes the rules; the planner finds an index scan.
	plannerSQL = "SELECT * FROM pl_big WHERE id = 42"
	// seqScanSQL passes the rules; the planner finds a sequential scan.
	seqScanSQL = "SELECT * FROM pl_big WHERE note = 'n1'"
	// otherDB holds a pl_big of 100 rows: the same SQL is efficient there.
	otherDB = "an_other"
)

var testParser = sqlparse.NewParser(4096)

var analyzerFixture struct {
	once sync.Once
	err  error
}

// analyzerDB returns the shared cluster with the planner schema, a small
// table an_locked in testdb and a second database otherDB.
func analyzerDB(t testing.TB) *harness.Cluster {
	t.Helper()
	pg := analysis.PlannerDB(t)
	analyzerFixture.once.Do(func() {
		analyzerFixture.err = setupAnalyzerDB(pg)
	})
	if analyzerFixture.err != nil {
		t.Fatalf("analyzer schema: %v", analyzerFixture.err)
	}
	return pg
}

func setupAnalyzerDB(pg *harness.Cluster) error {
	if err := pg.SuperuserExec(`CREATE TABLE an_locked (id int PRIMARY KEY, v text);
		INSERT INTO an_locked SELECT i, 'v' || i FROM generate_series(1, 100) i;
		ANALYZE an_locked`); err != nil {
		return err
	}
	if err := pg.SuperuserExec("CREATE DATABASE " + otherDB); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.SuperuserDSN(otherDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `CREATE TABLE pl_big (id int PRIMARY KEY, note text, grp int, payload text);
		INSERT INTO pl_big SELECT i, 'n' || i, i, 'p' || i FROM generate_series(1, 100) i;
		ANALYZE pl_big;
		GRANT SELECT ON pl_big TO PUBLIC`)
	return err
}

// analysisPool is the proxy's own pool for one database as
// cmd/pgproxy/guardrails.go makes it: the backend account (an ordinary
// login role), at most 4 connections, QueryExecModeExec.
func analysisPool(pg *harness.Cluster, db string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(pg.DSN(harness.ScramUser, harness.ScramPass, db) + "&application_name=pgproxy-analysis")
	if err != nil {
		return nil, err
	}
	cfg.MaxConns, cfg.MinConns = 4, 0
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgxpool.NewWithConfig(ctx, cfg)
}

// rig is an Analyzer wired as the program wires it (cache.Tiered, real
// metadata.Cache and Planner per database), with a Backends func that
// counts its calls and may be told to wait or fail first.
type rig struct {
	t       testing.TB
	pg      *harness.Cluster
	a       *analysis.Analyzer
	tiered  *cache.Tiered
	cache   *countingCache
	calls   atomic.Int64 // Backends calls: one per analysis
	timeout time.Duration
	parser  *sqlparse.Parser

	mu       sync.Mutex
	backends map[string]*analysis.Backend
	before   func(ctx context.Context, database string) error
	seen     []string // databases Backends was asked for
}

// countingCache counts the lookups that missed (the statements on their
// way to the analysis).
type countingCache struct {
	analysis.DecisionCache
	misses atomic.Int64
}

func (c *countingCache) Get(ctx context.Context, database, key string) (analysis.Decision, analysis.Source, bool) {
	d, src, ok := c.DecisionCache.Get(ctx, database, key)
	if !ok {
		c.misses.Add(1)
	}
	return d, src, ok
}

type rigOptions struct {
	cache       cache.Options
	timeout     time.Duration // Analyzer.Timeout and the planner's statement timeout
	failClosed  bool
	fallbackTTL time.Duration
	overrides   *analysis.Overrides
	onDecision  func(analysis.Decision, time.Duration)
	parser      *sqlparse.Parser // the planner's parse cache (default testParser)
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	pg := analyzerDB(t)
	tiered, err := cache.New(o.cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tiered.Close() })
	if o.timeout == 0 {
		o.timeout = 10 * time.Second // a loaded machine must not make these tests fall back
	}
	if o.parser == nil {
		o.parser = testParser
	}
	r := &rig{t: t, pg: pg, tiered: tiered, cache: &countingCache{DecisionCache: tiered}, timeout: o.timeout,
		parser: o.parser, backends: map[string]*analysis.Backend{}}
	r.a = &analysis.Analyzer{Rules: analysis.Rules{Thresholds: analysis.DefaultThresholds}, Overrides: o.overrides,
		Cache: r.cache, Backends: r.backendsFunc, Timeout: o.timeout, FailClosed: o.failClosed,
		FallbackTTL: o.fallbackTTL, OnDecision: o.onDecision}
	r.a.Init()
	return r
}

func (r *rig) backendsFunc(ctx context.Context, addr, database string) (*analysis.Backend, error) {
	r.calls.Add(1)
	r.mu.Lock()
	r.seen = append(r.seen, database)
	before := r.before
	r.mu.Unlock()
	if addr != r.pg.Addr() {
		return nil, fmt.Errorf("Backends asked for %q, want %q", addr, r.pg.Addr())
	}
	if before != nil {
		if err := before(ctx, database); err != nil {
			return nil, err
		}
	}
	return r.backend(database)
}

// backend returns the real facts and planner of database, made on first use.
func (r *rig) backend(database string) (*analysis.Backend, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if be, ok := r.backends[database]; ok {
		return be, nil
	}
	pool, err := analysisPool(r.pg, database)
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(pool.Close)
	be := &analysis.Backend{
		Facts: metadata.New(pool, metadata.Options{}),
		Planner: analysis.NewPlanner(pool, analysis.PlannerOptions{Thresholds: analysis.DefaultThresholds,
			StatementTimeout: r.timeout, Parser: r.parser}),
	}
	r.backends[database] = be
	return be, nil
}

// setBefore makes Backends run f before it answers (nil: answer at once).
func (r *rig) setBefore(f func(ctx context.Context, database string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.before = f
}

func (r *rig) request(database, sql string) analysis.Request {
	r.t.Helper()
	parsed := r.parser.Parse(sql)
	if parsed.Err != nil {
		r.t.Fatalf("%s: %v", sql, parsed.Err)
	}
	return analysis.Request{Backend: r.pg.Addr(), Database: database, Parsed: parsed}
}

func (r *rig) decideCtx(ctx context.Context, database, sql string) analysis.Decision {
	return r.a.Decide(ctx, r.request(database, sql))
}

func (r *rig) decide(database, sql string) analysis.Decision {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := r.decideCtx(ctx, database, sql)
	r.t.Logf("%s in %s: %s from %s (origin %s, check %q): %s", sql, database, d.Verdict, d.Source, d.Origin, d.Check, d.Reason)
	return d
}

// cached looks the statement up in the decision cache directly.
func (r *rig) cached(database, sql string) (analysis.Decision, bool) {
	req := r.request(database, sql)
	key := req.Parsed.Fingerprint() + analysis.ShapeSuffix(req.Parsed.Tree(), analysis.DefaultThresholds)
	d, _, ok := r.tiered.Get(context.Background(), database, key)
	return d, ok
}

func want(t testing.TB, d analysis.Decision, verdict analysis.Verdict, source, origin analysis.Source, check string) {
	t.Helper()
	if d.Verdict != verdict || d.Source != source || d.Origin != origin || (check != "*" && d.Check != check) {
		t.Fatalf("decision %s from %s (origin %s, check %q), want %s from %s (origin %s, check %q); reason: %s",
			d.Verdict, d.Source, d.Origin, d.Check, verdict, source, origin, check, d.Reason)
	}
	if d.Decided.IsZero() {
		t.Errorf("decision without Decided: %+v", d)
	}
}

func (r *rig) wantCalls(n int64) {
	r.t.Helper()
	if got := r.calls.Load(); got != n {
		r.t.Fatalf("Backends called %d times, want %d", got, n)
	}
}

// TestAnalyzerTiersThenMemory: a first decision comes from the tier that
// made it (a rule fires; the rules pass and the planner judges, efficient
// or not); the same shape again, other constants too, comes from the
// in-process cache with Origin naming that tier, and no analysis runs.
func TestAnalyzerTiersThenMemory(t *testing.T) {
	var mu sync.Mutex
	seen := map[analysis.Source]int{}
	r := newRig(t, rigOptions{onDecision: func(d analysis.Decision, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen[d.Source]++
		if took <= 0 {
			t.Errorf("OnDecision: elapsed %v", took)
		}
	}})
	db := harness.TestDB

	d := r.decide(db, rulesSQL)
	want(t, d, analysis.Inefficient, analysis.SourceRules, analysis.SourceRules, analysis.CheckUnfilteredRead)
	if !strings.Contains(d.Reason, "pl_big") || !strings.Contains(d.Evidence, "2,000,000") && !strings.Contains(d.Evidence, "2000000") {
		t.Errorf("the rule's decision does not rest on pl_big's facts from the catalog: reason %q evidence %q", d.Reason, d.Evidence)
	}
	r.wantCalls(1)
	again := r.decide(db, rulesSQL)
	want(t, again, analysis.Inefficient, analysis.SourceMemory, analysis.SourceRules, analysis.CheckUnfilteredRead)
	if again.Reason != d.Reason || !again.Decided.Equal(d.Decided) {
		t.Errorf("cached decision %+v differs from the one made %+v", again, d)
	}
	r.wantCalls(1)

	d = r.decide(db, plannerSQL)
	want(t, d, analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	r.wantCalls(2)
	want(t, r.decide(db, "SELECT * FROM pl_big WHERE id = 7"), analysis.Efficient, analysis.SourceMemory, analysis.SourcePlanner, "")
	r.wantCalls(2)

	d = r.decide(db, seqScanSQL)
	want(t, d, analysis.Inefficient, analysis.SourcePlanner, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	r.wantCalls(3)
	want(t, r.decide(db, "SELECT * FROM pl_big WHERE note = 'n2'"), analysis.Inefficient, analysis.SourceMemory, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	r.wantCalls(3)

	mu.Lock()
	defer mu.Unlock()
	if seen[analysis.SourceRules] != 1 || seen[analysis.SourcePlanner] != 2 || seen[analysis.SourceMemory] != 3 {
		t.Errorf("OnDecision saw %v, want rules 1, planner 2, memory 3", seen)
	}
}

// TestAnalyzerValkeyKeepsOrigin: a decision made by one proxy is found in
// Valkey by another (whose own memory is empty), Origin kept across the
// JSON round trip; then it is in that proxy's memory too.
func TestAnalyzerValkeyKeepsOrigin(t *testing.T) {
	addr := harness.StartRedis(t)
	opts := cache.Options{ValkeyURL: "redis://" + addr, OpTimeout: time.Second}
	one, two := newRig(t, rigOptions{cache: opts}), newRig(t, rigOptions{cache: opts})
	for _, r := range []*rig{one, two} {
		harness.Eventually(t, 10*time.Second, "valkey available", r.tiered.Available)
	}
	want(t, one.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceRules, analysis.SourceRules, analysis.CheckUnfilteredRead)
	want(t, one.decide(harness.TestDB, plannerSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := one.tiered.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want(t, two.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceValkey, analysis.SourceRules, analysis.CheckUnfilteredRead)
	want(t, two.decide(harness.TestDB, plannerSQL), analysis.Efficient, analysis.SourceValkey, analysis.SourcePlanner, "")
	want(t, two.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceMemory, analysis.SourceRules, analysis.CheckUnfilteredRead)
	two.wantCalls(0)
}

// TestAnalyzerOverrideWins: an override answers before the cache and the
// analysis, allow and block alike, with source override; an override for
// another database does not apply.
func TestAnalyzerOverrideWins(t *testing.T) {
	r := newRig(t, rigOptions{})
	db := harness.TestDB
	// Cached first, with the opposite verdicts.
	want(t, r.decide(db, rulesSQL), analysis.Inefficient, analysis.SourceRules, analysis.SourceRules, "*")
	want(t, r.decide(db, plannerSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	r.wantCalls(2)

	path := filepath.Join(t.TempDir(), "overrides.yaml")
	if err := os.WriteFile(path, []byte(`overrides:
  - sql: `+rulesSQL+`
    action: allow
    reason: nightly export
  - sql: `+plannerSQL+`
    action: block
  - sql: `+seqScanSQL+`
    action: allow
  - sql: SELECT * FROM pl_big WHERE payload = 'x'
    action: allow
    database: elsewhere
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ov, err := analysis.LoadOverrides(path, testParser)
	if err != nil {
		t.Fatal(err)
	}
	r.a.Overrides = ov

	d := r.decide(db, rulesSQL)
	want(t, d, analysis.Efficient, analysis.SourceOverride, analysis.SourceOverride, "override")
	if !strings.Contains(d.Reason, "nightly export") {
		t.Errorf("override reason %q lacks the operator's reason", d.Reason)
	}
	d = r.decide(db, "SELECT * FROM pl_big WHERE id = 99999")
	want(t, d, analysis.Inefficient, analysis.SourceOverride, analysis.SourceOverride, "override")
	if !strings.Contains(d.Reason, "blocked by an override") {
		t.Errorf("override reason %q", d.Reason)
	}
	// Never analysed: the override answers without the analysis, which
	// would have found a sequential scan, and nothing is cached.
	want(t, r.decide(db, seqScanSQL), analysis.Efficient, analysis.SourceOverride, analysis.SourceOverride, "override")
	r.wantCalls(2)
	if d, ok := r.cached(db, seqScanSQL); ok {
		t.Errorf("an overridden statement was cached: %+v", d)
	}
	// The override of another database does not apply here.
	want(t, r.decide(db, "SELECT * FROM pl_big WHERE payload = 'x'"), analysis.Inefficient, analysis.SourcePlanner, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	r.wantCalls(3)
}

// TestAnalyzerSingleflight: concurrent misses of one shape share one
// analysis and get its decision; the next lookup is a cache hit.
func TestAnalyzerSingleflight(t *testing.T) {
	for _, c := range []struct {
		name, sql string
		source    analysis.Source
	}{{"rules", "SELECT payload, 'n1' AS tag FROM pl_big", analysis.SourceRules}, {"planner", seqScanSQL, analysis.SourcePlanner}} {
		t.Run(c.name, func(t *testing.T) {
			const n = 8
			r := newRig(t, rigOptions{})
			release := make(chan struct{})
			r.setBefore(func(ctx context.Context, _ string) error {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			results := make(chan analysis.Decision, n)
			for i := range n {
				// Different constants, one shape.
				sql := strings.Replace(c.sql, "'n1'", fmt.Sprintf("'n%d'", i), 1)
				go func() { results <- r.decideCtx(context.Background(), harness.TestDB, sql) }()
			}
			// All have missed the cache and are on their way to the
			// analysis, which waits in Backends until released.
			harness.Eventually(t, 10*time.Second, "all lookups missed", func() bool { return r.cache.misses.Load() == n })
			harness.Eventually(t, 10*time.Second, "the analysis started", func() bool { return r.calls.Load() >= 1 })
			time.Sleep(100 * time.Millisecond)
			close(release)
			var first analysis.Decision
			for i := range n {
				d := <-results
				want(t, d, analysis.Inefficient, c.source, c.source, "*")
				if i == 0 {
					first = d
				} else if d.Reason != first.Reason || !d.Decided.Equal(first.Decided) {
					t.Errorf("decision %d differs: %+v vs %+v", i, d, first)
				}
			}
			r.wantCalls(1)
			want(t, r.decide(harness.TestDB, c.sql), analysis.Inefficient, analysis.SourceMemory, c.source, "*")
			r.wantCalls(1)
		})
	}
}

// TestAnalyzerCallerCancelDoesNotPoison: the caller whose miss started the
// analysis goes away (its context is cancelled) while the analysis runs;
// the analysis goes on with its own time limit, the caller that joined it
// gets the planner's decision, not a fallback, and it is cached.
func TestAnalyzerCallerCancelDoesNotPoison(t *testing.T) {
	r := newRig(t, rigOptions{})
	release := make(chan struct{})
	var ctxErr atomic.Value
	r.setBefore(func(ctx context.Context, _ string) error {
		<-release
		ctxErr.Store(fmt.Sprint(ctx.Err()))
		return nil
	})
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan analysis.Decision, 1)
	go func() { leader <- r.decideCtx(leaderCtx, harness.TestDB, seqScanSQL) }()
	harness.Eventually(t, 10*time.Second, "the analysis started", func() bool { return r.calls.Load() == 1 })
	cancelLeader()
	follower := make(chan analysis.Decision, 1)
	go func() {
		follower <- r.decideCtx(context.Background(), harness.TestDB, "SELECT * FROM pl_big WHERE note = 'n7'")
	}()
	harness.Eventually(t, 10*time.Second, "the follower missed", func() bool { return r.cache.misses.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	close(release)

	d := <-follower
	want(t, d, analysis.Inefficient, analysis.SourcePlanner, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	if got := ctxErr.Load(); got != "<nil>" {
		t.Errorf("the analysis ran on a context ended by the caller's cancellation: %v", got)
	}
	// The cancelled caller is answered too, with the same decision.
	want(t, <-leader, analysis.Inefficient, analysis.SourcePlanner, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	r.wantCalls(1)
	r.setBefore(nil)
	want(t, r.decide(harness.TestDB, seqScanSQL), analysis.Inefficient, analysis.SourceMemory, analysis.SourcePlanner, analysis.PlanCheckSeqScan)
	r.wantCalls(1)

	// A caller already cancelled when it asks still gets a real decision
	// of a new shape (no fallback from its dead context).
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	d = r.decideCtx(dead, harness.TestDB, plannerSQL)
	want(t, d, analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
}

// TestAnalyzerFallback: when Backends fails, the configured answer is
// given (fail-open efficient, fail-closed inefficient) with source
// fallback; it is not cached, only remembered for FallbackTTL: no analysis
// within it, a new one after it.
func TestAnalyzerFallback(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "closed"}[closed], func(t *testing.T) {
			const ttl = time.Second
			r := newRig(t, rigOptions{failClosed: closed, fallbackTTL: ttl})
			var down atomic.Bool
			down.Store(true)
			r.setBefore(func(context.Context, string) error {
				if down.Load() {
					return errors.New("dial tcp: connection refused")
				}
				return nil
			})
			verdict, mode := analysis.Efficient, "ANALYSIS_FAIL_MODE=open"
			if closed {
				verdict, mode = analysis.Inefficient, "ANALYSIS_FAIL_MODE=closed"
			}
			start := time.Now()
			d := r.decide(harness.TestDB, plannerSQL)
			want(t, d, verdict, analysis.SourceFallback, analysis.SourceFallback, "fallback")
			if !strings.Contains(d.Reason, mode) || !strings.Contains(d.Evidence, "connection refused") {
				t.Errorf("fallback reason %q evidence %q", d.Reason, d.Evidence)
			}
			if closed && d.Suggestion == "" {
				t.Error("fail-closed fallback without a suggestion")
			}
			r.wantCalls(1)
			if d, ok := r.cached(harness.TestDB, plannerSQL); ok {
				t.Fatalf("a fallback was cached: %+v", d)
			}
			// Remembered: no analysis within FallbackTTL, even with the
			// backend back and other constants.
			down.Store(false)
			want(t, r.decide(harness.TestDB, "SELECT * FROM pl_big WHERE id = 1"), verdict, analysis.SourceFallback, analysis.SourceFallback, "fallback")
			if time.Since(start) < ttl {
				r.wantCalls(1)
			} else {
				t.Logf("machine too slow to check the fallback within %v", ttl)
			}
			// Another shape is analysed as usual meanwhile.
			want(t, r.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceRules, analysis.SourceRules, "*")
			calls := r.calls.Load()
			time.Sleep(time.Until(start.Add(ttl + 100*time.Millisecond)))
			want(t, r.decide(harness.TestDB, plannerSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
			r.wantCalls(calls + 1)
			want(t, r.decide(harness.TestDB, plannerSQL), analysis.Efficient, analysis.SourceMemory, analysis.SourcePlanner, "")
		})
	}
}

// TestAnalyzerPlannerTimeout: EXPLAIN waits for a lock held by another
// session; the analysis gives up at Timeout and falls back (fail-open),
// with the reason in words, remembered for FallbackTTL.
func TestAnalyzerPlannerTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := newRig(t, rigOptions{timeout: timeout})
	be, err := r.backend(harness.TestDB)
	if err != nil {
		t.Fatal(err)
	}
	// The table's facts are at hand already (the catalog read would wait
	// for the lock too); the planner is what waits.
	if _, err := be.Facts.Lookup(context.Background(), "", "an_locked"); err != nil {
		t.Fatal(err)
	}
	analysis.LockTable(t, "an_locked")

	start := time.Now()
	d := r.decide(harness.TestDB, "SELECT * FROM an_locked WHERE v = 'x'")
	elapsed := time.Since(start)
	want(t, d, analysis.Efficient, analysis.SourceFallback, analysis.SourceFallback, "fallback")
	if !strings.Contains(d.Reason, "ANALYSIS_TIMEOUT") {
		t.Errorf("reason %q does not say the analysis ran out of time", d.Reason)
	}
	if elapsed > 5*time.Second {
		t.Errorf("the analysis took %v with a %v time limit", elapsed, timeout)
	}
	start = time.Now()
	want(t, r.decide(harness.TestDB, "SELECT * FROM an_locked WHERE v = 'y'"), analysis.Efficient, analysis.SourceFallback, analysis.SourceFallback, "fallback")
	if elapsed := time.Since(start); elapsed > timeout {
		t.Errorf("the remembered fallback took %v", elapsed)
	}
	r.wantCalls(1)
}

// TestAnalyzerPerDatabase: one SQL text in two databases gets two
// analyses and two decisions (pl_big is big in one, small in the other),
// each cached for its own database; a failing database falls back alone.
func TestAnalyzerPerDatabase(t *testing.T) {
	r := newRig(t, rigOptions{})
	want(t, r.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceRules, analysis.SourceRules, analysis.CheckUnfilteredRead)
	want(t, r.decide(otherDB, rulesSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	r.wantCalls(2)
	want(t, r.decide(otherDB, rulesSQL), analysis.Efficient, analysis.SourceMemory, analysis.SourcePlanner, "")
	want(t, r.decide(harness.TestDB, rulesSQL), analysis.Inefficient, analysis.SourceMemory, analysis.SourceRules, analysis.CheckUnfilteredRead)
	r.wantCalls(2)
	r.mu.Lock()
	seen := strings.Join(r.seen, ",")
	r.mu.Unlock()
	if seen != harness.TestDB+","+otherDB {
		t.Errorf("Backends asked for databases %s", seen)
	}

	r.setBefore(func(_ context.Context, db string) error {
		if db == "down" {
			return errors.New("database \"down\" does not exist")
		}
		return nil
	})
	want(t, r.decide("down", plannerSQL), analysis.Efficient, analysis.SourceFallback, analysis.SourceFallback, "fallback")
	want(t, r.decide(harness.TestDB, plannerSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	want(t, r.decide(otherDB, plannerSQL), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
	r.wantCalls(5)
}

// TestAnalyzerConstantsThatChangeTheVerdict: statements of one fingerprint
// that differ in a constant the rules read get their own decisions, not
// the cached one of the other (a LIMIT 10 judged efficient must not let
// LIMIT ALL through, nor the reverse).
func TestAnalyzerConstantsThatChangeTheVerdict(t *testing.T) {
	db := harness.TestDB
	for _, c := range []struct {
		name      string
		efficient string // judged efficient by the planner
		blocked   []string
		check     string
	}{
		{"limit", "SELECT * FROM pl_big ORDER BY id LIMIT 10",
			[]string{"SELECT * FROM pl_big ORDER BY id LIMIT 5000000", "SELECT * FROM pl_big ORDER BY id LIMIT ALL",
				"SELECT * FROM pl_big ORDER BY id LIMIT 5000000000", "SELECT * FROM pl_big ORDER BY id LIMIT 5000000::bigint"},
			analysis.CheckUnfilteredRead},
		{"offset", "SELECT * FROM pl_big ORDER BY id LIMIT 10 OFFSET 5",
			[]string{"SELECT * FROM pl_big ORDER BY id LIMIT 10 OFFSET 1500000", "SELECT * FROM pl_big ORDER BY id LIMIT 10 OFFSET 1500000::int",
				"SELECT * FROM pl_big ORDER BY id LIMIT 10 OFFSET 3000000000"},
			analysis.CheckLargeOffset},
		{"constant_join_condition", "SELECT a.id FROM pl_big a JOIN pl_big b ON false",
			[]string{"SELECT a.id FROM pl_big a JOIN pl_big b ON true", "SELECT a.id FROM pl_big a JOIN pl_big b ON 1 = 1"},
			analysis.CheckCartesianJoin},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, rigOptions{})
			want(t, r.decide(db, c.efficient), analysis.Efficient, analysis.SourcePlanner, analysis.SourcePlanner, "")
			for _, sql := range c.blocked {
				d := r.decide(db, sql)
				if d.Verdict != analysis.Inefficient || d.Check != c.check || d.Origin != analysis.SourceRules {
					t.Errorf("%s: %s from %s (origin %s, check %q), want inefficient by the rule %s",
						sql, d.Verdict, d.Source, d.Origin, d.Check, c.check)
				}
			}
			want(t, r.decide(db, c.efficient), analysis.Efficient, analysis.SourceMemory, analysis.SourcePlanner, "")
		})
	}
}

func TestShapeSuffix(t *testing.T) {
	th := analysis.DefaultThresholds
	for _, c := range []struct{ sql, want string }{
		// Ordinary statements.
		{"SELECT * FROM t WHERE id = $1", ""},
		{"SELECT 1", ""},
		{"SELECT * FROM t WHERE note = '%x'", ""},
		{"SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 20", ""},
		{"SELECT * FROM t WHERE 1 = 1 AND id = $1", ""},
		{"SELECT * FROM a JOIN b ON true", ""},
		{"SELECT * FROM t LIMIT $1 OFFSET $2", ""},
		// OFFSET below and at or above MaxOffset.
		{"SELECT * FROM t ORDER BY id OFFSET 999999", ""},
		{"SELECT * FROM t ORDER BY id OFFSET 1000000", ":o"},
		{"SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 2000000::int", ":o"},
		{"SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 3000000000", ":o"},
		{"SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 2e6", ":o"},
		{"SELECT * FROM (SELECT * FROM t OFFSET 5000000) s WHERE s.id = 1", ":o"},
		// LIMIT below and at or above MaxRows.
		{"SELECT * FROM t LIMIT 999999", ""},
		{"SELECT * FROM t LIMIT 1000000", ":l"},
		{"SELECT * FROM t FETCH FIRST 2000000 ROWS ONLY", ":l"},
		{"SELECT * FROM t LIMIT 5000000::bigint", ":l"},
		{"SELECT * FROM t LIMIT 5000000000", ":l"},
		{"SELECT * FROM t LIMIT ALL", ":l"},
		// Patterns: leading wildcard or unanchored, and anchored.
		{"SELECT * FROM t WHERE note LIKE '%x'", ":w"},
		{"SELECT * FROM t WHERE note LIKE '_x'", ":w"},
		{"SELECT * FROM t WHERE note LIKE 'x%'", ""},
		{"SELECT * FROM t WHERE note ILIKE '%x'", ":w"},
		{"SELECT * FROM t WHERE note ILIKE 'x%'", ""},
		{"SELECT * FROM t WHERE note NOT LIKE '%x'", ":w"},
		{"SELECT * FROM t WHERE note LIKE '%x' ESCAPE '!'", ":w"},
		{"SELECT * FROM t WHERE note LIKE 'x%' ESCAPE '!'", ""},
		{"SELECT * FROM t WHERE note SIMILAR TO '%x'", ":w"},
		{"SELECT * FROM t WHERE note SIMILAR TO 'x%'", ""},
		{"SELECT * FROM t WHERE note ~ 'x'", ":w"},
		{"SELECT * FROM t WHERE note ~ '^x'", ""},
		{"SELECT * FROM t WHERE note ~ '^.x'", ":w"},
		{"SELECT * FROM t WHERE note ~* 'x'", ":w"},
		{"SELECT * FROM t WHERE note ~* '^x'", ""},
		{"SELECT * FROM t WHERE note LIKE '%' || $1 || '%'", ":w"},
		{"SELECT * FROM t WHERE note LIKE 'x' || $1 || '%'", ""},
		{"SELECT * FROM t WHERE note LIKE concat('%', $1)", ":w"},
		{"SELECT * FROM t WHERE note LIKE '%x'::text", ":w"},
		{"SELECT * FROM t WHERE note LIKE $1", ""},
		// Conditions of constants only.
		{"SELECT * FROM a JOIN b ON false", ":f"},
		{"SELECT * FROM a, b WHERE 1 = 0", ":f"},
		{"SELECT * FROM a, b WHERE true AND 'f'", ":f"},
		// Several at once.
		{"SELECT * FROM t WHERE note LIKE '%x' LIMIT 2000000 OFFSET 2000000", ":olw"},
	} {
		parsed := testParser.Parse(c.sql)
		if parsed.Err != nil {
			t.Fatalf("%s: %v", c.sql, parsed.Err)
		}
		if got := analysis.ShapeSuffix(parsed.Tree(), th); got != c.want {
			t.Errorf("ShapeSuffix(%s) = %q, want %q", c.sql, got, c.want)
		}
	}
	if got := analysis.ShapeSuffix(nil, th); got != "" {
		t.Errorf("ShapeSuffix(nil) = %q", got)
	}
	// The thresholds are the rules' own.
	small := analysis.Thresholds{MaxRows: 100, MaxOffset: 10}
	for sql, want := range map[string]string{
		"SELECT * FROM t ORDER BY id OFFSET 10": ":o",
		"SELECT * FROM t LIMIT 100":             ":l",
		"SELECT * FROM t LIMIT 99 OFFSET 9":     "",
	} {
		if got := analysis.ShapeSuffix(testParser.Parse(sql).Tree(), small); got != want {
			t.Errorf("ShapeSuffix(%s) with %+v = %q, want %q", sql, small, got, want)
		}
	}
}

// TestShapeKeySeparatesRuleVerdicts: whenever two statements of one
// fingerprint get different answers from the rules, their cache keys
// (fingerprint and ShapeSuffix) differ: otherwise the first decision
// cached would answer for the other.
func TestShapeKeySeparatesRuleVerdicts(t *testing.T) {
	orders := &metadata.Table{Schema: "public", Name: "orders", Kind: 'r', Rows: 2e6, Pages: 20000,
		Indexes: []metadata.Index{{Name: "orders_pkey", Columns: []string{"id"}, Method: "btree", Unique: true, Primary: true}},
		Columns: []metadata.Column{{Name: "id", Type: "int8"}, {Name: "note", Type: "text"}}}
	customers := &metadata.Table{Schema: "public", Name: "customers", Kind: 'r', Rows: 1.5e6,
		Indexes: []metadata.Index{{Name: "customers_pkey", Columns: []string{"id"}, Method: "btree"}},
		Columns: []metadata.Column{{Name: "id", Type: "int8"}, {Name: "email", Type: "text"}}}
	facts := func(schema, name string) *metadata.Table {
		if schema != "" && schema != "public" {
			return nil
		}
		return map[string]*metadata.Table{"orders": orders, "customers": customers}[name]
	}
	rules := analysis.Rules{}
	judge := func(sql string) (key, check string) {
		parsed := testParser.Parse(sql)
		if parsed.Err != nil {
			t.Fatalf("%s: %v", sql, parsed.Err)
		}
		if d, fired := rules.Check(parsed.Tree(), facts); fired {
			check = d.Check
		}
		return parsed.Fingerprint() + analysis.ShapeSuffix(parsed.Tree(), analysis.DefaultThresholds), check
	}
	for _, p := range [][2]string{
		{"SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 5", "SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 1500000"},
		{"SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 5", "SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 3000000000"},
		{"SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 5::int", "SELECT * FROM orders ORDER BY id LIMIT 10 OFFSET 1500000::int"},
		{"SELECT * FROM orders ORDER BY id OFFSET 5", "SELECT * FROM orders ORDER BY id OFFSET 2e6"},
		{"SELECT * FROM orders LIMIT 10", "SELECT * FROM orders LIMIT 5000000"},
		{"SELECT * FROM orders LIMIT 10", "SELECT * FROM orders LIMIT 5000000000"},
		{"SELECT * FROM orders LIMIT 10::bigint", "SELECT * FROM orders LIMIT 5000000::bigint"},
		{"SELECT * FROM orders LIMIT 10", "SELECT * FROM orders LIMIT ALL"},
		{"SELECT * FROM orders WHERE note LIKE 'a'", "SELECT * FROM orders WHERE note LIKE '%a'"},
		{"SELECT * FROM orders WHERE note ILIKE 'a_'", "SELECT * FROM orders WHERE note ILIKE '_a'"},
		{"SELECT * FROM orders WHERE note SIMILAR TO 'a%'", "SELECT * FROM orders WHERE note SIMILAR TO '%a'"},
		{"SELECT * FROM orders WHERE note ~ '^a'", "SELECT * FROM orders WHERE note ~ 'a'"},
		{"SELECT * FROM orders WHERE note ~* '^a'", "SELECT * FROM orders WHERE note ~* 'a'"},
		{"SELECT * FROM orders WHERE note ~ '^a'", "SELECT * FROM orders WHERE note ~ '^.a'"},
		{"SELECT * FROM orders WHERE note LIKE 'a' || $1", "SELECT * FROM orders WHERE note LIKE '%' || $1"},
		{"SELECT * FROM orders WHERE note LIKE concat('a', $1)", "SELECT * FROM orders WHERE note LIKE concat('%', $1)"},
		{"SELECT * FROM orders WHERE note LIKE 'a'::text", "SELECT * FROM orders WHERE note LIKE '%a'::text"},
		{"SELECT * FROM orders, customers WHERE 1 = 0", "SELECT * FROM orders, customers WHERE 1 = 1"},
		{"SELECT * FROM orders JOIN customers ON false", "SELECT * FROM orders JOIN customers ON true"},
		{"SELECT * FROM orders JOIN customers ON 'f'", "SELECT * FROM orders JOIN customers ON 't'"},
	} {
		k0, c0 := judge(p[0])
		k1, c1 := judge(p[1])
		fp0, fp1 := testParser.Parse(p[0]).Fingerprint(), testParser.Parse(p[1]).Fingerprint()
		if fp0 != fp1 || c0 == c1 {
			t.Fatalf("bad case: %q and %q: fingerprints %s/%s, rules %q/%q (want one fingerprint, two answers)", p[0], p[1], fp0, fp1, c0, c1)
		}
		if k0 == k1 {
			t.Errorf("one cache key %s for %q (rules: %q) and %q (rules: %q)", k0, p[0], c0, p[1], c1)
		}
	}
}
