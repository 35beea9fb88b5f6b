package metadata_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/metadata"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// queryCounter counts the statements a pool runs (pgx QueryTracer).
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newPool opens a pool on the cluster as the SCRAM test user; params are
// extra runtime parameters (search_path). Statements it runs are counted.
func newPool(t *testing.T, pg *harness.Cluster, params map[string]string) (*pgxpool.Pool, *queryCounter) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, counter
}

func exec(t *testing.T, pg *harness.Cluster, sql string) {
	t.Helper()
	if err := pg.SuperuserExec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func lookup(t *testing.T, c *metadata.Cache, schema, name string) *metadata.Table {
	t.Helper()
	tab, err := c.Lookup(context.Background(), schema, name)
	if err != nil {
		t.Fatalf("Lookup(%q, %q): %v", schema, name, err)
	}
	return tab
}

func TestLookupTableFacts(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_facts CASCADE; CREATE SCHEMA meta_facts;
		CREATE TABLE meta_facts.orders (
			id bigint PRIMARY KEY, customer_id int NOT NULL, status text, email varchar(200),
			gone int, created_at timestamptz, note text, code int);
		ALTER TABLE meta_facts.orders DROP COLUMN gone;
		CREATE INDEX orders_customer_created ON meta_facts.orders (customer_id, created_at) INCLUDE (status);
		CREATE INDEX orders_lower_email ON meta_facts.orders (lower(email));
		CREATE INDEX orders_open ON meta_facts.orders (created_at) WHERE status = 'open';
		CREATE UNIQUE INDEX orders_code ON meta_facts.orders (code);
		CREATE INDEX orders_mixed ON meta_facts.orders USING hash (note);
		CREATE INDEX orders_broken ON meta_facts.orders (status);
		UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'meta_facts.orders_broken'::regclass;
		INSERT INTO meta_facts.orders (id, customer_id) SELECT g, g % 10 FROM generate_series(1, 1000) g;
		UPDATE pg_class SET reltuples = 2e6, relpages = 20000 WHERE oid = 'meta_facts.orders'::regclass;`)
	pool, _ := newPool(t, pg, nil)
	c := metadata.New(pool, metadata.Options{})
	tab := lookup(t, c, "meta_facts", "orders")

	if tab.Schema != "meta_facts" || tab.Name != "orders" || tab.Kind != 'r' || tab.OID == 0 {
		t.Errorf("identity: %+v", tab)
	}
	if tab.Rows != 2e6 || tab.Pages != 20000 || tab.Bytes <= 0 || !tab.Big(1e6) {
		t.Errorf("rows %v pages %d bytes %d", tab.Rows, tab.Pages, tab.Bytes)
	}
	want := []metadata.Index{
		{Name: "orders_code", Columns: []string{"code"}, Method: "btree", Unique: true},
		{Name: "orders_customer_created", Columns: []string{"customer_id", "created_at"}, Method: "btree"},
		{Name: "orders_lower_email", Columns: []string{""}, Method: "btree"},
		{Name: "orders_mixed", Columns: []string{"note"}, Method: "hash"},
		{Name: "orders_open", Columns: []string{"created_at"}, Method: "btree", Partial: true},
		{Name: "orders_pkey", Columns: []string{"id"}, Method: "btree", Unique: true, Primary: true},
	}
	if !reflect.DeepEqual(tab.Indexes, want) {
		t.Errorf("indexes:\n got %+v\nwant %+v", tab.Indexes, want)
	}
	cols := []metadata.Column{{"id", "int8"}, {"customer_id", "int4"}, {"status", "text"},
		{"email", "varchar"}, {"created_at", "timestamptz"}, {"note", "text"}, {"code", "int4"}}
	if !reflect.DeepEqual(tab.Columns, cols) {
		t.Errorf("columns:\n got %+v\nwant %+v", tab.Columns, cols)
	}
	if !tab.LeadingColumn("customer_id") || tab.LeadingColumn("created_at") == false || tab.LeadingColumn("status") {
		t.Errorf("LeadingColumn: status is only in an INCLUDE and an invalid index")
	}
	if !tab.HasExpressionIndex() {
		t.Error("HasExpressionIndex = false")
	}
	if tab.QualifiedName() != "meta_facts.orders" {
		t.Errorf("QualifiedName %q", tab.QualifiedName())
	}
}

func TestLookupPartitionedAndInherited(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_part CASCADE; CREATE SCHEMA meta_part;
		CREATE TABLE meta_part.events (id bigint, at date, kind text) PARTITION BY RANGE (at);
		CREATE INDEX ON meta_part.events (at);
		CREATE TABLE meta_part.events_2024 PARTITION OF meta_part.events
			FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (kind);
		CREATE TABLE meta_part.events_2024_a PARTITION OF meta_part.events_2024 FOR VALUES IN ('a');
		CREATE TABLE meta_part.events_2024_b PARTITION OF meta_part.events_2024 FOR VALUES IN ('b');
		CREATE TABLE meta_part.events_2025 PARTITION OF meta_part.events
			FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE meta_part.events_never PARTITION OF meta_part.events
			FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
		UPDATE pg_class SET reltuples = 600000, relpages = 6000 WHERE oid = 'meta_part.events_2024_a'::regclass;
		UPDATE pg_class SET reltuples = 400000, relpages = 4000 WHERE oid = 'meta_part.events_2024_b'::regclass;
		UPDATE pg_class SET reltuples = 1500000, relpages = 15000 WHERE oid = 'meta_part.events_2025'::regclass;
		UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = 'meta_part.events_never'::regclass;

		CREATE TABLE meta_part.parent (id int);
		CREATE TABLE meta_part.child (extra int) INHERITS (meta_part.parent);
		UPDATE pg_class SET reltuples = 10, relpages = 1 WHERE oid = 'meta_part.parent'::regclass;
		UPDATE pg_class SET reltuples = 3e6, relpages = 30000 WHERE oid = 'meta_part.child'::regclass;

		CREATE TABLE meta_part.fresh (id int);
		UPDATE pg_class SET reltuples = -1 WHERE oid = 'meta_part.fresh'::regclass;`)
	pool, _ := newPool(t, pg, nil)
	c := metadata.New(pool, metadata.Options{})

	ev := lookup(t, c, "meta_part", "events")
	if ev.Kind != 'p' || ev.Rows != 2.5e6 || ev.Pages != 25000 {
		t.Errorf("partitioned: kind %c rows %v pages %d, want p 2500000 25000", ev.Kind, ev.Rows, ev.Pages)
	}
	if len(ev.Indexes) != 1 || ev.Indexes[0].Columns[0] != "at" {
		t.Errorf("partitioned index: %+v", ev.Indexes)
	}
	if sub := lookup(t, c, "meta_part", "events_2024"); sub.Rows != 1e6 {
		t.Errorf("sub-partitioned rows %v, want 1000000", sub.Rows)
	}
	if p := lookup(t, c, "meta_part", "parent"); p.Rows != 3e6+10 || p.Pages != 30001 {
		t.Errorf("inheritance parent rows %v pages %d, want 3000010 30001", p.Rows, p.Pages)
	}
	if f := lookup(t, c, "meta_part", "fresh"); f.Rows != -1 || f.Big(0) {
		t.Errorf("never analyzed: rows %v", f.Rows)
	}
}

