//go:build linux

package agent_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pgproxy/pgproxy/agent"
	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// startInterceptor starts an Interceptor on cg for target, and an engine stub
// serving its listener with its resolver and mark.
func startInterceptor(t *testing.T, cg *bpftest.Cgroup, target string, accelerate bool) (*agent.Interceptor, *bpftest.AgentStub) {
	t.Helper()
	bpftest.RequireRoot(t)
	tg, err := agent.ParseTargets(target)
	if err != nil {
		t.Fatal(err)
	}
	i := &agent.Interceptor{
		Targets:    tg,
		CgroupPath: cg.Path,
		ListenAddr: "127.0.0.1:0",
		Accelerate: accelerate,
	}
	if err := i.Start(context.Background()); err != nil {
		if errors.Is(err, bpf.ErrPermission) || errors.Is(err, bpf.ErrUnsupported) {
			bpftest.Skip(t, "%v", err)
		}
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { i.Close() })
	stub := bpftest.StartAgentStub(t, i.Listener(), i.AgentMark, i.OriginalDestination)
	return i, stub
}

func TestInterceptorRedirects(t *testing.T) {
	bpftest.RequireRoot(t)
	cg := bpftest.NewCgroup(t, "", "")
	db := bpftest.NewTarget(t, "127.0.0.2:0", "db")
	i, stub := startInterceptor(t, cg, db.Addr, false)

	r := bpftest.Dial(t, cg, db.Addr, bpftest.DialOptions{Payload: "q"})
	if r.Reply != db.Reply("q") || r.Peer != db.Addr {
		t.Fatalf("client saw %+v", r)
	}
	if seen := stub.Seen(); len(seen) != 1 || seen[0] != netip.MustParseAddrPort(db.Addr) {
		t.Fatalf("engine resolved %v (errors %v)", seen, stub.Errors())
	}
	c, err := i.Counters()
	if err != nil || c["connect4_redirects"] != 1 || c["lookups_answered"] != 1 {
		t.Fatalf("counters %v, %v", c, err)
	}
}

// Clients keep connecting while the agent stops and a new one starts: every
// client succeeds, directly while no agent runs, through the agent otherwise.
func TestInterceptorRestartWhileClientsConnect(t *testing.T) {
	bpftest.RequireRoot(t)
	cg := bpftest.NewCgroup(t, "", "")
	db := bpftest.NewTarget(t, "127.0.0.2:0", "db")
	first, _ := startInterceptor(t, cg, db.Addr, false)

	var wg sync.WaitGroup
	var failures atomic.Int32
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go clientLoop(t, cg, db, w, stop, &wg, &failures)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := bpftest.Dial(t, cg, db.Addr, bpftest.DialOptions{Payload: "while-down"})
	if r.Reply != db.Reply("while-down") {
		t.Fatalf("direct connect while the agent is down: %+v", r)
	}
	_, stub := startInterceptor(t, cg, db.Addr, false)
	bpftest.Dial(t, cg, db.Addr, bpftest.DialOptions{Payload: "after"})
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d client connections failed across the restart", n)
	}
	if len(stub.Seen()) == 0 {
		t.Fatal("second agent intercepted nothing")
	}
}

// clientLoop dials db from cg until stop, counting failures.
func clientLoop(t *testing.T, cg *bpftest.Cgroup, db *bpftest.Target, w int, stop <-chan struct{}, wg *sync.WaitGroup, failures *atomic.Int32) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		r, err := bpftest.DialErr(t, cg, db.Addr, bpftest.DialOptions{Payload: "loop"})
		if err != nil || r.Reply != db.Reply("loop") {
			t.Logf("client %d: %+v %v", w, r, err)
			failures.Add(1)
		}
	}
}

func TestReadyOnlyWhileIntercepting(t *testing.T) {
	var i agent.Interceptor
	if err := i.Ready(); err == nil {
		t.Fatal("ready before Start")
	}
	i.Close()
	if err := i.Ready(); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("after Close: %v", err)
	}
}
