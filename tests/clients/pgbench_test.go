package clients

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
)

var (
	pgbenchTPS    = regexp.MustCompile(`tps = ([0-9.]+)`)
	pgbenchFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
	pgbenchDone   = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
)

// TestPgbench initialises the pgbench tables through the proxy (COPY, DDL, VACUUM) and runs
// the select-only script for 5 s with the simple and the prepared protocols.
func TestPgbench(t *testing.T) {
	harness.Require(t, "pgbench")
	_, proxy := startProxy(t, nil)
	dsn := proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, "application_name=clients-pgbench")
	run(t, 2*time.Minute, nil, "pgbench", "-i", "-q", "-s", "1", dsn)
	for _, mode := range []string{"simple", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			out := run(t, time.Minute, nil, "pgbench", "-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-T", "5", dsn)
			done := pgbenchDone.FindStringSubmatch(out)
			tps := pgbenchTPS.FindStringSubmatch(out)
			if done == nil || tps == nil {
				t.Fatalf("unexpected pgbench output:\n%s", out)
			}
			if n, _ := strconv.Atoi(done[1]); n < 100 {
				t.Errorf("only %d transactions in 5 s:\n%s", n, out)
			}
			if m := pgbenchFailed.FindStringSubmatch(out); m != nil && m[1] != "0" {
				t.Errorf("%s failed transactions:\n%s", m[1], out)
			}
			t.Logf("pgbench -M %s through the proxy: %s transactions, tps %s", mode, done[1], tps[1])
		})
	}
}
