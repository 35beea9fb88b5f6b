//go:build linux

package agent_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// SO_ORIGINAL_DST through cgroup/getsockopt: the agent's listener is created
// in an attached cgroup (as the agent's own sockets are when it runs under
// the intercepted root), so getsockopt on accepted sockets is answered.
func TestSockoptOriginalDst(t *testing.T) {
	objs := bpftest.Load(t, bpf.Options{})
	top := bpftest.NewCgroup(t, "", "")
	app := bpftest.NewCgroup(t, top.Path, "app")
	agentCg := bpftest.NewCgroup(t, top.Path, "agent")
	db := bpftest.NewTarget(t, "127.0.0.2:0", "db")
	db6 := bpftest.NewTarget(t, "[::1]:0", "db6")
	ln := bpftest.ListenIn(t, agentCg, "127.0.0.1:0")
	ln6 := bpftest.ListenIn(t, agentCg, "[::1]:0")
	tg, err := agent.ParseTargets(db.Addr + "," + db6.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		objs.SetTargets(tg),
		objs.SetRedirect(ln.Addr().(*net.TCPAddr).AddrPort()),
		objs.SetRedirect(ln6.Addr().(*net.TCPAddr).AddrPort()),
		objs.Attach(top.Path),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(c net.Conn) (netip.AddrPort, error) { return agent.SockoptOriginalDst(c.(*net.TCPConn)) }
	stub := bpftest.StartAgentStub(t, ln, agent.DefaultAgentMark, resolve)
	stub6 := bpftest.StartAgentStub(t, ln6, agent.DefaultAgentMark, resolve)

	for _, tc := range []struct {
		db   *bpftest.Target
		stub *bpftest.AgentStub
	}{{db, stub}, {db6, stub6}} {
		r := bpftest.Dial(t, app, tc.db.Addr, bpftest.DialOptions{Payload: "so"})
		if r.Reply != tc.db.Reply("so") {
			t.Fatalf("reply %q", r.Reply)
		}
		if seen := tc.stub.Seen(); len(seen) != 1 || seen[0].String() != tc.db.Addr {
			t.Fatalf("SO_ORIGINAL_DST gave %v (errors %v), want %s", seen, tc.stub.Errors(), tc.db.Addr)
		}
	}
	c, err := objs.Counters()
	if err != nil || c["getsockopt_answered"] != 2 {
		t.Fatalf("counters %v %v", c, err)
	}
}
