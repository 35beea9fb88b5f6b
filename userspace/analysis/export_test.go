package analysis

import (
	"testing"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// PlannerDB gives the external tests of the package (package analysis_test,
// which may import package cache) the shared cluster with the planner
// schema loaded.
func PlannerDB(t testing.TB) *harness.Cluster { return plannerDB(t) }

// LockTable holds an ACCESS EXCLUSIVE lock on a table of the planner
// schema's database until the test ends.
func LockTable(t *testing.T, table string) { lockTable(t, table) }
