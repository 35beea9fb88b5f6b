//go:build linux

package bpf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

func TestPinsVisibleToBpftoolAndRemovedOnClose(t *testing.T) {
	fs := bpftest.BPFFS(t)
	dir := filepath.Join(fs, "pgproxy")
	objs, err := bpf.Load(bpf.Options{PinLinks: true})
	if err != nil {
		bpftest.Skip(t, "load: %v", err)
	}
	defer objs.Close()
	top := bpftest.NewCgroup(t, "", "")
	must(t, objs.SetTargets([]bpf.Target{exact(t, "127.0.0.2:15432")}))
	must(t, objs.Attach(top.Path))
	must(t, objs.Pin(dir))

	out := bpftest.Bpftool(t, "map", "dump", "pinned", filepath.Join(dir, "targets_exact"))
	// key: ::ffff:127.0.0.2, port 15432 (bytes 3c 48, read as 0x483c=18492).
	if !strings.Contains(out, "255,255,127,0,0,2") || !strings.Contains(out, `"port": 18492`) {
		t.Errorf("bpftool dump of targets_exact lacks 127.0.0.2:15432:\n%s", out)
	}
	bpftest.Bpftool(t, "map", "dump", "pinned", filepath.Join(dir, "counters"))
	out = bpftest.Bpftool(t, "prog", "show", "pinned", filepath.Join(dir, "pgproxy_connect4"))
	if !strings.Contains(out, "cgroup_sock_addr") {
		t.Errorf("bpftool prog show: %s", out)
	}
	out = bpftest.Bpftool(t, "link", "show", "pinned", filepath.Join(dir, "link_pgproxy_connect4"))
	if !strings.Contains(out, "cgroup") {
		t.Errorf("bpftool link show: %s", out)
	}
	bpftest.Bpftool(t, "cgroup", "show", top.Path)

	must(t, objs.Close())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("pin dir still there after Close: %v %v", err, entries)
	}
	if out := bpftest.Bpftool(t, "cgroup", "show", top.Path); strings.Contains(out, "pgproxy") {
		t.Fatalf("programs still attached after Close:\n%s", out)
	}
}

func TestRemoveStalePinsDetaches(t *testing.T) {
	fs := bpftest.BPFFS(t)
	dir := filepath.Join(fs, "pgproxy")
	must(t, os.MkdirAll(dir, 0o700))
	must(t, os.Mkdir(filepath.Join(dir, "not-ours"), 0o700))

	// A previous agent pinned its links and was killed with SIGKILL.
	bpftest.RequireRoot(t)
	top := bpftest.NewCgroup(t, "", "")
	bpftest.KilledLoader(t, top.Path, dir)
	if out := bpftest.Bpftool(t, "cgroup", "show", top.Path); !strings.Contains(out, "connect4") {
		t.Fatalf("pinned links should survive their loader:\n%s", out)
	}

	must(t, bpf.RemoveStalePins(dir))
	if out := bpftest.Bpftool(t, "cgroup", "show", top.Path); strings.Contains(out, "pgproxy") {
		t.Fatalf("programs still attached after RemoveStalePins:\n%s", out)
	}
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 0 {
		// Only files that are not pgproxy's are left.
		for _, e := range entries {
			if e.Name() != "not-ours" {
				t.Errorf("stale pin %s left", e.Name())
			}
		}
	}
}
