package identity

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

// fakeClock is a settable clock for token times. The JWKS rate limit runs on
// the real clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a local issuer and a validator configured for it.
type fixture struct {
	iss   *oidcissuer.Issuer
	clock *fakeClock
	cfg   Config
	v     *Validator
}

func newIssuer(t *testing.T, opts oidcissuer.Options) *oidcissuer.Issuer {
	t.Helper()
	iss, err := oidcissuer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	return iss
}

// baseConfig trusts iss's CA and expects audience "pgproxy".
func baseConfig(t *testing.T, iss *oidcissuer.Issuer, clock *fakeClock) Config {
	t.Helper()
	ca, err := iss.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		DiscoveryURL:           iss.DiscoveryURL(),
		Audiences:              []string{"pgproxy"},
		CACertPath:             ca,
		ClockLeeway:            DefaultClockLeeway,
		JWKSMinRefreshInterval: testInterval, // a token with an unknown kid waits for the next download
		StartupTimeout:         5 * time.Second,
		Now:                    clock.Now,
	}
}

// newFixture starts an issuer and a ready validator; edit adjusts the config.
func newFixture(t *testing.T, opts oidcissuer.Options, edit func(*Config)) *fixture {
	t.Helper()
	iss := newIssuer(t, opts)
	clock := newFakeClock()
	cfg := baseConfig(t, iss, clock)
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewValidator(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Ready() {
		t.Fatal("validator not ready with the issuer up")
	}
	return &fixture{iss: iss, clock: clock, cfg: cfg, v: v}
}

// issue mints a token at the fixture's clock.
func (f *fixture) issue(t *testing.T, claims map[string]any, opts oidcissuer.IssueOptions) string {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = f.clock.Now()
	}
	tok, err := f.iss.Issue(claims, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testLogger sends validator logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// wantReason checks err is an *Error with reason r whose texts do not
// contain the token.
func wantReason(t *testing.T, err error, r Reason, token string) {
	t.Helper()
	if r == "" {
		if err != nil {
			t.Fatalf("unexpected refusal: %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *Error with reason %s", err, r)
	}
	if e.Reason != r {
		t.Fatalf("reason = %s (%v), want %s", e.Reason, err, r)
	}
	if e.Message == "" {
		t.Fatal("refusal without a client message")
	}
	if len(token) > 20 && (strings.Contains(err.Error(), token) || strings.Contains(e.Message, token)) {
		t.Fatal("error text echoes the token")
	}
	// Signature part of a JWT: also must not leak.
	if i := strings.LastIndex(token, "."); i > 0 && len(token)-i > 20 && strings.Contains(err.Error(), token[i+1:]) {
		t.Fatal("error text echoes the token signature")
	}
}

// waitReady polls until v is ready or the deadline passes.
func waitReady(t *testing.T, ctx context.Context, v *Validator, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !v.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("validator not ready after %s", within)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
