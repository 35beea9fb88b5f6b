//go:build linux

package transparent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namePrefix starts the name of every cgroup, network namespace and pin folder these tests
// make; the test binary's PID follows, so leftovers of a crashed run can be told apart.
const namePrefix = "pgpt-"

var nameSeq atomic.Int64

// uniqueName returns pgpt-<pid>-<n>.
func uniqueName() string {
	return fmt.Sprintf("%s%d-%d", namePrefix, os.Getpid(), nameSeq.Add(1))
}

// ownerAlive reports whether the test process named in a pgpt-<pid>-<n> name still runs.
func ownerAlive(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return true
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return true
	}
	return syscall.Kill(pid, 0) != syscall.ESRCH
}

// cgroup2Root returns the cgroup v2 mount point from /proc/self/mountinfo.
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fields := strings.Fields(post); len(fields) > 0 && fields[0] == "cgroup2" {
			if pf := strings.Fields(pre); len(pf) >= 5 {
				return pf[4], nil
			}
		}
	}
	return "", errors.New("no cgroup2 mount in /proc/self/mountinfo")
}

// cgroup is a child cgroup v2 made for one scenario.
type cgroup struct {
	path string
	fd   int
}

// newCgroup makes a child of the cgroup2 root and opens it for SysProcAttr.CgroupFD.
func newCgroup() (*cgroup, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	p := filepath.Join(root, uniqueName())
	if err := os.Mkdir(p, 0o755); err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(p)
		return nil, err
	}
	return &cgroup{path: p, fd: fd}, nil
}

func readPids(file string) []int {
	b, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// close kills what is left in the cgroup and removes it.
func (c *cgroup) close() error {
	_ = unix.Close(c.fd)
	return removeCgroup(c.path)
}

func removeCgroup(p string) error {
	if len(readPids(filepath.Join(p, "cgroup.procs"))) > 0 {
		_ = os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0)
	}
	var err error
	for range 100 {
		if err = os.Remove(p); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", p, err)
}

// run runs a command and returns its combined output, failing with it.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// netns is a network namespace made with `ip netns add`.
type netns struct{ name string }

func newNetns() (*netns, error) {
	n := &netns{name: uniqueName()}
	if _, err := run("ip", "netns", "add", n.name); err != nil {
		return nil, err
	}
	if _, err := run("ip", "-n", n.name, "link", "set", "lo", "up"); err != nil {
		_ = n.close()
		return nil, err
	}
	return n, nil
}

// ip runs `ip -n NAME args...`.
func (n *netns) ip(args ...string) error {
	_, err := run("ip", append([]string{"-n", n.name}, args...)...)
	return err
}

// close deletes the namespace, and with it the veth ends inside (and their peers).
func (n *netns) close() error {
	_, err := run("ip", "netns", "del", n.name)
	return err
}

// vethName returns a short interface name (at most 15 bytes) unique to this run.
func vethName(suffix string) string {
	return fmt.Sprintf("pgpt%d%d%s", os.Getpid()%10000, nameSeq.Add(1), suffix)
}

const bpffs = "/sys/fs/bpf"

// ensureBPFFS mounts bpffs on /sys/fs/bpf when it is not mounted.
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(bpffs, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll(bpffs, 0o700); err != nil {
		return err
	}
	return unix.Mount("bpf", bpffs, "bpf", 0, "")
}

// sweepStale removes cgroups, network namespaces and pin folders that a crashed run of these
// tests left behind (their owning PID is gone).
func sweepStale(t *testing.T) {
	if root, err := cgroup2Root(); err == nil {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), namePrefix) && !ownerAlive(e.Name()) {
				t.Logf("removing stale cgroup %s", e.Name())
				_ = removeCgroup(filepath.Join(root, e.Name()))
			}
		}
	}
	if out, err := run("ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if strings.HasPrefix(name, namePrefix) && !ownerAlive(name) {
				t.Logf("removing stale network namespace %s", name)
				_, _ = run("ip", "netns", "del", name)
			}
		}
	}
	entries, _ := os.ReadDir(bpffs)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), namePrefix) && !ownerAlive(e.Name()) {
			t.Logf("removing stale pins %s", e.Name())
			_ = os.RemoveAll(filepath.Join(bpffs, e.Name()))
		}
	}
}

// leftovers lists this run's cgroups, namespaces and pin folders that still exist.
func leftovers() []string {
	mine := fmt.Sprintf("%s%d-", namePrefix, os.Getpid())
	var out []string
	if root, err := cgroup2Root(); err == nil {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), mine) {
				out = append(out, "cgroup "+e.Name())
			}
		}
	}
	if s, err := run("ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), mine) {
				out = append(out, "netns "+strings.TrimSpace(line))
			}
		}
	}
	entries, _ := os.ReadDir(bpffs)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), mine) {
			out = append(out, "pins "+e.Name())
		}
	}
	if s, err := run("ip", "-o", "link", "show"); err == nil {
		prefix := fmt.Sprintf("pgpt%d", os.Getpid()%10000)
		for _, line := range strings.Split(s, "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], prefix) {
				out = append(out, "link "+strings.TrimSuffix(f[1], ":"))
			}
		}
	}
	return out
}

// tcpPortsOf returns the local TCP ports of the sockets process pid holds open (IPv4 and
// IPv6, read in the process's own network namespace).
func tcpPortsOf(pid int) (map[int]bool, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n"))[1:] {
			fields := strings.Fields(string(line))
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			_, portHex, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseInt(portHex, 16, 32); err == nil {
				ports[int(p)] = true
			}
		}
	}
	return ports, nil
}
