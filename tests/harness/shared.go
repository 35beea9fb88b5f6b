package harness

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
)

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// SharedPostgres returns one default cluster (PGOptions{}) shared by all tests of the test
// binary, started on first use and stopped when Run returns; it needs harness.Run in TestMain.
// Tests must not Stop, Kill or reconfigure it, and should use their own table names.
func SharedPostgres(t testing.TB) *Cluster {
	t.Helper()
	Require(t, "initdb", "postgres")
	shared.once.Do(func() {
		registered := atExit(func() {
			if shared.c != nil {
				if err := shared.c.Close(); err != nil {
					slog.Warn("harness: stop shared postgres", "err", err)
				}
			}
		})
		if !registered {
			shared.err = errors.New("SharedPostgres needs TestMain to call harness.Run")
			return
		}
		shared.c, shared.err = NewPostgres(PGOptions{})
	})
	if shared.err != nil {
		t.Fatalf("shared postgres: %v", shared.err)
	}
	return shared.c
}
