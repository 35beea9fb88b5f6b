//go:build linux

package transparent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// agentProc is a running `pgproxy agent`.
type agentProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	out    *syncBuffer
	health string // host:port of HEALTH_CHECK_ADDR
	env    map[string]string
}

// syncBuffer collects process output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// placement says where a process starts: inside a cgroup (nil: the test's own) and a network
// namespace ("" : the host's).
type placement struct {
	cg    *cgroup
	netns string
}

// command builds an exec.Cmd for argv at the placement: `ip netns exec NS` in front when a
// namespace is given (ip execs the program, so the PID stays the same), CgroupFD when a cgroup
// is.
func (p placement) command(argv []string, env []string) *exec.Cmd {
	if p.netns != "" {
		argv = append([]string{"ip", "netns", "exec", p.netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.cg != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = p.cg.fd
	}
	return cmd
}

// startAgent runs `pgproxy agent` with env (plus PATH and HOME) at the placement and waits
// for /health on HEALTH_CHECK_ADDR. Connection limits are off unless env sets them.
func startAgent(bin, workDir string, env map[string]string, at placement) (*agentProc, error) {
	full := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
		"LOG_LEVEL": "debug", "LOG_FORMAT": "text",
		"MAX_CONNS_PER_IP_PER_MIN": "0", "MAX_CLIENT_CONNS": "0",
	}
	if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
		full["GOCOVERDIR"] = v
	}
	for k, v := range env {
		full[k] = v
	}
	var envList []string
	for k, v := range full {
		envList = append(envList, k+"="+v)
	}
	a := &agentProc{done: make(chan struct{}), out: &syncBuffer{}, health: full["HEALTH_CHECK_ADDR"], env: full}
	a.cmd = at.command([]string{bin, "agent"}, envList)
	a.cmd.Dir = workDir // no stray .env is read
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	if err := a.waitHealthy(20 * time.Second); err != nil {
		a.kill()
		return nil, fmt.Errorf("agent not healthy: %w\n--- agent output ---\n%s", err, a.out.String())
	}
	return a, nil
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

func (a *agentProc) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

func (a *agentProc) waitHealthy(timeout time.Duration) error {
	return harness.WaitHealthy("http://"+a.health+"/health", a.done, a.cmd, timeout)
}

// stop sends SIGTERM and returns the exit code (128+signal when killed by one).
func (a *agentProc) stop() (int, error) {
	if a.running() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		a.kill()
		return -1, errors.New("agent still running 20 s after SIGTERM; killed")
	}
	st := a.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}

func (a *agentProc) kill() {
	if a.running() {
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// metrics reads /metrics and returns every sample without labels, and labelled samples
// summed under their bare name.
func (a *agentProc) metrics() (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + a.health + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
