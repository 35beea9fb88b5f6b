package cache

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/analysis"
)

func TestValkeyTiers(t *testing.T) {
	t.Parallel()
	addr := harness.StartRedis(t)
	raw := rawClient(t, addr)
	ctx := context.Background()

	recA := newRecorder()
	a := open(t, testOptions(addr), recA)
	waitReady(t, a)
	if _, _, ok := a.Get(ctx, "shop", "fp1"); ok {
		t.Fatal("hit in an empty cache")
	}
	if recA.lookup("memory miss") != 1 || recA.lookup("valkey miss") != 1 {
		t.Fatalf("lookups = %v; want one miss per tier", recA.lookups)
	}
	want := decision("sequential scan of public.orders")
	a.Set(ctx, "shop", "fp1", want)
	flush(t, a)

	// In Valkey: the decision as JSON, with the decision TTL.
	v, err := raw.Do(ctx, raw.B().Get().Key(Key("shop", "fp1")).Build()).AsBytes()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	var stored analysis.Decision
	if err := json.Unmarshal(v, &stored); err != nil || stored.Reason != want.Reason || stored.Origin != analysis.SourceRules {
		t.Fatalf("stored %s (%v)", v, err)
	}
	pttl, err := raw.Do(ctx, raw.B().Pttl().Key(Key("shop", "fp1")).Build()).AsInt64()
	if err != nil || pttl <= int64((DefaultTTL-time.Minute)/time.Millisecond) || pttl > int64(DefaultTTL/time.Millisecond) {
		t.Fatalf("PTTL = %d (%v), want about %s", pttl, err, DefaultTTL)
	}

	// Another process finds it in Valkey, then in its memory.
	recB := newRecorder()
	b := open(t, testOptions(addr), recB)
	waitReady(t, b)
	d, src, ok := b.Get(ctx, "shop", "fp1")
	if !ok || src != analysis.SourceValkey || d.Source != analysis.SourceValkey || d.Origin != analysis.SourceRules ||
		d.Reason != want.Reason || d.Verdict != want.Verdict || !d.Decided.Equal(want.Decided) {
		t.Fatalf("b.Get = %+v, %q, %v; want a valkey hit of %+v", d, src, ok, want)
	}
	if d, src, ok = b.Get(ctx, "shop", "fp1"); !ok || src != analysis.SourceMemory || d.Reason != want.Reason {
		t.Fatalf("second b.Get = %+v, %q, %v; want a memory hit", d, src, ok)
	}
	if recB.lookup("valkey hit") != 1 || recB.lookup("memory hit") != 1 || recB.lookup("memory miss") != 1 {
		t.Fatalf("b lookups = %v", recB.lookups)
	}
	if n := recA.errors("get error") + recA.errors("set error") + recB.errors("get error"); n != 0 {
		t.Fatalf("errors: a %v, b %v", recA.errs, recB.errs)
	}
}

