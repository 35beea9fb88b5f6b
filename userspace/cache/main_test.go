package cache

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// recorder counts what the hooks report.
type recorder struct {
	mu      sync.Mutex
	lookups map[string]int // "memory hit", "valkey miss"
	errs    map[string]int // "get timeout", "set unavailable"
	last    map[string]error
	avail   []bool
	inval   map[string]int
}

func newRecorder() *recorder {
	return &recorder{lookups: map[string]int{}, errs: map[string]int{}, last: map[string]error{}, inval: map[string]int{}}
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		OnLookup: func(tier analysis.Source, hit bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.lookups[fmt.Sprintf("%s %s", tier, map[bool]string{true: "hit", false: "miss"}[hit])]++
		},
		OnError: func(op string, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.errs[op+" "+ErrorKind(err)]++
			r.last[op] = err
		},
		OnAvailable: func(up bool) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.avail = append(r.avail, up)
		},
		OnInvalidate: func(scope string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.inval[scope]++
		},
	}
}

func (r *recorder) lookup(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[s]
}

func (r *recorder) errors(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[s]
}

func (r *recorder) invalidations(scope string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inval[scope]
}

// open makes a cache that is closed in cleanup; o.Hooks is replaced by rec's when rec is set.
func open(t testing.TB, o Options, rec *recorder) *Tiered {
	t.Helper()
	if rec != nil {
		o.Hooks = rec.hooks()
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testOptions are options for a cache on addr with short breaker pauses and an operation
// time-out of a second: the functional tests run on a loaded 2-CPU machine, where a read
// may now and then take longer than the default 25 ms and would be a miss.
func testOptions(addr string) Options {
	return Options{ValkeyURL: "redis://" + addr, OpTimeout: time.Second,
		BreakerBackoff: 50 * time.Millisecond, BreakerMaxBackoff: 400 * time.Millisecond}
}

// faultOptions are testOptions with the 100 ms operation time-out of the fault tests.
func faultOptions(addr string) Options {
	o := testOptions(addr)
	o.OpTimeout = 100 * time.Millisecond
	return o
}

// waitReady waits until c uses Valkey and is subscribed to invalidations.
func waitReady(t testing.TB, c *Tiered) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "valkey available and subscribed", func() bool {
		return c.Available() && c.vk.subscribed.Load()
	})
}

// rawClient is a plain valkey-go client on addr, to look at and tamper with the keys.
func rawClient(t testing.TB, addr string) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func flush(t testing.TB, c *Tiered) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// decision is a decision as the rules tier makes it.
func decision(reason string) analysis.Decision {
	return analysis.Decision{Verdict: analysis.Inefficient, Reason: reason, Check: "seq_scan",
		Source: analysis.SourceRules, Decided: time.Now().UTC().Truncate(time.Millisecond)}
}
