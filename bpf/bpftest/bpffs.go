package bpftest

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// BPFFS mounts a private bpffs instance on a temporary directory (so tests
// never touch /sys/fs/bpf) and unmounts it at cleanup.
func BPFFS(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		Skip(t, "cannot mount bpffs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount bpffs: %v", err)
		}
	})
	return dir
}

// Bpftool runs bpftool with args and returns its standard output, skipping
// (or failing when Required) if bpftool is not installed.
func Bpftool(t testing.TB, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("bpftool")
	if err != nil {
		Skip(t, "bpftool not installed")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bpftool %v: %v: %s", args, err, out)
	}
	t.Logf("$ bpftool %v\n%s", args, out)
	return string(out)
}
