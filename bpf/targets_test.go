//go:build linux

package bpf_test

import (
	"net/netip"
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

func TestCIDRTarget(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	db3 := bpftest.NewTarget(t, "127.0.0.3:0", "db3")
	port := addrPort(t, db3.Addr).Port()
	must(t, f.objs.SetTargets([]bpf.Target{{Prefix: netip.MustParsePrefix("127.0.0.0/29"), Port: port}}))

	r := bpftest.Dial(t, f.app, db3.Addr, bpftest.DialOptions{Payload: "cidr"})
	if want := db3.Reply("cidr"); r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	if seen := f.agent.Seen(); len(seen) != 1 || seen[0].String() != db3.Addr {
		t.Fatalf("agent saw %v (errors %v), want %s", seen, f.agent.Errors(), db3.Addr)
	}
	// The exact target was replaced: it is no longer intercepted.
	bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Payload: "old"})
	if seen := f.agent.Seen(); len(seen) != 1 {
		t.Fatalf("agent saw %v after SetTargets removed %s", seen, f.target.Addr)
	}
}

func TestIPv6Target(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	ln6 := bpftest.ListenIn(t, f.agentC, "[::1]:0")
	agent6 := bpftest.StartAgentStub(t, ln6, testMark, f.resolve)
	must(t, f.objs.SetRedirect(addrPort(t, ln6.Addr().String())))
	db6 := bpftest.NewTarget(t, "[::1]:0", "db6")
	must(t, f.objs.SetTargets([]bpf.Target{exact(t, db6.Addr), exact(t, f.target.Addr)}))

	r := bpftest.Dial(t, f.app, db6.Addr, bpftest.DialOptions{Payload: "six"})
	if want := db6.Reply("six"); r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	if seen := agent6.Seen(); len(seen) != 1 || seen[0].String() != db6.Addr {
		t.Fatalf("IPv6 agent saw %v (errors %v), want %s", seen, agent6.Errors(), db6.Addr)
	}
	if r.Peer != db6.Addr {
		t.Errorf("client getpeername %s, want %s", r.Peer, db6.Addr)
	}
	// IPv4 still goes to the IPv4 listener.
	bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Payload: "four"})
	if seen := f.agent.Seen(); len(seen) != 1 {
		t.Fatalf("IPv4 agent saw %v", seen)
	}
}

func TestTargetValidation(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	bad := []bpf.Target{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 0},
		{Prefix: netip.Prefix{}, Port: 5432},
	}
	for _, tg := range bad {
		if err := f.objs.SetTargets([]bpf.Target{tg}); err == nil {
			t.Errorf("SetTargets(%v) accepted", tg)
		}
	}
}
