package harness

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestStartProxyFake drives the Proxy machinery with the test binary standing in for pgproxy.
func TestStartProxyFake(t *testing.T) {
	t.Parallel()
	pg := SharedPostgres(t)
	p := startProxyBinary(t, os.Args[0], map[string]string{
		"HARNESS_FAKE_PROXY": "1",
		"PG_BACKEND_URL":     pg.BackendURL(TestDB),
	})
	if !strings.Contains(p.Logs(), "fake proxy ready") {
		t.Errorf("logs = %q", p.Logs())
	}
	dsn := p.DSN(ScramUser, ScramPass, TestDB, "application_name=harness")
	if !strings.Contains(dsn, "sslmode=disable") || !strings.HasPrefix(dsn, "postgres://scram_user:scram_pass@127.0.0.1:") {
		t.Errorf("DSN = %s", dsn)
	}
	conn, err := connect(t, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if n := mustQueryInt(t, conn, "SELECT 42"); n != 42 {
		t.Fatal(n)
	}
	_ = conn.Close(context.Background())
	resp, err := http.Get(p.HealthURL("health"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 || p.Running() {
		t.Errorf("exit code %d", code)
	}
}

func TestStartProxyFakeKilled(t *testing.T) {
	t.Parallel()
	p := startProxyBinary(t, os.Args[0], map[string]string{
		"HARNESS_FAKE_PROXY": "1", "PG_BACKEND_URL": "postgres://127.0.0.1:1/x",
	})
	p.Signal(syscall.SIGKILL)
	if code := p.Wait(); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d", code)
	}
}

// TestBuildProxy builds the real binary once cmd/pgproxy exists.
func TestBuildProxy(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(root, "cmd", "pgproxy", "*.go")); len(files) == 0 {
		t.Skip("skipped: cmd/pgproxy has no Go files yet")
	}
	bin := BuildProxy(t)
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("binary %s: %v", bin, err)
	}
	if again := BuildProxy(t); again != bin {
		t.Errorf("second build at %s", again)
	}
}

// TestStartProxy runs the real pgproxy in front of a cluster, once cmd/pgproxy exists.
func TestStartProxy(t *testing.T) {
	t.Parallel()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(root, "cmd", "pgproxy", "*.go")); len(files) == 0 {
		t.Skip("skipped: cmd/pgproxy has no Go files yet")
	}
	pg := SharedPostgres(t)
	p := StartProxy(t, map[string]string{"PG_BACKEND_URL": pg.BackendURL(TestDB)})
	conn, err := connect(t, p.DSN(ScramUser, ScramPass, TestDB, ""))
	if err != nil {
		t.Fatalf("connect through pgproxy: %v", err)
	}
	if n := mustQueryInt(t, conn, "SELECT 7"); n != 7 {
		t.Fatal(n)
	}
	_ = conn.Close(context.Background())
	if code := p.Stop(); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}
