package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/pgproxy/pgproxy/bpf"
)

// Mode selects how connections are intercepted.
type Mode string

const (
	// ModeConnect redirects connects made on this node (cgroup/connect4|6).
	ModeConnect Mode = "connect"
	// ModeTPROXY takes segments arriving from other hosts on the configured
	// interfaces (tcx ingress + bpf_sk_assign to a transparent listener).
	ModeTPROXY Mode = "tproxy"
)

// ErrNotRedirected is returned by OriginalDestination for a connection that
// the eBPF programs did not redirect (for example a client that dialled the
// agent's port itself).
var ErrNotRedirected = errors.New("agent: connection was not redirected (no original destination)")

// Defaults used by Start for zero fields.
const (
	DefaultListenAddr  = "127.0.0.1:15432"
	DefaultTPROXYMark  = 0x1
	DefaultTPROXYTable = 100
)

// detachGrace is how long Close keeps the listener open after detaching.
const detachGrace = 100 * time.Millisecond

// Interceptor is transparent mode on one node. Fill the fields, call Start,
// accept from Listener, resolve with OriginalDestination, dial backends with
// DialControl, and Close (or cancel Start's context) to detach everything.
type Interceptor struct {
	// Mode is ModeConnect (default) or ModeTPROXY (INTERCEPT_MODE).
	Mode Mode
	// Targets are the intercepted destinations (INTERCEPT_TARGETS, see
	// ParseTargets). Required.
	Targets []bpf.Target
	// CgroupPath is the cgroup v2 directory whose sockets are intercepted
	// (INTERCEPT_CGROUP); default the cgroup2 root. ModeConnect only.
	CgroupPath string
	// ListenAddr is where the agent listens (AGENT_LISTEN_ADDR); default
	// DefaultListenAddr. In ModeTPROXY any port works, e.g. "0.0.0.0:15006".
	ListenAddr string
	// RedirectAddrs are where clients are sent, as they can reach the agent:
	// at most one IPv4 and one IPv6. Default: the listener's address, or
	// 127.0.0.1 and ::1 at its port when it listens on the unspecified
	// address. A pod in its own network namespace needs the node's
	// host-side veth address here instead.
	RedirectAddrs []netip.AddrPort
	// AgentMark is the SO_MARK of the agent's own sockets, which are never
	// redirected; default DefaultAgentMark.
	AgentMark uint32
	// ExemptOwnCgroup also exempts every connect made from the agent's own
	// cgroup (use when the agent has a cgroup of its own).
	ExemptOwnCgroup bool
	// Accelerate turns on the sk_msg local-hop shortcut (ACCELERATE_LOCAL).
	Accelerate bool
	// PinPath pins maps and programs there (BPF_PIN_PATH, on bpffs) for
	// bpftool; stale pins there are removed first.
	PinPath string
	// PinLinks pins the attachments too: redirection then survives a crash
	// of the agent (fail-closed) until the next agent or RemoveStalePins.
	PinLinks bool
	// TPROXYInterfaces are the interfaces whose ingress is intercepted in
	// ModeTPROXY.
	TPROXYInterfaces []string
	// TPROXYMethod is how segments reach the listener in ModeTPROXY:
	// "tcx" (tcx ingress + bpf_sk_assign), "iptables" (TPROXY rules), or
	// "auto" (default): tcx, and iptables where the kernel has no tcx.
	TPROXYMethod string
	// TPROXYMark and TPROXYTable configure the policy route for assigned
	// segments; defaults DefaultTPROXYMark and DefaultTPROXYTable.
	TPROXYMark  uint32
	TPROXYTable uint32

	mu     sync.Mutex
	objs   *bpf.Objects
	ln     *net.TCPListener
	route  *policyRoute
	ipt    *iptablesTPROXY
	stop   chan struct{}
	closed bool
}

// Start removes stale pins, loads the programs (failing with a message that
// names what is missing), opens the listener, fills the maps and attaches.
// Attaching is the last step, so no connect is redirected before the
// listener exists. When ctx is cancelled after Start returned, the
// interceptor closes itself.
func (i *Interceptor) Start(ctx context.Context) (err error) {
	if err := i.defaults(); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.objs != nil || i.closed {
		return errors.New("agent: interceptor already started")
	}
	defer func() {
		if err != nil {
			i.closeLocked()
		}
	}()
	if i.PinPath != "" {
		if err := bpf.RemoveStalePins(i.PinPath); err != nil {
			return err
		}
	}
	i.objs, err = bpf.Load(bpf.Options{
		Accelerate: i.Accelerate,
		TPROXY:     i.Mode == ModeTPROXY,
		PinLinks:   i.PinLinks,
	})
	if err != nil {
		return fmt.Errorf("agent: load eBPF programs: %w", err)
	}
	if err := i.configure(); err != nil {
		return err
	}
	if i.Mode == ModeTPROXY {
		err = i.startTPROXY(ctx)
	} else {
		err = i.startConnect(ctx)
	}
	if err != nil {
		return err
	}
	i.stop = make(chan struct{})
	go closeOnDone(ctx, i)
	return nil
}