func TestLookupViewAndOtherKinds(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_view CASCADE; CREATE SCHEMA meta_view;
		CREATE TABLE meta_view.base (id int PRIMARY KEY, v text);
		CREATE VIEW meta_view.v AS SELECT id, v FROM meta_view.base;
		CREATE MATERIALIZED VIEW meta_view.mv AS SELECT id FROM meta_view.base;
		UPDATE pg_class SET reltuples = 5e6 WHERE oid = 'meta_view.mv'::regclass;`)
	pool, _ := newPool(t, pg, nil)
	c := metadata.New(pool, metadata.Options{})
	v := lookup(t, c, "meta_view", "v")
	if v.Kind != 'v' || v.Rows != -1 || len(v.Indexes) != 0 || len(v.Columns) != 2 {
		t.Errorf("view: %+v", v)
	}
	if mv := lookup(t, c, "meta_view", "mv"); mv.Kind != 'm' || mv.Rows != 5e6 {
		t.Errorf("materialized view: %+v", mv)
	}
}

func TestLookupSearchPathAndQuoting(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `
		DROP SCHEMA IF EXISTS meta_app CASCADE; CREATE SCHEMA meta_app;
		GRANT USAGE ON SCHEMA meta_app TO PUBLIC;
		DROP TABLE IF EXISTS public.meta_shadowed; CREATE TABLE public.meta_shadowed (id int);
		CREATE TABLE meta_app.meta_shadowed (id int, app_only int);
		DROP TABLE IF EXISTS public."Meta Mixed.Case"; CREATE TABLE public."Meta Mixed.Case" (id int);
		DROP TABLE IF EXISTS public."meta'quote"; CREATE TABLE public."meta'quote" (id int);`)
	pool, _ := newPool(t, pg, map[string]string{"search_path": "meta_app, public"})
	c := metadata.New(pool, metadata.Options{})

	if s := lookup(t, c, "", "meta_shadowed"); s.Schema != "meta_app" || len(s.Columns) != 2 {
		t.Errorf("unqualified name resolved to %s, want meta_app (first on the search_path)", s.QualifiedName())
	}
	if s := lookup(t, c, "public", "meta_shadowed"); s.Schema != "public" {
		t.Errorf("qualified name resolved to %s", s.QualifiedName())
	}
	if s := lookup(t, c, "", "Meta Mixed.Case"); s.Name != "Meta Mixed.Case" || s.Schema != "public" {
		t.Errorf("quoted identifier: %+v", s)
	}
	if s := lookup(t, c, "", "meta'quote"); s.Name != "meta'quote" {
		t.Errorf("quote in a name: %+v", s)
	}
	if s := lookup(t, c, "", "pg_class"); s.Schema != "pg_catalog" {
		t.Errorf("pg_class resolved to %s", s.QualifiedName())
	}
	// Case matters: the parser folds unquoted names, so "META_SHADOWED" is another name.
	if _, err := c.Lookup(context.Background(), "", "META_SHADOWED"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("upper-case name: %v, want ErrNotFound", err)
	}
	// A name that is SQL must stay a name.
	for _, evil := range []string{"meta_shadowed; DROP TABLE public.meta_shadowed", `x") OR true --`, ""} {
		if _, err := c.Lookup(context.Background(), "", evil); !errors.Is(err, metadata.ErrNotFound) {
			t.Errorf("Lookup(%q): %v, want ErrNotFound", evil, err)
		}
	}
	if _, err := c.Lookup(context.Background(), "public'; --", "meta_shadowed"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("evil schema: %v", err)
	}
	lookup(t, c, "public", "meta_shadowed")
}

