package grafana_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// TestDashboardMetricsExist checks every target of the dashboard against
// the /metrics of real binaries: the explicit-mode proxy for everything but
// the eBPF counters, `pgproxy agent` for those.
func TestDashboardMetricsExist(t *testing.T) {
	d, _ := loadDashboard(t)
	var proxyQueries, agentQueries []query
	used := map[string]bool{}
	for _, q := range d.targets() {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, n := range names {
			used[n] = true
		}
		if len(names) > 0 && isAgentMetric(names[0]) {
			agentQueries = append(agentQueries, q)
		} else {
			proxyQueries = append(proxyQueries, q)
		}
	}
	t.Run("proxy", func(t *testing.T) {
		m := proxyMetricsAfterTraffic(t, func(m harness.Metrics) []string {
			return allProblems(proxyQueries, d.variableQueries(t), m)
		})
		for _, p := range allProblems(proxyQueries, d.variableQueries(t), m) {
			t.Error(p)
		}
		for _, p := range unused(m, used, func(name string) bool { return strings.HasPrefix(name, "pgproxy_") }) {
			t.Errorf("the proxy exposes %s but no panel shows it", p)
		}
		// The same checks do fail on this scrape for a name it lacks.
		bogus := `sum(rate(pgproxy_bogus_total{job=~"$job", instance=~"$instance"}[5m]))`
		if p := checkQuery(bogus, m); len(p) == 0 {
			t.Errorf("%s passed the checks against the real scrape", bogus)
		}
		t.Logf("%d targets checked against the proxy's %d metric families", len(proxyQueries), len(m))
	})
	t.Run("agent", func(t *testing.T) {
		m := agentMetrics(t)
		for _, p := range allProblems(agentQueries, nil, m) {
			t.Error(p)
		}
		for _, p := range unused(m, used, isAgentMetric) {
			t.Errorf("the agent exposes %s but no panel shows it", p)
		}
		t.Logf("%d targets checked against the agent's %d metric families", len(agentQueries), len(m))
	})
}

// allProblems checks panel targets and variable queries against a scrape.
func allProblems(targets, variables []query, m harness.Metrics) []string {
	var out []string
	for _, q := range targets {
		for _, p := range checkQuery(q.expr, m) {
			out = append(out, fmt.Sprintf("%s: %s\n\t%s", q.where, p, q.expr))
		}
	}
	for _, q := range variables {
		for _, p := range checkVariableQuery(q.expr, m) {
			out = append(out, fmt.Sprintf("%s: %s", q.where, p))
		}
	}
	return out
}

