package main

import (
	"bytes"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestRunAgainstPostgres runs loadgen for 2 s in each protocol against a real server and
// checks the progress lines and the summary.
func TestRunAgainstPostgres(t *testing.T) {
	pg := harness.SharedPostgres(t)
	dsn := pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{
				"-conn", dsn, "-workers", "4", "-duration", "2s", "-rampup", "400ms", "-mode", mode,
				"-query", "SELECT g, md5(g::text) FROM generate_series(1, 5) g",
			}, &stdout, &stderr)
			out := stdout.String()
			t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
			if code != 0 {
				t.Fatalf("exit status %d", code)
			}
			progress := regexp.MustCompile(`(?m)^loadgen: +\d+s  workers (\d+)/4  tps +[\d.]+  errors 0$`)
			lines := progress.FindAllStringSubmatch(stderr.String(), -1)
			if len(lines) < 1 {
				t.Fatalf("no progress line on stderr")
			}
			if last := lines[len(lines)-1]; last[1] != "4" {
				t.Errorf("last progress line shows %s/4 workers, want all 4 up after ramp-up", last[1])
			}
			ok := regexp.MustCompile(`queries +(\d+) ok, 0 errors`).FindStringSubmatch(out)
			if ok == nil {
				t.Fatalf("summary has no 'queries N ok, 0 errors' line")
			}
			if n, _ := strconv.Atoi(ok[1]); n < 100 {
				t.Errorf("only %d queries in 2 s", n)
			}
			lat := regexp.MustCompile(`latency +min ([\d.]+)ms  p50 ([\d.]+)ms  p95 ([\d.]+)ms  p99 ([\d.]+)ms  max ([\d.]+)ms`).
				FindStringSubmatch(out)
			if lat == nil {
				t.Fatalf("summary has no latency line")
			}
			prev := 0.0
			for _, s := range lat[1:] {
				v, _ := strconv.ParseFloat(s, 64)
				if v <= 0 || v < prev {
					t.Errorf("latencies not positive and increasing: %v", lat[1:])
				}
				prev = v
			}
			if !regexp.MustCompile(`tps +[\d.]+ \(after ramp-up [\d.]+\)`).MatchString(out) {
				t.Errorf("summary has no TPS line with the after-ramp-up figure")
			}
		})
	}
}

// TestErrorsCountedBySQLSTATE makes every query fail on the server and checks the tally.
func TestErrorsCountedBySQLSTATE(t *testing.T) {
	pg := harness.SharedPostgres(t)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{
		"-conn", pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
		"-workers", "2", "-duration", "1s", "-rampup", "0s", "-mode", "extended", "-query", "SELECT 1/0",
	}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit status %d; query errors must not fail the run\n%s%s", code, out, stderr.String())
	}
	if !strings.Contains(out, "queries     0 ok,") {
		t.Errorf("summary counts successful queries:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^  22012 +\d+  .*division by zero`).MatchString(out) {
		t.Errorf("summary does not count SQLSTATE 22012:\n%s", out)
	}
}

// TestIdleHoldsConnections checks -idle: connections stay open on the server until the end.
func TestIdleHoldsConnections(t *testing.T) {
	pg := harness.SharedPostgres(t)
	var stdout bytes.Buffer
	stderr := &notifyWriter{want: "idle: 5 connections open", seen: make(chan struct{})}
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{
			"-conn", pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
			"-workers", "5", "-duration", "3s", "-rampup", "200ms", "-idle", "-progress", "0",
			"-query", "SELECT 'loadgen-idle'",
		}, &stdout, stderr)
	}()
	select {
	case <-stderr.seen:
	case code := <-done:
		t.Fatalf("loadgen exited (%d) before reporting the idle connections:\n%s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no idle report within 10 s")
	}
	conn, err := pgx.Connect(t.Context(), pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE usename = $1 AND query = $2 AND state = 'idle'`, harness.ScramUser, "SELECT 'loadgen-idle'").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d idle loadgen sessions on the server, want 5", n)
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if !strings.Contains(stdout.String(), "queries     5 ok, 0 errors") {
		t.Errorf("summary:\n%s", stdout.String())
	}
}

// TestConnectionFailureExitsNonZero points loadgen at a port nobody listens on.
func TestConnectionFailureExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(t.Context(), []string{
		"-conn", "postgres://nobody@127.0.0.1:" + strconv.Itoa(addr.Port) + "/x?sslmode=disable&connect_timeout=2",
		"-workers", "3", "-duration", "20s", "-rampup", "0s",
	}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit status %d, want 1\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connection failed") {
		t.Errorf("stderr does not say the connection failed: %q", stderr.String())
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("a connection failure took %v to end the run", time.Since(start))
	}
}

// TestWrongPasswordExitsNonZero: an authentication failure is a connection failure too.
func TestWrongPasswordExitsNonZero(t *testing.T) {
	pg := harness.SharedPostgres(t)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{
		"-conn", pg.DSN(harness.ScramUser, "wrong", harness.TestDB), "-workers", "2", "-duration", "5s", "-rampup", "0s",
	}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "28P01") {
		t.Fatalf("exit status %d, stderr %q; want 1 and SQLSTATE 28P01", code, stderr.String())
	}
}

// notifyWriter collects output and closes seen once it contains want.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
