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
const callBound = 200 * time.Millisecond

// timed runs fn and fails the test if it took longer than callBound.
func timed(t testing.TB, what string, fn func()) time.Duration {
	t.Helper()
	start := time.Now()
	fn()
	d := time.Since(start)
	if d > callBound {
		t.Errorf("%s took %s (bound %s)", what, d, callBound)
	}
	return d
}

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
	var c *Tiered
	if d := timed(t, "New with Valkey down", func() { c = open(t, faultOptions(r.Addr), rec) }); d > 50*time.Millisecond {
		t.Errorf("New took %s", d)
	}
	eventually(t, 5*time.Second, "a connect error reported", func() bool { return rec.errors("connect error") > 0 })
	for i := range 20 {
		fp := fmt.Sprint("fp", i)
		timed(t, "Set", func() { c.Set(ctx, "shop", fp, decision(fp)) })
		timed(t, "Get", func() {
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

	var slowest atomic.Int64
	var calls atomic.Int64
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
				start := time.Now()
				if i%2 == 0 {
					c.Set(ctx, "shop", fp, decision(fp))
				} else {
					c.Get(ctx, "shop", fmt.Sprint("miss", g, "-", i)) // memory miss: asks Valkey
				}
				d := time.Since(start)
				calls.Add(1)
				for {
					old := slowest.Load()
					if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
						break
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the breaker opens", func() bool { return !c.Available() })
	time.Sleep(500 * time.Millisecond) // calls while Valkey is down and probed
	close(stop)
	wg.Wait()
	if d := time.Duration(slowest.Load()); d > callBound {
		t.Errorf("slowest of %d calls while redis died: %s (bound %s)", calls.Load(), d, callBound)
	} else {
		t.Logf("slowest of %d calls while redis died: %s", calls.Load(), d)
	}
	if rec.errors("get unavailable") == 0 {
		t.Fatalf("Valkey was never skipped: %v", rec.errs)
	}
	if _, src, ok := c.Get(ctx, "shop", "warm1"); !ok || src != analysis.SourceMemory {
		t.Fatalf("Get = %q, %v; want the memory hit", src, ok)
	}

	if err := r.Start(); err != nil { // empty: persistence is off
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Valkey used again after the restart", func() bool { return c.Available() && c.vk.subscribed.Load() })
	eventually(t, 2*time.Second, "memory emptied after the subscription came back", func() bool { return rec.invalidations("resubscribe") > 0 })
	if _, _, ok := c.Get(ctx, "shop", "warm1"); ok {
		t.Fatal("warm1 survived the resubscription (memory) and the restart (Valkey)")
	}
	c.Set(ctx, "shop", "after", decision("after"))
	flush(t, c)
	eventually(t, 5*time.Second, "a valkey hit after the restart", func() bool {
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
	var durations []time.Duration
	for i := range 10 {
		durations = append(durations, timed(t, "Get from a frozen Valkey", func() {
			if _, _, ok := c.Get(ctx, "shop", "v"); ok {
				t.Errorf("Get %d hit with Valkey frozen", i)
			}
		}))
	}
	t.Logf("Get durations with Valkey frozen: %v", durations)
	if rec.errors("get timeout") < o.withDefaults().BreakerFailures {
		t.Fatalf("errors = %v; want %d timeouts", rec.errs, o.withDefaults().BreakerFailures)
	}
	if c.Available() {
		t.Fatal("breaker still closed after timeouts")
	}
	for i, d := range durations[o.withDefaults().BreakerFailures:] {
		if d > 10*time.Millisecond {
			t.Errorf("Get %d with the breaker open took %s", i+o.withDefaults().BreakerFailures, d)
		}
	}
	if got := rec.lookup("valkey miss"); got != o.withDefaults().BreakerFailures {
		t.Errorf("valkey misses = %d, want %d (the timed-out reads)", got, o.withDefaults().BreakerFailures)
	}

	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	eventually(t, 10*time.Second, "Valkey used again after it continued", c.Available)
	eventually(t, 5*time.Second, "a valkey hit after it continued", func() bool {
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
	start := time.Now()
	for i := range 20 {
		c.Set(ctx, "shop", fmt.Sprint("q", i), decision("q"))
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Errorf("20 Sets with Valkey frozen took %s", d)
	}
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
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > o.ConnectTimeout+callBound {
		t.Fatalf("Close took %s", d)
	}
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
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		timed(t, "Get from a slow Valkey", func() { c.Get(ctx, "shop", fmt.Sprint("fp", i)) })
		time.Sleep(2 * time.Millisecond)
	}
	failures := o.withDefaults().BreakerFailures
	if got := rec.errors("get timeout"); got != failures {
		t.Errorf("timed-out reads = %d, want %d (then the breaker stays open)", got, failures)
	}
	if !errorsContain(rec.lastError("connect"), "not within") {
		t.Errorf("last connect error = %v, want a probe that was too slow", rec.lastError("connect"))
	}
	if c.Available() {
		t.Error("a Valkey slower than OpTimeout is available")
	}

	setDelay(0)
	eventually(t, 5*time.Second, "a valkey hit once Valkey is fast", func() bool {
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
	eventually(t, 5*time.Second, "goroutines back to the count before", func() bool { return runtime.NumGoroutine() <= before })
}
