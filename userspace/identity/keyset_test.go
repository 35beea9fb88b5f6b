package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testInterval is the JWKS rate limit of the key set tests: short, so that
// waiting for the next download keeps them fast.
const testInterval = 300 * time.Millisecond

// jwksServer is a local JWKS endpoint that counts downloads. publish says
// which keys the n-th download (from 1) serves.
type jwksServer struct {
	srv       *httptest.Server
	downloads atomic.Int64
	failing   atomic.Bool

	mu      sync.Mutex
	publish func(n int64) []jose.JSONWebKey
	gate    chan struct{} // when set, downloads wait for it to close
}

func newJWKSServer(t *testing.T, publish func(n int64) []jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{publish: publish}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	n := s.downloads.Add(1)
	s.mu.Lock()
	gate, publish := s.gate, s.publish
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if s.failing.Load() {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: publish(n)})
}

// setGate makes the following downloads wait until gate is closed.
func (s *jwksServer) setGate(gate chan struct{}) {
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
}

// testKey is an ES256 signing key with its kid.
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newTestKey(t *testing.T, kid string) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, priv: priv}
}

// public is the key's JWKS entry.
func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}
}

// sign returns a compact JWS of a small payload with the key's kid.
func (k testKey) sign(t *testing.T) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"ann"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// loadedKeySet returns a key set for s with interval as its rate limit,
// after its first download.
func loadedKeySet(t *testing.T, s *jwksServer, interval time.Duration) *keySet {
	t.Helper()
	ks := newKeySet(s.srv.URL, s.srv.Client(), []jose.SignatureAlgorithm{jose.ES256}, interval)
	if err := ks.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	return ks
}

// within returns a context that ends after d (a generous bound: the tests
// assert outcomes and download counts, not timing).
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// maxDownloads is the rate limit's bound for a period: one download per
// interval, plus one.
func maxDownloads(elapsed, interval time.Duration) int64 {
	return int64(elapsed/interval) + 1
}

func TestKeySetRotatedKeyAcceptedRightAfterForgedKid(t *testing.T) {
	oldKey, newKey := newTestKey(t, "old"), newTestKey(t, "new")
	// The issuer rotates after its second download: from the third on it
	// publishes only the new key.
	s := newJWKSServer(t, func(n int64) []jose.JSONWebKey {
		if n >= 3 {
			return []jose.JSONWebKey{newKey.public()}
		}
		return []jose.JSONWebKey{oldKey.public()}
	})
	ks := loadedKeySet(t, s, testInterval)

	// A forged kid waits for the next allowed download (the second), which
	// does not bring it.
	forged := newTestKey(t, "made-up").sign(t)
	_, err := ks.verify(within(t, 10*time.Second), forged)
	wantReason(t, err, ReasonUnknownKey, forged)
	if got := s.downloads.Load(); got != 2 {
		t.Fatalf("downloads after the forged kid = %d, want 2", got)
	}

	// Right after, the rotated key: the first attempt waits for the next
	// download instead of being refused.
	genuine := newKey.sign(t)
	if _, err := ks.verify(within(t, 10*time.Second), genuine); err != nil {
		t.Fatalf("first attempt with the rotated key: %v", err)
	}
	if got := s.downloads.Load(); got != 3 {
		t.Fatalf("downloads after the rotated key = %d, want 3", got)
	}
	// The withdrawn key is gone with that download.
	old := oldKey.sign(t)
	_, err = ks.verify(within(t, 10*time.Second), old)
	wantReason(t, err, ReasonUnknownKey, old)
}

func TestKeySetDownloadRunningBeforeTheTokenDoesNotAnswerIt(t *testing.T) {
	oldKey, newKey := newTestKey(t, "old"), newTestKey(t, "new")
	// Downloads 1 and 2 serve the old key; the new key appears from the third.
	s := newJWKSServer(t, func(n int64) []jose.JSONWebKey {
		if n >= 3 {
			return []jose.JSONWebKey{oldKey.public(), newKey.public()}
		}
		return []jose.JSONWebKey{oldKey.public()}
	})
	ks := loadedKeySet(t, s, testInterval)
	time.Sleep(testInterval)

	// Download 2 starts and hangs; then the token arrives.
	gate := make(chan struct{})
	s.setGate(gate)
	refreshed := make(chan error, 1)
	go func() { refreshed <- ks.refresh(t.Context()) }()
	for s.downloads.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	genuine := newKey.sign(t)
	verified := make(chan error, 1)
	go func() {
		_, err := ks.verify(within(t, 10*time.Second), genuine)
		verified <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the token be looked at while download 2 runs
	s.setGate(nil)
	close(gate)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if err := <-verified; err != nil {
		t.Fatalf("token that arrived during a download without its key: %v", err)
	}
	if got := s.downloads.Load(); got != 3 {
		t.Fatalf("downloads = %d, want 3", got)
	}
}

func TestKeySetFloodOfForgedKids(t *testing.T) {
	known := newTestKey(t, "known")
	s := newJWKSServer(t, func(int64) []jose.JSONWebKey { return []jose.JSONWebKey{known.public()} })
	ks := loadedKeySet(t, s, testInterval)

	// 200 forged tokens, made first (key generation is not the point), sent
	// concurrently, spread over about three intervals.
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = newTestKey(t, fmt.Sprintf("forged-%d", i)).sign(t)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, tok := range toks {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 3 * testInterval / time.Duration(len(toks)))
			_, err := ks.verify(within(t, 10*time.Second), tok)
			if ReasonOf(err) != ReasonUnknownKey {
				t.Errorf("forged token %d: reason %s (%v), want unknown_key", i, ReasonOf(err), err)
			}
		})
	}
	// A genuine token during the flood is not held up.
	if _, err := ks.verify(within(t, 10*time.Second), known.sign(t)); err != nil {
		t.Errorf("genuine token during the flood: %v", err)
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := s.downloads.Load() - 1 // the first download
	if limit := maxDownloads(elapsed, testInterval); got > limit {
		t.Fatalf("%d downloads in %s, want at most %d", got, elapsed, limit)
	}
	if got < 1 {
		t.Fatal("the flood caused no download: the forged kids were refused without looking")
	}
	t.Logf("%d downloads in %s", got, elapsed)
}

