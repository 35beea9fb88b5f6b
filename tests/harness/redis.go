package harness

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisOptions configure StartRedisWith.
type RedisOptions struct {
	// TLS, when set, makes the server speak TLS only (the plaintext port is off) with this
	// server certificate; clients are not asked for certificates.
	TLS *Certs
	// Args are more redis-server arguments, one word each, for example "--requirepass",
	// "secret" or "--user", "alice", "on", ">pw", "~*", "&*", "+@all".
	Args []string
}

// Redis is a redis-server started by StartRedisWith. It keeps its port across Stop, Kill and
// Start, so clients can watch it go away and come back. Methods are safe for concurrent use.
type Redis struct {
	// Addr is the server's host:port on the loopback interface.
	Addr string
	// TLS reports whether the server speaks TLS (RedisOptions.TLS was set).
	TLS bool

	t    testing.TB
	bin  string
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *logBuffer
}

// StartRedis runs redis-server on a free loopback port with persistence off, in a temporary
// folder, and returns its host:port. It is stopped in cleanup.
func StartRedis(t testing.TB) string {
	t.Helper()
	return StartRedisWith(t, RedisOptions{}).Addr
}

// StartRedisWith runs redis-server as StartRedis does, with opts, and returns it for restarts
// and faults. It is stopped in cleanup.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	Require(t, "redis-server")
	bin, _ := LookBin("redis-server")
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), TLS: opts.TLS != nil}
	var lastErr error
	for range 3 {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.args = redisArgs(port, r.dir, opts)
		if lastErr = r.Start(); lastErr == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("redis-server output:\n%s", Tail(r.Logs(), 40))
				}
				_ = r.Stop()
			})
			return r
		}
	}
	t.Fatalf("redis-server: %v", lastErr)
	return nil
}

func redisArgs(port int, dir string, opts RedisOptions) []string {
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "no"}
	if opts.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", opts.TLS.CertFile, "--tls-key-file", opts.TLS.KeyFile,
			"--tls-ca-cert-file", opts.TLS.CAFile, "--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	return append(args, opts.Args...)
}

// Start starts the server again on its port after Stop or Kill, and waits until it answers
// PING. It fails when the server is running.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("redis-server is running")
	}
	logs := &logBuffer{}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go waitProcess(cmd, done)
	if err := waitRedis(r.Addr, r.TLS, done, 15*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w\n%s", err, logs.String())
	}
	r.cmd, r.done, r.logs = cmd, done, logs
	return nil
}

// Stop ends the server with SIGINT (SIGKILL after 10 s), paused or not, and waits for it to
// exit. Stopping a stopped server does nothing.
func (r *Redis) Stop() error { return r.stop(os.Interrupt, 10*time.Second) }

// Kill ends the server with SIGKILL, as a crash would, and waits for it to exit.
func (r *Redis) Kill() error { return r.stop(os.Kill, 10*time.Second) }

func (r *Redis) stop(sig os.Signal, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	cmd, done := r.cmd, r.done
	r.cmd, r.done = nil, nil
	_ = cmd.Process.Signal(sig)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to handle SIGINT
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s did not exit within %s of %v", r.Addr, grace, sig)
	}
}

// Pause freezes the server with SIGSTOP: connections are still accepted by the kernel but
// nothing is answered, as with an overloaded or unreachable server. Resume continues it.
func (r *Redis) Pause() error { return r.signal(syscall.SIGSTOP) }

// Resume continues a server frozen by Pause.
func (r *Redis) Resume() error { return r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("redis-server is not running")
	}
	return r.cmd.Process.Signal(sig)
}

// Logs returns what the running (or last) server printed.
func (r *Redis) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		return ""
	}
	return r.logs.String()
}

// waitRedis sends PING until the server answers +PONG (or asks for AUTH).
func waitRedis(addr string, useTLS bool, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited during start-up", addr)
		default:
		}
		if pingRedis(addr, useTLS) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not answering PING after %s", addr, timeout)
}

// pingRedis sends one PING; over TLS it does not verify the certificate (it checks liveness,
// not identity). An answer asking for AUTH counts as alive.
func pingRedis(addr string, useTLS bool) error {
	var c net.Conn
	var err error
	if useTLS {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second},
			Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
		c, err = d.Dial("tcp", addr)
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// A server that wants AUTH first (requirepass, default user off) is up as well.
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
