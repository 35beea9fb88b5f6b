package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// registerServerSteps defines the steps that start, stop and signal PostgreSQL and pgproxy.
func registerServerSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^a PostgreSQL server$`, func() { w.cluster() })
	sc.Step(`^a dedicated PostgreSQL server$`, func() {
		w.pg, w.dedicated = harness.StartPostgres(w.t, harness.PGOptions{}), true
	})
	sc.Step(`^a PostgreSQL server with TLS$`, func() { w.pg = sharedTLSCluster(w.t) })
	sc.Step(`^a dedicated PostgreSQL server with max_connections (\d+)$`, func(n int) {
		w.pg = harness.StartPostgres(w.t, harness.PGOptions{Conf: []string{
			fmt.Sprintf("max_connections = %d", n), "superuser_reserved_connections = 1"}})
		w.dedicated = true
	})
	sc.Step(`^a dedicated PostgreSQL server listening on IPv6 loopback$`, func() {
		w.pg = harness.StartPostgres(w.t, harness.PGOptions{ListenAddr: "::1"})
		w.dedicated = true
	})
	sc.Step(`^a proxy listening on IPv6 loopback in front of it$`, func() error {
		addr, err := harness.FreeAddr("::1")
		if err != nil {
			return err
		}
		w.startProxy(map[string]string{"LISTEN_ADDR": addr})
		return nil
	})
	sc.Step(`^a proxy in front of it$`, func() { w.startProxy(nil) })
	sc.Step(`^a proxy in front of it with:$`, func(tbl *godog.Table) error {
		env, err := w.tableEnv(tbl)
		if err != nil {
			return err
		}
		w.startProxy(env)
		return nil
	})
	sc.Step(`^a proxy with TLS for clients in front of it$`, func() {
		w.enableClientTLS()
		w.startProxy(nil)
	})
	sc.Step(`^a proxy with TLS for clients in front of it with:$`, func(tbl *godog.Table) error {
		w.enableClientTLS()
		env, err := w.tableEnv(tbl)
		if err != nil {
			return err
		}
		w.startProxy(env)
		return nil
	})
	sc.Step(`^PostgreSQL itself offers "([^"]*)" to "([^"]*)" over TLS$`, func(mech, user string) error {
		cfg, err := w.cluster().Certs().ClientTLSConfig(w.cluster().Host())
		if err != nil {
			return err
		}
		got, err := harness.ProbeAuth(w.ctx, w.cluster().Addr(), user, harness.TestDB, cfg)
		if err != nil {
			return err
		}
		if !slices.Contains(got.Mechanisms, mech) {
			return fmt.Errorf("PostgreSQL offers %v, without %s: the scenario cannot show the filtering", got.Mechanisms, mech)
		}
		return nil
	})
	sc.Step(`^the proxy offers only "([^"]*)" to "([^"]*)" over TLS$`, func(mech, user string) error {
		cfg, err := w.clientCerts.ClientTLSConfig("127.0.0.1")
		if err != nil {
			return err
		}
		got, err := harness.ProbeAuth(w.ctx, w.proxy.Addr(), user, harness.TestDB, cfg)
		if err != nil {
			return err
		}
		if got.Method != "scram" || !slices.Equal(got.Mechanisms, []string{mech}) {
			return fmt.Errorf("proxy asks for %s with mechanisms %v, want only %s", got.Method, got.Mechanisms, mech)
		}
		return nil
	})
	sc.Step(`^the PostgreSQL server (stops|is killed|starts again)$`, w.serverLifecycle)
	sc.Step(`^(/ready|/health) answers (\d+)(?: within (\d+) seconds)?$`, w.httpAnswers)
	sc.Step(`^the proxy receives (SIGTERM|SIGINT)$`, func(sig string) {
		if sig == "SIGINT" {
			w.proxy.Signal(syscall.SIGINT)
			return
		}
		w.proxy.Signal(syscall.SIGTERM)
	})
	sc.Step(`^the proxy exits with code (\d+) within (\d+) seconds$`, w.proxyExits)
	sc.Step(`^the proxy is still serving new sessions$`, func() error { return w.stillServing(harness.ScramUser) })
	// With a 1 s STARTUP_TIMEOUT a SCRAM login (4096 PBKDF2 rounds on each side) can run out
	// of time on a loaded 2-core machine; a trust login shows the proxy serves just as well.
	sc.Step(`^the proxy is still serving new sessions of "([^"]*)"$`, w.stillServing)
	sc.Step(`^the proxy log never contains "([^"]*)"$`, func(secret string) error {
		if logs := w.proxy.Logs(); strings.Contains(logs, secret) {
			return fmt.Errorf("the proxy log contains %q:\n%s", secret, logs)
		}
		return nil
	})
	sc.Step(`^new connections are refused$`, w.newConnectionsRefused)
	sc.Step(`^the superuser terminates the backend of session "(\w+)"$`, w.terminateBackend)
}

