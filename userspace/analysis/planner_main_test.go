package analysis

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// TestMain lets the planner tests share one PostgreSQL cluster
// (harness.SharedPostgres). Other tests of the package may use it too.
func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// plannerSchema is the planner tests' schema. pl_big holds 200,000 real
// rows but claims 2,000,000 in pg_class: the planner trusts reltuples (and
// scales it by the table's real size over relpages, which ANALYZE set), so
// the tests see the plans of a big table without loading one. Autovacuum is
// off for these tables: its ANALYZE would overwrite the figures.
const plannerSchema = `
CREATE TABLE pl_big (id int PRIMARY KEY, note text, grp int, payload text) WITH (autovacuum_enabled = false);
INSERT INTO pl_big SELECT i, 'n' || (i % 1000), i % 5000, 'p' || i FROM generate_series(1, 200000) i;
CREATE INDEX pl_big_grp ON pl_big (grp);
CREATE TABLE pl_small (id int PRIMARY KEY, name text) WITH (autovacuum_enabled = false);
INSERT INTO pl_small SELECT i, 's' || i FROM generate_series(1, 500) i;
CREATE TABLE pl_mid (id int PRIMARY KEY, grp int, v int) WITH (autovacuum_enabled = false);
INSERT INTO pl_mid SELECT i, i % 500, i FROM generate_series(1, 10000) i;
CREATE TABLE pl_pair (x int) WITH (autovacuum_enabled = false);
INSERT INTO pl_pair SELECT i FROM generate_series(1, 2000) i;
CREATE TABLE pl_parted (id int PRIMARY KEY, note text) PARTITION BY RANGE (id);
CREATE TABLE pl_parted_1 PARTITION OF pl_parted FOR VALUES FROM (0) TO (25000) WITH (autovacuum_enabled = false);
CREATE TABLE pl_parted_2 PARTITION OF pl_parted FOR VALUES FROM (25000) TO (50000) WITH (autovacuum_enabled = false);
CREATE TABLE pl_parted_3 PARTITION OF pl_parted FOR VALUES FROM (50000) TO (75000) WITH (autovacuum_enabled = false);
CREATE TABLE pl_parted_4 PARTITION OF pl_parted FOR VALUES FROM (75000) TO (100000) WITH (autovacuum_enabled = false);
INSERT INTO pl_parted SELECT i, 'n' || (i % 1000) FROM generate_series(0, 99999) i;
CREATE TABLE pl_locked (id int PRIMARY KEY, v text);
CREATE TABLE pl_secret (id int PRIMARY KEY, v text);
REVOKE ALL ON pl_secret FROM PUBLIC;
CREATE TABLE pl_log (at timestamptz DEFAULT now());
CREATE SEQUENCE pl_seq;
-- Functions that lie about their volatility: planning runs them (constant folding).
CREATE FUNCTION pl_lying_nextval() RETURNS bigint IMMUTABLE LANGUAGE sql AS 'SELECT nextval(''pl_seq'')';
CREATE FUNCTION pl_write_log() RETURNS int VOLATILE LANGUAGE plpgsql AS 'BEGIN INSERT INTO pl_log DEFAULT VALUES; RETURN 1; END';
CREATE FUNCTION pl_lying_write() RETURNS int IMMUTABLE LANGUAGE plpgsql AS 'BEGIN RETURN pl_write_log(); END';
`

// plannerStats: VACUUM runs alone (not in the implicit transaction of a
// multi-statement query), then the big table's row estimate is raised.
var plannerStats = []string{
	"VACUUM ANALYZE pl_big, pl_small, pl_mid, pl_pair, pl_parted",
	"UPDATE pg_class SET reltuples = 2000000 WHERE oid IN ('pl_big'::regclass, 'pl_big_pkey'::regclass, 'pl_big_grp'::regclass)",
	// Four partitions of 400,000 rows each: none big alone, 1,600,000 together.
	"UPDATE pg_class SET reltuples = 400000 WHERE relname ~ '^pl_parted_[0-9](_pkey)?$'",
}

var plannerFixture struct {
	once sync.Once
	pg   *harness.Cluster
	err  error
}

// plannerDB returns the shared cluster with the planner schema loaded.
func plannerDB(t testing.TB) *harness.Cluster {
	t.Helper()
	pg := harness.SharedPostgres(t)
	plannerFixture.once.Do(func() {
		plannerFixture.pg = pg
		plannerFixture.err = pg.SuperuserExec(plannerSchema)
		for _, sql := range plannerStats {
			if plannerFixture.err == nil {
				plannerFixture.err = pg.SuperuserExec(sql)
			}
		}
	})
	if plannerFixture.err != nil {
		t.Fatalf("planner schema: %v", plannerFixture.err)
	}
	return pg
}

// proxyPool is a pool of the proxy's own account (an ordinary login role,
// not a superuser) with at most maxConns connections.
func proxyPool(t testing.TB, pg *harness.Cluster, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newTestPlanner returns a planner over a fresh pool of one connection.
func newTestPlanner(t testing.TB, opts PlannerOptions) (*Planner, *pgxpool.Pool) {
	t.Helper()
	pool := proxyPool(t, plannerDB(t), 1)
	return NewPlanner(pool, opts), pool
}
