package guardrails

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// The labelled workload: query shapes an application or an analyst sends
// over the data set of the fast node (gr_orders 2,000,000 rows, gr_events
// 1,000,000, gr_customers 200,000, gr_countries 50). Each shape is labelled
// by its real execution time, measured directly on the fast node, and
// judged by a real pgproxy in PROXY_MODE=blocking with the default
// thresholds; the test reports how often the verdict agrees with the label.
//
// The label is the measurement, never the table below: a shape is timed
// from the moment the client sends it until its last row is read (every
// row drained, as the application would receive them), without the proxy,
// best of up to wlRuns runs (a run is repeated only while the runs so far
// took less than wlMeasureBudget in all, so slow shapes run once). The
// client-side time is used rather than EXPLAIN ANALYZE because it includes
// what EXPLAIN ANALYZE leaves out and the application waits for: turning
// rows into text and sending them (SELECT * FROM gr_orders executes in
// ~150 ms but takes over a second to deliver). A shape still running after
// wlMeasureTimeout (statement_timeout) is bad.
//
//	good: at most wlGoodMax; bad: at least wlBadMin; unclear in between
//	(reported, not counted).
//
// The verdict: blocked (SQLSTATE 54000) is inefficient, anything that ran
// is efficient (the proxy session's statement_timeout of wlProxyTimeout cuts
// a slow shape that was let through: 57014 means it ran). The decision's
// source (rules, planner) comes from pgproxy_analysis_decisions_total, its
// check from the proxy's "inefficient statement" log line. ANALYSIS_TIMEOUT
// is raised to 10s so that a shared, busy machine cannot turn a verdict into
// the fail-open fallback; the thresholds (ANALYSIS_MAX_ROWS, _MAX_COST,
// _MAX_OFFSET) are the defaults.
//
// The expected label in the table is the author's guess, kept only to
// point out measurements that differ from it.

type wlLabel string

const (
	wlGood    wlLabel = "good"
	wlBad     wlLabel = "bad"
	wlUnclear wlLabel = "unclear"
)

const (
	wlGoodMax        = 20 * time.Millisecond
	wlBadMin         = 100 * time.Millisecond
	wlRuns           = 3
	wlMeasureBudget  = time.Second
	wlMeasureTimeout = 2 * time.Second
	wlProxyTimeout   = time.Second
	// wlMinLabelled and wlMinAgreement are what the test asserts, with no
	// false positive among point lookups.
	wlMinLabelled  = 40
	wlMinAgreement = 0.90
)

// wlShape is one statement shape of the workload.
type wlShape struct {
	name   string
	kind   string  // what it is; "point" marks point lookups
	expect wlLabel // the author's guess (only reported when the measurement differs)
	sql    string
	// args, when not nil, sends the shape in the extended protocol with
	// these parameters (a prepared statement, as pgx does by default); nil
	// sends it in the simple protocol.
	args []any
}

