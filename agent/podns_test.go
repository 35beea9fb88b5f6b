//go:build linux

package agent_test

import (
	"context"
	"testing"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// A pod stand-in: the client has its own network namespace (veth to the
// node) and its own cgroup. Its connect is redirected to the agent listening
// on the node side of the veth, so the redirect address is not 127.0.0.1.
func TestPodNamespaceRedirectToNodeAddress(t *testing.T) {
	bpftest.RequireRoot(t)
	pod := bpftest.NewNetNS(t, "pgp-pod")
	node := bpftest.NewNetNS(t, "pgp-node")
	bpftest.IP(t, "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "vpod", "netns", node)
	bpftest.IP(t, "-n", pod, "addr", "add", "10.250.0.2/24", "dev", "eth0")
	bpftest.IP(t, "-n", node, "addr", "add", "10.250.0.1/24", "dev", "vpod")
	bpftest.IP(t, "-n", pod, "link", "set", "eth0", "up")
	bpftest.IP(t, "-n", node, "link", "set", "vpod", "up")
	bpftest.IP(t, "-n", pod, "route", "add", "default", "via", "10.250.0.1")
	cg := bpftest.NewCgroup(t, "", "")

	const db = "10.251.0.9:5432" // a database the pod dials; never reached
	tg, err := agent.ParseTargets(db)
	if err != nil {
		t.Fatal(err)
	}
	i := &agent.Interceptor{Targets: tg, CgroupPath: cg.Path, ListenAddr: "10.250.0.1:15432"}
	bpftest.InNetNS(t, node, func() error { return i.Start(context.Background()) })
	t.Cleanup(func() { i.Close() })
	go originEngine(i) // answers with the original destination

	r := bpftest.Dial(t, cg, db, bpftest.DialOptions{NetNS: pod, Payload: "pod"})
	if want := "agent got pod for " + db; r.Reply != want {
		t.Fatalf("reply %q, want %q", r.Reply, want)
	}
	if r.Peer != db {
		t.Errorf("pod client peer %s, want %s", r.Peer, db)
	}
}
