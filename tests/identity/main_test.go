package identity

import (
	"os"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// TestIdentityFeatures runs every features/*.feature file as a subtest named after the file,
// each scenario as a subtest of it (godog's TestingT mode). One PostgreSQL cluster, whose
// pg_hba.conf admits the service accounts the scenarios create, and one set of proxy TLS files
// are shared by all scenarios.
func TestIdentityFeatures(t *testing.T) {
	harness.Require(t, "initdb", "postgres")
	// Build the proxy before the first scenario, so its time is not charged to one.
	harness.BuildProxy(t)
	s := newSuite(t)
	harness.RunFeatures(t, s.initScenario, godog.Options{})
}
