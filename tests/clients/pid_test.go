package clients

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// TestBackendPIDs checks that the process id a driver is given is the backend's own, so that
// pg_backend_pid(), pg_stat_activity and pg_terminate_backend(<the driver's PID>) agree, and
// that a session killed that way behaves exactly as it does directly against PostgreSQL: the
// client sees the FATAL and the connection is closed; pgxpool and database/sql notice an idle
// pooled connection that was killed and replace it.
func TestBackendPIDs(t *testing.T) {
	pg, proxy := startProxy(t, nil)
	targets := map[string]string{
		"direct":  pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
		"proxied": proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	terminate := func(t *testing.T, pid uint32) {
		t.Helper()
		var ok bool
		if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v: the PID the driver reports is not a backend", pid, ok, err)
		}
		// Wait until the backend is gone, as a pool's next check would see it.
		for {
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	for name, dsn := range targets {
		t.Run(name+": the driver's PID is the backend's", func(t *testing.T) {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var pid int32
			var port int32
			if err := conn.QueryRow(ctx, "SELECT pg_backend_pid(), (SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid())").Scan(&pid, &port); err != nil {
				t.Fatal(err)
			}
			if uint32(pid) != conn.PgConn().PID() {
				t.Fatalf("pg_backend_pid() = %d, the driver was told %d", pid, conn.PgConn().PID())
			}
		})

		t.Run(name+": a terminated session sees the FATAL and is closed", func(t *testing.T) {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			terminate(t, conn.PgConn().PID())
			_, err = conn.Exec(ctx, "SELECT 1")
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Code != "57P01" {
				t.Fatalf("next statement: %v, want FATAL 57P01 (terminating connection due to administrator command)", err)
			}
			if !conn.IsClosed() {
				t.Fatal("connection still open after the FATAL")
			}
		})

		t.Run(name+": pgxpool replaces a killed idle connection", func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns, cfg.MinConns = 1, 0
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			first := c.Conn().PgConn().PID()
			c.Release()
			terminate(t, first)
			time.Sleep(1100 * time.Millisecond) // pgxpool pings connections idle for over a second
			var pid int32
			if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatalf("query on the pool after the kill: %v", err)
			}
			if uint32(pid) == first {
				t.Fatalf("pool still uses the killed backend %d", first)
			}
		})

		t.Run(name+": database/sql replaces a killed idle connection", func(t *testing.T) {
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(stdlib.GetConnector(*cfg))
			defer db.Close()
			db.SetMaxOpenConns(1)
			var first int32
			if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&first); err != nil {
				t.Fatal(err)
			}
			terminate(t, uint32(first))
			time.Sleep(1100 * time.Millisecond) // the driver pings connections idle for over a second
			var pid int32
			if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatalf("query after the kill: %v", err)
			}
			if pid == first {
				t.Fatalf("database/sql still uses the killed backend %d", first)
			}
		})
	}

	t.Run("cancel through the proxy still reaches the backend", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(targets["proxied"])
		if err != nil {
			t.Fatal(err)
		}
		// Send a CancelRequest when the context ends (pgx's default closes the socket).
		cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer qcancel()
		start := time.Now()
		_, err = conn.Exec(qctx, "SELECT pg_sleep(30)")
		if time.Since(start) > 20*time.Second {
			t.Fatal("pg_sleep was not cancelled")
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("cancelled statement: %v, want 57014 query_canceled", err)
		}
	})
}