// defaults validates the fields and fills zero ones.
func (i *Interceptor) defaults() error {
	switch i.Mode {
	case "":
		i.Mode = ModeConnect
	case ModeConnect, ModeTPROXY:
	default:
		return fmt.Errorf("agent: INTERCEPT_MODE %q: want %q or %q", i.Mode, ModeConnect, ModeTPROXY)
	}
	if len(i.Targets) == 0 {
		return errors.New("agent: INTERCEPT_TARGETS is empty")
	}
	if i.ListenAddr == "" {
		i.ListenAddr = DefaultListenAddr
	}
	if i.AgentMark == 0 {
		i.AgentMark = DefaultAgentMark
	}
	if i.TPROXYMark == 0 {
		i.TPROXYMark = DefaultTPROXYMark
	}
	if i.TPROXYTable == 0 {
		i.TPROXYTable = DefaultTPROXYTable
	}
	switch i.TPROXYMethod {
	case "":
		i.TPROXYMethod = "auto"
	case "auto", "tcx", "iptables":
	default:
		return fmt.Errorf("agent: TPROXY_METHOD %q: want auto, tcx or iptables", i.TPROXYMethod)
	}
	if i.Mode == ModeTPROXY && len(i.TPROXYInterfaces) == 0 {
		return errors.New("agent: INTERCEPT_MODE=tproxy needs at least one interface")
	}
	if i.Mode == ModeConnect && i.CgroupPath == "" {
		root, err := Cgroup2Root()
		if err != nil {
			return err
		}
		i.CgroupPath = root
	}
	return nil
}

// configure writes mark, cgroup exemption and targets, and pins.
func (i *Interceptor) configure() error {
	if err := i.objs.SetAgentMark(i.AgentMark); err != nil {
		return err
	}
	if i.ExemptOwnCgroup {
		own, err := OwnCgroup()
		if err != nil {
			return err
		}
		if err := i.objs.SetAgentCgroup(own); err != nil {
			return err
		}
	}
	if err := i.objs.SetTargets(i.Targets); err != nil {
		return err
	}
	if i.PinPath != "" {
		return i.objs.Pin(i.PinPath)
	}
	return nil
}

// startConnect opens the listener, sets the redirect addresses and attaches
// the cgroup programs.
func (i *Interceptor) startConnect(ctx context.Context) error {
	ln, err := Listen(ctx, i.ListenAddr)
	if err != nil {
		return err
	}
	i.ln = ln
	redirects := i.RedirectAddrs
	if len(redirects) == 0 {
		redirects = defaultRedirects(ln.Addr().(*net.TCPAddr).AddrPort())
	}
	for _, r := range redirects {
		if err := i.objs.SetRedirect(r); err != nil {
			return err
		}
	}
	if err := i.objs.Attach(i.CgroupPath); err != nil {
		return err
	}
	return i.attachOwnSockops()
}

// attachOwnSockops makes the agent's accepted sockets join the local-hop
// shortcut when the agent runs outside the intercepted cgroup (a DaemonSet
// agent intercepting the pods' subtree): sockops follows the cgroup a socket
// was created in, so it is attached to the agent's own cgroup as well.
func (i *Interceptor) attachOwnSockops() error {
	if !i.Accelerate {
		return nil
	}
	own, err := OwnCgroup()
	if err != nil {
		return err
	}
	inside := own == i.CgroupPath || strings.HasPrefix(own, strings.TrimSuffix(i.CgroupPath, "/")+"/")
	if inside {
		return nil
	}
	return i.objs.AttachSockops(own)
}

// defaultRedirects derives redirect addresses from the listener address.
func defaultRedirects(l netip.AddrPort) []netip.AddrPort {
	a := l.Addr().Unmap()
	if !a.IsUnspecified() {
		return []netip.AddrPort{netip.AddrPortFrom(a, l.Port())}
	}
	out := []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Port())}
	if a.Is6() {
		out = append(out, netip.AddrPortFrom(netip.IPv6Loopback(), l.Port()))
	}
	return out
}

