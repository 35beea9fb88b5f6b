package bpftest

import (
	"errors"
	"os"
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
)

// Required reports whether kernel tests must run rather than skip: env
// PGPROXY_REQUIRE_BPF=1 or CI set.
func Required() bool {
	return os.Getenv("PGPROXY_REQUIRE_BPF") == "1" || os.Getenv("CI") != ""
}

// Skip skips the test with a printed reason, or fails it when Required.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("kernel test cannot run (PGPROXY_REQUIRE_BPF/CI set): "+format, args...)
	}
	t.Skipf("skipped: "+format, args...)
}

// RequireRoot gates a test on running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (euid %d)", os.Geteuid())
	}
}

// Load loads the programs or skips (fails when Required) if the kernel or
// privileges do not allow it. The objects are closed at cleanup.
func Load(t testing.TB, opts bpf.Options) *bpf.Objects {
	t.Helper()
	RequireRoot(t)
	objs, err := bpf.Load(opts)
	if errors.Is(err, bpf.ErrPermission) || errors.Is(err, bpf.ErrUnsupported) {
		Skip(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("bpf.Load: %v", err)
	}
	t.Cleanup(func() {
		if err := objs.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return objs
}
