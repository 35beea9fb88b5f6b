package llm

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrBreakerOpen is Complete's answer while the breaker is open: the
// provider failed too often; nothing was sent.
var ErrBreakerOpen = errors.New("llm: the provider failed repeatedly; not asked until the breaker's pause is over")

// Observer sees every request (for metrics). Results: ok, throttled,
// server_error, timeout, error, rejected (breaker open).
type Observer interface {
	Request(provider, result string, seconds float64)
	TokensUsed(provider, kind string, n int64) // kind: input, output
	BreakerOpen(provider string, open bool)
}

// Client sends requests to a Provider: each attempt bounded by the
// caller's context, throttling and server errors retried with backoff, and
// a Breaker that stops asking a provider that keeps failing.
type Client struct {
	Provider Provider
	// Retries after the first attempt for a retryable failure (0: none).
	Retries int
	// Backoff is the first retry's wait, doubled for each next one, with
	// jitter (default 500ms).
	Backoff  time.Duration
	Breaker  *Breaker
	Observer Observer
	Log      *slog.Logger
}

// Complete sends req, retrying as configured, unless the breaker is open.
func (c *Client) Complete(ctx context.Context, req Request) (Response, error) {
	name := c.Provider.Name()
	if !c.Breaker.allow() {
		c.observe(name, "rejected", 0)
		return Response{}, ErrBreakerOpen
	}
	retries, backoff := max(c.Retries, 0), c.Backoff
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		resp, err := c.Provider.Complete(ctx, req)
		took := time.Since(start).Seconds()
		if err == nil {
			c.observe(name, "ok", took)
			if c.Observer != nil {
				c.Observer.TokensUsed(name, "input", resp.InputTokens)
				c.Observer.TokensUsed(name, "output", resp.OutputTokens)
			}
			c.settle(name, nil)
			return resp, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			e = failure(name, 0, err)
		}
		c.observe(name, resultOf(e), took)
		if errors.Is(ctx.Err(), context.Canceled) {
			// The caller gave up (shutdown): not the provider's fault.
			c.Breaker.release()
			return Response{}, e
		}
		if !e.Retryable() || attempt >= retries || ctx.Err() != nil {
			c.settle(name, e)
			return Response{}, e
		}
		wait := backoff << attempt
		wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			c.settle(name, failure(name, 0, ctx.Err()))
			return Response{}, failure(name, 0, ctx.Err())
		case <-t.C:
		}
	}
}

// settle tells the breaker how the request ended and logs its openings
// and closings (once each, not per request).
func (c *Client) settle(name string, err *Error) {
	opened, closed := c.Breaker.done(err == nil)
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	switch {
	case opened:
		log.Warn("the model provider keeps failing: analysis goes on with rules and the planner alone until it answers again",
			"provider", name, "error", err.Error(), "retry_after", c.Breaker.pause().String())
		if c.Observer != nil {
			c.Observer.BreakerOpen(name, true)
		}
	case closed:
		log.Info("the model provider answers again", "provider", name)
		if c.Observer != nil {
			c.Observer.BreakerOpen(name, false)
		}
	}
}

func (c *Client) observe(name, result string, seconds float64) {
	if c.Observer != nil {
		c.Observer.Request(name, result, seconds)
	}
}

// resultOf is the metrics' result label of a failure.
func resultOf(e *Error) string {
	switch {
	case e.Status == 429 || e.Status == 529:
		return "throttled"
	case e.Status >= 500:
		return "server_error"
	case e.Kind == "timeout":
		return "timeout"
	}
	return "error"
}

// Breaker counts consecutive failed requests. After Threshold of them it
// opens: no request is sent for Pause. Then it is half-open: one request
// is let through; its success closes the breaker, its failure opens it for
// another Pause. A nil *Breaker is always closed.
type Breaker struct {
	Threshold int           // default 3
	Pause     time.Duration // default 30s

	mu       sync.Mutex
	failures int
	open     bool
	until    time.Time
	probing  bool
	now      func() time.Time
}

func (b *Breaker) pause() time.Duration {
	if b == nil || b.Pause <= 0 {
		return 30 * time.Second
	}
	return b.Pause
}

func (b *Breaker) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// Open reports whether the breaker is open (or half-open with its probe
// in flight).
func (b *Breaker) Open() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// allow says whether a request may be sent now; in the half-open state the
// caller that gets true is the probe.
func (b *Breaker) allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || b.clock().Before(b.until) {
		return false
	}
	b.probing = true
	return true
}

// release ends a request that neither succeeded nor failed (the caller
// canceled it): a probe may be sent again.
func (b *Breaker) release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// done records how a request ended: opened when this failure opened the
// breaker, closed when this success closed it.
func (b *Breaker) done(ok bool) (opened, closed bool) {
	if b == nil {
		return false, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failures = 0
		if b.open {
			b.open = false
			return false, true
		}
		return false, false
	}
	b.failures++
	threshold := b.Threshold
	if threshold <= 0 {
		threshold = 3
	}
	if b.open {
		// The half-open probe failed: another pause, not another log line.
		b.until = b.clock().Add(b.pause())
		return false, false
	}
	if b.failures >= threshold {
		b.open = true
		b.until = b.clock().Add(b.pause())
		return true, false
	}
	return false, false
}
