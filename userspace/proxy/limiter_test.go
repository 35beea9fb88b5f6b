package proxy

import (
	"net/netip"
	"testing"
	"time"
)

func TestIPLimiterAllowsRatePerMinute(t *testing.T) {
	l := newIPLimiter(3)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !l.allow(a, now) {
			t.Fatalf("connection %d of 3 refused", i+1)
		}
	}
	if l.allow(a, now) {
		t.Fatal("a 4th connection within the minute was allowed")
	}
	if !l.allow(b, now) {
		t.Fatal("another address shares the first one's budget")
	}
	// One token comes back every 20 s at 3 per minute.
	if !l.allow(a, now.Add(21*time.Second)) || l.allow(a, now.Add(22*time.Second)) {
		t.Fatal("refill is not one token per 20 s")
	}
	if len(l.buckets) != 2 {
		t.Fatalf("%d buckets, want 2", len(l.buckets))
	}
	l.allow(b, now.Add(10*time.Minute))
	if _, kept := l.buckets[a]; kept {
		t.Fatal("an address idle for minutes is still tracked (memory grows with every client ever seen)")
	}
}

func TestIPLimiterDisabled(t *testing.T) {
	l := newIPLimiter(0)
	for range 1000 {
		if !l.allow(netip.MustParseAddr("10.0.0.1"), time.Now()) {
			t.Fatal("MAX_CONNS_PER_IP_PER_MIN=0 must not limit")
		}
	}
}