// tableEnv reads a two-column table of proxy environment variables. The value {client CA}
// names the CA of the proxy's own client certificates, which did not sign PostgreSQL's;
// {backend URL with sslmode=MODE} is the server's URL with that sslmode.
func (w *world) tableEnv(tbl *godog.Table) (map[string]string, error) {
	env := map[string]string{}
	for _, row := range tbl.Rows {
		if len(row.Cells) != 2 {
			return nil, fmt.Errorf("proxy settings need two columns (name | value), got %d", len(row.Cells))
		}
		v := row.Cells[1].Value
		switch {
		case v == "{client CA}":
			if w.clientCerts == nil {
				w.enableClientTLS()
			}
			v = w.clientCerts.CAFile
		case strings.HasPrefix(v, "{backend URL with sslmode="):
			mode := strings.TrimSuffix(strings.TrimPrefix(v, "{backend URL with sslmode="), "}")
			u, err := url.Parse(w.cluster().BackendURL(harness.TestDB))
			if err != nil {
				return nil, err
			}
			q := u.Query()
			q.Set("sslmode", mode)
			u.RawQuery = q.Encode()
			v = u.String()
		}
		env[row.Cells[0].Value] = v
	}
	return env, nil
}

func (w *world) serverLifecycle(action string) error {
	if !w.dedicated {
		return fmt.Errorf("scenario must use a dedicated PostgreSQL server to stop or kill it")
	}
	switch action {
	case "stops":
		return w.pg.Stop()
	case "is killed":
		return w.pg.Kill()
	default:
		return w.pg.Start()
	}
}

// httpAnswers polls path until it answers code, for up to within seconds (once when absent).
func (w *world) httpAnswers(path string, code int, within string) error {
	wait := 0
	if within != "" {
		wait, _ = strconv.Atoi(within)
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		resp, err := client.Get(w.proxy.HealthURL(path))
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == code {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: want %d within %ds, last answer: %s", path, code, wait, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) proxyExits(code, within int) error {
	deadline := time.Now().Add(time.Duration(within) * time.Second)
	for w.proxy.Running() {
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy still running %d s later", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := w.proxy.Wait(); got != code {
		return fmt.Errorf("proxy exit code %d, want %d", got, code)
	}
	return nil
}

func (w *world) stillServing(user string) error {
	s, err := w.connect("probe", w.dsn(user, passwords[user], "", ""))
	if err != nil {
		if pe := pgError(err); pe != nil {
			return fmt.Errorf("new session through the proxy: %w (detail: %s)", err, pe.Detail)
		}
		return fmt.Errorf("new session through the proxy: %w", err)
	}
	ctx, cancel := w.stepCtx(10 * time.Second)
	defer cancel()
	if got, err := exec(ctx, s.conn, "SELECT 40 + 2"); err != nil || got != "42" {
		return fmt.Errorf("SELECT 40 + 2 through a new session: %q, %v", got, err)
	}
	return nil
}

func (w *world) newConnectionsRefused() error {
	_, err := w.connect("refused", w.dsn(harness.ScramUser, harness.ScramPass, "", "connect_timeout=3"))
	if err == nil {
		return fmt.Errorf("a new connection was accepted")
	}
	w.t.Logf("new connection refused as expected: %v", err)
	return nil
}

func (w *world) terminateBackend(name string) error {
	s := w.session(name)
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	_ = ctx
	return w.cluster().SuperuserExec(fmt.Sprintf("SELECT pg_terminate_backend(%d)", s.backendPID))
}

// sharedTLS is a TLS-enabled cluster shared by the scenarios that only need TLS on the backend
// link; TestFeatures closes it.
var sharedTLS struct {
	mu sync.Mutex
	c  *harness.Cluster
}

func sharedTLSCluster(t testing.TB) *harness.Cluster {
	sharedTLS.mu.Lock()
	defer sharedTLS.mu.Unlock()
	if sharedTLS.c == nil {
		harness.Require(t, "initdb", "postgres")
		c, err := harness.NewPostgres(harness.PGOptions{TLS: true})
		if err != nil {
			t.Fatalf("start PostgreSQL with TLS: %v", err)
		}
		sharedTLS.c = c
	}
	return sharedTLS.c
}

func closeSharedTLSCluster() {
	sharedTLS.mu.Lock()
	defer sharedTLS.mu.Unlock()
	if sharedTLS.c != nil {
		_ = sharedTLS.c.Close()
		sharedTLS.c = nil
	}
}
