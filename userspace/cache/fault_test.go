package cache

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

// callBound is the longest a Get or Set may take while Valkey is down, slow or coming back:
// OpTimeout (100 ms in the fault tests, faultOptions) plus room for a loaded 2-CPU machine.
// skipBound is the longest a call may take that does not ask Valkey at all.
const (
	callBound = 200 * time.Millisecond
	skipBound = 10 * time.Millisecond
)

func (r *recorder) lastError(op string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[op]
}

func (r *recorder) availability() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.avail...)
}

func TestValkeyDownAtStart(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := newRecorder()
	tm := newTiming(t)
	var c *Tiered
	tm.call("New with Valkey down", skipBound, func() { c = open(t, faultOptions(r.Addr), rec) })
	harness.Eventually(t, 5*time.Second, "a connect error reported", func() bool { return rec.errors("connect error") > 0 })
	for i := range 20 {
		fp := fmt.Sprint("fp", i)
		tm.call("Set with Valkey down", skipBound, func() { c.Set(ctx, "shop", fp, decision(fp)) })
		tm.call("Get with Valkey down", skipBound, func() {
			if _, src, ok := c.Get(ctx, "shop", fp); !ok || src != analysis.SourceMemory {
				t.Errorf("Get = %q, %v; want a memory hit", src, ok)
			}
		})
	}
	if c.Available() {
		t.Fatal("Available with Valkey down")
	}
	if rec.errors("set unavailable") != 20 {
		t.Fatalf("errors = %v; want 20 skipped sets", rec.errs)
	}

	// Valkey comes up: the cache connects by itself and uses it.
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c)
	c.Set(ctx, "shop", "late", decision("late"))
	flush(t, c)
	other := open(t, testOptions(r.Addr), nil)
	waitReady(t, other)
	if _, src, ok := other.Get(ctx, "shop", "late"); !ok || src != analysis.SourceValkey {
		t.Fatalf("other.Get = %q, %v; want a valkey hit", src, ok)
	}
	if got := rec.availability(); len(got) != 1 || !got[0] {
		t.Fatalf("availability changes = %v, want [true]", got)
	}
}

