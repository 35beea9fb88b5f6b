package proxy

import (
	"net/netip"
	"sync"
	"time"
)

// ipLimiter allows each client address a number of new connections per
// minute (a token bucket refilled continuously).
type ipLimiter struct {
	perMin  float64
	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	lastGC  time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newIPLimiter(perMin int) *ipLimiter {
	return &ipLimiter{perMin: float64(perMin), buckets: map[netip.Addr]*bucket{}}
}

// allow takes a token for addr; false means the address is over its rate.
func (l *ipLimiter) allow(addr netip.Addr, now time.Time) bool {
	if l.perMin <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastGC) > time.Minute {
		for a, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, a)
			}
		}
		l.lastGC = now
	}
	b, ok := l.buckets[addr]
	if !ok {
		b = &bucket{tokens: l.perMin, last: now}
		l.buckets[addr] = b
	}
	b.tokens = min(l.perMin, b.tokens+now.Sub(b.last).Minutes()*l.perMin)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