func TestKeySetWaiterGivesUpAtItsDeadline(t *testing.T) {
	known := newTestKey(t, "known")
	s := newJWKSServer(t, func(int64) []jose.JSONWebKey { return []jose.JSONWebKey{known.public()} })
	const interval = 3 * time.Second
	ks := loadedKeySet(t, s, interval)

	// The next download is due in about 3 s; these logins have 100 ms.
	toks := make([]string, 5)
	for i := range toks {
		toks[i] = newTestKey(t, fmt.Sprintf("forged-%d", i)).sign(t)
	}
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() {
			start := time.Now()
			_, err := ks.verify(within(t, 100*time.Millisecond), tok)
			took := time.Since(start)
			if ReasonOf(err) != ReasonUnknownKey || !errors.Is(err, errAbandoned) {
				t.Errorf("refusal = %v, want unknown_key after an abandoned wait", err)
			}
			if took < 100*time.Millisecond || took > interval/2 {
				t.Errorf("refused after %s, want at the 100 ms deadline, long before the next download", took)
			}
		})
	}
	wg.Wait()
	if got := s.downloads.Load(); got != 1 {
		t.Fatalf("downloads = %d before the interval passed, want 1", got)
	}
	// The download the waiters had queued for still runs, once.
	deadline := time.Now().Add(interval + 10*time.Second)
	for s.downloads.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(testInterval)
	if got := s.downloads.Load(); got != 2 {
		t.Fatalf("downloads = %d after the interval, want 2", got)
	}
	ks.mu.Lock()
	queued := ks.next != nil || ks.inflight != nil
	ks.mu.Unlock()
	if queued {
		t.Fatal("a download is still queued or running after every waiter left")
	}
}

func TestKeySetIssuerDown(t *testing.T) {
	known := newTestKey(t, "known")
	s := newJWKSServer(t, func(int64) []jose.JSONWebKey { return []jose.JSONWebKey{known.public()} })
	ks := loadedKeySet(t, s, testInterval)

	s.failing.Store(true)
	tok := newTestKey(t, "rotated").sign(t)
	_, err := ks.verify(within(t, 10*time.Second), tok)
	wantReason(t, err, ReasonIssuerUnavailable, tok)
	// The cached key keeps working.
	if _, err := ks.verify(within(t, 10*time.Second), known.sign(t)); err != nil {
		t.Fatal(err)
	}

	s.srv.Close() // connection refused, not just 503
	_, err = ks.verify(within(t, 10*time.Second), tok)
	wantReason(t, err, ReasonIssuerUnavailable, tok)
}

func TestKeySetRefreshWhileADownloadIsQueued(t *testing.T) {
	known := newTestKey(t, "known")
	s := newJWKSServer(t, func(int64) []jose.JSONWebKey { return []jose.JSONWebKey{known.public()} })
	ks := loadedKeySet(t, s, testInterval)

	// A forged kid queues the next download. A periodic refresh meanwhile is
	// rate-limited, or (if it comes when the download is due) starts the
	// queued download or shares it: never a second one.
	forged := newTestKey(t, "forged").sign(t)
	verified := make(chan error, 1)
	go func() {
		_, err := ks.verify(within(t, 10*time.Second), forged)
		verified <- err
	}()
	for {
		ks.mu.Lock()
		queued := ks.next != nil
		ks.mu.Unlock()
		if queued {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := ks.refresh(t.Context()); !errors.Is(err, errRateLimited) && err != nil {
		t.Fatalf("refresh inside the interval: %v", err)
	}
	if ReasonOf(<-verified) != ReasonUnknownKey {
		t.Fatal("forged kid not refused as unknown_key")
	}
	if got := s.downloads.Load(); got != 2 {
		t.Fatalf("downloads = %d, want 2", got)
	}
}
