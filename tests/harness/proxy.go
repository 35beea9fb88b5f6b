package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// BuildProxy returns the path of the pgproxy binary: $PGPROXY_BIN when set, otherwise the
// result of `go build ./cmd/pgproxy` in the module root, built once per test binary (with
// -cover when GOCOVERDIR is set, so the proxy writes coverage data there). The binary lives in
// the per-process folder that Run removes.
func BuildProxy(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PGPROXY_BIN"); p != "" {
		return p
	}
	build.once.Do(func() { build.path, build.err = buildProxy() })
	if build.err != nil {
		t.Fatalf("build pgproxy: %v", build.err)
	}
	return build.path
}

func buildProxy() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	pdir, err := processDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(pdir, "pgproxy")
	args := []string{"build", "-o", out}
	if os.Getenv("GOCOVERDIR") != "" {
		args = append(args, "-cover", "-coverpkg=github.com/pgproxy/pgproxy/...")
	}
	cmd := exec.Command("go", append(args, "./cmd/pgproxy")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out, nil
}

// ModuleRoot returns the folder holding go.mod, walking up from the working folder.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working folder")
		}
		dir = parent
	}
}

// Proxy is a running pgproxy process started by StartProxy.
type Proxy struct {
	t          testing.TB
	cmd        *exec.Cmd
	done       chan struct{}
	logs       *logBuffer
	listenAddr string
	healthAddr string
}

// StartProxy runs the pgproxy binary (BuildProxy) with exactly env plus PATH, HOME and
// GOCOVERDIR from the test's environment. LISTEN_ADDR and HEALTH_CHECK_ADDR get free loopback
// ports when absent. It waits until GET /health answers 200 (15 s), failing the test with the
// proxy's output otherwise. Cleanup sends SIGTERM, then SIGKILL after 10 s.
func StartProxy(t testing.TB, env map[string]string) *Proxy {
	t.Helper()
	return startProxyBinary(t, BuildProxy(t), env)
}

func startProxyBinary(t testing.TB, bin string, env map[string]string) *Proxy {
	t.Helper()
	full := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			full[k] = v
		}
	}
	for k, v := range env {
		full[k] = v
	}
	var chosen []string // the addresses picked here, picked again on a collision
	for _, k := range []string{"LISTEN_ADDR", "HEALTH_CHECK_ADDR"} {
		if full[k] == "" {
			chosen = append(chosen, k)
		}
	}
	for attempt := 1; ; attempt++ {
		for _, k := range chosen {
			addr, err := FreeAddr("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			full[k] = addr
		}
		p := &Proxy{
			t: t, logs: &logBuffer{}, done: make(chan struct{}),
			listenAddr: full["LISTEN_ADDR"], healthAddr: full["HEALTH_CHECK_ADDR"],
		}
		p.cmd = exec.Command(bin)
		for k, v := range full {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go waitProcess(p.cmd, p.done)
		err := p.waitHealthy(15 * time.Second)
		if err == nil {
			t.Cleanup(p.cleanup)
			return p
		}
		// Another test process may take a port between FreePort's check
		// and the proxy's listen: pick new ones (tests/BUGS.md 34).
		exited := false
		select {
		case <-p.done:
			exited = true
		default:
		}
		if exited && len(chosen) > 0 && attempt < 3 && strings.Contains(p.Logs(), "address already in use") {
			t.Logf("pgproxy could not listen (a port was taken meanwhile); new ports, attempt %d", attempt+1)
			continue
		}
		t.Cleanup(p.cleanup)
		t.Fatalf("pgproxy not healthy: %v\nenv: %v\n--- output ---\n%s", err, p.cmd.Env, p.Logs())
	}
}

func (p *Proxy) waitHealthy(timeout time.Duration) error {
	return WaitHealthy(p.HealthURL("/health"), p.done, p.cmd, timeout)
}

// WaitHealthy polls url until it answers 200, the process behind cmd exits
// (done is closed), or timeout passes.
func WaitHealthy(url string, done <-chan struct{}, cmd *exec.Cmd, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("exited with code %d during start-up", cmd.ProcessState.ExitCode())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 200 from %s within %s: %v", url, timeout, last)
}

func (p *Proxy) cleanup() {
	if p.t.Failed() {
		p.t.Logf("pgproxy output:\n%s", Tail(p.Logs(), 200))
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Addr returns the client listener address (LISTEN_ADDR).
func (p *Proxy) Addr() string { return dialable(p.listenAddr) }

// Port returns the port of the client listener.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.listenAddr)
	n, _ := strconv.Atoi(port)
	return n
}

// HealthURL returns the URL of path (for example "/ready" or "/metrics") on HEALTH_CHECK_ADDR.
func (p *Proxy) HealthURL(path string) string {
	return "http://" + dialable(p.healthAddr) + "/" + strings.TrimPrefix(path, "/")
}

// DSN returns a postgres URL that reaches db through the proxy. extra holds more query
// parameters ("sslmode=require&application_name=x"); sslmode=disable is added unless extra
// sets sslmode. An empty pass leaves the password out.
func (p *Proxy) DSN(user, pass, db, extra string) string {
	u := url.URL{Scheme: "postgres", Host: p.Addr(), Path: "/" + db, User: url.User(user)}
	if pass != "" {
		u.User = url.UserPassword(user, pass)
	}
	q := extra
	if !strings.Contains(extra, "sslmode=") {
		q = strings.TrimPrefix(extra+"&sslmode=disable", "&")
	}
	u.RawQuery = q
	return u.String()
}

// Logs returns what the proxy wrote to stdout and stderr so far.
func (p *Proxy) Logs() string { return p.logs.String() }

// Signal sends sig to the proxy process.
func (p *Proxy) Signal(sig os.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("signal pgproxy: %v", err)
	}
}

// Wait waits up to 60 s for the proxy to exit and returns its exit code (128+signal when a
// signal ended it). On timeout it reports a test error, kills the proxy and returns -1.
func (p *Proxy) Wait() int {
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Errorf("pgproxy still running 60 s after Wait was called; killing it")
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1
	}
	st := p.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Stop sends SIGTERM and returns the exit code from Wait.
func (p *Proxy) Stop() int {
	p.Signal(syscall.SIGTERM)
	return p.Wait()
}

// Running reports whether the proxy process has not exited yet.
func (p *Proxy) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// dialable turns a listen address (":6432", "0.0.0.0:6432", "[::]:6432") into one a client can
// dial on loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// maxLogBytes bounds the captured output; older output is dropped beyond it.
const maxLogBytes = 32 << 20

// logBuffer collects process output for Logs; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxLogBytes {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		b.buf = *bytes.NewBuffer(append([]byte("[earlier output dropped]\n"), keep...))
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
