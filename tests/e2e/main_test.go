package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestFeatures runs every features/*.feature file as a subtest named after the file, each
// scenario as a subtest of it (godog's TestingT mode).
func TestFeatures(t *testing.T) {
	harness.Require(t, "initdb", "postgres")
	files, err := filepath.Glob(filepath.Join("features", "*.feature"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no feature files under features/: %v", err)
	}
	// Build the proxy once, before the first scenario, so its time is not charged to one.
	harness.BuildProxy(t)
	t.Cleanup(closeSharedTLSCluster)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".feature")
		t.Run(name, func(t *testing.T) {
			suite := godog.TestSuite{
				Name:                name,
				ScenarioInitializer: initializeScenario,
				Options: &godog.Options{
					Format:   "pretty",
					Paths:    []string{f},
					Tags:     os.Getenv("GODOG_TAGS"),
					TestingT: t,
					Strict:   true,
				},
			}
			if status := suite.Run(); status != 0 {
				t.Errorf("feature %s: godog status %d", name, status)
			}
		})
	}
}
