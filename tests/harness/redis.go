package harness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartRedis runs redis-server on a free loopback port with persistence off, in a temporary
// folder, and returns its host:port. It is stopped in cleanup.
func StartRedis(t testing.TB) string {
	t.Helper()
	Require(t, "redis-server")
	bin, _ := LookBin("redis-server")
	dir := t.TempDir()
	var lastErr error
	for range 3 {
		port, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
			"--protected-mode", "no")
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		done := make(chan struct{})
		go waitProcess(cmd, done)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitRedis(addr, done, 15*time.Second); lastErr == nil {
			t.Cleanup(func() { stopRedis(t, cmd, done, logs) })
			return addr
		}
		_ = cmd.Process.Kill()
		<-done
		lastErr = fmt.Errorf("%w\n%s", lastErr, logs.String())
	}
	t.Fatalf("redis-server: %v", lastErr)
	return ""
}

// waitRedis sends PING until the server answers +PONG.
func waitRedis(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited during start-up", addr)
		default:
		}
		if pingRedis(addr) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s not answering PING after %s", addr, timeout)
}

func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
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
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func stopRedis(t testing.TB, cmd *exec.Cmd, done <-chan struct{}, logs *logBuffer) {
	if t.Failed() {
		t.Logf("redis-server output:\n%s", tail(logs.String(), 40))
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