func TestValkeyTTL(t *testing.T) {
	t.Parallel()
	addr := harness.StartRedis(t)
	raw := rawClient(t, addr)
	ctx := context.Background()
	o := testOptions(addr)
	o.TTL = 400 * time.Millisecond
	a := open(t, o, nil)
	b := open(t, o, nil)
	waitReady(t, a)
	waitReady(t, b)
	a.Set(ctx, "shop", "short", decision("x"))
	flush(t, a)
	pttl, err := raw.Do(ctx, raw.B().Pttl().Key(Key("shop", "short")).Build()).AsInt64()
	if err != nil || pttl <= 0 || pttl > 400 {
		t.Fatalf("PTTL = %d (%v), want 1-400 ms", pttl, err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, _, ok := b.Get(ctx, "shop", "short"); ok {
		t.Fatal("b found the decision after its TTL")
	}
	if _, _, ok := a.Get(ctx, "shop", "short"); ok {
		t.Fatal("a found the decision after its TTL")
	}

	// A Valkey hit stays in memory only as long as the key has left in Valkey.
	long := open(t, testOptions(addr), nil) // TTL one hour
	waitReady(t, long)
	v, _ := json.Marshal(decision("y"))
	if err := raw.Do(ctx, raw.B().Set().Key(Key("shop", "left")).Value(string(v)).Px(300*time.Millisecond).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, src, ok := long.Get(ctx, "shop", "left"); !ok || src != analysis.SourceValkey {
		t.Fatalf("Get = %q, %v; want a valkey hit", src, ok)
	}
	time.Sleep(450 * time.Millisecond)
	if _, src, ok := long.Get(ctx, "shop", "left"); ok {
		t.Fatalf("Get = %q hit after the Valkey key expired", src)
	}
}

func TestInvalidationAcrossInstances(t *testing.T) {
	t.Parallel()
	addr := harness.StartRedis(t)
	raw := rawClient(t, addr)
	ctx := context.Background()
	a := open(t, testOptions(addr), nil)
	recB := newRecorder()
	b := open(t, testOptions(addr), recB)
	waitReady(t, a)
	waitReady(t, b)
	inMemory := func(c *Tiered, db, fp string) bool { return c.mem.lru.Contains(memKey{db, fp}) }
	// warm puts the decisions in a, in Valkey, and (through a Valkey hit) in b's memory.
	warm := func(keys ...[2]string) {
		t.Helper()
		for _, k := range keys {
			a.Set(ctx, k[0], k[1], decision(k[0]+"/"+k[1]))
		}
		flush(t, a)
		for _, k := range keys {
			if _, src, ok := b.Get(ctx, k[0], k[1]); !ok || src != analysis.SourceValkey {
				t.Fatalf("b.Get(%v) = %q, %v; want a valkey hit", k, src, ok)
			}
			if !inMemory(b, k[0], k[1]) {
				t.Fatalf("%v not in b's memory", k)
			}
		}
	}
	forgotten := func(c *Tiered, k [2]string) func() bool {
		return func() bool { return !inMemory(c, k[0], k[1]) }
	}

	// Delete in a: b forgets within moments; nobody finds it any more.
	k1 := [2]string{"shop", "fp1"}
	warm(k1)
	start := time.Now()
	if err := a.Delete(ctx, "shop", "fp1"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 2*time.Second, "b forgets a deleted decision", forgotten(b, k1))
	t.Logf("b forgot the deleted decision %s after Delete was called", time.Since(start).Round(time.Millisecond))
	if _, _, ok := b.Get(ctx, "shop", "fp1"); ok {
		t.Fatal("b still finds the deleted decision")
	}
	if _, _, ok := a.Get(ctx, "shop", "fp1"); ok {
		t.Fatal("a still finds the deleted decision")
	}
	if recB.invalidations("key") == 0 {
		t.Fatal("b reported no key invalidation")
	}

	// An operator with valkey-cli: DEL, then PUBLISH the key.
	k2 := [2]string{"shop", "fp2"}
	warm(k2)
	key := Key(k2[0], k2[1])
	if err := raw.Do(ctx, raw.B().Del().Key(key).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Do(ctx, raw.B().Publish().Channel(InvalidationChannel).Message(key).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 2*time.Second, "b forgets a decision the operator deleted", forgotten(b, k2))
	harness.Eventually(t, 2*time.Second, "a forgets a decision the operator deleted", forgotten(a, k2))

	// PurgeDatabase: one database, everywhere; the other stays.
	kA1, kA2, kOther := [2]string{"a", "1"}, [2]string{"a", "2"}, [2]string{"a:b", "1"}
	warm(kA1, kA2, kOther)
	n, err := a.PurgeDatabase(ctx, "a")
	if err != nil || n != 2 {
		t.Fatalf("PurgeDatabase = %d, %v; want 2 keys", n, err)
	}
	harness.Eventually(t, 2*time.Second, "b forgets database a", func() bool { return forgotten(b, kA1)() && forgotten(b, kA2)() })
	if !inMemory(b, kOther[0], kOther[1]) {
		t.Fatal(`PurgeDatabase("a") dropped a decision of database "a:b" from b's memory`)
	}
	if _, src, ok := a.Get(ctx, kOther[0], kOther[1]); !ok {
		t.Fatalf(`decision of "a:b" lost (%q)`, src)
	}

	// Purge: everything, everywhere.
	warm(k1)
	n, err = b.Purge(ctx)
	if err != nil || n != 2 { // shop/fp1 and a:b/1
		t.Fatalf("Purge = %d, %v; want 2 keys", n, err)
	}
	harness.Eventually(t, 2*time.Second, "a forgets everything", func() bool { return a.mem.lru.Len() == 0 })
	keys, err := raw.Do(ctx, raw.B().Keys().Pattern(KeyPrefix+"*").Build()).AsStrSlice()
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys after Purge: %v (%v)", keys, err)
	}
	if recB.invalidations("all") == 0 {
		t.Fatal("b reported no purge")
	}
}

func TestMalformedValue(t *testing.T) {
	t.Parallel()
	addr := harness.StartRedis(t)
	raw := rawClient(t, addr)
	ctx := context.Background()
	rec := newRecorder()
	c := open(t, testOptions(addr), rec)
	waitReady(t, c)
	exists := func(key string) func() bool {
		return func() bool {
			n, err := raw.Do(ctx, raw.B().Exists().Key(key).Build()).AsInt64()
			return err == nil && n == 1
		}
	}
	for fp, value := range map[string]string{"json": "not json", "verdict": `{"verdict":"maybe"}`} {
		key := Key("shop", fp)
		if err := raw.Do(ctx, raw.B().Set().Key(key).Value(value).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if d, src, ok := c.Get(ctx, "shop", fp); ok {
			t.Fatalf("malformed %q: Get = %+v, %q", value, d, src)
		}
		harness.Eventually(t, 2*time.Second, "malformed value deleted", func() bool { return !exists(key)() })
	}
	// A key of another type.
	key := Key("shop", "hash")
	if err := raw.Do(ctx, raw.B().Hset().Key(key).FieldValue().FieldValue("f", "v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c.Get(ctx, "shop", "hash"); ok {
		t.Fatal("hit on a hash")
	}
	harness.Eventually(t, 2*time.Second, "key of another type deleted", func() bool { return !exists(key)() })
	if got := rec.errors("get malformed"); got != 3 {
		t.Fatalf("malformed errors = %d (%v), want 3", got, rec.errs)
	}
	if got := rec.lookup("valkey miss"); got != 3 {
		t.Fatalf("valkey misses = %d, want 3", got)
	}
	if !c.Available() {
		t.Fatal("malformed values opened the breaker")
	}
}

func TestKeyEscapingInValkey(t *testing.T) {
	t.Parallel()
	addr := harness.StartRedis(t)
	raw := rawClient(t, addr)
	ctx := context.Background()
	a := open(t, testOptions(addr), nil)
	b := open(t, testOptions(addr), nil)
	waitReady(t, a)
	waitReady(t, b)
	pairs := [][2]string{{"a:b", "c"}, {"a", "b:c"}, {"a*", "c"}, {"a", "*"}, {"zoë \n{x}", "c"}}
	for _, p := range pairs {
		a.Set(ctx, p[0], p[1], decision(p[0]+"|"+p[1]))
	}
	flush(t, a)
	keys, err := raw.Do(ctx, raw.B().Keys().Pattern(KeyPrefix+"*").Build()).AsStrSlice()
	if err != nil || len(keys) != len(pairs) {
		t.Fatalf("keys = %q (%v), want %d", keys, err, len(pairs))
	}
	for _, p := range pairs {
		d, src, ok := b.Get(ctx, p[0], p[1])
		if !ok || src != analysis.SourceValkey || d.Reason != p[0]+"|"+p[1] {
			t.Fatalf("b.Get(%q, %q) = %q, %q, %v", p[0], p[1], d.Reason, src, ok)
		}
	}
	// "a*" must not be read as a pattern that also matches database "a" or "a:b".
	n, err := a.PurgeDatabase(ctx, "a*")
	if err != nil || n != 1 {
		t.Fatalf(`PurgeDatabase("a*") = %d, %v; want 1`, n, err)
	}
	n, err = a.PurgeDatabase(ctx, "a")
	if err != nil || n != 2 {
		t.Fatalf(`PurgeDatabase("a") = %d, %v; want 2`, n, err)
	}
	if _, _, ok := a.Get(ctx, "a:b", "c"); !ok {
		t.Fatal(`decision of database "a:b" lost`)
	}
}
