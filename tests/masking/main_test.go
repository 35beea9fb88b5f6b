package masking

import (
	"os"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestFeatures runs every features/*.feature file as a subtest named after
// the file, each scenario as a subtest of it. The cluster and the two shared
// proxies start once, before the first feature.
func TestFeatures(t *testing.T) {
	harness.Require(t, "initdb", "postgres", "psql")
	harness.BuildProxy(t)
	t.Cleanup(closeServers) // after the proxies (cleanups run last first)
	if err := servers(t); err != nil {
		t.Fatal(err)
	}
	harness.RunFeatures(t, initScenario, godog.Options{})
	t.Logf("bypass outcomes:\n%s", outcomeTable())
}
