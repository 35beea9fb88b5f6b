package bpftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/agent"
)

// Cgroup is a cgroup v2 directory made for one test.
type Cgroup struct {
	Path string
	FD   int // an O_DIRECTORY descriptor for SysProcAttr.CgroupFD
}

// NewCgroup creates a child cgroup named after the test under parent (the
// cgroup2 mount when parent is empty). It is removed at cleanup, after any
// process left in it has been killed.
func NewCgroup(t testing.TB, parent, name string) *Cgroup {
	t.Helper()
	if parent == "" {
		root, err := agent.Cgroup2Root()
		if err != nil {
			Skip(t, "no cgroup v2: %v", err)
		}
		parent = root
	}
	if name == "" {
		name = fmt.Sprintf("pgproxy-test-%s-%d", sanitize(t.Name()), os.Getpid())
	}
	path := filepath.Join(parent, name)
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		os.Remove(path)
		t.Fatalf("open cgroup: %v", err)
	}
	t.Cleanup(func() {
		f.Close()
		removeCgroup(t, path)
	})
	return &Cgroup{Path: path, FD: int(f.Fd())}
}

// removeCgroup kills what is left in path and removes it, retrying while the
// kernel finishes tearing processes down.
func removeCgroup(t testing.TB, path string) {
	os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0)
	var err error
	for range 50 {
		if err = os.Remove(path); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", path, err)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}
