package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the key set document.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA key accepted from the issuer.
const minRSABits = 2048

// errRateLimited means a JWKS download was wanted but the last one is too
// recent.
var errRateLimited = errors.New("JWKS refresh rate-limited")

// errAbandoned means the caller's context ended before the download it was
// waiting for finished. The download itself goes on for other waiters.
var errAbandoned = errors.New("stopped waiting for the JWKS download")

// keySet holds the issuer's public signing keys. It implements go-oidc's
// KeySet interface. Downloads are rate-limited across the process: one
// starts at most once per minInterval, whatever asks for it (a token whose
// kid is not cached, the periodic refresh). A token whose kid is not cached
// waits for the next download that starts after it was looked at, which is
// scheduled no earlier than minInterval after the previous one; every token
// arriving meanwhile waits for that same download. So a flood of tokens with
// made-up kids costs the issuer at most one request per interval, and a
// rotated key is accepted as soon as the next allowed download brings it.
//
// The rate limit runs on the real clock (Config.Now is for token times).
type keySet struct {
	url         string
	client      *http.Client
	algs        []jose.SignatureAlgorithm
	minInterval time.Duration

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	loaded    bool       // one download succeeded
	lastFetch time.Time  // start of the last download, successful or not
	inflight  *fetchCall // the download running now
	next      *fetchCall // the download waiters are queued for, not started yet
}

// fetchCall is one download that several goroutines may wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

func newFetchCall() *fetchCall { return &fetchCall{done: make(chan struct{})} }

// newKeySet returns an empty key set for url.
func newKeySet(url string, client *http.Client, algs []jose.SignatureAlgorithm, minInterval time.Duration) *keySet {
	return &keySet{url: url, client: client, algs: algs, minInterval: minInterval}
}

// Loaded reports whether keys were downloaded at least once.
func (ks *keySet) Loaded() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.loaded
}

// refresh downloads the key set unless the last download started less than
// minInterval ago, in which case it returns errRateLimited. A caller that
// arrives while a download is running waits for it and shares its result.
// It is for the first download and the periodic refresh; a token with an
// unknown kid uses keysFor, which waits instead of being rate-limited.
func (ks *keySet) refresh(ctx context.Context) error {
	ks.mu.Lock()
	if call := ks.inflight; call != nil {
		ks.mu.Unlock()
		return call.wait(ctx)
	}
	now := time.Now()
	if !ks.dueLocked(now) {
		ks.mu.Unlock()
		return errRateLimited
	}
	call := ks.startLocked(now)
	ks.mu.Unlock()
	return call.wait(ctx)
}

// keysFor returns the keys that may have signed a token with kid and alg.
// When none is cached it waits for a download that starts after this call
// (shared with every other waiter) and looks again; a download already
// running is waited for too, but counts only if it brings a key. The result
// is empty when the issuer does not publish such a key. Errors are the
// failed download's, or errAbandoned when ctx ends first.
func (ks *keySet) keysFor(ctx context.Context, kid string, alg jose.SignatureAlgorithm) ([]jose.JSONWebKey, error) {
	ks.mu.Lock()
	if keys := ks.candidatesLocked(kid, alg); len(keys) > 0 {
		ks.mu.Unlock()
		return keys, nil
	}
	if running := ks.inflight; running != nil {
		// It started before this token was looked at: it may bring the
		// key, but when it does not, the answer is the next download.
		ks.mu.Unlock()
		if err := running.wait(ctx); errors.Is(err, errAbandoned) {
			return nil, err
		}
		ks.mu.Lock()
		if keys := ks.candidatesLocked(kid, alg); len(keys) > 0 {
			ks.mu.Unlock()
			return keys, nil
		}
	}
	call := ks.nextLocked(time.Now())
	ks.mu.Unlock()
	if err := call.wait(ctx); err != nil {
		return nil, err
	}
	return ks.candidates(kid, alg), nil
}

// dueLocked reports whether a download may start at now.
func (ks *keySet) dueLocked(now time.Time) bool {
	return ks.lastFetch.IsZero() || now.Sub(ks.lastFetch) >= ks.minInterval
}

// startLocked starts a download now. Waiters queued for the next download
// get this one.
func (ks *keySet) startLocked(now time.Time) *fetchCall {
	call := ks.next
	if call == nil {
		call = newFetchCall()
	}
	ks.next = nil
	ks.inflight = call
	ks.lastFetch = now
	go ks.download(call)
	return call
}