var (
	wlMarch1   = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	wlWorkload = []wlShape{
		// Point lookups.
		{"order by primary key", "point", wlGood, "SELECT * FROM gr_orders WHERE id = 42", nil},
		{"customer by unique email", "point", wlGood, "SELECT id, name, country FROM gr_customers WHERE email = 'user77@example.com'", nil},
		{"orders by an IN list of keys", "point", wlGood, "SELECT id, customer_id, amount FROM gr_orders WHERE id IN (10, 20, 30, 40, 50, 60, 70, 80)", nil},
		{"customers by = ANY(array)", "point", wlGood, "SELECT * FROM gr_customers WHERE id = ANY ('{3,5,8,13,21}'::bigint[])", nil},
		{"two point lookups, UNION ALL", "point", wlGood, "SELECT id, amount FROM gr_orders WHERE id = 7 UNION ALL SELECT id, 0 FROM gr_events WHERE id = 7", nil},
		{"order by key ($1)", "point", wlGood, "SELECT id, status, amount FROM gr_orders WHERE id = $1", []any{int64(424242)}},
		{"customer by email ($1)", "point", wlGood, "SELECT * FROM gr_customers WHERE email = $1", []any{"user4242@example.com"}},
		{"orders by key array ($1)", "point", wlGood, "SELECT id, note FROM gr_orders WHERE id = ANY ($1)", []any{[]int64{5, 50, 500, 5000, 50000}}},

		// Indexed ranges, sorts served by an index, pagination.
		{"a customer's orders, newest first", "range", wlGood, "SELECT * FROM gr_orders WHERE customer_id = 4242 ORDER BY created_at DESC", nil},
		{"indexed time range, LIMIT", "range", wlGood, "SELECT id, amount FROM gr_orders WHERE created_at >= '2024-03-01' ORDER BY created_at LIMIT 50", nil},
		{"one hour's totals", "range", wlGood, "SELECT count(*), sum(amount) FROM gr_orders WHERE created_at BETWEEN '2024-02-01 00:00' AND '2024-02-01 01:00'", nil},
		{"hourly counts over six hours", "range", wlGood, "SELECT date_trunc('hour', created_at) AS hour, count(*) FROM gr_orders WHERE created_at >= '2024-05-01' AND created_at < '2024-05-01 06:00' GROUP BY 1 ORDER BY 1", nil},
		{"a customer range, grouped", "range", wlGood, "SELECT kind, count(*) FROM gr_events WHERE customer_id BETWEEN 1000 AND 1100 GROUP BY kind", nil},
		{"count for one customer", "range", wlGood, "SELECT count(*) FROM gr_events WHERE customer_id = 99", nil},
		{"email prefix LIKE (C collation)", "range", wlGood, "SELECT * FROM gr_customers WHERE email LIKE 'user123%'", nil},
		{"keyset page by id", "pagination", wlGood, "SELECT * FROM gr_orders WHERE id > 1500000 ORDER BY id LIMIT 100", nil},
		{"first page, small OFFSET", "pagination", wlGood, "SELECT * FROM gr_events ORDER BY id LIMIT 20 OFFSET 100", nil},
		{"newest events, LIMIT", "pagination", wlGood, "SELECT * FROM gr_events ORDER BY id DESC LIMIT 20", nil},
		{"big table, LIMIT without ORDER BY", "pagination", wlGood, "SELECT * FROM gr_events LIMIT 10", nil},
		{"first rows matching a common value, by key", "pagination", wlGood, "SELECT * FROM gr_events WHERE kind = 'buy' ORDER BY id LIMIT 10", nil},
		{"latest orders of a customer ($1)", "pagination", wlGood, "SELECT * FROM gr_orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10", []any{int64(4242)}},
		{"keyset page by (created_at, id) ($1, $2)", "pagination", wlGood, "SELECT id, created_at FROM gr_orders WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT 50", []any{wlMarch1, int64(0)}},
		{"a customer's events of a kind ($1, $2)", "range", wlGood, "SELECT * FROM gr_events WHERE customer_id = $1 AND kind = $2", []any{int64(777), "view"}},
		{"count of the last ten days (index only)", "range", wlGood, "SELECT count(*) FROM gr_orders WHERE created_at >= '2024-06-01'", nil},
		{"max(id) from the index", "aggregate", wlGood, "SELECT max(id) FROM gr_orders", nil},
		{"min and max created_at from the index", "aggregate", wlGood, "SELECT min(created_at), max(created_at) FROM gr_orders", nil},
		{"JSON of one customer's orders", "aggregate", wlGood, "SELECT json_agg(o) FROM gr_orders o WHERE customer_id = 31", nil},
		{"sample of a big table (TABLESAMPLE)", "scan", wlGood, "SELECT * FROM gr_orders TABLESAMPLE SYSTEM (0.01)", nil},

		// Joins on indexed keys.
		{"customer by email joined to orders", "join", wlGood, "SELECT c.name, o.id, o.amount FROM gr_customers c JOIN gr_orders o ON o.customer_id = c.id WHERE c.email = 'user5@example.com'", nil},
		{"three-way join, key range", "join", wlGood, "SELECT c.name, co.name, o.id FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id JOIN gr_countries co ON co.code = c.country WHERE o.id BETWEEN 1000 AND 1020", nil},
		{"latest orders with their customer", "join", wlGood, "SELECT o.id, c.name FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id ORDER BY o.id DESC LIMIT 20", nil},
		{"merge join of two keys, LIMIT", "join", wlGood, "SELECT o.id, e.kind FROM gr_orders o JOIN gr_events e ON e.id = o.id ORDER BY o.id LIMIT 10", nil},
		{"LATERAL top 3 per customer", "join", wlGood, "SELECT c.id, o.id FROM gr_customers c CROSS JOIN LATERAL (SELECT id FROM gr_orders o WHERE o.customer_id = c.id ORDER BY created_at DESC LIMIT 3) o WHERE c.id <= 20", nil},
		{"join filtered on the customer side, LIMIT", "join", wlGood, "SELECT o.id, c.name FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id WHERE c.country = 'c7' LIMIT 20", nil},
		{"CROSS JOIN of a point lookup and a small table", "join", wlGood, "SELECT o.id, co.code FROM gr_orders o CROSS JOIN gr_countries co WHERE o.id = 99", nil},
		{"customer totals for one customer ($1)", "join", wlGood, "SELECT c.name, sum(o.amount) FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id WHERE o.customer_id = $1 GROUP BY c.name", []any{int64(31337)}},

		// Small tables.
		{"small table, sorted", "small", wlGood, "SELECT * FROM gr_countries ORDER BY name", nil},
		{"aggregate over a small table", "small", wlGood, "SELECT count(*), max(name) FROM gr_countries", nil},
		{"customers per country, key range", "small", wlGood, "SELECT co.name, count(*) FROM gr_customers c JOIN gr_countries co ON co.code = c.country WHERE c.id < 500 GROUP BY co.name", nil},
		{"count of a medium table", "aggregate", wlGood, "SELECT count(*) FROM gr_customers", nil},

		// Subqueries, CTEs, windows over a filtered set.
		{"EXISTS over an index", "subquery", wlGood, "SELECT c.* FROM gr_customers c WHERE c.id BETWEEN 100 AND 120 AND EXISTS (SELECT 1 FROM gr_events e WHERE e.customer_id = c.id AND e.kind = 'buy')", nil},
		{"NOT EXISTS over an index", "subquery", wlGood, "SELECT c.id FROM gr_customers c WHERE c.id < 200 AND NOT EXISTS (SELECT 1 FROM gr_orders o WHERE o.customer_id = c.id AND o.status = 'returned')", nil},
		{"a customer's orders without a purchase event (NOT EXISTS)", "subquery", wlGood, "SELECT * FROM gr_orders o WHERE o.customer_id = 9 AND NOT EXISTS (SELECT 1 FROM gr_events e WHERE e.customer_id = o.customer_id AND e.kind = 'buy')", nil},
		{"IN (subquery) on a unique key", "subquery", wlGood, "SELECT * FROM gr_orders WHERE customer_id IN (SELECT id FROM gr_customers WHERE email = 'user9@example.com')", nil},
		{"NOT IN over a small table", "subquery", wlGood, "SELECT count(*) FROM gr_customers c WHERE c.id < 1000 AND c.country NOT IN (SELECT code FROM gr_countries WHERE name LIKE 'Country 1%')", nil},
		{"uncorrelated EXISTS (is there any paid order?)", "subquery", wlGood, "SELECT EXISTS (SELECT 1 FROM gr_orders WHERE status = 'paid')", nil},
		{"correlated count for a page of customers", "subquery", wlGood, "SELECT c.*, (SELECT count(*) FROM gr_orders o WHERE o.customer_id = c.id) AS orders FROM gr_customers c ORDER BY c.id LIMIT 20", nil},
		{"correlated max for a key range", "subquery", wlGood, "SELECT c.id, (SELECT max(created_at) FROM gr_orders o WHERE o.customer_id = c.id) FROM gr_customers c WHERE c.id BETWEEN 500 AND 520", nil},
		{"CTE over one customer", "cte", wlGood, "WITH recent AS (SELECT * FROM gr_orders WHERE customer_id = 77) SELECT status, count(*) FROM recent GROUP BY status", nil},
		{"CTE of a whole table, filtered outside (inlined)", "cte", wlGood, "WITH o AS (SELECT * FROM gr_orders) SELECT * FROM o WHERE id = 5", nil},
		{"recursive CTE of keys", "cte", wlGood, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT o.id, o.amount FROM n JOIN gr_orders o ON o.id = n.i", nil},
		{"running total over one customer", "window", wlGood, "SELECT id, amount, sum(amount) OVER (ORDER BY created_at) FROM gr_orders WHERE customer_id = 1234", nil},
		{"latest order per customer (row_number)", "window", wlGood, "SELECT * FROM (SELECT o.*, row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC) rn FROM gr_orders o WHERE customer_id IN (1, 2, 3)) s WHERE rn = 1", nil},
		{"window in index order, LIMIT", "window", wlGood, "SELECT customer_id, sum(amount) OVER (PARTITION BY customer_id) FROM gr_orders LIMIT 100", nil},
		{"function of a column beside an indexed equality", "function", wlGood, "SELECT * FROM gr_orders WHERE customer_id = 42 AND date_trunc('month', created_at) = '2024-01-01'", nil},
		{"leading wildcard beside an indexed equality", "pattern", wlGood, "SELECT * FROM gr_orders WHERE customer_id = 42 AND note LIKE '%4%'", nil},
		{"ORDER BY random() over one customer", "random", wlGood, "SELECT * FROM gr_orders WHERE customer_id = 42 ORDER BY random() LIMIT 1", nil},
		// Skipping 100,000 index entries takes ~10 ms here: below
		// ANALYSIS_MAX_OFFSET (1,000,000 by default; it was 100,000 and
		// blocked this shape, the workload's one false positive).
		{"deep page of ids, OFFSET 100000", "offset", wlGood, "SELECT id FROM gr_orders ORDER BY id LIMIT 20 OFFSET 100000", nil},

		// Full reads, unindexed filters.
		{"whole big table", "scan", wlBad, "SELECT * FROM gr_orders", nil},
		{"whole second big table", "scan", wlBad, "SELECT * FROM gr_events", nil},
		{"filter on an unindexed column", "scan", wlBad, "SELECT * FROM gr_orders WHERE note = 'note 7'", nil},
		{"unindexed range filter, joined", "scan", wlBad, "SELECT o.*, c.name FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id WHERE o.amount > 99", nil},
		{"OR with an unindexed column", "scan", wlBad, "SELECT * FROM gr_orders WHERE customer_id = 5 OR note = 'note 5'", nil},
		{"range keeping most of the table", "scan", wlBad, "SELECT * FROM gr_orders WHERE created_at > '2024-02-01'", nil},
		{"half the table by key range", "scan", wlBad, "SELECT * FROM gr_orders WHERE id BETWEEN 1 AND 1000000", nil},
		{"unindexed filter ($1)", "scan", wlBad, "SELECT id, customer_id FROM gr_orders WHERE note = $1", []any{"note 9"}},
		{"unindexed comparison ($1)", "scan", wlBad, "SELECT count(*) FROM gr_orders WHERE amount > $1", []any{42}},
		{"a month's revenue (a fifth of the table by index)", "range", wlUnclear, "SELECT sum(amount) FROM gr_orders WHERE created_at >= '2024-03-01' AND created_at < '2024-04-01'", nil},
		{"whole medium table", "scan", wlUnclear, "SELECT * FROM gr_customers", nil},

		// Patterns.
		{"leading wildcard LIKE", "pattern", wlBad, "SELECT id FROM gr_orders WHERE note LIKE '%77'", nil},
		{"ILIKE contains", "pattern", wlBad, "SELECT * FROM gr_events WHERE payload ILIKE '%abc%'", nil},
		{"SIMILAR TO", "pattern", wlBad, "SELECT id FROM gr_events WHERE payload SIMILAR TO '%(ab|cd)%'", nil},
		{"unanchored regular expression", "regex", wlBad, "SELECT * FROM gr_events WHERE payload ~ 'abc'", nil},
		{"anchored regular expression, unindexed column", "regex", wlBad, "SELECT * FROM gr_events WHERE payload ~ '^abc'", nil},
		{"LIKE pattern as a parameter ($1)", "pattern", wlBad, "SELECT id FROM gr_events WHERE payload LIKE $1", []any{"%abc%"}},

		// Functions and casts over indexed columns.
		{"date_trunc over an indexed column", "function", wlBad, "SELECT * FROM gr_orders WHERE date_trunc('day', created_at) = '2024-02-01'", nil},
		{"cast to text of an indexed column", "function", wlBad, "SELECT * FROM gr_orders WHERE customer_id::text = '42'", nil},
		{"cast to date of an indexed column", "function", wlBad, "SELECT * FROM gr_orders WHERE created_at::date = '2024-02-01'", nil},

		// Random order, big OFFSET, cartesian products.
		{"ORDER BY random() LIMIT", "random", wlBad, "SELECT * FROM gr_orders ORDER BY random() LIMIT 10", nil},
		{"OFFSET 1500000", "offset", wlBad, "SELECT * FROM gr_orders ORDER BY id LIMIT 10 OFFSET 1500000", nil},
		{"cartesian product of two big tables", "cartesian", wlBad, "SELECT count(*) FROM gr_orders, gr_events", nil},
		{"cartesian product of a medium and a small table", "cartesian", wlBad, "SELECT count(*) FROM gr_customers, gr_countries", nil},

		// Aggregates, GROUP BY, DISTINCT, sorts over millions.
		{"count of a big table", "aggregate", wlBad, "SELECT count(*) FROM gr_orders", nil},
		{"GROUP BY over millions", "aggregate", wlBad, "SELECT customer_id, sum(amount) FROM gr_orders GROUP BY customer_id", nil},
		{"GROUP BY a few values over millions", "aggregate", wlBad, "SELECT status, count(*) FROM gr_orders GROUP BY status", nil},
		{"DISTINCT over millions", "distinct", wlBad, "SELECT DISTINCT note FROM gr_orders", nil},
		{"count(DISTINCT) over a million", "distinct", wlBad, "SELECT count(DISTINCT customer_id) FROM gr_events", nil},
		{"top-N by an unindexed column", "sort", wlBad, "SELECT * FROM gr_orders ORDER BY amount DESC LIMIT 10", nil},
		{"top-N of a common value by an unindexed column ($1)", "sort", wlBad, "SELECT * FROM gr_orders WHERE status = $1 ORDER BY amount DESC LIMIT 20", []any{"paid"}},
		{"window over millions, LIMIT", "window", wlBad, "SELECT id, rank() OVER (ORDER BY amount) FROM gr_orders LIMIT 10", nil},
		// A medium table (200,000 rows, below ANALYSIS_MAX_ROWS) is never
		// big: these run, though sorting it (spilled to disk), ranking it or
		// turning it into JSON takes hundreds of ms.
		{"medium table sorted by an unindexed column", "sort", wlBad, "SELECT * FROM gr_customers ORDER BY name", nil},
		{"rank over a whole medium table", "window", wlBad, "SELECT id, name, rank() OVER (PARTITION BY country ORDER BY name) FROM gr_customers", nil},
		{"JSON of a whole medium table", "aggregate", wlBad, "SELECT json_agg(c) FROM gr_customers c", nil},

		// Joins and set operations of big tables.
		{"hash join of two big tables", "hash", wlBad, "SELECT count(*) FROM gr_orders o JOIN gr_events e ON e.id = o.id WHERE o.status = 'paid'", nil},
		{"join of all orders with customers, grouped", "hash", wlBad, "SELECT c.country, count(*) FROM gr_orders o JOIN gr_customers c ON c.id = o.customer_id GROUP BY c.country", nil},
		{"join on an unindexed column", "hash", wlBad, "SELECT c.id, o.id FROM gr_customers c JOIN gr_orders o ON o.note = c.name WHERE c.country = 'c7'", nil},
		{"LEFT JOIN ... IS NULL over a big table", "hash", wlBad, "SELECT c.id FROM gr_customers c LEFT JOIN gr_events e ON e.customer_id = c.id WHERE e.id IS NULL", nil},
		{"EXCEPT of big sets", "setop", wlBad, "SELECT customer_id FROM gr_orders EXCEPT SELECT customer_id FROM gr_events", nil},
		{"UNION of big sets", "setop", wlBad, "SELECT customer_id FROM gr_events UNION SELECT id FROM gr_customers", nil},
		{"hourly calendar joined to every order", "join", wlBad, "SELECT d, count(o.id) FROM generate_series(timestamptz '2024-01-01', timestamptz '2024-06-11', interval '1 hour') d LEFT JOIN gr_orders o ON o.created_at >= d AND o.created_at < d + interval '1 hour' GROUP BY d", nil},

		// Subqueries over big tables.
		{"NOT IN over a big subquery", "subquery", wlBad, "SELECT * FROM gr_customers WHERE id NOT IN (SELECT customer_id FROM gr_events)", nil},
		{"IN (subquery) keeping a quarter of a big table", "subquery", wlBad, "SELECT * FROM gr_customers WHERE id IN (SELECT customer_id FROM gr_orders WHERE status = 'returned')", nil},
		{"EXISTS with an unindexed condition", "subquery", wlBad, "SELECT count(*) FROM gr_customers c WHERE EXISTS (SELECT 1 FROM gr_orders o WHERE o.customer_id = c.id AND o.amount > 50)", nil},
		{"correlated count for every customer", "correlated", wlBad, "SELECT c.id, (SELECT count(*) FROM gr_orders o WHERE o.customer_id = c.id) FROM gr_customers c", nil},
		{"correlated subquery on an unindexed column", "correlated", wlBad, "SELECT * FROM gr_customers c WHERE c.id < 10 AND (SELECT count(*) FROM gr_orders o WHERE o.note = c.name) > 0", nil},
		{"MATERIALIZED CTE of a big table", "cte", wlBad, "WITH t AS MATERIALIZED (SELECT * FROM gr_orders) SELECT * FROM t WHERE id = 5", nil},
	}
)

// wlResult is what the test found about one shape.
type wlResult struct {
	wlShape
	fp       string
	best     time.Duration
	runs     int
	timedOut bool
	label    wlLabel
	blocked  bool
	cut      bool   // ran through the proxy and was cut by its statement_timeout
	source   string // decision source(s) from the metrics
	check    string
	reason   string // the refusal's reason
}

func (r *wlResult) protocol() string {
	if r.args == nil {
		return "simple"
	}
	return "extended"
}

func (r *wlResult) verdict() string {
	if r.blocked {
		return "blocked"
	}
	return "ran"
}

// outcome is "agree", "FP" (good but blocked), "FN" (bad but ran) or "-"
// (unclear).
func (r *wlResult) outcome() string {
	switch {
	case r.label == wlUnclear:
		return "-"
	case r.label == wlGood && r.blocked:
		return "FP"
	case r.label == wlBad && !r.blocked:
		return "FN"
	}
	return "agree"
}

func TestWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("the labelled workload takes a minute; skipped with -short")
	}
	results := make([]*wlResult, len(wlWorkload))
	seen := map[string]string{}
	for i, s := range wlWorkload {
		fp, err := pg_query.Fingerprint(s.sql)
		if err != nil {
			t.Fatalf("shape %q: %v", s.name, err)
		}
		tree, err := pg_query.Parse(s.sql)
		if err != nil {
			t.Fatalf("shape %q: %v", s.name, err)
		}
		// The decision cache's key: distinct shapes are judged separately.
		key := fp + analysis.ShapeSuffix(tree, analysis.DefaultThresholds)
		if other, dup := seen[key]; dup {
			t.Errorf("shapes %q and %q have one decision cache key: the second would be decided from the cache", other, s.name)
		}
		seen[key] = s.name
		results[i] = &wlResult{wlShape: s, fp: fp}
	}
	if t.Failed() {
		t.FailNow()
	}
	harness.Require(t, "initdb", "postgres")
	harness.BuildProxy(t)
	started := time.Now()
	if err := servers(t); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// 1. The labels: real execution times on the fast node, no proxy.
	direct := wlConnect(t, ctx, backendURL(shared.fast), wlMeasureTimeout)
	measureStart := time.Now()
	for _, r := range results {
		best, runs, timedOut, err := wlMeasure(ctx, direct, r.wlShape)
		if err != nil {
			t.Fatalf("measure %q on the fast node: %v", r.name, err)
		}
		r.best, r.runs, r.timedOut = best, runs, timedOut
		switch {
		case timedOut || best >= wlBadMin:
			r.label = wlBad
		case best <= wlGoodMax:
			r.label = wlGood
		default:
			r.label = wlUnclear
		}
	}
	measured := time.Since(measureStart)

	// 2. The verdicts: a fresh proxy in blocking mode, default thresholds.
	w := newWorld(t)
	w.env["PROXY_MODE"] = "blocking"
	w.env["ANALYSIS_TIMEOUT"] = "10s"
	w.env["LOG_LEVEL"] = "info"
	if err := w.startProxy(); err != nil {
		t.Fatal(err)
	}
	viaProxy := wlConnect(t, ctx, w.proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""), wlProxyTimeout)
	judgeStart := time.Now()
	fallbacks := 0
	for _, r := range results {
		before, err := wlDecisions(w.proxy)
		if err != nil {
			t.Fatal(err)
		}
		logged := len(w.proxy.Logs())
		_, err = wlDrain(ctx, viaProxy, r.wlShape)
		var pe *pgconn.PgError
		switch {
		case err == nil:
		case errors.As(err, &pe) && pe.Code == "54000":
			r.blocked = true
			r.reason = strings.TrimPrefix(pe.Message, "pgproxy blocked this query: ")
		case errors.As(err, &pe) && pe.Code == "57014":
			r.cut = true
		default:
			t.Fatalf("%q through the proxy: %v", r.name, err)
		}
		after, err := wlDecisions(w.proxy)
		if err != nil {
			t.Fatal(err)
		}
		r.source = wlRose(before, after)
		if r.source == "fallback" {
			fallbacks++
		}
		if r.blocked {
			r.check = wlCheck(w.proxy, logged, r.fp)
		}
	}
	judged := time.Since(judgeStart)

	// 3. The report.
	var good, bad, unclear, agree, fp, fn, pointFP, unexpected int
	for _, r := range results {
		switch r.label {
		case wlGood:
			good++
		case wlBad:
			bad++
		default:
			unclear++
		}
		switch r.outcome() {
		case "agree":
			agree++
		case "FP":
			fp++
			if r.kind == "point" {
				pointFP++
			}
		case "FN":
			fn++
		}
		if r.label != r.expect {
			unexpected++
		}
	}
	labelled := good + bad
	agreement := 0.0
	if labelled > 0 {
		agreement = float64(agree) / float64(labelled)
	}
	var rep strings.Builder
	fmt.Fprintf(&rep, "pgproxy labelled workload (tests/guardrails/workload_test.go), %s, %d CPUs, load average %s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), wlLoadAverage())
	fmt.Fprintf(&rep, "data set: gr_orders 2,000,000 rows, gr_events 1,000,000, gr_customers 200,000, gr_countries 50 (PostgreSQL %s)\n", wlServerVersion(ctx, direct))
	fmt.Fprintf(&rep, "label: client-side time on the fast node, every row drained, best of up to %d runs; good <= %v, bad >= %v (or cut at %v), unclear between\n",
		wlRuns, wlGoodMax, wlBadMin, wlMeasureTimeout)
	fmt.Fprintf(&rep, "verdict: pgproxy PROXY_MODE=blocking, ANALYSIS_ENABLED=true, default ANALYSIS_MAX_ROWS/_MAX_COST/_MAX_OFFSET; blocked = 54000\n\n")
	tw := tabwriter.NewWriter(&rep, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tshape\tkind\tprotocol\tms\truns\tlabel\texpected\tverdict\tsource\tcheck\tagree")
	for i, r := range results {
		ms := fmt.Sprintf("%.1f", float64(r.best.Microseconds())/1000)
		if r.timedOut {
			ms = fmt.Sprintf(">=%d", wlMeasureTimeout.Milliseconds())
		}
		expected := string(r.expect)
		if r.expect != r.label {
			expected += " (!)"
		}
		verdict := r.verdict()
		if r.cut {
			verdict += " (cut)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.name, r.kind, r.protocol(), ms, r.runs,
			r.label, expected, verdict, r.source, r.check, r.outcome())
	}
	tw.Flush()
	fmt.Fprintf(&rep, "\nshapes %d: labelled %d (good %d, bad %d), unclear %d (not counted)\n", len(results), labelled, good, bad, unclear)
	fmt.Fprintf(&rep, "agreement %d/%d = %.1f%%; false positives (good but blocked) %d, of them point lookups %d; false negatives (bad but ran) %d\n",
		agree, labelled, 100*agreement, fp, pointFP, fn)
	fmt.Fprintf(&rep, "measurements that differ from the expected label: %d; fallback decisions: %d\n", unexpected, fallbacks)
	fmt.Fprintf(&rep, "wall time: %v (measuring %v, judging %v)\n", time.Since(started).Round(time.Millisecond),
		measured.Round(time.Millisecond), judged.Round(time.Millisecond))

	// The evidence for every disagreement and unclear shape: the decision
	// as pgproxy analyze describes it.
	for _, r := range results {
		if o := r.outcome(); o == "FP" || o == "FN" || o == "-" {
			fmt.Fprintf(&rep, "\n%s: %q (%s, %s)\n%s\n%s", o, r.name, r.label, r.verdict(), r.sql, wlAnalyze(t, r.sql))
		}
	}
	fmt.Fprintf(&rep, "\nreasons of the blocked shapes:\n")
	for i, r := range results {
		if r.blocked {
			fmt.Fprintf(&rep, "%d %s: %s\n", i+1, r.name, r.reason)
		}
	}
	t.Log("\n" + rep.String())
	if root, err := harness.ModuleRoot(); err != nil {
		t.Errorf("report not written: %v", err)
	} else {
		path := filepath.Join(root, "tmp", "workload.txt")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Errorf("report not written: %v", err)
		} else if err := os.WriteFile(path, []byte(rep.String()), 0o644); err != nil {
			t.Errorf("report not written: %v", err)
		} else {
			t.Logf("report written to %s", path)
		}
	}

	// 4. The bar.
	if labelled < wlMinLabelled {
		t.Errorf("%d labelled shapes, want at least %d (%d unclear)", labelled, wlMinLabelled, unclear)
	}
	if agreement < wlMinAgreement {
		t.Errorf("agreement %.1f%%, want at least %.0f%%", 100*agreement, 100*wlMinAgreement)
	}
	if pointFP > 0 {
		t.Errorf("%d point lookups blocked", pointFP)
	}
	if fallbacks > 0 {
		t.Errorf("%d shapes were not judged (fallback decisions)", fallbacks)
	}
}

