package agent

import (
	"strings"
	"testing"
)

func TestCgroup2FromMountinfo(t *testing.T) {
	in := `22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/sys\040tem rw shared:11 - cgroup cgroup rw,name=systemd
`
	got, err := cgroup2FromMountinfo(strings.NewReader(in))
	if err != nil || got != "/sys/fs/cgroup/unified" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := cgroup2FromMountinfo(strings.NewReader(in[:strings.Index(in, "31 30")])); err == nil {
		t.Fatal("no error without a cgroup2 mount")
	}
	if s := unescapeMountPath(`/a\040b`); s != "/a b" {
		t.Fatalf("unescape: %q", s)
	}
}