// startTPROXY opens the transparent listener, installs the policy route and
// attaches the tcx program to each interface.
func (i *Interceptor) startTPROXY(ctx context.Context) error {
	ln, err := ListenTransparent(ctx, i.ListenAddr)
	if err != nil {
		return err
	}
	i.ln = ln
	v6 := ln.Addr().(*net.TCPAddr).IP.To4() == nil
	if err := i.objs.SetTPROXYListener(ln, false); err != nil {
		return err
	}
	if v6 {
		if err := i.objs.SetTPROXYListener(ln, true); err != nil {
			return err
		}
	}
	if err := i.objs.SetTPROXYMark(i.TPROXYMark); err != nil {
		return err
	}
	route := &policyRoute{Mark: i.TPROXYMark, Table: i.TPROXYTable}
	if err := route.add(); err != nil {
		return err
	}
	i.route = route
	if i.TPROXYMethod != "iptables" {
		err := i.attachTCX()
		if err == nil || i.TPROXYMethod == "tcx" {
			return err
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return err
		}
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	i.ipt = &iptablesTPROXY{interfaces: i.TPROXYInterfaces, targets: i.Targets, port: port, mark: i.TPROXYMark}
	return i.ipt.install()
}

// attachTCX attaches the tcx ingress program to every TPROXY interface.
func (i *Interceptor) attachTCX() error {
	for _, name := range i.TPROXYInterfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("agent: TPROXY interface %q: %w", name, err)
		}
		if err := i.objs.AttachTPROXY(ifc.Index); err != nil {
			return err
		}
	}
	return nil
}

// Listener returns the listener redirected clients arrive on. Accepted
// connections are *net.TCPConn, or with Accelerate a wrapper that never
// splices (relay with Read/Write; Unwrap() *net.TCPConn gives the socket).
func (i *Interceptor) Listener() net.Listener {
	return acceptor{TCPListener: i.ln, noSplice: i.Accelerate}
}

// OriginalDestination returns the address the client of an accepted
// connection dialled: the local address of the socket in ModeTPROXY, the
// eBPF map entry for its remote address in ModeConnect. A connection that
// was not redirected gives ErrNotRedirected.
func (i *Interceptor) OriginalDestination(c net.Conn) (netip.AddrPort, error) {
	if i.Mode == ModeTPROXY {
		local, ok := c.LocalAddr().(*net.TCPAddr)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("agent: not a TCP connection: %T", c)
		}
		return unmapAddrPort(local.AddrPort()), nil
	}
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("agent: not a TCP connection: %T", c)
	}
	dst, found, err := i.objs.OriginalDest(remote.AddrPort())
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !found {
		return netip.AddrPort{}, ErrNotRedirected
	}
	return dst, nil
}

func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// DialControl is a net.Dialer.Control that marks the agent's backend
// sockets with AgentMark, so they are never redirected.
func (i *Interceptor) DialControl(network, address string, c syscall.RawConn) error {
	return MarkControl(i.AgentMark)(network, address, c)
}

// Counters returns the eBPF counters (see bpf.Objects.Counters).
func (i *Interceptor) Counters() (map[string]uint64, error) {
	i.mu.Lock()
	objs := i.objs
	i.mu.Unlock()
	if objs == nil {
		return nil, errors.New("agent: interceptor not started")
	}
	return objs.Counters()
}

// Objects returns the loaded eBPF objects (nil before Start).
func (i *Interceptor) Objects() *bpf.Objects {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.objs
}

// Ready reports whether the interceptor is redirecting: started, programs
// loaded and attached, listener open, and not closed. It does not probe the
// intercepted databases: each connection dials its own original
// destination, and one database being down must not take the node's agent
// out of service.
func (i *Interceptor) Ready() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case i.closed:
		return errors.New("interception stopped")
	case i.objs == nil || i.ln == nil:
		return errors.New("interception not started")
	}
	return nil
}

// Close detaches every program first (so no connect is sent to a listener
// about to vanish), then closes the listener and removes the TPROXY route.
// Connections already accepted are the engine's to drain.
func (i *Interceptor) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closeLocked()
}

func (i *Interceptor) closeLocked() error {
	if i.closed {
		return nil
	}
	i.closed = true
	if i.stop != nil {
		close(i.stop)
	}
	var errs []error
	if i.ipt != nil {
		i.ipt.remove()
	}
	if i.objs != nil {
		errs = append(errs, i.objs.Close())
		if i.ln != nil {
			// Connects redirected just before the detach are still in the
			// accept queue: give the engine a moment to take them.
			time.Sleep(detachGrace)
		}
	}
	if i.ln != nil {
		if err := i.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if i.route != nil {
		errs = append(errs, i.route.remove())
	}
	return errors.Join(errs...)
}

// closeOnDone closes the interceptor when ctx is cancelled.
func closeOnDone(ctx context.Context, i *Interceptor) {
	select {
	case <-ctx.Done():
		i.Close()
	case <-i.stop:
	}
}
