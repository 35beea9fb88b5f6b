package e2e

import (
	"os"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestFeatures runs every features/*.feature file as a subtest named after the file, each
// scenario as a subtest of it (godog's TestingT mode).
func TestFeatures(t *testing.T) {
	harness.Require(t, "initdb", "postgres")
	// Build the proxy once, before the first scenario, so its time is not charged to one.
	harness.BuildProxy(t)
	t.Cleanup(closeSharedTLSCluster)
	harness.RunFeatures(t, func(_ *testing.T, sc *godog.ScenarioContext) { initializeScenario(sc) }, godog.Options{})
}
