// Command loadgen runs one SQL statement in a loop on many PostgreSQL connections and reports
// throughput and latency. It is the load tool for pgproxy: point -conn at the proxy, at the
// server directly, or at PgBouncer, and compare.
//
//	loadgen -conn postgres://user:pass@127.0.0.1:6432/db -workers 32 -duration 30s -mode prepared
//
// Workers start evenly over -rampup. A progress line goes to stderr every second (elapsed
// time, workers connected, TPS over the last second, errors so far); the summary goes to
// stdout: queries, errors by SQLSTATE, TPS, latency min/p50/p95/p99/max. Latencies are kept in
// a log-linear histogram of fixed size (under 1% error), so memory does not grow with the run.
//
// With -idle every worker connects, runs the query once and then holds its connection open
// (until -duration ends, or until interrupted when -duration is 0); hack/idle-rss.sh uses it
// to measure the proxy's memory per idle connection.
//
// Exit status: 0 after a run (even with query errors, which the summary counts), 1 when a
// connection could not be opened, 2 for an invalid command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command: parse args, run the load, print the summary. It returns the exit
// status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	connCfg, err := pgx.ParseConfig(cfg.Conn)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: -conn: %v\n", err)
		return 2
	}
	connCfg.DefaultQueryExecMode = cfg.ExecMode
	res := runLoad(ctx, cfg, connCfg, stderr)
	writeSummary(stdout, cfg, res)
	if res.ConnErr != nil {
		fmt.Fprintf(stderr, "loadgen: connection failed: %v\n", res.ConnErr)
		return 1
	}
	return 0
}
