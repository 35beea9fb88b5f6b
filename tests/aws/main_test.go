package aws

import (
	"os"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestFeatures runs every features/*.feature file as a subtest named after
// the file, each scenario as a subtest of it.
func TestFeatures(t *testing.T) {
	harness.Require(t, "initdb", "postgres", "redis-server")
	harness.BuildProxy(t)
	if err := servers(t); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeServers)
	harness.RunFeatures(t, initScenario, godog.Options{})
}
