package cache

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/userspace/analysis"
)

func TestMemoryOnly(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	c := open(t, Options{}, rec)
	ctx := context.Background()
	if _, _, ok := c.Get(ctx, "shop", "fp1"); ok {
		t.Fatal("hit in an empty cache")
	}
	want := decision("sequential scan of public.orders")
	c.Set(ctx, "shop", "fp1", want)
	d, src, ok := c.Get(ctx, "shop", "fp1")
	if !ok || src != analysis.SourceMemory || d.Source != analysis.SourceMemory {
		t.Fatalf("Get = %+v, %q, %v; want a memory hit", d, src, ok)
	}
	if d.Origin != analysis.SourceRules || d.Reason != want.Reason || !d.Decided.Equal(want.Decided) {
		t.Fatalf("Get = %+v; want %+v with origin rules", d, want)
	}
	if _, _, ok := c.Get(ctx, "other", "fp1"); ok {
		t.Fatal("a decision of shop was found for database other")
	}
	if got := rec.lookup("memory hit"); got != 1 {
		t.Errorf("memory hits = %d, want 1", got)
	}
	if got := rec.lookup("memory miss"); got != 2 {
		t.Errorf("memory misses = %d, want 2", got)
	}
	if got := rec.lookup("valkey miss") + rec.lookup("valkey hit"); got != 0 {
		t.Errorf("valkey lookups without valkey: %d", got)
	}
	if err := c.Delete(ctx, "shop", "fp1"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Get(ctx, "shop", "fp1"); ok {
		t.Fatal("hit after Delete")
	}
	if c.Available() {
		t.Fatal("Available without a Valkey tier")
	}
}

func TestMemoryTTLAndSize(t *testing.T) {
	t.Parallel()
	c := open(t, Options{TTL: 100 * time.Millisecond, MemorySize: 2}, nil)
	ctx := context.Background()
	c.Set(ctx, "db", "a", decision("a"))
	time.Sleep(150 * time.Millisecond)
	if _, _, ok := c.Get(ctx, "db", "a"); ok {
		t.Fatal("hit after the TTL")
	}
	c.Set(ctx, "db", "a", decision("a"))
	c.Set(ctx, "db", "b", decision("b"))
	c.Set(ctx, "db", "c", decision("c"))
	if _, _, ok := c.Get(ctx, "db", "a"); ok {
		t.Fatal("the least recently used entry was not evicted")
	}
}

func TestMemoryPurge(t *testing.T) {
	t.Parallel()
	c := open(t, Options{}, nil)
	ctx := context.Background()
	for _, k := range [][2]string{{"a", "1"}, {"a", "2"}, {"b", "1"}} {
		c.Set(ctx, k[0], k[1], decision(k[0]+k[1]))
	}
	if _, err := c.PurgeDatabase(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Get(ctx, "a", "1"); ok {
		t.Fatal("a/1 survived PurgeDatabase(a)")
	}
	if _, _, ok := c.Get(ctx, "b", "1"); !ok {
		t.Fatal("b/1 lost by PurgeDatabase(a)")
	}
	if _, err := c.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Get(ctx, "b", "1"); ok {
		t.Fatal("b/1 survived Purge")
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{ValkeyURL: "http://localhost:6379"},
		{ValkeyURL: "redis://localhost:6379", TLSSkipVerify: true},
		{ValkeyURL: "redis://localhost:6379/notanumber"},
		{ValkeyURL: "unix:///tmp/valkey.sock"},
	} {
		if c, err := New(o); err == nil {
			_ = c.Close()
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	good, _ := json.Marshal(decision("x"))
	if d, err := decode(good); err != nil || d.Origin != analysis.SourceRules {
		t.Fatalf("decode = %+v, %v; want origin rules", d, err)
	}
	for _, v := range []string{"", "not json", "{}", `{"verdict":"maybe"}`, `[1,2]`, `{"verdict":1}`} {
		if _, err := decode([]byte(v)); err == nil {
			t.Errorf("decode(%q) accepted", v)
		}
	}
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		context.DeadlineExceeded: "timeout",
		ErrUnavailable:           "unavailable",
		ErrQueueFull:             "queue_full",
		errors.Join(ErrMalformed, errors.New("")): "malformed",
		ErrClosed:         "closed",
		errors.New("EOF"): "error",
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}