// nextLocked returns the first download that starts at or after now: one
// started at once when the rate limit allows and none is running, else the
// queued one, scheduled when the first waiter arrives.
func (ks *keySet) nextLocked(now time.Time) *fetchCall {
	if ks.next != nil {
		return ks.next
	}
	if ks.inflight == nil && ks.dueLocked(now) {
		return ks.startLocked(now)
	}
	ks.next = newFetchCall()
	go ks.startWhenDue(ks.next)
	return ks.next
}

// startWhenDue is the goroutine of a queued download: it starts call once
// the running download (if any) has ended and minInterval has passed since
// the last one started. It runs even when every waiter has given up, so it
// lives at most minInterval plus one download; there is at most one.
func (ks *keySet) startWhenDue(call *fetchCall) {
	for {
		ks.mu.Lock()
		if ks.next != call {
			ks.mu.Unlock()
			return // refresh started it already
		}
		if running := ks.inflight; running != nil {
			ks.mu.Unlock()
			<-running.done
			continue
		}
		now := time.Now()
		if ks.dueLocked(now) {
			ks.startLocked(now)
			ks.mu.Unlock()
			return
		}
		wait := ks.lastFetch.Add(ks.minInterval).Sub(now)
		ks.mu.Unlock()
		time.Sleep(wait)
	}
}

// download fetches and installs the key set, then releases waiters. It does
// not depend on any caller's context, so a caller that gives up early does
// not cut it short for the others; fetch bounds it.
func (ks *keySet) download(call *fetchCall) {
	keys, err := ks.fetch(context.Background())
	ks.mu.Lock()
	if err == nil {
		ks.keys = keys
		ks.loaded = true
	}
	ks.inflight = nil
	ks.mu.Unlock()
	call.err = err
	close(call.done)
}

// wait blocks until the download ends and returns its error, or returns
// errAbandoned when ctx is done first.
func (c *fetchCall) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errAbandoned, context.Cause(ctx))
	}
}

// fetch performs one HTTP download of the key set.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s", resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS: document larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS decodes a key set, keeping only public asymmetric signing keys.
// Keys it cannot use are skipped rather than failing the whole set, as an
// issuer may publish encryption keys or key types we do not support.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			continue
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue // symmetric ("oct") and anything else
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable signing key")
	}
	return keys, nil
}

// candidates returns the cached keys that may have signed a token with kid
// and alg. A token without kid is tried against every key.
func (ks *keySet) candidates(kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.candidatesLocked(kid, alg)
}

// candidatesLocked is candidates with ks.mu held.
func (ks *keySet) candidatesLocked(kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range ks.keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if !keyFitsAlg(k.Key, alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// keyFitsAlg reports whether a public key type can verify alg.
func keyFitsAlg(key any, alg jose.SignatureAlgorithm) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256, jose.ES384, jose.ES512:
			return true
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// VerifySignature implements go-oidc's KeySet. It returns *Error values
// (unknown_key, bad_signature, issuer_unavailable, malformed_token) and
// records them in the context's verifyOutcome, since go-oidc flattens the
// error into a string.
func (ks *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	payload, err := ks.verify(ctx, token)
	if err != nil {
		if o, ok := ctx.Value(outcomeKey{}).(*verifyOutcome); ok {
			o.err = err
		}
	}
	return payload, err
}

// verify checks the signature of token against the cached keys. When its
// kid is not cached it waits for the next allowed download (see keySet);
// when ctx ends first the token is refused as unknown_key, like a kid the
// download did not bring.
func (ks *keySet) verify(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, ks.algs)
	if err != nil {
		return nil, refuse(ReasonMalformedToken, err, "password is not a well-formed signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse(ReasonMalformedToken, nil, "token must carry exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)

	keys, err := ks.keysFor(ctx, hdr.KeyID, alg)
	switch {
	case errors.Is(err, errAbandoned):
		return nil, refuse(ReasonUnknownKey, err, "token is signed with a key the identity provider does not publish")
	case err != nil:
		return nil, refuse(ReasonIssuerUnavailable, err, "identity provider is unavailable; try again later")
	case len(keys) == 0:
		return nil, refuse(ReasonUnknownKey, nil, "token is signed with a key the identity provider does not publish")
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, refuse(ReasonBadSignature, nil, "token signature is invalid")
}

// outcomeKey is the context key of a *verifyOutcome.
type outcomeKey struct{}

// verifyOutcome carries keySet's typed error past go-oidc, which wraps it
// with %v.
type verifyOutcome struct{ err error }