// wlConnect opens a session with statement_timeout set.
func wlConnect(t *testing.T, ctx context.Context, dsn string, timeout time.Duration) *pgx.Conn {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(cctx, fmt.Sprintf("SET statement_timeout = %d", timeout.Milliseconds())); err != nil {
		t.Fatalf("SET statement_timeout: %v", err)
	}
	return conn
}

// wlMeasure times a shape: best of up to wlRuns runs, repeated only while
// the runs so far took less than wlMeasureBudget; timedOut when a run hit
// statement_timeout.
func wlMeasure(ctx context.Context, conn *pgx.Conn, s wlShape) (best time.Duration, runs int, timedOut bool, err error) {
	var total time.Duration
	for runs < wlRuns && (runs == 0 || total < wlMeasureBudget) {
		d, err := wlDrain(ctx, conn, s)
		runs++
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "57014" {
			return wlMeasureTimeout, runs, true, nil
		}
		if err != nil {
			return 0, runs, false, err
		}
		total += d
		if runs == 1 || d < best {
			best = d
		}
	}
	return best, runs, false, nil
}

// wlDrain runs a shape and reads every row, returning the time it took.
func wlDrain(ctx context.Context, conn *pgx.Conn, s wlShape) (time.Duration, error) {
	args := s.args
	if args == nil {
		args = []any{pgx.QueryExecModeSimpleProtocol}
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	rows, err := conn.Query(qctx, s.sql, args...)
	if err != nil {
		return time.Since(start), err
	}
	for rows.Next() {
	}
	rows.Close()
	return time.Since(start), rows.Err()
}

// wlDecisions reads pgproxy_analysis_decisions_total by verdict and source.
func wlDecisions(p *harness.Proxy) (map[string]float64, error) {
	m, err := harness.ReadMetrics(p.HealthURL("/metrics"))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	fam, ok := m["pgproxy_analysis_decisions_total"]
	if !ok {
		return out, nil
	}
	for _, mt := range fam.GetMetric() {
		var verdict, source string
		for _, lp := range mt.GetLabel() {
			switch lp.GetName() {
			case "verdict":
				verdict = lp.GetValue()
			case "source":
				source = lp.GetValue()
			}
		}
		out[source+"/"+verdict] += mt.GetCounter().GetValue()
	}
	return out, nil
}

// wlRose names the tier that made the decision: the source whose counter
// rose, the analysing tier (rules, planner, fallback) before the caches
// (in the extended protocol, Bind is decided again, from the cache).
func wlRose(before, after map[string]float64) string {
	rose := ""
	rank := map[string]int{"rules": 1, "planner": 1, "override": 2, "fallback": 2, "memory": 3, "valkey": 3}
	for k, v := range after {
		src, _, _ := strings.Cut(k, "/")
		if v > before[k] && (rose == "" || rank[src] < rank[rose]) {
			rose = src
		}
	}
	if rose == "" {
		return "?"
	}
	return rose
}

// wlCheck reads the check of a blocked statement from the proxy's JSON log
// line "inefficient statement" written after offset (waiting a little: the
// line and the refusal are written concurrently).
func wlCheck(p *harness.Proxy, offset int, fingerprint string) string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		logs := p.Logs()
		for _, line := range strings.Split(logs[min(offset, len(logs)):], "\n") {
			if !strings.Contains(line, `"inefficient statement"`) {
				continue
			}
			var rec struct {
				Fingerprint string `json:"fingerprint"`
				Check       string `json:"check"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Fingerprint == fingerprint {
				return rec.Check
			}
		}
		if time.Now().After(deadline) {
			return "?"
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wlAnalyze is `pgproxy analyze` of sql against the fast node, with the
// proxy's analysis settings.
func wlAnalyze(t *testing.T, sql string) string {
	w := newWorld(t)
	w.env = map[string]string{"ANALYSIS_ENABLED": "true", "PROXY_MODE": "blocking", "ANALYSIS_TIMEOUT": "10s", "LOG_LEVEL": "error"}
	if err := w.analyze(sql); err != nil {
		return err.Error()
	}
	return w.analyzed.output // exit status 1 means inefficient
}

func wlServerVersion(ctx context.Context, conn *pgx.Conn) string {
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "?"
	}
	return v
}

// wlLoadAverage is the machine's load average (1, 5, 15 minutes): other
// work on the machine slows the measurements down.
func wlLoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
