package guardrails

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func registerSteps(sc *godog.ScenarioContext, w *world) {
	// Set-up.
	sc.Step(`^the proxy runs in (blocking|non-blocking|shunt) mode$`, func(mode string) error {
		w.env["PROXY_MODE"] = mode
		return w.startProxy()
	})
	sc.Step(`^the proxy runs in (blocking|non-blocking|shunt) mode with:$`, func(mode string, t *godog.Table) error {
		w.env["PROXY_MODE"] = mode
		for _, row := range t.Rows {
			w.env[row.Cells[0].Value] = row.Cells[1].Value
		}
		return w.startProxy()
	})
	sc.Step(`^a reporter database$`, w.reporterDB)
	sc.Step(`^a Valkey server$`, func() error {
		w.redis = harness.StartRedisWith(w.t, harness.RedisOptions{})
		w.env["VALKEY_URL"] = "redis://" + w.redis.Addr
		return nil
	})
	sc.Step(`^an overrides file:$`, func(doc *godog.DocString) error { return w.overridesFile(doc.Content) })
	sc.Step(`^an empty overrides file$`, func() error { return w.overridesFile("overrides: []\n") })
	sc.Step(`^the client uses the (simple|extended) protocol$`, func(p string) error {
		w.mode = pgx.QueryExecModeCacheStatement
		if p == "simple" {
			w.mode = pgx.QueryExecModeSimpleProtocol
		}
		return w.connect()
	})
	sc.Step(`^the proxy restarts$`, func() error {
		w.cleanup()
		w.conn = nil
		w.proxy.Stop()
		return w.startProxy()
	})
	sc.Step(`^the metrics are noted$`, func() error {
		m, err := harness.ReadMetrics(w.proxy.HealthURL("/metrics"))
		w.before = m
		return err
	})

	// Actions.
	sc.Step(`^the client runs "(.*)"$`, w.run)
	sc.Step(`^the client runs:$`, func(doc *godog.DocString) error { return w.run(doc.Content) })
	sc.Step(`^the overrides file becomes:$`, func(doc *godog.DocString) error { return w.overridesFile(doc.Content) })
	sc.Step(`^the proxy gets SIGHUP$`, func() error { w.proxy.Signal(syscall.SIGHUP); return nil })
	sc.Step(`^Valkey stops$`, func() error { return w.redis.Kill() })
	sc.Step(`^Valkey starts again$`, func() error { return w.redis.Start() })
	sc.Step(`^the reporter database stops$`, func() error { return shared.reporter.Stop() })
	sc.Step(`^the reporter database starts again$`, func() error { return shared.reporter.Start() })
	sc.Step(`^the shunt node stops$`, func() error { return shared.shunt.Stop() })
	sc.Step(`^the shunt node starts again$`, func() error { return shared.shunt.Start() })
	sc.Step(`^the client sends one pipeline of "(.*)", "(.*)" and "(.*)"$`, w.pipeline)

	// Checks.
	sc.Step(`^the statement succeeds$`, func() error {
		if w.lastErr != nil {
			return fmt.Errorf("statement failed: %w", w.lastErr)
		}
		return nil
	})
	sc.Step(`^the statement succeeds with "(.*)"$`, func(want string) error {
		if w.lastErr != nil {
			return fmt.Errorf("statement failed: %w", w.lastErr)
		}
		if got := joinRows(w.rows); got != want {
			return fmt.Errorf("rows %q, want %q", got, want)
		}
		return nil
	})
	sc.Step(`^the answer comes from the (fast|shunt) node$`, func(node string) error {
		if w.lastErr != nil {
			return fmt.Errorf("statement failed: %w", w.lastErr)
		}
		if len(w.rows) == 0 || len(w.rows[0]) == 0 || w.rows[0][0] != node {
			return fmt.Errorf("rows %v, want the first column %q (node_marker of the node that ran it)", w.rows, node)
		}
		return nil
	})
	sc.Step(`^the statement is refused with SQLSTATE (\w+) and a message starting "(.*)"$`, func(code, prefix string) error {
		pe, err := w.pgError()
		if err != nil {
			return err
		}
		if pe.Code != code || !strings.HasPrefix(pe.Message, prefix) || pe.Severity != "ERROR" {
			return fmt.Errorf("got %s %s %q, want ERROR %s starting %q", pe.Severity, pe.Code, pe.Message, code, prefix)
		}
		return nil
	})
	sc.Step(`^the refusal says "(.*)", with a detail containing "(.*)" and a hint containing "(.*)"$`, func(msg, detail, hint string) error {
		pe, err := w.pgError()
		if err != nil {
			return err
		}
		if !strings.Contains(pe.Message, msg) || !strings.Contains(pe.Detail, detail) || !strings.Contains(pe.Hint, hint) {
			return fmt.Errorf("message %q detail %q hint %q", pe.Message, pe.Detail, pe.Hint)
		}
		return nil
	})
	sc.Step(`^the session is still usable$`, func() error {
		if err := w.run("SELECT 'usable'"); err != nil {
			return err
		}
		if w.lastErr != nil || joinRows(w.rows) != "usable" {
			return fmt.Errorf("session not usable: %v %v", w.lastErr, w.rows)
		}
		return nil
	})
	sc.Step(`^the session's transaction status is "(\w)"$`, func(want string) error {
		if got := string(w.conn.PgConn().TxStatus()); got != want {
			return fmt.Errorf("transaction status %q, want %q", got, want)
		}
		return nil
	})
	sc.Step(`^the metric (\S+) rose by (\d+)$`, func(series string, by float64) error {
		return w.metricRose(series, func(d float64) bool { return d == by }, fmt.Sprintf("by %g", by))
	})
	sc.Step(`^the metric (\S+) rose by at least (\d+)$`, func(series string, by float64) error {
		return w.metricRose(series, func(d float64) bool { return d >= by }, fmt.Sprintf("by at least %g", by))
	})
	sc.Step(`^the metric (\S+) did not move$`, func(series string) error {
		return w.metricRose(series, func(d float64) bool { return d == 0 }, "not at all")
	})
	sc.Step(`^within (\d+) seconds query_issues has a row with action "(\w+)" and reason containing "(.*)"$`, w.issueRow)
	sc.Step(`^within (\d+) seconds query_metrics has (\d+) rows? for "(.*)" with node "(\w+)" and verdict "(\w*)"$`, w.metricRows)
	sc.Step(`^the reporter holds no statement text$`, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rows, err := w.reporterRows(ctx, "SELECT count(*) FROM (SELECT query_text FROM pgproxy.query_metrics UNION ALL SELECT query_text FROM pgproxy.query_issues) q WHERE query_text IS NOT NULL")
		if err != nil {
			return err
		}
		if rows[0][0] != "0" {
			return fmt.Errorf("%s rows hold statement text with STORE_RAW_QUERY off", rows[0][0])
		}
		return nil
	})
	sc.Step(`^the reporter holds the text of "(.*)" as "(.*)"$`, func(sql, want string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		fp, err := pg_query.Fingerprint(sql)
		if err != nil {
			return err
		}
		for {
			rows, err := w.reporterRows(ctx, "SELECT DISTINCT query_text FROM pgproxy.query_metrics WHERE fingerprint = $1", fp)
			if err == nil && len(rows) > 0 {
				if rows[0][0] != want {
					return fmt.Errorf("stored text %q, want %q", rows[0][0], want)
				}
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("no query_metrics row for %q (%v)", sql, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	sc.Step(`^within (\d+) seconds "(.*)" succeeds$`, func(secs int, sql string) error {
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		for {
			if err := w.run(sql); err != nil {
				return err
			}
			if w.lastErr == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("still failing after %ds: %v", secs, w.lastErr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	sc.Step(`^within (\d+) seconds "(.*)" is refused with SQLSTATE (\w+)$`, func(secs int, sql, code string) error {
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		for {
			if err := w.run(sql); err != nil {
				return err
			}
			if pe, err := w.pgError(); err == nil && pe.Code == code {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not refused with %s after %ds: %v (rows %v)", code, secs, w.lastErr, w.rows)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	sc.Step(`^the proxy log says "(.*)"$`, func(text string) error {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(w.proxy.Logs(), text) {
			if time.Now().After(deadline) {
				return fmt.Errorf("no %q in the proxy log:\n%s", text, harness.Tail(w.proxy.Logs(), 40))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})
	sc.Step(`^the statement took less than (\d+) ms$`, func(ms int) error {
		if w.elapsed > time.Duration(ms)*time.Millisecond {
			return fmt.Errorf("took %v", w.elapsed)
		}
		return nil
	})
	sc.Step(`^the fast node has (\d+) rows? in gr_pipe$`, func(n int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, shared.fast.SuperuserDSN(harness.TestDB))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var got int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM gr_pipe").Scan(&got); err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("gr_pipe has %d rows, want %d", got, n)
		}
		return nil
	})
}

func joinRows(rows [][]string) string {
	var out []string
	for _, r := range rows {
		out = append(out, strings.Join(r, "|"))
	}
	return strings.Join(out, ",")
}

// metricRose compares a series with its value when the metrics were noted.
func (w *world) metricRose(series string, ok func(float64) bool, want string) error {
	name, labels, err := harness.ParseSeries(series)
	if err != nil {
		return err
	}
	before := 0.0
	if w.before != nil {
		before, _ = w.before.Sum(name, labels)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		now, err := w.metric(series)
		if err != nil {
			return err
		}
		if ok(now - before) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s went from %g to %g, want it to rise %s", series, before, now, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) issueRow(secs int, action, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	for {
		rows, err := w.reporterRows(ctx, `SELECT fingerprint, verdict, source, suggestion, identity, database FROM pgproxy.query_issues
			WHERE action = $1 AND reason LIKE '%' || $2 || '%'`, action, reason)
		if err == nil && len(rows) > 0 {
			r := rows[0]
			if r[0] == "" || r[1] != "inefficient" || r[2] == "" || r[4] != harness.ScramUser || r[5] != harness.TestDB {
				return fmt.Errorf("query_issues row %v: want a fingerprint, verdict inefficient, a source, identity %s, database %s", r, harness.ScramUser, harness.TestDB)
			}
			return nil
		}
		if ctx.Err() != nil {
			all, _ := w.reporterRows(context.Background(), "SELECT action, reason FROM pgproxy.query_issues")
			return fmt.Errorf("no query_issues row with action %q and reason containing %q within %ds (%v); rows: %v", action, reason, secs, err, all)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *world) metricRows(secs, n int, sql, node, verdict string) error {
	fp, err := pg_query.Fingerprint(sql)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	for {
		rows, err := w.reporterRows(ctx, `SELECT node, verdict, mode, decision_source, total_ms >= backend_ms, identity FROM pgproxy.query_metrics WHERE fingerprint = $1`, fp)
		if err == nil && len(rows) >= n {
			for _, r := range rows {
				if r[0] != node || r[1] != verdict || r[2] == "" || r[3] == "" || r[4] != "true" || r[5] != harness.ScramUser {
					return fmt.Errorf("query_metrics row %v: want node %s, verdict %q, a mode, a source, total >= backend, identity %s", r, node, verdict, harness.ScramUser)
				}
			}
			if len(rows) != n {
				return fmt.Errorf("%d query_metrics rows for %q, want %d", len(rows), sql, n)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d query_metrics rows for %q within %ds, want %d (%v)", len(rows), sql, secs, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pipeline sends three statements as one extended-protocol pipeline (a
// pgx batch in exec mode: one Sync).
func (w *world) pipeline(a, b, c string) error {
	cfg, err := pgx.ParseConfig(w.proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""))
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	if w.conn != nil {
		w.conn.Close(ctx)
	}
	w.conn = conn
	batch := &pgx.Batch{}
	for _, s := range []string{a, b, c} {
		batch.Queue(s)
	}
	res := conn.SendBatch(ctx, batch)
	w.lastErr = nil
	for range 3 {
		if _, err := res.Exec(); err != nil && w.lastErr == nil {
			w.lastErr = err
		}
	}
	if err := res.Close(); err != nil && w.lastErr == nil {
		w.lastErr = err
	}
	return nil
}
