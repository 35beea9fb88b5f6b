//go:build linux

package bpf_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

const testMark = 0x504700

// fixture is one test's world: a top cgroup with the programs attached, an
// app cgroup for clients, an agent cgroup holding the agent's listener, a
// target server on 127.0.0.2 and an agent stub relaying to original
// destinations found with OriginalDest.
type fixture struct {
	objs   *bpf.Objects
	top    *bpftest.Cgroup
	app    *bpftest.Cgroup
	agentC *bpftest.Cgroup
	target *bpftest.Target
	agent  *bpftest.AgentStub
}

func newFixture(t *testing.T, opts bpf.Options) *fixture {
	t.Helper()
	f := &fixture{objs: bpftest.Load(t, opts)}
	f.top = bpftest.NewCgroup(t, "", "")
	f.app = bpftest.NewCgroup(t, f.top.Path, "app")
	f.agentC = bpftest.NewCgroup(t, f.top.Path, "agent")
	ln := bpftest.ListenIn(t, f.agentC, "127.0.0.1:0")
	f.agent = bpftest.StartAgentStub(t, ln, testMark, f.resolve)
	f.target = bpftest.NewTarget(t, "127.0.0.2:0", "db")
	must(t, f.objs.SetRedirect(addrPort(t, ln.Addr().String())))
	must(t, f.objs.SetAgentMark(testMark))
	must(t, f.objs.SetAgentCgroup(f.agentC.Path))
	must(t, f.objs.SetTargets([]bpf.Target{exact(t, f.target.Addr)}))
	must(t, f.objs.Attach(f.top.Path))
	return f
}

// resolve is the agent stub's resolver: the map lookup by remote address.
func (f *fixture) resolve(c net.Conn) (netip.AddrPort, error) {
	dst, ok, err := f.objs.OriginalDest(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	if err != nil {
		return dst, err
	}
	if !ok {
		return dst, errNotRedirected
	}
	return dst, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNotRedirected = errString("connection was not redirected")

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	must(t, err)
	return ap
}

func exact(t *testing.T, s string) bpf.Target {
	ap := addrPort(t, s)
	return bpf.Target{Prefix: netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen()), Port: ap.Port()}
}