func TestLookupNotFoundIsCachedBriefly(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, "DROP TABLE IF EXISTS public.meta_later")
	pool, counter := newPool(t, pg, nil)
	clock := newClock()
	c := metadata.New(pool, metadata.Options{Now: clock.Now})

	_, err := c.Lookup(context.Background(), "", "meta_later")
	var nf *metadata.NotFoundError
	if !errors.Is(err, metadata.ErrNotFound) || !errors.As(err, &nf) || nf.Name != "meta_later" {
		t.Fatalf("err = %v, want a NotFoundError", err)
	}
	before := counter.n.Load()
	for range 1000 {
		if _, err := c.Lookup(context.Background(), "", "meta_later"); !errors.Is(err, metadata.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := counter.n.Load() - before; n != 0 {
		t.Errorf("%d catalog queries for a name known not to resolve", n)
	}
	exec(t, pg, "DROP TABLE IF EXISTS public.meta_later; CREATE TABLE public.meta_later (id int)")
	if _, err := c.Lookup(context.Background(), "", "meta_later"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("negative entry not served within NegativeTTL: %v", err)
	}
	clock.Advance(metadata.DefaultNegativeTTL + time.Second)
	if tab := lookup(t, c, "", "meta_later"); tab.Name != "meta_later" {
		t.Errorf("after NegativeTTL: %+v", tab)
	}
	if n := counter.n.Load() - before; n != 1 {
		t.Errorf("%d catalog queries, want 1", n)
	}
}

func TestLookupRefreshAfterTTL(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, `DROP TABLE IF EXISTS public.meta_ttl; CREATE TABLE public.meta_ttl (id int, email text);
		UPDATE pg_class SET reltuples = 100 WHERE oid = 'public.meta_ttl'::regclass;`)
	pool, counter := newPool(t, pg, nil)
	clock := newClock()
	c := metadata.New(pool, metadata.Options{TTL: time.Hour, Now: clock.Now})
	old := lookup(t, c, "public", "meta_ttl")
	if old.Rows != 100 || len(old.Indexes) != 0 {
		t.Fatalf("first facts: %+v", old)
	}
	exec(t, pg, `CREATE INDEX meta_ttl_email ON public.meta_ttl (email);
		UPDATE pg_class SET reltuples = 5e6 WHERE oid = 'public.meta_ttl'::regclass;`)
	clock.Advance(59 * time.Minute)
	if tab := lookup(t, c, "public", "meta_ttl"); tab != old {
		t.Fatal("entry re-read before its TTL")
	}
	queries := counter.n.Load()
	clock.Advance(2 * time.Minute)
	// Past the TTL: the stale facts come back at once, one refresh runs behind them.
	if tab := lookup(t, c, "public", "meta_ttl"); tab != old {
		t.Fatalf("stale entry not served during its refresh: %+v", tab)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tab := lookup(t, c, "public", "meta_ttl")
		if tab.Rows == 5e6 && len(tab.Indexes) == 1 && tab.Indexes[0].Name == "meta_ttl_email" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refreshed facts never arrived: %+v", tab)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := counter.n.Load() - queries; n != 1 {
		t.Errorf("%d catalog queries for one refresh, want 1", n)
	}
}

