//go:build linux

package bpf_test

import (
	"testing"

	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

func TestRedirectInsideCgroup(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	r := bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Payload: "hello"})
	if want := f.target.Reply("hello"); r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	seen := f.agent.Seen()
	if len(seen) != 1 || seen[0].String() != f.target.Addr {
		t.Fatalf("agent saw %v (errors %v), want one connection for %s", seen, f.agent.Errors(), f.target.Addr)
	}
	if r.Peer != f.target.Addr {
		t.Errorf("client getpeername %s, want the dialled %s", r.Peer, f.target.Addr)
	}
}

func TestNotRedirectedOutsideCgroup(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	r := bpftest.Dial(t, nil, f.target.Addr, bpftest.DialOptions{Payload: "direct"})
	if want := f.target.Reply("direct"); r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	if seen := f.agent.Seen(); len(seen) != 0 {
		t.Fatalf("agent saw %v, want nothing from outside the cgroup", seen)
	}
}

func TestNonTargetPortUntouched(t *testing.T) {
	f := newFixture(t, bpfOptionsPlain)
	other := bpftest.NewTarget(t, "127.0.0.2:0", "other")
	r := bpftest.Dial(t, f.app, other.Addr, bpftest.DialOptions{Payload: "x"})
	if want := other.Reply("x"); r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	if seen := f.agent.Seen(); len(seen) != 0 {
		t.Fatalf("agent saw %v, want nothing for a non-target port", seen)
	}
}
