package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
)

// Flags of the settings map (common.h CFG_*).
const (
	cfgHaveRedirect4 = 1 << 0
	cfgHaveRedirect6 = 1 << 1
	cfgAccelerate    = 1 << 2
)

// writeSettings applies change to the cached settings and writes them to the
// kernel. The accelerate flag always follows Options.
func (o *Objects) writeSettings(change func(*pgproxyConfig)) error {
	next := o.settings
	change(&next)
	next.Flags &^= cfgAccelerate
	if o.opts.Accelerate {
		next.Flags |= cfgAccelerate
	}
	if err := o.m(mapSettings).Put(uint32(0), &next); err != nil {
		return fmt.Errorf("bpf: write settings: %w", err)
	}
	o.settings = next
	return nil
}

func (o *Objects) setSettings(change func(*pgproxyConfig)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	return o.writeSettings(change)
}

// SetRedirect sets where redirected connects go: the agent's listener as the
// client can reach it (127.0.0.1 on the node, the host-side veth address for
// a pod in its own network namespace). An IPv4 address serves IPv4 connects
// and v4-mapped IPv6 connects; an IPv6 address serves IPv6 connects. Call it
// once per family to serve both. Until it is set for a family, connects of
// that family are left alone.
func (o *Objects) SetRedirect(to netip.AddrPort) error {
	a := to.Addr().Unmap()
	if !a.IsValid() || a.IsUnspecified() || to.Port() == 0 {
		return fmt.Errorf("bpf: redirect address %s must be a concrete address and port", to)
	}
	return o.setSettings(func(c *pgproxyConfig) {
		if a.Is4() {
			c.Redirect4 = netAddr4(a)
			c.Port4 = netPort(to.Port())
			c.Flags |= cfgHaveRedirect4
			return
		}
		c.Redirect6 = a.As16()
		c.Port6 = netPort(to.Port())
		c.Flags |= cfgHaveRedirect6
	})
}

// SetAgentMark makes connects from sockets whose SO_MARK contains every bit
// of mark exempt from redirection. The agent sets this mark on its backend
// sockets. Zero disables the check.
func (o *Objects) SetAgentMark(mark uint32) error {
	return o.setSettings(func(c *pgproxyConfig) { c.AgentMark = mark })
}

// SetAgentCgroup makes connects made by tasks in the cgroup v2 directory path
// exempt from redirection. An empty path disables the check.
func (o *Objects) SetAgentCgroup(path string) error {
	var id uint64
	if path != "" {
		var err error
		if id, err = CgroupID(path); err != nil {
			return err
		}
	}
	return o.setSettings(func(c *pgproxyConfig) { c.AgentCgroupId = id })
}

// SetTPROXYMark sets the mark the tcx program puts on segments it assigns.
func (o *Objects) SetTPROXYMark(mark uint32) error {
	return o.setSettings(func(c *pgproxyConfig) { c.TproxyMark = mark })
}

// SetTPROXYListener stores the agent's IP_TRANSPARENT listener for its family
// (IPv4, or IPv6 when v6 is true) in the SOCKMAP the tcx program assigns new
// connections to. The listener must not be MPTCP.
func (o *Objects) SetTPROXYListener(l syscall.Conn, v6 bool) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return fmt.Errorf("bpf: tproxy listener: %w", err)
	}
	key := uint32(0)
	if v6 {
		key = 1
	}
	var putErr error
	err = rc.Control(func(fd uintptr) {
		putErr = o.m(mapTPROXYLsn).Put(key, uint64(fd))
	})
	if err = errors.Join(err, putErr); err != nil {
		return fmt.Errorf("bpf: put tproxy listener in %s: %w", mapTPROXYLsn, err)
	}
	return nil
}

// CgroupID returns the id of the cgroup v2 directory path, the value
// bpf_get_current_cgroup_id reports for tasks in it.
func CgroupID(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("bpf: cgroup %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.IsDir() {
		return 0, fmt.Errorf("bpf: cgroup %s: not a cgroup directory", path)
	}
	return st.Ino, nil
}
