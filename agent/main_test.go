//go:build linux

package agent_test

import (
	"os"
	"testing"

	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

func TestMain(m *testing.M) {
	bpftest.RunHelperIfAsked()
	os.Exit(m.Run())
}
