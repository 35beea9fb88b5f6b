package guardrails

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// The data set of the fast node: tables of millions of rows (gr_orders,
// gr_events), a medium one (gr_customers), a small one (gr_countries), and
// node_marker naming the node. The shunt node has the same tables with a
// handful of rows, and node_marker 'shunt': every answer shows where it ran.
const fastSchema = `
DROP TABLE IF EXISTS gr_orders, gr_customers, gr_events, gr_countries, node_marker;
CREATE TABLE node_marker (name text);
INSERT INTO node_marker VALUES ('fast');
CREATE TABLE gr_countries (code text PRIMARY KEY, name text NOT NULL);
INSERT INTO gr_countries SELECT 'c' || i, 'Country ' || i FROM generate_series(1, 50) i;
CREATE TABLE gr_customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, country text NOT NULL);
INSERT INTO gr_customers SELECT i, 'user' || i || '@example.com', 'Name ' || i, 'c' || (1 + i % 50) FROM generate_series(1, 200000) i;
CREATE TABLE gr_orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, note text NOT NULL,
    amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO gr_orders SELECT i, 1 + i % 200000, (ARRAY['new','paid','shipped','returned'])[1 + i % 4], 'note ' || (i % 100000),
    (i % 10000) / 100.0, timestamptz '2024-01-01 00:00:00+00' + i * interval '7 seconds' FROM generate_series(1, 2000000) i;
CREATE INDEX gr_orders_customer ON gr_orders (customer_id);
CREATE INDEX gr_orders_created ON gr_orders (created_at);
CREATE TABLE gr_events (id bigint PRIMARY KEY, customer_id bigint NOT NULL, kind text NOT NULL, payload text NOT NULL);
INSERT INTO gr_events SELECT i, 1 + i % 200000, (ARRAY['view','click','buy'])[1 + i % 3], md5(i::text) FROM generate_series(1, 1000000) i;
CREATE INDEX gr_events_customer ON gr_events (customer_id);
ANALYZE;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC;
`

const shuntSchema = `
DROP TABLE IF EXISTS gr_orders, gr_customers, gr_events, gr_countries, node_marker;
CREATE TABLE node_marker (name text);
INSERT INTO node_marker VALUES ('shunt');
CREATE TABLE gr_countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE gr_customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, country text NOT NULL);
INSERT INTO gr_customers VALUES (1, 'user1@example.com', 'Name 1', 'c2');
CREATE TABLE gr_orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, note text NOT NULL,
    amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO gr_orders SELECT i, 1, 'new', 'note 7', 1, now() FROM generate_series(1, 3) i;
CREATE TABLE gr_events (id bigint PRIMARY KEY, customer_id bigint NOT NULL, kind text NOT NULL, payload text NOT NULL);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC;
`

// shared are the servers every scenario uses.
var shared struct {
	once     sync.Once
	err      error
	fast     *harness.Cluster
	shunt    *harness.Cluster
	reporter *harness.Cluster
}

// servers starts (once per test binary) the fast node with the data set,
// the shunt node and the reporter database.
func servers(t *testing.T) error {
	shared.once.Do(func() {
		start := time.Now()
		shared.fast = harness.SharedPostgres(t)
		if shared.err = load(shared.fast, fastSchema); shared.err != nil {
			return
		}
		if shared.shunt, shared.err = harness.NewPostgres(harness.PGOptions{}); shared.err != nil {
			return
		}
		if shared.err = load(shared.shunt, shuntSchema); shared.err != nil {
			return
		}
		shared.reporter, shared.err = harness.NewPostgres(harness.PGOptions{})
		t.Logf("guardrails data set loaded in %v", time.Since(start).Round(time.Millisecond))
	})
	return shared.err
}

func closeServers() {
	for _, c := range []*harness.Cluster{shared.shunt, shared.reporter} {
		if c != nil {
			c.Close()
		}
	}
}