func TestLookupSingleflight(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, "DROP TABLE IF EXISTS public.meta_flight; CREATE TABLE public.meta_flight (id int)")
	pool, counter := newPool(t, pg, nil)
	// Warm one connection so that the catalog read, not the connect, is what the lookups share.
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	c := metadata.New(pool, metadata.Options{})
	for _, name := range []string{"meta_flight", "meta_flight_missing"} {
		before := counter.n.Load()
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 100)
		for range 100 {
			wg.Go(func() {
				<-start
				_, err := c.Lookup(context.Background(), "public", name)
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if name == "meta_flight" && err != nil || name != "meta_flight" && !errors.Is(err, metadata.ErrNotFound) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if n := counter.n.Load() - before; n != 1 {
			t.Errorf("%s: 100 concurrent lookups ran %d catalog queries, want 1", name, n)
		}
	}
}

func TestLookupInvalidateAndBound(t *testing.T) {
	pg := harness.SharedPostgres(t)
	exec(t, pg, "DROP TABLE IF EXISTS public.meta_inv1; CREATE TABLE public.meta_inv1 (id int); DROP TABLE IF EXISTS public.meta_inv2; CREATE TABLE public.meta_inv2 (id int); DROP TABLE IF EXISTS public.meta_inv3; CREATE TABLE public.meta_inv3 (id int)")
	pool, counter := newPool(t, pg, nil)
	c := metadata.New(pool, metadata.Options{MaxTables: 2})
	for _, n := range []string{"meta_inv1", "meta_inv2", "meta_inv3"} {
		lookup(t, c, "public", n)
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d with MaxTables 2", c.Len())
	}
	before := counter.n.Load()
	lookup(t, c, "public", "meta_inv3")
	if counter.n.Load() != before {
		t.Error("most recent entry was evicted")
	}
	lookup(t, c, "public", "meta_inv1")
	if counter.n.Load() != before+1 {
		t.Error("least recent entry was not evicted")
	}
	c.Invalidate()
	if c.Len() != 0 {
		t.Errorf("Len = %d after Invalidate", c.Len())
	}
	lookup(t, c, "public", "meta_inv1")
	if counter.n.Load() != before+2 {
		t.Error("Invalidate did not drop the entry")
	}
}

func TestLookupServerDown(t *testing.T) {
	pg := harness.StartPostgres(t, harness.PGOptions{})
	exec(t, pg, "DROP TABLE IF EXISTS public.meta_down; CREATE TABLE public.meta_down (id int)")
	pool, _ := newPool(t, pg, nil)
	clock := newClock()
	c := metadata.New(pool, metadata.Options{Now: clock.Now, QueryTimeout: 3 * time.Second})
	known := lookup(t, c, "public", "meta_down")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * metadata.DefaultTTL)
	// Past its TTL with the server gone: the old facts keep being served.
	for range 3 {
		if tab := lookup(t, c, "public", "meta_down"); tab != known {
			t.Fatalf("stale facts not served while the server is down: %+v", tab)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := c.Lookup(context.Background(), "public", "meta_never_seen")
	if err == nil || errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("server down: err = %v, want a read error", err)
	}
	// The failure is remembered for ErrorTTL, then tried again.
	if _, err2 := c.Lookup(context.Background(), "public", "meta_never_seen"); err2 == nil {
		t.Fatal("error entry forgotten at once")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	// The pool may still hold a connection that died with the server: allow a
	// few attempts, ErrorTTL apart.
	for i := 0; ; i++ {
		clock.Advance(metadata.DefaultErrorTTL + time.Millisecond)
		_, err := c.Lookup(context.Background(), "public", "meta_never_seen")
		if errors.Is(err, metadata.ErrNotFound) {
			break
		}
		if i == 3 {
			t.Fatalf("after restart: %v, want ErrNotFound", err)
		}
	}

	pool.Close()
	c2 := metadata.New(pool, metadata.Options{})
	if _, err := c2.Lookup(context.Background(), "public", "meta_down"); err == nil || errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("closed pool: err = %v, want a read error", err)
	}
	if _, err := metadata.New(nil, metadata.Options{}).Lookup(context.Background(), "", "x"); err == nil {
		t.Error("nil pool: no error")
	}
}

func TestLookupCallerContext(t *testing.T) {
	pg := harness.SharedPostgres(t)
	pool, _ := newPool(t, pg, nil)
	c := metadata.New(pool, metadata.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Lookup(ctx, "", "pg_class"); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	// The read went on without the caller and was stored.
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if tab := lookup(t, c, "", "pg_class"); tab.Schema != "pg_catalog" {
		t.Errorf("pg_class: %+v", tab)
	}
}

func BenchmarkLookupWarm(b *testing.B) {
	pg := harness.SharedPostgres(b)
	cfg, err := pgxpool.ParseConfig(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB))
	if err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	c := metadata.New(pool, metadata.Options{})
	ctx := context.Background()
	if _, err := c.Lookup(ctx, "pg_catalog", "pg_class"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Lookup(ctx, "pg_catalog", "pg_class"); err != nil {
			b.Fatal(err)
		}
	}
}
