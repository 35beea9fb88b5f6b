package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// DefaultPGBinDir is where Debian installs the PostgreSQL 15 server programs. The environment
// variable PG_BIN_DIR overrides it.
const DefaultPGBinDir = "/usr/lib/postgresql/15/bin"

// InCI reports whether the tests run in continuous integration (the CI environment variable is
// set to anything but "" or "false"). In CI, missing prerequisites fail tests instead of
// skipping them.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Unavailable stops the test because a prerequisite is missing: it skips with the reason, or
// fails with it when InCI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s (run hack/ensure-deps.sh)", reason)
	}
	t.Skipf("skipped: %s (run hack/ensure-deps.sh)", reason)
}

// Require checks that each named program can be found, in the PostgreSQL bin folder or on PATH,
// and calls Unavailable for the first one that cannot.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := LookBin(b); err != nil {
			Unavailable(t, "program %q not found", b)
		}
	}
}

// RequireRoot calls Unavailable unless the tests run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "test needs root")
	}
}

// PGBinDir returns the folder of the PostgreSQL server programs (PG_BIN_DIR or DefaultPGBinDir).
func PGBinDir() string {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		return d
	}
	return DefaultPGBinDir
}

// LookBin finds a program in PGBinDir first, then on PATH, and returns its path.
func LookBin(name string) (string, error) {
	p := filepath.Join(PGBinDir(), name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return exec.LookPath(name)
}

// Eventually polls cond every 5 ms until it holds, or fails the test after
// timeout, naming what it waited for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