// unused returns the exposed families matching want that no target uses
// (a histogram counts as used when any of its series is).
func unused(m harness.Metrics, used map[string]bool, want func(string) bool) []string {
	var out []string
	for name := range m {
		if !want(name) {
			continue
		}
		if used[name] || used[name+"_bucket"] || used[name+"_sum"] || used[name+"_count"] {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// proxyMetricsAfterTraffic starts PostgreSQL and pgproxy (ANALYSIS_ENABLED,
// a Valkey URL where connections are refused, a model provider), makes the traffic that gives
// the labelled families their first series, and scrapes /metrics until done
// reports no problem or 20 s pass; it returns the last scrape.
//
// The guardrails collectors are registered whether or not the analysis is
// on, and their bounded label sets exist from the start at 0 (telemetry's
// newGuardrails). The families labelled by what happened (errors by
// SQLSTATE class, authentication failures, rejections and cancel requests by
// reason, refusals by source, cache errors by operation and kind) have no
// series, and so are absent from the text format, until something happens:
// the traffic below makes one of each.
func proxyMetricsAfterTraffic(t *testing.T, done func(harness.Metrics) []string) harness.Metrics {
	pg := harness.SharedPostgres(t)
	// A model provider (the stand-in): the model tier's families, labelled
	// by provider, exist from the start with one.
	model := harness.StartModelServer(t, nil)
	p := harness.StartProxy(t, map[string]string{
		"OPENAI_BASE_URL":          model.URL + "/v1",
		"OPENAI_API_KEY":           model.OpenAIKey,
		"PG_BACKEND_URL":           pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
		"ANALYSIS_ENABLED":         "true",
		"ANALYSIS_MAX_ROWS":        "10",
		"ANALYSIS_TIMEOUT":         "10s",                 // a loaded machine must not turn the refusal into a fail-open fallback
		"VALKEY_URL":               "redis://127.0.0.1:1", // refused: Valkey is down
		"MAX_CONNS_PER_IP_PER_MIN": "0",
		"LOG_LEVEL":                "debug",
		"LOG_FORMAT":               "text",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A session: statements that run, one that fails (SQLSTATE class 22),
	// one the analysis refuses (an unfiltered read of a table of more than
	// ANALYSIS_MAX_ROWS rows).
	conn, err := pgx.Connect(ctx, p.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""))
	if err != nil {
		t.Fatalf("connect through the proxy: %v\n%s", err, p.Logs())
	}
	for _, sql := range []string{
		"DROP TABLE IF EXISTS grafana_rows",
		"CREATE TABLE grafana_rows AS SELECT g FROM generate_series(1, 100) g",
		"ANALYZE grafana_rows",
		"SELECT 1",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	wantCode(t, "SELECT 1/0", func() error { _, err := conn.Exec(ctx, "SELECT 1/0"); return err }, "22012")
	wantCode(t, "unfiltered read", func() error { _, err := conn.Exec(ctx, "SELECT * FROM grafana_rows"); return err }, "54000")
	_ = conn.Close(ctx)

	// A wrong password.
	if c, err := pgx.Connect(ctx, p.DSN(harness.ScramUser, "wrong", harness.TestDB, "")); err == nil {
		_ = c.Close(ctx)
		t.Error("login with a wrong password succeeded")
	}
	// A startup packet of an unknown protocol version, and a CancelRequest
	// with a key no session has.
	rawPacket(t, p.Addr(), 8, 0x12345678)
	rawPacket(t, p.Addr(), 16, 80877102, 1, 2)

	var m harness.Metrics
	var problems []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, err = harness.ReadMetrics(p.HealthURL("/metrics")); err != nil {
			t.Fatal(err)
		}
		if problems = done(m); len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Logf("families on /metrics after the traffic: %s", strings.Join(m.Names(), " "))
	}
	return m
}

func wantCode(t *testing.T, what string, run func() error, code string) {
	t.Helper()
	var pe *pgconn.PgError
	if err := run(); !errors.As(err, &pe) || pe.Code != code {
		t.Errorf("%s: want SQLSTATE %s, got %v", what, code, err)
	}
}

// rawPacket sends one untyped packet (length, then 32-bit words) and reads
// until the proxy closes the connection.
func rawPacket(t *testing.T, addr string, length uint32, words ...uint32) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := binary.BigEndian.AppendUint32(nil, length)
	for _, w := range words {
		buf = binary.BigEndian.AppendUint32(buf, w)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, c) // until EOF or the deadline
}

// cgroupPrefix names the empty cgroup the agent is attached to here; the
// test binary's PID follows, so a crashed run's leftover can be removed.
const cgroupPrefix = "pgproxy-grafana-"

// agentMetrics runs `pgproxy agent` attached to an empty cgroup of its own
// (so it intercepts nothing) and returns a scrape of its /metrics. It needs
// root, cgroup v2 and a kernel with the agent's eBPF program types;
// without them the test is skipped with the reason (it fails in CI).
func agentMetrics(t *testing.T) harness.Metrics {
	harness.RequireRoot(t)
	for _, pt := range []ebpf.ProgramType{ebpf.CGroupSockAddr, ebpf.SockOps, ebpf.CGroupSockopt, ebpf.SkMsg} {
		if err := features.HaveProgramType(pt); err != nil {
			harness.Unavailable(t, "eBPF program type %s not supported here: %v", pt, err)
		}
	}
	root, err := cgroup2Mount()
	if err != nil {
		harness.Unavailable(t, "%v", err)
	}
	sweepCgroups(t, root)
	cg := filepath.Join(root, cgroupPrefix+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("remove cgroup %s: %v", cg, err)
		}
	})

	bin := harness.BuildProxy(t)
	listen, err := harness.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	health, err := harness.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"INTERCEPT_TARGETS=192.0.2.10:5432", // a documentation address; the cgroup is empty anyway
		"INTERCEPT_CGROUP=" + cg,
		"AGENT_LISTEN_ADDR=" + listen,
		"HEALTH_CHECK_ADDR=" + health,
		"LOG_LEVEL=debug", "LOG_FORMAT=text",
	}
	if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
		env = append(env, "GOCOVERDIR="+v)
	}
	cmd := exec.Command(bin, "agent")
	cmd.Env = env
	cmd.Dir = t.TempDir() // no stray .env is read
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("agent exited with code %d on SIGTERM\n%s", code, out)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("agent still running 20 s after SIGTERM; killed\n%s", out)
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", out)
		}
	})
	if err := harness.WaitHealthy("http://"+health+"/health", done, cmd, 20*time.Second); err != nil {
		t.Fatalf("agent not healthy: %v\n%s", err, out)
	}
	m, err := harness.ReadMetrics("http://" + health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root mountpoint options [optional...] - fstype source options
		before, after, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(before); len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy mounted")
}

// sweepCgroups removes cgroups left by runs of this test whose process is
// gone (the agent died with them: Pdeathsig, and the cgroup is empty).
func sweepCgroups(t *testing.T, root string) {
	matches, _ := filepath.Glob(filepath.Join(root, cgroupPrefix+"*"))
	for _, m := range matches {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), cgroupPrefix))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if err := os.Remove(m); err != nil {
			t.Logf("stale cgroup %s: %v", m, err)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
