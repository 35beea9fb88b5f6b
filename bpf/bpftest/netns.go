package bpftest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func ipPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ip")
	if err != nil {
		Skip(t, "iproute2 (ip) not installed")
	}
	return p
}

// IP runs `ip args...` and fails the test on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(ipPath(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// NewNetNS creates a named network namespace with lo up, deleted at cleanup.
func NewNetNS(t testing.TB, prefix string) string {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	IP(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	IP(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// InNetNS runs f on an OS thread that has joined the named network
// namespace; sockets, links and netlink requests f makes belong to it. An
// error from f fails the test.
func InNetNS(t testing.TB, name string, f func() error) {
	t.Helper()
	done := make(chan struct{})
	var setupErr, fErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			setupErr = err
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			setupErr = err
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			setupErr = err
			runtime.UnlockOSThread()
			return
		}
		fErr = f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread() // otherwise the thread dies with the goroutine
		}
	}()
	<-done
	if setupErr != nil {
		t.Fatalf("enter netns %s: %v", name, setupErr)
	}
	if fErr != nil {
		t.Fatalf("in netns %s: %v", name, fErr)
	}
}