// TestValkeyKilledAndRestarted kills redis-server while four goroutines use the cache, checks
// that no call waits, that Valkey is skipped once the breaker opened, and that after a
// restart it is used again (and memory was emptied: invalidations may have been missed).
func TestValkeyKilledAndRestarted(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	ctx := context.Background()
	rec := newRecorder()
	c := open(t, faultOptions(r.Addr), rec)
	waitReady(t, c)
	for i := range 50 {
		c.Set(ctx, "shop", fmt.Sprint("warm", i), decision("warm"))
	}
	flush(t, c)

	tm := newTiming(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				fp := fmt.Sprint("g", g, "-", i)
				if i%2 == 0 {
					tm.call("Set while redis dies", callBound, func() { c.Set(ctx, "shop", fp, decision(fp)) })
				} else { // a memory miss: asks Valkey
					tm.call("Get while redis dies", callBound, func() { c.Get(ctx, "shop", "miss"+fp) })
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "the breaker opens", func() bool { return !c.Available() })
	time.Sleep(500 * time.Millisecond) // calls while Valkey is down and probed
	close(stop)
	wg.Wait()
	if rec.errors("get unavailable") == 0 {
		t.Fatalf("Valkey was never skipped: %v", rec.errs)
	}
	if _, src, ok := c.Get(ctx, "shop", "warm1"); !ok || src != analysis.SourceMemory {
		t.Fatalf("Get = %q, %v; want the memory hit", src, ok)
	}

	if err := r.Start(); err != nil { // empty: persistence is off
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "Valkey used again after the restart", func() bool { return c.Available() && c.vk.subscribed.Load() })
	harness.Eventually(t, 2*time.Second, "memory emptied after the subscription came back", func() bool { return rec.invalidations("resubscribe") > 0 })
	if _, _, ok := c.Get(ctx, "shop", "warm1"); ok {
		t.Fatal("warm1 survived the resubscription (memory) and the restart (Valkey)")
	}
	c.Set(ctx, "shop", "after", decision("after"))
	flush(t, c)
	harness.Eventually(t, 5*time.Second, "a valkey hit after the restart", func() bool {
		c.mem.purge()
		_, src, ok := c.Get(ctx, "shop", "after")
		return ok && src == analysis.SourceValkey
	})
	if got := rec.availability(); len(got) < 3 || got[0] != true || got[1] != false || got[len(got)-1] != true {
		t.Fatalf("availability changes = %v, want true, false, …, true", got)
	}
}

// TestValkeySlow freezes redis-server: reads run out at OpTimeout and count as misses, the
// breaker opens, later calls skip Valkey at once, and after the server continues the cache
// uses it again.
func TestValkeySlow(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	ctx := context.Background()
	rec := newRecorder()
	o := faultOptions(r.Addr)
	o.ConnectTimeout = 300 * time.Millisecond
	c := open(t, o, rec)
	waitReady(t, c)
	c.Set(ctx, "shop", "v", decision("v"))
	flush(t, c)
	c.mem.purge()

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = r.Resume()
		}
	}()
	tm := newTiming(t)
	failures := o.withDefaults().BreakerFailures
	for i := range 10 {
		what, bound := "Get from a frozen Valkey", callBound
		if i >= failures {
			what, bound = "Get with the breaker open", skipBound
		}
		tm.call(what, bound, func() {
			if _, _, ok := c.Get(ctx, "shop", "v"); ok {
				t.Errorf("Get %d hit with Valkey frozen", i)
			}
		})
	}
	if got := rec.errors("get timeout"); got != failures {
		t.Fatalf("errors = %v; want %d timeouts", rec.errs, failures)
	}
	if c.Available() {
		t.Fatal("breaker still closed after timeouts")
	}
	if got := rec.lookup("valkey miss"); got != failures {
		t.Errorf("valkey misses = %d, want %d (the timed-out reads)", got, failures)
	}
	if got := rec.errors("get unavailable"); got != 10-failures {
		t.Errorf("skipped reads = %d, want %d", got, 10-failures)
	}

	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	harness.Eventually(t, 10*time.Second, "Valkey used again after it continued", c.Available)
	harness.Eventually(t, 5*time.Second, "a valkey hit after it continued", func() bool {
		_, src, ok := c.Get(ctx, "shop", "v")
		c.mem.purge()
		return ok && src == analysis.SourceValkey
	})
}

// TestWriteQueueBound: Set never waits; writes beyond the queue are dropped and reported.
func TestWriteQueueBound(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	ctx := context.Background()
	rec := newRecorder()
	o := faultOptions(r.Addr)
	o.WriteQueue, o.WriteWorkers = 2, 1
	o.ConnectTimeout = 300 * time.Millisecond
	c := open(t, o, rec)
	waitReady(t, c)
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Resume() }()
	tm := newTiming(t)
	tm.call("20 Sets with Valkey frozen", 2*skipBound, func() {
		for i := range 20 {
			c.Set(ctx, "shop", fmt.Sprint("q", i), decision("q"))
		}
	})
	if got := rec.errors("set queue_full"); got < 15 {
		t.Fatalf("dropped writes = %d (%v), want at least 15 of 20 with a queue of 2", got, rec.errs)
	}
	if _, src, ok := c.Get(ctx, "shop", "q19"); !ok || src != analysis.SourceMemory {
		t.Fatalf("Get = %q, %v; a dropped write must still be in memory", src, ok)
	}
}

