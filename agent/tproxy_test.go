//go:build linux

package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// TPROXY path: a client in one network namespace dials database addresses
// that exist nowhere; they are routed over a veth to the agent's namespace,
// where the tcx program assigns them to the transparent listener. The agent
// reads the original destination from the accepted socket's local address.
func TestTPROXYAcrossNamespaces(t *testing.T) {
	bpftest.RequireRoot(t)
	client := bpftest.NewNetNS(t, "pgp-c")
	node := bpftest.NewNetNS(t, "pgp-s")
	bpftest.IP(t, "-n", client, "link", "add", "vc", "type", "veth", "peer", "name", "vs", "netns", node)
	bpftest.IP(t, "-n", client, "addr", "add", "10.248.0.1/24", "dev", "vc")
	bpftest.IP(t, "-n", node, "addr", "add", "10.248.0.2/24", "dev", "vs")
	bpftest.IP(t, "-n", client, "link", "set", "vc", "up")
	bpftest.IP(t, "-n", node, "link", "set", "vs", "up")
	bpftest.IP(t, "-n", client, "route", "add", "10.249.0.0/16", "via", "10.248.0.2")

	tg, err := agent.ParseTargets("10.249.0.5:5432,10.249.1.0/24:5432")
	if err != nil {
		t.Fatal(err)
	}
	i := &agent.Interceptor{
		Mode:             agent.ModeTPROXY,
		Targets:          tg,
		ListenAddr:       "0.0.0.0:15006",
		TPROXYInterfaces: []string{"vs"},
	}
	bpftest.InNetNS(t, node, func() error { return i.Start(context.Background()) })
	if errors.Is(startErr(i), bpf.ErrUnsupported) {
		bpftest.Skip(t, "tcx/sk_assign unsupported")
	}
	t.Cleanup(func() { i.Close() })
	go originEngine(i)

	for _, dst := range []string{"10.249.0.5:5432", "10.249.1.7:5432"} {
		r := bpftest.Dial(t, nil, dst, bpftest.DialOptions{NetNS: client, Payload: "hi"})
		if want := "agent got hi for " + dst; r.Reply != want {
			t.Fatalf("dial %s: reply %q, want %q", dst, r.Reply, want)
		}
		if r.Peer != dst {
			t.Errorf("client peer %s, want %s", r.Peer, dst)
		}
	}
	c, err := i.Counters()
	if err != nil || c["tproxy_assigned"] != 2 || c["tproxy_errors"] != 0 {
		t.Fatalf("counters %v %v", c, err)
	}
}

func startErr(i *agent.Interceptor) error {
	if i.Objects() == nil {
		return bpf.ErrUnsupported
	}
	return nil
}

// originEngine answers each connection with "agent got <payload> for <original destination>".
func originEngine(i *agent.Interceptor) {
	ln := i.Listener()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go originServe(i, c)
	}
}

func originServe(i *agent.Interceptor, c net.Conn) {
	defer c.Close()
	dst, err := i.OriginalDestination(c)
	data, _ := io.ReadAll(c)
	if err != nil {
		fmt.Fprintf(c, "error %v", err)
		return
	}
	fmt.Fprintf(c, "agent got %s for %s", strings.TrimSpace(string(data)), dst)
}
