package bpftest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "PGPROXY_BPFTEST_HELPER"

// RunHelperIfAsked runs the requested helper and exits when the process is a
// re-executed helper; otherwise it returns. Call it first in TestMain.
func RunHelperIfAsked() {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	var err error
	switch mode {
	case "dial":
		err = helperDial()
	case "listen":
		err = helperListen()
	case "loader":
		err = helperLoader()
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd builds a re-execution of the test binary in mode, started in the
// cgroup cg (when not nil) with args passed as environment variables.
func helperCmd(t testing.TB, cg *Cgroup, mode string, args map[string]string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	for k, v := range args {
		cmd.Env = append(cmd.Env, "PGPROXY_BPFTEST_"+k+"="+v)
	}
	if cg != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD}
	}
	return cmd
}

func helperArg(name string) string { return os.Getenv("PGPROXY_BPFTEST_" + name) }

// DialResult is what a client run by Dial saw.
type DialResult struct {
	Local string // getsockname
	Peer  string // getpeername (rewritten by cgroup/getpeername for redirected clients)
	Reply string // every byte read until EOF
}

// DialOptions tunes Dial.
type DialOptions struct {
	Mark    uint32 // SO_MARK set before connect
	Payload string // written, then the write side is shut
	// NetNS, when set, runs the client in that named network namespace
	// (ip netns exec).
	NetNS string
	// Size, when not zero, replaces Payload by Size pattern bytes (Pattern).
	Size int
}

// Pattern returns n deterministic bytes, the payload Dial sends for Size n.
func Pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+i/251)%26)
	}
	return string(b)
}

// Dial runs a TCP client to addr inside cg: it connects, writes the payload,
// half-closes and reads until EOF. It fails the test if the client fails.
func Dial(t testing.TB, cg *Cgroup, addr string, o DialOptions) DialResult {
	t.Helper()
	r, err := DialErr(t, cg, addr, o)
	if err != nil {
		t.Fatalf("client in cgroup to %s: %v", addr, err)
	}
	return r
}

// DialErr is Dial that returns the client's error instead of failing.
func DialErr(t testing.TB, cg *Cgroup, addr string, o DialOptions) (DialResult, error) {
	t.Helper()
	cmd := helperCmd(t, cg, "dial", map[string]string{
		"ADDR": addr, "MARK": strconv.FormatUint(uint64(o.Mark), 10), "PAYLOAD": o.Payload, "SIZE": strconv.Itoa(o.Size),
	})
	if o.NetNS != "" {
		cmd.Args = append([]string{"ip", "netns", "exec", o.NetNS}, cmd.Args...)
		cmd.Path = ipPath(t)
	}
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return DialResult{}, fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return DialResult{}, err
	}
	var r DialResult
	if err := json.Unmarshal(out, &r); err != nil {
		return DialResult{}, fmt.Errorf("decode client output %q: %v", out, err)
	}
	return r, nil
}
