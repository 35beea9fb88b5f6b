//go:build linux

package transparent

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// The test binary re-executed as a pgx client inside a cgroup or namespace.
		os.Exit(helperMain())
	}
	os.Exit(harness.Run(m))
}

// TestTransparentFeatures runs every features/*.feature file as a subtest named after the
// file, each scenario as a subtest of it. GODOG_TAGS picks scenarios (default "~@known-bug";
// GODOG_TAGS=@known-bug runs the reproductions of open BUGS.md entries).
func TestTransparentFeatures(t *testing.T) {
	preflight(t)
	sweepStale(t)
	bin := harness.BuildProxy(t)
	suite := newSuiteState(t, bin)
	t.Cleanup(suite.close)
	harness.RunFeatures(t, func(_ *testing.T, sc *godog.ScenarioContext) { initializeScenario(sc, suite) },
		godog.Options{NoColors: true})
	suite.checkNothingLeft(t)
}

// preflight skips (fails in CI) when the machine cannot run transparent mode.
func preflight(t *testing.T) {
	t.Helper()
	harness.RequireRoot(t)
	harness.Require(t, "initdb", "postgres", "psql", "pgbench", "bpftool", "ip")
	for _, pt := range []ebpf.ProgramType{ebpf.CGroupSockAddr, ebpf.SockOps, ebpf.CGroupSockopt, ebpf.SkMsg} {
		if err := features.HaveProgramType(pt); err != nil {
			harness.Unavailable(t, "eBPF program type %s not supported by this kernel: %v", pt, err)
		}
	}
	if _, err := cgroup2Root(); err != nil {
		harness.Unavailable(t, "no cgroup v2 hierarchy: %v", err)
	}
	if err := ensureBPFFS(); err != nil {
		harness.Unavailable(t, "bpffs: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		harness.Unavailable(t, "iproute2 missing: %v", err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); errors.Is(err, os.ErrNotExist) {
		harness.Unavailable(t, "no network namespaces")
	}
}
