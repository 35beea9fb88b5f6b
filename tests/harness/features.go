package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cucumber/godog"
)

// RunFeatures runs every features/*.feature file of the calling package as a
// subtest named after the file, each scenario as a subtest of it (godog's
// TestingT mode), so `go test -run Test/<file>/<scenario>` picks one.
// GODOG_TAGS selects scenarios; when it is unset, "~@known-bug" leaves out
// the reproductions of open tests/BUGS.md entries. init is called for each
// scenario with the feature's subtest.
func RunFeatures(t *testing.T, init func(t *testing.T, sc *godog.ScenarioContext), opts godog.Options) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("features", "*.feature"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no feature files under features/: %v", err)
	}
	tags, ok := os.LookupEnv("GODOG_TAGS")
	if !ok {
		tags = "~@known-bug"
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".feature")
		t.Run(name, func(t *testing.T) {
			o := opts
			o.Format, o.Paths, o.Tags, o.TestingT, o.Strict = "pretty", []string{f}, tags, t, true
			suite := godog.TestSuite{
				Name:                name,
				ScenarioInitializer: func(sc *godog.ScenarioContext) { init(t, sc) },
				Options:             &o,
			}
			if status := suite.Run(); status != 0 {
				t.Errorf("feature %s: godog status %d", name, status)
			}
		})
	}
}
