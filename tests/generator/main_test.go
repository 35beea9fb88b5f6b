// Package generator holds the end-to-end tests of `pgproxy generate-config`
// (and CONFIG_GENERATOR_MODE=true): the real binary scans a real
// PostgreSQL database of labelled columns, and the file it writes is
// judged against the labels (precision and recall), parsed, and loaded by
// the proxy with masking on.
package generator

import (
	"os"
	"testing"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) {
	code := harness.Run(m)
	if first.dir != "" {
		os.RemoveAll(first.dir)
	}
	os.Exit(code)
}