// TestCloseWhileConnecting: Close returns even while the cache is trying to connect.
func TestCloseWhileConnecting(t *testing.T) {
	t.Parallel()
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	if err := r.Pause(); err != nil { // accepts connections, answers nothing
		t.Fatal(err)
	}
	defer func() { _ = r.Resume() }()
	o := faultOptions(r.Addr)
	o.ConnectTimeout = 300 * time.Millisecond
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	newTiming(t).call("Close while connecting", o.ConnectTimeout+callBound, func() { _ = c.Close() })
	if err := c.Delete(context.Background(), "db", "fp"); err != ErrClosed {
		t.Fatalf("Delete after Close = %v, want ErrClosed", err)
	}
}

// delayProxy relays loopback TCP to target, holding each chunk from the client for the
// delay last given to set: a Valkey that answers, but as slowly as wanted. It stops in
// cleanup.
func delayProxy(t *testing.T, target string) (addr string, set func(time.Duration)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var delay atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); relayDelayed(server, client, &delay) }()
			go func() { defer wg.Done(); _, _ = io.Copy(client, server); _ = client.Close() }()
		}
	}()
	return ln.Addr().String(), func(d time.Duration) { delay.Store(int64(d)) }
}

func relayDelayed(dst, src net.Conn, delay *atomic.Int64) {
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(time.Duration(delay.Load()))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestValkeyTooSlow: a Valkey that answers every command, but later than OpTimeout, costs
// BreakerFailures timed-out reads and then none while it stays slow (the probes find it too
// slow), and is used again once it is fast.
func TestValkeyTooSlow(t *testing.T) {
	t.Parallel()
	addr, setDelay := delayProxy(t, harness.StartRedis(t))
	ctx := context.Background()
	rec := newRecorder()
	o := faultOptions(addr) // OpTimeout 100 ms, pauses from 50 ms to 400 ms
	c := open(t, o, rec)
	waitReady(t, c)
	c.Set(ctx, "shop", "v", decision("v"))
	flush(t, c)
	c.mem.purge()

	setDelay(150 * time.Millisecond)
	tm := newTiming(t)
	gets := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); gets++ {
		tm.call("Get from a slow Valkey", callBound, func() { c.Get(ctx, "shop", fmt.Sprint("fp", gets)) })
		time.Sleep(2 * time.Millisecond)
	}
	// Each opening of the breaker costs BreakerFailures reads. It should open once; a probe
	// may pass now and then on a starved machine, where a reply already in the socket is
	// read before the time-out fires.
	failures := o.withDefaults().BreakerFailures
	timeouts := rec.errors("get timeout")
	t.Logf("%d of %d reads timed out, availability changes %v", timeouts, gets, rec.availability())
	if timeouts < failures || timeouts > 3*failures {
		t.Errorf("timed-out reads = %d of %d, want %d (at most %d)", timeouts, gets, failures, 3*failures)
	}
	if !errorsContain(rec.lastError("connect"), "not within") {
		t.Errorf("last connect error = %v, want a probe that was too slow", rec.lastError("connect"))
	}

	setDelay(0)
	harness.Eventually(t, 5*time.Second, "a valkey hit once Valkey is fast", func() bool {
		c.mem.purge()
		_, src, ok := c.Get(ctx, "shop", "v")
		return ok && src == analysis.SourceValkey
	})
}

func errorsContain(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

// TestCloseStopsGoroutines: after Close nothing of the cache keeps running (not parallel, so
// no other test's goroutines are counted).
func TestCloseStopsGoroutines(t *testing.T) {
	r := harness.StartRedisWith(t, harness.RedisOptions{})
	ctx := context.Background()
	before := runtime.NumGoroutine()
	for range 3 {
		c, err := New(testOptions(r.Addr))
		if err != nil {
			t.Fatal(err)
		}
		waitReady(t, c)
		c.Set(ctx, "shop", "fp", decision("x"))
		c.Get(ctx, "shop", "other")
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 5*time.Second, "goroutines back to the count before", func() bool { return runtime.NumGoroutine() <= before })
}
