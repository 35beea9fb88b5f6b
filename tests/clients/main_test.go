package clients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// startProxy starts pgproxy in front of the shared cluster with env added to the defaults.
func startProxy(t *testing.T, env map[string]string) (*harness.Cluster, *harness.Proxy) {
	t.Helper()
	pg := harness.SharedPostgres(t)
	full := map[string]string{"PG_BACKEND_URL": pg.BackendURL(harness.TestDB), "LOG_FORMAT": "text"}
	for k, v := range env {
		full[k] = v
	}
	return pg, harness.StartProxy(t, full)
}

// run executes a client program and returns its stdout, failing the test with both outputs
// when it exits with an error.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", name, stderr.String())
	}
	return stdout.String()
}

// superuserValue reads one value as the superuser over the unix socket, bypassing the proxy.
func superuserValue(t *testing.T, pg *harness.Cluster, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgxConnect(ctx, pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		t.Fatalf("superuser connection: %v", err)
	}
	defer conn.Close(ctx)
	var v any
	if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(v)
}

// runErr executes a client program that may fail and returns its combined output and error.
func runErr(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
