package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Cgroup2Root returns the mount point of the cgroup v2 hierarchy, read from
// /proc/self/mountinfo (for example /sys/fs/cgroup, or /sys/fs/cgroup/unified
// on a hybrid host).
func Cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("agent: find cgroup2 mount: %w", err)
	}
	defer f.Close()
	return cgroup2FromMountinfo(f)
}

// cgroup2FromMountinfo returns the first cgroup2 mount point in a mountinfo
// listing (proc(5): fields, then " - ", then fstype source options).
func cgroup2FromMountinfo(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(pre)
		after := strings.Fields(post)
		if len(fields) < 5 || len(after) < 1 || after[0] != "cgroup2" {
			continue
		}
		return unescapeMountPath(fields[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("agent: read mountinfo: %w", err)
	}
	return "", errors.New("agent: no cgroup2 mount in /proc/self/mountinfo (mount -t cgroup2 none /sys/fs/cgroup)")
}

// unescapeMountPath undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// OwnCgroup returns the cgroup v2 directory of the calling process, from
// /proc/self/cgroup ("0::/path") joined to the cgroup2 mount.
func OwnCgroup() (string, error) {
	root, err := Cgroup2Root()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("agent: read own cgroup: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return root + strings.TrimSuffix(rest, "/"), nil
		}
	}
	return "", errors.New("agent: no cgroup v2 entry in /proc/self/cgroup")
}