// load runs sql as the superuser, with time for millions of rows.
func load(c *harness.Cluster, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.SuperuserDSN(harness.TestDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// world is one scenario's state.
type world struct {
	t        *testing.T
	env      map[string]string
	proxy    *harness.Proxy
	conn     *pgx.Conn
	mode     pgx.QueryExecMode
	lastErr  error
	rows     [][]string
	before   harness.Metrics
	redis    *harness.Redis
	dir      string
	elapsed  time.Duration
	analyzed analyzeRun
	// The model provider stand-in (llm.feature) and the account that
	// signs its Bedrock requests.
	model        *harness.ModelServer
	modelAccount *harness.AWSAccount
	// generated is the masking file generate-config wrote.
	generated string
}

func newWorld(t *testing.T) *world {
	return &world{t: t, env: map[string]string{}, mode: pgx.QueryExecModeCacheStatement}
}

// backendURL is a URL of the fast node with the proxy's own account.
func backendURL(c *harness.Cluster) string {
	return c.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB)
}

func (w *world) startProxy() error {
	if err := servers(w.t); err != nil {
		return err
	}
	env := map[string]string{
		"PG_BACKEND_URL":           backendURL(shared.fast),
		"ANALYSIS_ENABLED":         "true",
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                "debug",
		"MAX_CONNS_PER_IP_PER_MIN": "0",
	}
	for k, v := range w.env {
		env[k] = strings.ReplaceAll(v, "FAST", shared.fast.Addr())
	}
	if env["PROXY_MODE"] == "shunt" && env["SHUNT_NODE_URL"] == "" {
		env["SHUNT_NODE_URL"] = fmt.Sprintf("postgres://%s/%s?sslmode=disable", shared.shunt.Addr(), harness.TestDB)
	}
	w.proxy = harness.StartProxy(w.t, env)
	return nil
}

func (w *world) connect() error {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
	cfg, err := pgx.ParseConfig(w.proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""))
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = w.mode
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	w.conn, err = pgx.ConnectConfig(ctx, cfg)
	return err
}

// run executes sql on the session and keeps its rows or its error.
func (w *world) run(sql string) error {
	if w.conn == nil {
		if err := w.connect(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	w.rows, w.lastErr = nil, nil
	rows, err := w.conn.Query(ctx, sql)
	if err == nil {
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				w.lastErr = err
				break
			}
			var row []string
			for _, v := range vals {
				row = append(row, fmt.Sprint(v))
			}
			w.rows = append(w.rows, row)
		}
		rows.Close()
		if w.lastErr == nil {
			w.lastErr = rows.Err()
		}
	} else {
		w.lastErr = err
	}
	w.elapsed = time.Since(start)
	return nil
}

func (w *world) pgError() (*pgconn.PgError, error) {
	var pe *pgconn.PgError
	if !errors.As(w.lastErr, &pe) {
		return nil, fmt.Errorf("want a PostgreSQL error, got %v (rows %v)", w.lastErr, w.rows)
	}
	return pe, nil
}

func (w *world) cleanup() {
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
}

// overridesFile writes the overrides file and points the proxy at it.
func (w *world) overridesFile(content string) error {
	if w.dir == "" {
		w.dir = w.t.TempDir()
	}
	path := filepath.Join(w.dir, "overrides.yaml")
	w.env["ANALYSIS_OVERRIDES_PATH"] = path
	return os.WriteFile(path, []byte(content), 0o644)
}

// reporterDB truncates the reporter tables (when they exist) and points the
// proxy at the reporter database.
func (w *world) reporterDB() error {
	if err := servers(w.t); err != nil {
		return err
	}
	_ = load(shared.reporter, "TRUNCATE pgproxy.query_metrics, pgproxy.query_issues")
	w.env["REPORTER_DB_URL"] = backendURL(shared.reporter)
	return nil
}

// reporterRows runs query on the reporter database and returns its rows as
// text (callers poll it until the rows they expect are there).
func (w *world) reporterRows(ctx context.Context, query string, args ...any) ([][]string, error) {
	conn, err := pgx.Connect(ctx, shared.reporter.SuperuserDSN(harness.TestDB))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		var row []string
		for _, v := range vals {
			row = append(row, fmt.Sprint(v))
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// metric reads one series (a sum over matching label sets) from /metrics.
func (w *world) metric(series string) (float64, error) {
	name, labels, err := harness.ParseSeries(series)
	if err != nil {
		return 0, err
	}
	m, err := harness.ReadMetrics(w.proxy.HealthURL("/metrics"))
	if err != nil {
		return 0, err
	}
	v, ok := m.Sum(name, labels)
	if !ok {
		return 0, fmt.Errorf("no metric %s on /metrics (have %s)", name, strings.Join(m.Names(), ", "))
	}
	return v, nil
}

func initScenario(t *testing.T, sc *godog.ScenarioContext) {
	w := newWorld(t)
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if err != nil && w.proxy != nil {
			t.Logf("proxy log:\n%s", harness.Tail(w.proxy.Logs(), 80))
		}
		w.cleanup()
		return ctx, nil
	})
	registerSteps(sc, w)
	registerAnalyzeSteps(sc, w)
	registerModelSteps(sc, w)
}
