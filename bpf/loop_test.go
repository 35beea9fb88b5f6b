//go:build linux

package bpf_test

import (
	"testing"

	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// The agent's own sockets are recognised by SO_MARK or by the cgroup they
// were made in, never by PID.
func TestAgentSocketsNotRedirected(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)

	r := bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Mark: testMark, Payload: "marked"})
	if want := f.target.Reply("marked"); r.Reply != want {
		t.Fatalf("marked client reply %q, want %q", r.Reply, want)
	}
	r = bpftest.Dial(t, f.agentC, f.target.Addr, bpftest.DialOptions{Payload: "agent-cgroup"})
	if want := f.target.Reply("agent-cgroup"); r.Reply != want {
		t.Fatalf("agent-cgroup client reply %q, want %q", r.Reply, want)
	}
	if seen := f.agent.Seen(); len(seen) != 0 {
		t.Fatalf("agent saw %v, want its own sockets left alone", seen)
	}
	c, err := f.objs.Counters()
	must(t, err)
	if c["connect_agent_skips"] != 2 {
		t.Errorf("connect_agent_skips = %d, want 2", c["connect_agent_skips"])
	}
	// A different mark does not exempt.
	bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Mark: 0x1, Payload: "other-mark"})
	if seen := f.agent.Seen(); len(seen) != 1 {
		t.Fatalf("agent saw %v, want the client with a foreign mark redirected", seen)
	}
}

func TestCountersMove(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	before, err := f.objs.Counters()
	must(t, err)
	bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Payload: "count"})
	after, err := f.objs.Counters()
	must(t, err)
	for _, name := range []string{"connect4_redirects", "sockops_established", "getpeername_answered", "lookups_answered"} {
		if after[name] <= before[name] {
			t.Errorf("counter %s did not move: %d -> %d", name, before[name], after[name])
		}
	}
	if after["connect_errors"] != 0 || after["sockops_errors"] != 0 {
		t.Errorf("error counters: %v", after)
	}
}
